//! The `cooperative-sticky` assignor (KIP-429 on top of KIP-54's sticky assignment): balanced
//! like `roundrobin`, but members keep the partitions they own where balance allows, and a
//! partition that has to change hands is handed over in two rebalances instead of one.
//!
//! ```text
//! claims ──validate──▶ valid owners ──keep──▶ held ──deal free──▶ ──balance──▶ final
//!                                                                              │
//!            result = final minus what a different valid owner still holds  ◀──┘
//! ```
//!
//! 1. **Validate claims.** A member's `owned` counts only if it subscribes to the topic, the
//!    partition exists, and its generation is the newest any member reports (`None` counts
//!    only when no member reports a generation, as Java). A partition two such members claim
//!    is owned by neither.
//! 2. **Keep.** When every member can take the same topics, the group has P partitions and M
//!    members, and P mod M members get a quota of ⌈P/M⌉, the rest ⌊P/M⌋; the members owning the
//!    most get the larger quotas (ties by member id), and each keeps its valid partitions up to
//!    its quota, the first in (topic, partition) order. With different subscriptions every
//!    member keeps all its valid partitions and step 4 sorts out the balance.
//! 3. **Deal.** Every partition nobody holds now, in (topic, partition) order, goes to the
//!    least-loaded member that subscribes to its topic (ties by member id).
//! 4. **Balance** (work only with different subscriptions: the homogeneous case is balanced).
//!    While some member could pass a partition along a chain of subscribers to a member with at
//!    least two fewer, do so — first along chains that move no partition away from its valid
//!    owner, then along the chains that move fewest. No such chain left means the spread of
//!    loads is the best any assignment could reach (an optimal semi-matching).
//! 5. **Cooperate.** A partition the plan gives to B while A validly owns it is left out of
//!    this round's result altogether. A sees it missing and revokes it; B does not get it yet,
//!    so no two members ever consume it at once. A rejoins at once (the cooperative protocol's
//!    follow-up rebalance), and in that round nobody owns the partition, so it is dealt, and
//!    since the first round's plan was already balanced everyone else keeps what they hold —
//!    provided each member reports as `owned` exactly what it was given, with the generation
//!    it was given it in.
//!
//! Same input, same output: every choice is in member-id or (topic, partition) order.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::protocol::consumer_protocol::{Subscription, TopicPartitions};

/// A partition: topic and index, ordered by topic then index.
type Tp<'a> = (&'a str, i32);

/// See the module docs.
pub(super) fn assign(
    members: &BTreeMap<String, Subscription>,
    partitions: &HashMap<String, i32>,
) -> BTreeMap<String, TopicPartitions> {
    let subs: Vec<&Subscription> = members.values().collect();
    // Member index (member-id order) → the topics it may get: subscribed, with partitions.
    let eligible: Vec<BTreeSet<&str>> = subs
        .iter()
        .map(|s| {
            s.topics
                .iter()
                .map(String::as_str)
                .filter(|t| partitions.get(*t).is_some_and(|&n| n > 0))
                .collect()
        })
        .collect();
    let mut subscribers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (m, topics) in eligible.iter().enumerate() {
        for topic in topics {
            subscribers.entry(topic).or_default().push(m);
        }
    }
    let owners = valid_owners(&subs, &eligible, partitions);
    let mut plan = Plan {
        held: vec![BTreeSet::new(); subs.len()],
        owners,
        subscribers,
    };
    plan.keep(&eligible, partitions);
    plan.deal(partitions);
    plan.balance(false);
    plan.balance(true);

    members
        .keys()
        .zip(&plan.held)
        .enumerate()
        .map(|(m, (id, held))| {
            let mut topics: TopicPartitions = Vec::new();
            // Leave out what another member still owns: it must revoke it first.
            for &(topic, p) in held
                .iter()
                .filter(|tp| plan.owners.get(tp).is_none_or(|&o| o == m))
            {
                match topics.last_mut() {
                    Some((t, ps)) if t == topic => ps.push(p),
                    _ => topics.push((topic.to_string(), vec![p])),
                }
            }
            (id.clone(), topics)
        })
        .collect()
}

/// The partitions whose claims stand, with their one owner (see the module docs, step 1).
fn valid_owners<'a>(
    subs: &[&Subscription],
    eligible: &[BTreeSet<&'a str>],
    partitions: &HashMap<String, i32>,
) -> BTreeMap<Tp<'a>, usize> {
    let newest = subs.iter().filter_map(|s| s.generation).max();
    // `None` once a second member claims the partition.
    let mut claims: BTreeMap<Tp<'a>, Option<usize>> = BTreeMap::new();
    for (m, sub) in subs.iter().enumerate() {
        if sub.generation != newest {
            continue;
        }
        // A member that lists a partition twice still claims it once.
        let mut mine = BTreeSet::new();
        for (topic, ps) in &sub.owned {
            let Some(&topic) = eligible[m].get(topic.as_str()) else {
                continue;
            };
            for &p in ps.iter().filter(|&&p| (0..partitions[topic]).contains(&p)) {
                if mine.insert((topic, p)) {
                    claims
                        .entry((topic, p))
                        .and_modify(|o| *o = None)
                        .or_insert(Some(m));
                }
            }
        }
    }
    claims
        .into_iter()
        .filter_map(|(tp, o)| o.map(|m| (tp, m)))
        .collect()
}

