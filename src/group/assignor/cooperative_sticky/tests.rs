//! The cooperative-sticky assignor's rules, one by one, and properties over random groups.

use super::*;
use crate::config::Assignor;
use crate::group::assignor::assign;
use proptest::prelude::*;

type Group = BTreeMap<String, Subscription>;
type Assignment = BTreeMap<String, TopicPartitions>;

fn sub(topics: &[&str], owned: &[(&str, &[i32])], generation: Option<i32>) -> Subscription {
    Subscription {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        owned: owned
            .iter()
            .map(|(t, ps)| (t.to_string(), ps.to_vec()))
            .collect(),
        generation,
    }
}

fn group(members: Vec<(&str, Subscription)>) -> Group {
    members
        .into_iter()
        .map(|(m, s)| (m.to_string(), s))
        .collect()
}

fn counts(topics: &[(&str, i32)]) -> HashMap<String, i32> {
    topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn run(members: &Group, partitions: &HashMap<String, i32>) -> Assignment {
    assign(Assignor::CooperativeSticky, members, partitions)
}

/// The group as it rejoins after `result`: each member owns what it got, in `generation`.
fn next_round(members: &Group, result: &Assignment, generation: i32) -> Group {
    members
        .iter()
        .map(|(m, s)| {
            let s = Subscription {
                owned: result[m].clone(),
                generation: Some(generation),
                ..s.clone()
            };
            (m.clone(), s)
        })
        .collect()
}

fn tps(assigned: &TopicPartitions) -> BTreeSet<(String, i32)> {
    assigned
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.clone(), p)))
        .collect()
}

fn load(result: &Assignment, member: &str) -> usize {
    tps(&result[member]).len()
}

/// Every partition of `partitions` exactly once, and only to members subscribing to it.
fn assert_complete(members: &Group, result: &Assignment, partitions: &HashMap<String, i32>) {
    let mut seen = BTreeMap::new();
    for (m, assigned) in result {
        for (t, p) in tps(assigned) {
            assert!(members[m].topics.contains(&t), "{m} got {t}");
            assert!(seen.insert((t.clone(), p), m).is_none(), "{t}-{p} twice");
        }
    }
    let expected: usize = partitions
        .iter()
        .filter(|(t, _)| members.values().any(|s| s.topics.contains(t)))
        .map(|(_, &n)| n.max(0) as usize)
        .sum();
    assert_eq!(seen.len(), expected, "{result:?}");
}

#[test]
fn names_and_cooperation() {
    assert_eq!(
        Assignor::from_name("cooperative-sticky"),
        Some(Assignor::CooperativeSticky)
    );
    assert_eq!(Assignor::CooperativeSticky.name(), "cooperative-sticky");
    assert!(Assignor::CooperativeSticky.is_cooperative());
    assert!(!Assignor::Range.is_cooperative());
    assert!(!Assignor::RoundRobin.is_cooperative());
}

#[test]
fn fresh_group_of_three_over_eight_is_balanced_and_complete() {
    let members = group(vec![
        ("a", sub(&["t", "u"], &[], None)),
        ("b", sub(&["t", "u"], &[], None)),
        ("c", sub(&["t", "u"], &[], None)),
    ]);
    let partitions = counts(&[("t", 5), ("u", 3)]);
    let out = run(&members, &partitions);
    assert_complete(&members, &out, &partitions);
    let loads: Vec<usize> = ["a", "b", "c"].iter().map(|m| load(&out, m)).collect();
    assert_eq!(loads, [3, 3, 2]);
    assert_eq!(out, run(&members, &partitions), "deterministic");
}

#[test]
fn a_joining_member_gets_its_share_one_rebalance_later() {
    let all: &[i32] = &[0, 1, 2, 3];
    let rest: &[i32] = &[4, 5, 6, 7];
    let members = group(vec![
        ("a", sub(&["t"], &[("t", all)], Some(4))),
        ("b", sub(&["t"], &[("t", rest)], Some(4))),
        ("c", sub(&["t"], &[], None)),
    ]);
    let partitions = counts(&[("t", 8)]);
    // a and b keep 3 each; t-3 and t-7 go to c, but only after a and b revoke them.
    let first = run(&members, &partitions);
    assert_eq!(first["a"], vec![("t".to_string(), vec![0, 1, 2])]);
    assert_eq!(first["b"], vec![("t".to_string(), vec![4, 5, 6])]);
    assert_eq!(first["c"], vec![]);
    let second = run(&next_round(&members, &first, 5), &partitions);
    assert_eq!(second["a"], first["a"]);
    assert_eq!(second["b"], first["b"]);
    assert_eq!(second["c"], vec![("t".to_string(), vec![3, 7])]);
}

