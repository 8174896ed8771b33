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
mod tests;
