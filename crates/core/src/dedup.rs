//! Duplicate delivery: Lambda may invoke the function twice with the same event without any
//! error. A warm container remembers the keys of the batches it has published and skips an exact
//! repeat. This needs no extra AWS service, and it is sound: a key is recorded only after the
//! batch's metrics were delivered, so a retry after a failure is never skipped, and two distinct
//! batches never share a key in practice (see [`BatchKey`]).
//!
//! A batch whose delivery failed after part of its metrics were sent is remembered too
//! ([`PartialDeliveries`]), so that a retry in the same container sends only the rest.
//!
//! What it does not cover: a duplicate or a retry that lands on another container (concurrent or
//! after a cold start).

use std::collections::{HashSet, VecDeque};
use std::hash::Hasher;

use base64::Engine as _;

/// Identifies a batch by its bytes: a 64-bit FxHash of the base64 data, its length, and the gzip
/// trailer (CRC-32 and size of the decoded payload), which costs nothing to read. Distinct batches
/// differ at least in their log event ids, so all four colliding is not a practical concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchKey {
    hash: u64,
    len: usize,
    trailer: u64,
}

impl BatchKey {
    pub fn of(data: &str) -> BatchKey {
        let data = data.trim_ascii();
        let mut h = rustc_hash::FxHasher::default();
        h.write(data.as_bytes());
        // The last 16 base64 characters hold the final 12 (or fewer, with padding) bytes.
        let tail = &data.as_bytes()[data.len().saturating_sub(16)..];
        let trailer = base64::engine::general_purpose::STANDARD
            .decode(tail)
            .ok()
            .and_then(|b| b.get(b.len().saturating_sub(8)..).map(|t| t.to_vec()))
            .map_or(0, |t| {
                t.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b))
            });
        BatchKey {
            hash: h.finish(),
            len: data.len(),
            trailer,
        }
    }
}

/// The most recent published batch keys of one warm container.
#[derive(Debug)]
pub struct RecentBatches {
    keys: VecDeque<BatchKey>,
    capacity: usize,
}

impl RecentBatches {
    pub fn new(capacity: usize) -> RecentBatches {
        RecentBatches {
            keys: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub fn contains(&self, key: &BatchKey) -> bool {
        self.keys.contains(key)
    }

    /// Records a published batch, forgetting the oldest beyond capacity.
    pub fn insert(&mut self, key: BatchKey) {
        if self.capacity == 0 || self.contains(&key) {
            return;
        }
        if self.keys.len() == self.capacity {
            self.keys.pop_front();
        }
        self.keys.push_back(key);
    }
}

/// Batches whose metrics were partly delivered before their invocation failed: the clock that
/// attempt used and the digests of the PutMetricData requests that got through. When Lambda
/// retries the event in the same warm container, the function reuses that clock (so it builds
/// the same requests) and sends only the ones missing. A retry in another container still
/// sends everything again.
#[derive(Debug)]
pub struct PartialDeliveries {
    entries: VecDeque<(BatchKey, Partial)>,
    capacity: usize,
}

/// What an earlier, failed attempt at one batch delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partial {
    /// The attempt's clock, Unix seconds.
    pub now: i64,
    pub delivered: HashSet<u64>,
}

impl PartialDeliveries {
    pub fn new(capacity: usize) -> PartialDeliveries {
        PartialDeliveries {
            entries: VecDeque::with_capacity(capacity.min(64)),
            capacity,
        }
    }

    pub fn get(&self, key: &BatchKey) -> Option<&Partial> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, p)| p)
    }

    /// Adds what another failed attempt delivered (keeping the first attempt's clock).
    pub fn record(&mut self, key: BatchKey, now: i64, delivered: impl IntoIterator<Item = u64>) {
        if self.capacity == 0 {
            return;
        }
        if let Some((_, p)) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            p.delivered.extend(delivered);
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((
            key,
            Partial {
                now,
                delivered: delivered.into_iter().collect(),
            },
        ));
    }

    /// Forgets a batch once it has been delivered in full.
    pub fn remove(&mut self, key: &BatchKey) {
        self.entries.retain(|(k, _)| k != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{simulate, SimConfig};
    use crate::subscription::event_data;

    #[test]
    fn every_simulated_batch_has_its_own_key_and_repeats_are_seen() {
        let sim = simulate(&SimConfig {
            pods: 200,
            max_batch_bytes: 20_000,
            ..SimConfig::default()
        });
        let keys: Vec<BatchKey> = sim
            .events
            .iter()
            .map(|e| BatchKey::of(&event_data(e.json.as_bytes()).unwrap()))
            .collect();
        assert!(keys.len() > 20);
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[..i].contains(k), "batch {i} collides");
        }
        let mut recent = RecentBatches::new(4);
        for k in &keys[..6] {
            recent.insert(*k);
        }
        assert!(
            !recent.contains(&keys[0]) && !recent.contains(&keys[1]),
            "oldest forgotten"
        );
        assert!(keys[2..6].iter().all(|k| recent.contains(k)));
    }

    #[test]
    fn partial_deliveries_keep_the_first_clock_and_add_up() {
        let sim = simulate(&SimConfig::default());
        let key = |i: usize| BatchKey::of(&event_data(sim.events[i].json.as_bytes()).unwrap());
        let mut p = PartialDeliveries::new(2);
        p.record(key(0), 100, [1, 2]);
        p.record(key(0), 200, [3]);
        let got = p.get(&key(0)).unwrap();
        assert_eq!(got.now, 100);
        assert_eq!(got.delivered, HashSet::from([1, 2, 3]));
        p.record(key(1), 300, []);
        p.record(key(2), 400, [9]);
        assert!(p.get(&key(0)).is_none(), "oldest forgotten at capacity");
        p.remove(&key(1));
        assert!(p.get(&key(1)).is_none());
        assert_eq!(p.get(&key(2)).unwrap().now, 400);
    }
}