#[test]
fn survivors_keep_theirs_and_split_what_a_leaver_had() {
    let members = group(vec![
        ("a", sub(&["t"], &[("t", &[0, 1, 2])], Some(2))),
        ("b", sub(&["t"], &[("t", &[3, 4, 5])], Some(2))),
    ]);
    let partitions = counts(&[("t", 8)]); // c, which had 6 and 7, left
    let out = run(&members, &partitions);
    assert_eq!(out["a"], vec![("t".to_string(), vec![0, 1, 2, 6])]);
    assert_eq!(out["b"], vec![("t".to_string(), vec![3, 4, 5, 7])]);
}

#[test]
fn members_owning_most_get_the_larger_quotas() {
    // 7 over 3: one member keeps 3; it should be b, which owns 4.
    let members = group(vec![
        ("a", sub(&["t"], &[("t", &[0, 1])], Some(1))),
        ("b", sub(&["t"], &[("t", &[2, 3, 4, 5])], Some(1))),
        ("c", sub(&["t"], &[("t", &[6])], Some(1))),
    ]);
    let out = run(&members, &counts(&[("t", 7)]));
    assert_eq!(out["a"], vec![("t".to_string(), vec![0, 1])]);
    assert_eq!(out["b"], vec![("t".to_string(), vec![2, 3, 4])]);
    // t-5 moves from b to c: revoked first, so absent this round.
    assert_eq!(out["c"], vec![("t".to_string(), vec![6])]);
}

#[test]
fn stale_generation_claims_are_ignored() {
    let partitions = counts(&[("t", 4)]);
    // b missed generation 2: its claims count for nothing, so nothing is held back.
    let members = group(vec![
        ("a", sub(&["t"], &[("t", &[0, 1])], Some(2))),
        ("b", sub(&["t"], &[("t", &[0, 1, 2, 3])], Some(1))),
    ]);
    let out = run(&members, &partitions);
    assert_eq!(out["a"], vec![("t".to_string(), vec![0, 1])]);
    assert_eq!(out["b"], vec![("t".to_string(), vec![2, 3])]);
    // Without a generation a claim stands only while nobody reports one.
    let members = group(vec![
        ("a", sub(&["t"], &[], Some(2))),
        ("b", sub(&["t"], &[("t", &[0, 1, 2, 3])], None)),
    ]);
    let out = run(&members, &partitions);
    assert_eq!(out["a"], vec![("t".to_string(), vec![0, 2])]);
    assert_eq!(out["b"], vec![("t".to_string(), vec![1, 3])]);
    let members = group(vec![
        ("a", sub(&["t"], &[], None)),
        ("b", sub(&["t"], &[("t", &[0, 1, 2, 3])], None)),
    ]);
    let out = run(&members, &partitions);
    assert_eq!(out["a"], vec![], "b's two extra are revoked first");
    assert_eq!(out["b"], vec![("t".to_string(), vec![0, 1])]);
}

#[test]
fn a_partition_claimed_twice_belongs_to_neither() {
    let members = group(vec![
        ("a", sub(&["t"], &[("t", &[0, 1])], Some(3))),
        ("b", sub(&["t"], &[("t", &[0])], Some(3))),
    ]);
    let partitions = counts(&[("t", 4)]);
    let out = run(&members, &partitions);
    // t-0 is nobody's: dealt like a new partition, and held back from no one.
    assert_eq!(out["a"], vec![("t".to_string(), vec![1, 2])]);
    assert_eq!(out["b"], vec![("t".to_string(), vec![0, 3])]);
    assert_complete(&members, &out, &partitions);
}

#[test]
fn claims_outside_the_subscription_or_the_topic_are_ignored() {
    let members = group(vec![
        (
            "a",
            sub(
                &["t"],
                &[("t", &[9, -1]), ("u", &[0]), ("gone", &[0])],
                Some(1),
            ),
        ),
        ("b", sub(&["t", "u"], &[], Some(1))),
    ]);
    let partitions = counts(&[("t", 2), ("u", 1)]);
    let out = run(&members, &partitions);
    assert_complete(&members, &out, &partitions);
    assert_eq!(out["a"], vec![("t".to_string(), vec![0])]);
    assert_eq!(
        out["b"],
        vec![("t".to_string(), vec![1]), ("u".to_string(), vec![0])]
    );
}

