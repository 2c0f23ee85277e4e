//! Duplicate delivery: Lambda may invoke the function twice with the same event without any
//! error. A warm container remembers the keys of the batches it has published and skips an exact
//! repeat. This needs no extra AWS service, and it is sound: a key is recorded only after the
//! batch's metrics were delivered, so a retry after a failure is never skipped, and two distinct
//! batches never share a key in practice (see [`BatchKey`]).
//!
//! A batch whose delivery failed after part of its metrics were sent is remembered too
//! ([`Partial`]), so that a retry in the same container sends only the rest.
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

/// What one warm container remembers of recent batches: the keys of those it published (an
/// exact repeat is skipped), and for those whose invocation failed after part of their metrics
/// got through, what was delivered ([`Partial`]): when Lambda retries the event here, the
/// function reuses that attempt's clock (so it builds the same requests) and sends only the
/// ones missing. Both lists forget their oldest entries beyond their capacity.
#[derive(Debug)]
pub struct RecentBatches {
    published: VecDeque<BatchKey>,
    capacity: usize,
    partial: VecDeque<(BatchKey, Partial)>,
    partial_capacity: usize,
}

/// What an earlier, failed attempt at one batch delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partial {
    /// The attempt's clock, Unix seconds.
    pub now: i64,
    /// Digests of the PutMetricData requests that got through.
    pub delivered: HashSet<u64>,
}

impl RecentBatches {
    pub fn new(capacity: usize, partial_capacity: usize) -> RecentBatches {
        RecentBatches {
            published: VecDeque::with_capacity(capacity),
            capacity,
            partial: VecDeque::new(),
            partial_capacity,
        }
    }

    /// True when this container published the batch.
    pub fn contains(&self, key: &BatchKey) -> bool {
        self.published.contains(key)
    }

    /// A batch's metrics were all delivered: forgets what a failed attempt had sent, and
    /// remembers the batch itself when `remember` (a data batch, which a repeat must not count
    /// again).
    pub fn published(&mut self, key: BatchKey, remember: bool) {
        self.partial.retain(|(k, _)| *k != key);
        if !remember || self.capacity == 0 || self.contains(&key) {
            return;
        }
        if self.published.len() == self.capacity {
            self.published.pop_front();
        }
        self.published.push_back(key);
    }

    /// What earlier, failed attempts at the batch delivered, if any.
    pub fn partial(&self, key: &BatchKey) -> Option<&Partial> {
        self.partial.iter().find(|(k, _)| k == key).map(|(_, p)| p)
    }

    /// Adds what a failed attempt delivered (keeping the first attempt's clock).
    pub fn partly_delivered(
        &mut self,
        key: BatchKey,
        now: i64,
        delivered: impl IntoIterator<Item = u64>,
    ) {
        if self.partial_capacity == 0 {
            return;
        }
        if let Some((_, p)) = self.partial.iter_mut().find(|(k, _)| *k == key) {
            p.delivered.extend(delivered);
            return;
        }
        if self.partial.len() == self.partial_capacity {
            self.partial.pop_front();
        }
        self.partial.push_back((
            key,
            Partial {
                now,
                delivered: delivered.into_iter().collect(),
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natmeter_core::sources::subscription::event_data;

    use crate::testdata as common;

    fn events(n: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| common::nat_event(1 + (i % 3) as i64, 2, i * 1000))
            .collect()
    }

    #[test]
    fn every_batch_has_its_own_key_and_repeats_are_seen() {
        let keys: Vec<BatchKey> = events(40)
            .iter()
            .map(|e| BatchKey::of(&event_data(e).unwrap()))
            .collect();
        assert!(keys.len() > 20);
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[..i].contains(k), "batch {i} collides");
        }
        let mut recent = RecentBatches::new(4, 0);
        for k in &keys[..6] {
            recent.published(*k, true);
        }
        assert!(
            !recent.contains(&keys[0]) && !recent.contains(&keys[1]),
            "oldest forgotten"
        );
        assert!(keys[2..6].iter().all(|k| recent.contains(k)));
    }

    #[test]
    fn partial_deliveries_keep_the_first_clock_and_add_up() {
        let evs = events(3);
        let key = |i: usize| BatchKey::of(&event_data(&evs[i]).unwrap());
        let mut p = RecentBatches::new(4, 2);
        p.partly_delivered(key(0), 100, [1, 2]);
        p.partly_delivered(key(0), 200, [3]);
        let got = p.partial(&key(0)).unwrap();
        assert_eq!(got.now, 100);
        assert_eq!(got.delivered, HashSet::from([1, 2, 3]));
        p.partly_delivered(key(1), 300, []);
        p.partly_delivered(key(2), 400, [9]);
        assert!(p.partial(&key(0)).is_none(), "oldest forgotten at capacity");
        p.published(key(1), false);
        assert!(p.partial(&key(1)).is_none());
        assert_eq!(p.partial(&key(2)).unwrap().now, 400);
    }
}
