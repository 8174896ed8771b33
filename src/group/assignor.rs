//! Partition assignors for classic consumer groups, run by the group leader.
//!
//! - `range` and `roundrobin` divide partitions exactly as the Java client's assignors of the
//!   same names, so a group can mix purekafka, Java and librdkafka members. They are *eager*:
//!   every member gives up all its partitions before each rebalance.
//! - `cooperative-sticky` ([`cooperative_sticky`]) is *cooperative* (KIP-429): members keep
//!   their partitions through a rebalance, and the assignment keeps what it can, so only the
//!   partitions that must move are revoked, and they reach their new owner one rebalance
//!   later. Its choices follow Java's `CooperativeStickyAssignor` (same rules, not
//!   necessarily the same partition for the same member).

use std::collections::{BTreeMap, BTreeSet, HashMap};

mod cooperative_sticky;

use crate::config::Assignor;
use crate::protocol::consumer_protocol::{Subscription, TopicPartitions};

/// Divides the partitions of the subscribed topics (`partitions`: topic → partition count)
/// among `members` (member id → subscription). Every member gets an entry, maybe empty.
///
/// `range` and `roundrobin` look only at the topics. `cooperative-sticky` also reads each
/// member's `owned` and `generation`, and leaves out of this round a partition that moves
/// away from a member still owning it, so the result need not cover every partition; the
/// follow-up rebalance, after its owner has revoked it, hands it to its new member.
pub(crate) fn assign(
    assignor: Assignor,
    members: &BTreeMap<String, Subscription>,
    partitions: &HashMap<String, i32>,
) -> BTreeMap<String, TopicPartitions> {
    if assignor == Assignor::CooperativeSticky {
        return cooperative_sticky::assign(members, partitions);
    }
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = members
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    // Topic → its subscribers, both sorted.
    let mut subscribers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (member, sub) in members {
        for topic in &sub.topics {
            if partitions.contains_key(topic) {
                subscribers.entry(topic).or_default().push(member);
            }
        }
    }
    match assignor {
        Assignor::Range => {
            for (topic, consumers) in &subscribers {
                let n = partitions[*topic].max(0) as usize;
                let (per, extra) = (n / consumers.len(), n % consumers.len());
                for (i, member) in consumers.iter().enumerate() {
                    let start = i * per + i.min(extra);
                    let len = per + usize::from(i < extra);
                    if len > 0 {
                        let ps = (start..start + len).map(|p| p as i32).collect();
                        out.get_mut(*member)
                            .expect("member")
                            .insert(topic.to_string(), ps);
                    }
                }
            }
        }
        Assignor::RoundRobin => {
            let all: Vec<&str> = members.keys().map(String::as_str).collect();
            let mut next = 0;
            for (topic, consumers) in &subscribers {
                let consumers: BTreeSet<&str> = consumers.iter().copied().collect();
                for p in 0..partitions[*topic].max(0) {
                    // The next member in the circle that subscribes to this topic.
                    while !consumers.contains(all[next % all.len()]) {
                        next += 1;
                    }
                    let member = all[next % all.len()];
                    next += 1;
                    out.get_mut(member)
                        .expect("member")
                        .entry(topic.to_string())
                        .or_default()
                        .push(p);
                }
            }
        }
        Assignor::CooperativeSticky => unreachable!("returned above"),
    }
    out.into_iter()
        .map(|(m, topics)| (m, topics.into_iter().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(subs: &[(&str, &[&str])]) -> BTreeMap<String, Subscription> {
        subs.iter()
            .map(|(m, topics)| {
                let sub = Subscription {
                    topics: topics.iter().map(|t| t.to_string()).collect(),
                    owned: vec![],
                    generation: None,
                };
                (m.to_string(), sub)
            })
            .collect()
    }

    fn counts(topics: &[(&str, i32)]) -> HashMap<String, i32> {
        topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn range_matches_the_java_assignor() {
        // Java's RangeAssignor: 3 partitions over 2 members gives [0,1] and [2], per topic.
        let out = assign(
            Assignor::Range,
            &members(&[("a", &["t", "u"]), ("b", &["t", "u"])]),
            &counts(&[("t", 3), ("u", 3)]),
        );
        assert_eq!(
            out["a"],
            vec![("t".into(), vec![0, 1]), ("u".into(), vec![0, 1])]
        );
        assert_eq!(out["b"], vec![("t".into(), vec![2]), ("u".into(), vec![2])]);
    }

    #[test]
    fn roundrobin_matches_the_java_assignor() {
        // Java's RoundRobinAssignor: t0 a, t1 b, t2 a, u0 b, u1 a, u2 b.
        let out = assign(
            Assignor::RoundRobin,
            &members(&[("a", &["t", "u"]), ("b", &["t", "u"])]),
            &counts(&[("t", 3), ("u", 3)]),
        );
        assert_eq!(
            out["a"],
            vec![("t".into(), vec![0, 2]), ("u".into(), vec![1])]
        );
        assert_eq!(
            out["b"],
            vec![("t".into(), vec![1]), ("u".into(), vec![0, 2])]
        );
    }

    #[test]
    fn every_partition_once_whatever_the_group() {
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            for n_members in 1..6 {
                let names: Vec<String> = (0..n_members).map(|i| format!("m{i}")).collect();
                let subs: Vec<(&str, &[&str])> = names
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        (
                            m.as_str(),
                            if i % 2 == 0 {
                                &["t", "u"][..]
                            } else {
                                &["t"][..]
                            },
                        )
                    })
                    .collect();
                let out = assign(
                    assignor,
                    &members(&subs),
                    &counts(&[("t", 7), ("u", 5), ("absent", 3)]),
                );
                let mut seen: Vec<(String, i32)> = out
                    .values()
                    .flat_map(|tps| {
                        tps.iter()
                            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                    })
                    .collect();
                seen.sort();
                let mut expected: Vec<(String, i32)> = (0..7)
                    .map(|p| ("t".to_string(), p))
                    .chain((0..5).map(|p| ("u".to_string(), p)))
                    .collect();
                expected.sort();
                assert_eq!(seen, expected, "{assignor:?} with {n_members} members");
                // A member only gets topics it subscribed to.
                for (i, name) in names.iter().enumerate() {
                    if i % 2 == 1 {
                        assert!(
                            out[name].iter().all(|(t, _)| t == "t"),
                            "{assignor:?}: {name}"
                        );
                    }
                }
            }
        }
    }
}