#[test]
fn different_subscriptions_go_only_to_subscribers_and_balance() {
    let members = group(vec![
        ("a", sub(&["t", "u"], &[], None)),
        ("b", sub(&["t"], &[], None)),
        ("c", sub(&["u", "v", "gone"], &[], None)),
    ]);
    let partitions = counts(&[("t", 2), ("u", 10), ("v", 3)]);
    let out = run(&members, &partitions);
    assert_complete(&members, &out, &partitions);
    // 15 partitions; b can only have t's 2, so a and c share the other 13.
    assert_eq!(load(&out, "b"), 2);
    assert!(load(&out, "a").abs_diff(load(&out, "c")) <= 1, "{out:?}");
}

#[test]
fn with_different_subscriptions_moves_wait_a_round_too() {
    let members = group(vec![
        (
            "a",
            sub(
                &["t", "u"],
                &[("t", &[0, 1, 2, 3]), ("u", &[0, 1, 2, 3])],
                Some(1),
            ),
        ),
        ("b", sub(&["u"], &[], None)),
    ]);
    let partitions = counts(&[("t", 4), ("u", 4)]);
    let first = run(&members, &partitions);
    assert_eq!(first["a"], vec![("t".to_string(), vec![0, 1, 2, 3])]);
    assert_eq!(first["b"], vec![]);
    let second = run(&next_round(&members, &first, 2), &partitions);
    assert_eq!(second["a"], first["a"]);
    assert_eq!(second["b"], vec![("u".to_string(), vec![0, 1, 2, 3])]);
}

#[test]
fn a_chain_balances_what_no_single_move_can() {
    // a can pass only t (to b), b only u (to c): a's surplus must flow a → b → c.
    let members = group(vec![
        ("a", sub(&["t"], &[], None)),
        ("b", sub(&["t", "u"], &[], None)),
        ("c", sub(&["u"], &[], None)),
    ]);
    let partitions = counts(&[("t", 7), ("u", 2)]);
    let out = run(&members, &partitions);
    assert_complete(&members, &out, &partitions);
    let loads: Vec<usize> = ["a", "b", "c"].iter().map(|m| load(&out, m)).collect();
    assert_eq!(loads, [4, 3, 2], "{out:?}");
}

const TOPICS: [&str; 4] = ["t0", "t1", "t2", "gone"];

/// Members: (topics bit mask over TOPICS, claims as (topic index, partition), generation).
fn arb_group() -> impl Strategy<Value = (Group, HashMap<String, i32>, bool)> {
    let member = (
        0u8..16,
        prop::collection::vec((0usize..4, -1i32..7), 0..8),
        prop::option::of(0i32..3),
    );
    (
        prop::collection::vec(member, 1..6),
        prop::collection::vec(0i32..7, 3),
        any::<bool>(),
    )
        .prop_map(|(members, sizes, homogeneous)| {
            let mask0 = members[0].0;
            let members = members
                .into_iter()
                .enumerate()
                .map(|(i, (mask, claims, generation))| {
                    let mask = if homogeneous { mask0 } else { mask };
                    let topics = (0..4)
                        .filter(|b| mask & (1 << b) != 0)
                        .map(|b| TOPICS[b].to_string())
                        .collect();
                    let owned = claims
                        .into_iter()
                        .map(|(t, p)| (TOPICS[t].to_string(), vec![p]))
                        .collect();
                    let s = Subscription {
                        topics,
                        owned,
                        generation,
                    };
                    (format!("m{i}"), s)
                })
                .collect();
            let partitions = TOPICS[..3]
                .iter()
                .zip(sizes)
                .map(|(t, n)| (t.to_string(), n))
                .collect();
            (members, partitions, homogeneous)
        })
}

/// The rule of step 1, restated: partition → its one valid owner.
fn valid_claims(members: &Group, partitions: &HashMap<String, i32>) -> BTreeMap<Tp2, String> {
    let newest = members.values().filter_map(|s| s.generation).max();
    let mut claimers: BTreeMap<Tp2, BTreeSet<&String>> = BTreeMap::new();
    for (m, s) in members.iter().filter(|(_, s)| s.generation == newest) {
        for (t, p) in tps(&s.owned) {
            if s.topics.contains(&t) && (0..*partitions.get(&t).unwrap_or(&0)).contains(&p) {
                claimers.entry((t, p)).or_default().insert(m);
            }
        }
    }
    claimers
        .into_iter()
        .filter(|(_, ms)| ms.len() == 1)
        .map(|(tp, ms)| (tp, ms.into_iter().next().unwrap().clone()))
        .collect()
}

