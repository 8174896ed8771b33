//! Keeping the metadata current. Every refresh goes through one queue, so that everyone who
//! asks while a Metadata request is being answered shares the next one; and a keeper task asks
//! again for the topics in use, on a timer and whenever something is unsettled.
//!
//! ```text
//!  refresh(topics) ─► next flight: topics ∪= asked ─► runner task: one Metadata request per
//!        ▲                     (waiters share it)          flight, merged into the cache
//!        │
//!  keeper task ── every topic.metadata.refresh.interval.ms: every topic in use
//!              └─ sooner while unsettled (a leader moved, a partition without leader, a
//!                 subscribed topic missing): the unsettled ones, at
//!                 topic.metadata.refresh.fast.interval.ms doubling to retry.backoff.max.ms
//! ```
//!
//! Only the topics in use are asked for, as librdkafka's sparse refresh does, so a client's
//! refreshes cost the same whatever the size of the cluster: those a producer sent to, a
//! consumer was assigned or subscribed to, and those a group leader assigns. A regex
//! subscription is the exception: it needs every topic's name.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::{Cluster, Inner};
use crate::error::Error;

/// With no topic in use, the keeper asks for the brokers alone, and no more often than this
/// (librdkafka's floor).
const BROKERS_ONLY_FLOOR: Duration = Duration::from_secs(10);

/// The refresh queue and the topics in use.
#[derive(Default)]
pub(super) struct Refresher {
    state: std::sync::Mutex<State>,
    /// Wakes the keeper: a client saw a topic's metadata go stale.
    pub wake: Arc<Notify>,
}

#[derive(Default)]
struct State {
    /// The refreshes that will go out next, gathering what everyone asks for meanwhile: one
    /// that lets the broker create the topics it names, one that does not.
    next: [Option<Flight>; 2],
    /// A runner task is sending flights.
    running: bool,
    /// Topics in use: sent to, assigned, or assigned by this client as a group leader.
    used: BTreeSet<String>,
    /// The topics a consumer is subscribed to, waited for at the fast interval while missing.
    subscribed: BTreeSet<String>,
    /// A subscription needs every topic's name (a regex).
    listing: bool,
}

/// One Metadata request to come, and the waiters it will answer.
struct Flight {
    topics: BTreeSet<String>,
    /// Ask for every topic.
    every: bool,
    /// Let the broker create the topics named (`allow.auto.create.topics`).
    create: bool,
    done: watch::Sender<Option<Result<(), Error>>>,
}

impl Refresher {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change under this lock is a single assignment or insertion: a panic elsewhere
        // cannot leave the state half-changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Cluster {
    /// Asks the cluster for the brokers and `topics` (every topic with `every`), sharing the
    /// request with everyone else who asks before it goes out. The answer is merged into the
    /// cache; see [`Cluster::topic`] and the others for what it holds.
    ///
    /// Cancel-safe: the request goes on in a task of its own, for the others who wait for it.
    pub async fn refresh(&self, topics: &[&str], every: bool) -> Result<(), Error> {
        self.refresh_with(topics, every, false).await
    }

