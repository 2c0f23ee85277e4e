//! Duplicate delivery: Lambda may invoke the function twice with the same event without any
//! error. A warm container remembers the keys of the batches it has published and skips an exact
//! repeat. This needs no extra AWS service, and it is sound: a key is recorded only after the
//! batch's metrics were delivered, so a retry after a failure is never skipped, and two distinct
//! batches never share a key in practice (see [`BatchKey`]).
//!
//! What it does not cover: a duplicate that lands on another container (concurrent or after a
//! cold start), and a batch whose first delivery failed after part of its metrics were sent.

use std::collections::VecDeque;
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
}