type Tp2 = (String, i32);

/// No member could hand a partition straight to a subscriber with two fewer.
fn assert_no_single_move_helps(members: &Group, result: &Assignment) {
    for (x, assigned) in result {
        for (t, _) in tps(assigned) {
            for (y, s) in members {
                assert!(
                    !s.topics.contains(&t) || load(result, y) + 2 > load(result, x),
                    "{x} could pass {t} to {y}: {result:?}"
                );
            }
        }
    }
}

/// The least sum of squared loads any assignment of `partitions` to subscribers reaches.
fn best_possible(members: &Group, partitions: &HashMap<String, i32>) -> usize {
    let mut all: Vec<Vec<usize>> = Vec::new();
    for (t, &n) in partitions {
        let subscribers: Vec<usize> = members
            .values()
            .enumerate()
            .filter(|(_, s)| s.topics.contains(t))
            .map(|(i, _)| i)
            .collect();
        if !subscribers.is_empty() {
            all.extend((0..n).map(|_| subscribers.clone()));
        }
    }
    fn go(rest: &[Vec<usize>], loads: &mut Vec<usize>) -> usize {
        match rest.split_first() {
            None => loads.iter().map(|l| l * l).sum(),
            Some((choices, rest)) => choices
                .iter()
                .map(|&m| {
                    loads[m] += 1;
                    let best = go(rest, loads);
                    loads[m] -= 1;
                    best
                })
                .min()
                .unwrap(),
        }
    }
    go(&all, &mut vec![0; members.len()])
}

proptest! {
    #[test]
    fn balance_is_the_best_possible((members, partitions, _) in arb_group()) {
        let total: i32 = partitions.values().sum();
        prop_assume!(total <= 9 && members.len() <= 4);
        // Once what moves has been revoked, so that everything is assigned.
        let first = run(&members, &partitions);
        let out = run(&next_round(&members, &first, 7), &partitions);
        let squares: usize = members.keys().map(|m| load(&out, m).pow(2)).sum();
        prop_assert_eq!(squares, best_possible(&members, &partitions));
    }

    #[test]
    fn two_rounds_settle_and_nothing_is_taken_before_it_is_revoked(
        (members, partitions, homogeneous) in arb_group()
    ) {
        let first = run(&members, &partitions);
        prop_assert_eq!(&first, &run(&members, &partitions));
        let owners = valid_claims(&members, &partitions);
        let mut seen = BTreeSet::new();
        for (m, assigned) in &first {
            for tp in tps(assigned) {
                prop_assert!(members[m].topics.contains(&tp.0));
                prop_assert!(tp.1 >= 0 && tp.1 < partitions[&tp.0]);
                prop_assert!(owners.get(&tp).is_none_or(|o| o == m), "{:?} taken from {:?}", tp, owners.get(&tp));
                prop_assert!(seen.insert(tp));
            }
        }
        // Valid owners whose claims fit their quota keep them all in one partition.
        let second_group = next_round(&members, &first, 7);
        let second = run(&second_group, &partitions);
        assert_complete(&members, &second, &partitions);
        for (m, assigned) in &first {
            prop_assert!(tps(assigned).is_subset(&tps(&second[m])), "{} lost some of {:?}", m, assigned);
        }
        assert_no_single_move_helps(&members, &second);
        if homogeneous {
            // Each valid owner keeps at least its floor share of its claims in round one.
            let floor = partitions
                .iter()
                .filter(|(t, _)| members.values().next().unwrap().topics.contains(t))
                .map(|(_, &n)| n as usize)
                .sum::<usize>()
                / members.len();
            for m in members.keys() {
                let claimed = owners.values().filter(|o| *o == m).count();
                prop_assert!(load(&first, m) >= claimed.min(floor));
            }
            let total: usize = second.values().map(|a| tps(a).len()).sum();
            let n = members.len();
            for m in members.keys() {
                let l = load(&second, m);
                prop_assert!(l == total / n || l == total.div_ceil(n), "{}: {} of {}", m, l, total);
            }
        }
    }
}