    /// As [`Cluster::refresh`], letting the broker create the topics named when `create`
    /// (only where it has `auto.create.topics.enable`): for a producer about to send to one,
    /// never for the periodic refreshes, which would bring back a deleted topic.
    pub async fn refresh_with(
        &self,
        topics: &[&str],
        every: bool,
        create: bool,
    ) -> Result<(), Error> {
        let mut done = {
            let mut state = self.inner.refresher.state();
            let flight = state.next[create as usize].get_or_insert_with(|| Flight {
                topics: BTreeSet::new(),
                every: false,
                create,
                done: watch::channel(None).0,
            });
            flight.topics.extend(topics.iter().map(|t| t.to_string()));
            flight.every |= every;
            let done = flight.done.subscribe();
            if !state.running {
                // Spawned under the lock: the runner takes its first flight only once this
                // caller has marked it running.
                tokio::spawn(send_flights(self.inner.clone()));
                state.running = true;
            }
            done
        };
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::protocol("-", "the metadata refresh ended without an answer"))?;
        outcome.clone().expect("waited for Some")
    }

    /// `topic` is in use from now on: the keeper asks for it on every periodic refresh.
    pub fn use_topic(&self, topic: &str) {
        let mut state = self.inner.refresher.state();
        if !state.used.contains(topic) {
            state.used.insert(topic.to_owned());
            drop(state);
            // The keeper may be idling at the brokers-only pace: have it look again.
            self.inner.refresher.wake.notify_one();
        }
    }

    /// The topics a consumer is subscribed to (replacing any before), and whether its
    /// subscription needs every topic's name. Asks for them at once.
    pub fn subscribe(&self, topics: &[String], listing: bool) {
        let mut state = self.inner.refresher.state();
        state.subscribed = topics.iter().cloned().collect();
        state.listing = listing;
        drop(state);
        self.inner.refresher.wake.notify_one();
    }

    /// Marks `topic`'s metadata out of date and has the keeper ask for it now: a leader moved,
    /// or the topic or a partition was not where the cache said. Lookups meanwhile ask too.
    pub fn refresh_soon(&self, topic: &str) {
        self.invalidate_topic(topic);
        self.inner.refresher.wake.notify_one();
    }

    /// Every topic in use, subscribed ones included.
    fn topics_in_use(&self) -> (Vec<String>, bool) {
        let state = self.inner.refresher.state();
        let topics = state.used.union(&state.subscribed).cloned().collect();
        (topics, state.listing)
    }

    /// What wants asking for again soon: the topics in use that are out of date, not fully
    /// served, or subscribed to and missing; and every topic's name, when a subscription needs
    /// them and none has come yet. `None` when all is settled.
    fn unsettled(&self) -> Option<(Vec<String>, bool)> {
        let (used, subscribed, listing) = {
            let state = self.inner.refresher.state();
            (state.used.clone(), state.subscribed.clone(), state.listing)
        };
        let (topics, no_listing): (Vec<String>, bool) = self.with_metadata(|metadata| {
            let topics = used
                .union(&subscribed)
                .filter(|name| match metadata.topics.get(name.as_str()) {
                    Some(topic) => {
                        topic.is_unsettled() || (topic.is_missing() && subscribed.contains(*name))
                    }
                    None => subscribed.contains(*name),
                })
                .cloned()
                .collect();
            (topics, metadata.listing.is_none())
        });
        let every = listing && no_listing;
        // No broker has answered yet (they were all down when the client was built): the
        // brokers alone are asked for, at the fast pace, until one does.
        let unreached = self.with_metadata(|metadata| metadata.brokers.is_empty());
        (every || unreached || !topics.is_empty()).then_some((topics, every))
    }
}

/// Sends the queued flights one after another, until none is left.
async fn send_flights(inner: Arc<Inner>) {
    let cluster = Cluster { inner };
    // Should this task end otherwise than by running out of flights (its runtime shut down, a
    // panic), the next `refresh` starts another, and whoever waits for a flight not sent
    // hears so rather than wait forever.
    let mut stopped = StopGuard {
        refresher: &cluster.inner.refresher,
        armed: true,
    };
    loop {
        let flight = {
            let mut state = cluster.inner.refresher.state();
            let next = state.next.iter_mut().find_map(Option::take);
            match next {
                Some(flight) => flight,
                None => {
                    state.running = false;
                    stopped.armed = false;
                    return;
                }
            }
        };
        let topics: Vec<&str> = flight.topics.iter().map(String::as_str).collect();
        let asked = (!flight.every).then_some(&topics[..]);
        let outcome = cluster.metadata_with(asked, flight.create).await.map(drop);
        if let Err(e) = &outcome {
            tracing::debug!(error = %e, "metadata refresh failed");
        }
        flight.done.send_replace(Some(outcome));
    }
}

/// Marks the runner stopped when its task ends otherwise than by running out of flights.
struct StopGuard<'a> {
    refresher: &'a Refresher,
    armed: bool,
}

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.refresher.state();
        state.running = false;
        // Its waiters' channels close with it: they get an error, not a hang.
        state.next = [None, None];
    }
}

/// What the keeper needs from the configuration.
#[derive(Clone, Copy)]
pub(super) struct Cadence {
    /// `topic.metadata.refresh.interval.ms`; `None`: no periodic refresh.
    pub interval: Option<Duration>,
    /// `topic.metadata.refresh.fast.interval.ms`.
    pub fast: Duration,
    /// `retry.backoff.max.ms`: the fast interval doubles up to this.
    pub fast_max: Duration,
}