/// The assignment being worked out, by member index.
struct Plan<'a> {
    /// What each member gets in the end, before the cooperative step.
    held: Vec<BTreeSet<Tp<'a>>>,
    /// Valid owner of each validly owned partition.
    owners: BTreeMap<Tp<'a>, usize>,
    /// Topic → the members that may get it, in member-id order.
    subscribers: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Plan<'a> {
    /// Step 2: each member keeps its valid partitions, up to its quota in the homogeneous case.
    fn keep(&mut self, eligible: &[BTreeSet<&str>], partitions: &HashMap<String, i32>) {
        let n = self.held.len();
        let mut owned: Vec<Vec<Tp<'a>>> = vec![Vec::new(); n];
        for (&tp, &m) in &self.owners {
            owned[m].push(tp);
        }
        let mut quota = vec![usize::MAX; n];
        if n > 0 && eligible.windows(2).all(|w| w[0] == w[1]) {
            let total: usize = self
                .subscribers
                .keys()
                .map(|t| partitions[*t] as usize)
                .sum();
            let (floor, extra) = (total / n, total % n);
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&m| (std::cmp::Reverse(owned[m].len()), m));
            for (rank, m) in order.into_iter().enumerate() {
                quota[m] = floor + usize::from(rank < extra);
            }
        }
        for (m, tps) in owned.into_iter().enumerate() {
            self.held[m].extend(tps.into_iter().take(quota[m]));
        }
    }

    /// Step 3: every partition nobody holds goes to its least-loaded subscriber.
    fn deal(&mut self, partitions: &HashMap<String, i32>) {
        let taken: BTreeSet<Tp<'a>> = self.held.iter().flatten().copied().collect();
        for (&topic, members) in &self.subscribers {
            for p in 0..partitions[topic] {
                if taken.contains(&(topic, p)) {
                    continue;
                }
                let m = *members
                    .iter()
                    .min_by_key(|&&m| (self.held[m].len(), m))
                    .expect("a topic in `subscribers` has one");
                self.held[m].insert((topic, p));
            }
        }
    }

    /// Step 4: shifts partitions along chains of subscribers until no member can pass one to a
    /// member with two fewer. With `move_owned` false only partitions away from their valid
    /// owner move; with it true, chains that take fewest partitions from their owners go first.
    fn balance(&mut self, move_owned: bool) {
        loop {
            let loads: Vec<usize> = self.held.iter().map(BTreeSet::len).collect();
            let least = loads.iter().copied().min().unwrap_or(0);
            let mut donors: Vec<usize> = (0..loads.len())
                .filter(|&m| loads[m] >= least + 2)
                .collect();
            donors.sort_by_key(|&m| (std::cmp::Reverse(loads[m]), m));
            let Some(chain) = donors
                .into_iter()
                .find_map(|d| self.chain_from(d, &loads, move_owned))
            else {
                return;
            };
            for (from, to, tp) in chain {
                self.held[from].remove(&tp);
                self.held[to].insert(tp);
            }
        }
    }

    /// The cheapest chain of moves (from, to, partition) from `donor` to a member with at
    /// least two fewer partitions; a move costs 1 if it takes a partition from its valid owner
    /// (allowed only with `move_owned`), else 0. A 0-1 breadth-first search over members.
    fn chain_from(
        &self,
        donor: usize,
        loads: &[usize],
        move_owned: bool,
    ) -> Option<Vec<(usize, usize, Tp<'a>)>> {
        let n = self.held.len();
        let mut cost = vec![usize::MAX; n];
        let mut came_from: Vec<Option<(usize, Tp<'a>)>> = vec![None; n];
        let mut done = vec![false; n];
        let mut queue = VecDeque::from([donor]);
        cost[donor] = 0;
        while let Some(x) = queue.pop_front() {
            if std::mem::replace(&mut done[x], true) {
                continue;
            }
            // Per topic, the partition x would pass on: one it does not own if it has one.
            let mut offer: BTreeMap<&str, (usize, Tp<'a>)> = BTreeMap::new();
            for &tp in &self.held[x] {
                let step = usize::from(self.owners.get(&tp) == Some(&x));
                if step == 1 && !move_owned {
                    continue;
                }
                let best = offer.entry(tp.0).or_insert((step, tp));
                if step < best.0 {
                    *best = (step, tp);
                }
            }
            for (topic, (step, tp)) in offer {
                for &y in &self.subscribers[topic] {
                    if cost[x] + step < cost[y] {
                        cost[y] = cost[x] + step;
                        came_from[y] = Some((x, tp));
                        if step == 0 {
                            queue.push_front(y);
                        } else {
                            queue.push_back(y);
                        }
                    }
                }
            }
        }
        let target = (0..n)
            .filter(|&y| cost[y] != usize::MAX && loads[y] + 2 <= loads[donor])
            .min_by_key(|&y| (cost[y], loads[y], y))?;
        let mut chain = Vec::new();
        let mut y = target;
        while let Some((x, tp)) = came_from[y] {
            chain.push((x, y, tp));
            y = x;
        }
        chain.reverse();
        Some(chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::assignor::Assignor;
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
        Assignor::CooperativeSticky.assign(members, partitions)
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
}