/// The keeper: refreshes the topics in use every interval, and the unsettled ones sooner. It
/// holds the cluster only while it refreshes, and ends once every client of it is gone.
pub(super) async fn keep_current(cluster: Weak<Inner>, wake: Arc<Notify>, cadence: Cadence) {
    let mut last_full = Instant::now();
    let mut last = last_full;
    let mut fast = cadence.fast;
    loop {
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let (unsettled, idle) = {
            let Some(inner) = cluster.upgrade() else {
                return;
            };
            let cluster = Cluster { inner };
            let (in_use, listing) = cluster.topics_in_use();
            (cluster.unsettled().is_some(), in_use.is_empty() && !listing)
        };
        let now = Instant::now();
        let full_due = cadence.full_due(last_full, idle);
        let due = cadence.due(now, full_due, unsettled, fast);
        let was_woken = tokio::select! {
            _ = &mut woken => true,
            _ = sleep_until(due) => false,
        };
        if was_woken {
            // However often clients report stale metadata (every failed batch of a producer
            // does), no more than one refresh per fast interval.
            tokio::time::sleep_until(last + cadence.fast).await;
        }
        let Some(inner) = cluster.upgrade() else {
            return;
        };
        let cluster = Cluster { inner };
        let full = !was_woken && full_due.is_some_and(|due| Instant::now() >= due);
        let outcome = if full {
            last_full = Instant::now();
            let (topics, listing) = cluster.topics_in_use();
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            cluster.refresh(&topics, listing).await
        } else {
            match cluster.unsettled() {
                Some((topics, every)) => {
                    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
                    let create = cluster.inner.consumer_creates;
                    cluster.refresh_with(&topics, every, create).await
                }
                None => Ok(()),
            }
        };
        last = Instant::now();
        let settled = outcome.is_ok() && cluster.unsettled().is_none();
        fast = cadence.next_fast(fast, was_woken, settled);
    }
}

impl Cadence {
    /// When the next periodic refresh is due, the last one having been at `last_full`: no
    /// sooner than the fast interval (a shorter refresh interval still makes every lookup ask,
    /// see `Cluster::topic`, but the keeper does not spin), and with no topic in use (`idle`)
    /// no sooner than the brokers-only floor.
    fn full_due(&self, last_full: Instant, idle: bool) -> Option<Instant> {
        self.interval.map(|interval| match idle {
            true => last_full + interval.max(BROKERS_ONLY_FLOOR),
            false => last_full + interval.max(self.fast),
        })
    }

    /// When the keeper wakes next: at the periodic refresh, or sooner, after the pause `fast`,
    /// while something is unsettled.
    fn due(
        &self,
        now: Instant,
        full_due: Option<Instant>,
        unsettled: bool,
        fast: Duration,
    ) -> Option<Instant> {
        match (unsettled, full_due) {
            (true, Some(full)) => Some(full.min(now + fast)),
            (true, None) => Some(now + fast),
            (false, full) => full,
        }
    }

    /// The pause before the next refresh of what is unsettled: back to the shortest when the
    /// keeper was woken (something new went stale) or all is settled; doubled, up to
    /// `retry.backoff.max.ms`, while it stays unsettled.
    fn next_fast(&self, fast: Duration, woken: bool, settled: bool) -> Duration {
        match woken || settled {
            true => self.fast,
            false => (fast * 2).min(self.fast_max.max(self.fast)),
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CADENCE: Cadence = Cadence {
        interval: Some(Duration::from_secs(300)),
        fast: Duration::from_millis(100),
        fast_max: Duration::from_millis(1000),
    };

    #[test]
    fn periodic_refreshes_and_the_floor_without_topics() {
        let t0 = Instant::now();
        assert_eq!(
            CADENCE.full_due(t0, false),
            Some(t0 + Duration::from_secs(300))
        );
        let quick = Cadence {
            interval: Some(Duration::from_millis(200)),
            ..CADENCE
        };
        assert_eq!(
            quick.full_due(t0, false),
            Some(t0 + Duration::from_millis(200))
        );
        assert_eq!(quick.full_due(t0, true), Some(t0 + BROKERS_ONLY_FLOOR));
        let spinning = Cadence {
            interval: Some(Duration::from_millis(1)),
            ..CADENCE
        };
        assert_eq!(spinning.full_due(t0, false), Some(t0 + CADENCE.fast));
        let never = Cadence {
            interval: None,
            ..CADENCE
        };
        assert_eq!(never.full_due(t0, false), None);
    }

    #[test]
    fn unsettled_topics_are_asked_for_sooner() {
        let t0 = Instant::now();
        let full = CADENCE.full_due(t0, false);
        let fast = Duration::from_millis(100);
        assert_eq!(CADENCE.due(t0, full, false, fast), full);
        assert_eq!(CADENCE.due(t0, full, true, fast), Some(t0 + fast));
        // Never later than the periodic refresh.
        let soon = Some(t0 + Duration::from_millis(50));
        assert_eq!(CADENCE.due(t0, soon, true, fast), soon);
        assert_eq!(CADENCE.due(t0, None, true, fast), Some(t0 + fast));
        assert_eq!(CADENCE.due(t0, None, false, fast), None);
    }

    #[test]
    fn the_fast_pause_doubles_to_its_ceiling_and_starts_over() {
        let mut fast = CADENCE.fast;
        let mut pauses = Vec::new();
        for _ in 0..6 {
            pauses.push(fast.as_millis());
            fast = CADENCE.next_fast(fast, false, false);
        }
        assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(CADENCE.next_fast(fast, true, false), CADENCE.fast);
        assert_eq!(CADENCE.next_fast(fast, false, true), CADENCE.fast);
    }
}
