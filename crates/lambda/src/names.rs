//! Names from the EKS audit log in the function (docs/attribution.md §4.3): audit batches are
//! reduced to facts and stored in the DynamoDB table; flow batches are named through this
//! container's cache of the table.
//!
//! The cache is one [`Inventory`]: a cold container reads the whole retention window (one Query
//! per hour bucket), a warm one re-reads the buckets of the last [`LATENESS_SECS`] at most every
//! [`REFRESH_SECS`] (audit events arrive minutes late, and buckets are by their own time), and a
//! container that stores an audit batch adds its facts at once. Each refresh prunes what ended
//! before the retention window, which bounds the cache as the table's TTL bounds the table.

use std::sync::Mutex;

use natmeter_core::inventory::{is_audit_batch, Inventory, StoredFact, AUDIT_STREAM_PREFIX};
use natmeter_core::sources::{Decoder, Payload};
use natmeter_dynamodb::{hour_of_micros, Table};
use serde_json::{json, Value};

use crate::{lock, Failure, Invocation};

/// A warm container re-reads the table at most this often: a name stored by another container
/// is seen within a minute (records it would have named before are then unresolved, counted).
pub const REFRESH_SECS: i64 = 60;
/// How far back (by stage time) a warm refresh re-reads: audit delivery is late by minutes.
pub const LATENESS_SECS: i64 = 1800;
/// Audit messages that were not audit events, logged one by one before only counting.
const LOGGED_ERRORS: usize = 5;

/// A cold container reads at once; a warm one after [`REFRESH_SECS`].
fn due(refreshed_at: Option<i64>, now: i64) -> bool {
    match refreshed_at {
        Some(t) => now - t >= REFRESH_SECS,
        None => true,
    }
}

struct Cache {
    inventory: Inventory,
    /// When the table was last read (Unix seconds); `None` in a cold container.
    refreshed_at: Option<i64>,
}

pub struct Names {
    table: Table,
    retention_secs: i64,
    decoder: Mutex<Decoder>,
    cache: tokio::sync::Mutex<Cache>,
}

/// The cache, refreshed, held for one invocation.
pub struct Fresh<'a> {
    guard: tokio::sync::MutexGuard<'a, Cache>,
}

impl Fresh<'_> {
    pub fn inventory(&self) -> &Inventory {
        &self.guard.inventory
    }
}

impl Names {
    pub fn new(table: Table, retention_hours: u32) -> Names {
        Names {
            table,
            retention_secs: i64::from(retention_hours) * 3600,
            decoder: Mutex::new(Decoder::default()),
            cache: tokio::sync::Mutex::new(Cache {
                inventory: Inventory::default(),
                refreshed_at: None,
            }),
        }
    }

    /// Whether a subscription event's batch is an EKS audit stream's: only its head is inflated.
    pub fn is_audit(&self, data: &str) -> bool {
        lock(&self.decoder)
            .log_stream(data)
            .is_some_and(|s| s.starts_with(AUDIT_STREAM_PREFIX))
    }

    /// Whether [`Names::fresh`] would read the table now.
    pub async fn due(&self, now: i64) -> bool {
        due(self.cache.lock().await.refreshed_at, now)
    }

    /// The cache, after reading what the table gained since it was last read.
    pub async fn fresh(&self, inv: &Invocation<'_>) -> Result<Fresh<'_>, Failure> {
        let mut guard = self.cache.lock().await;
        let now = inv.now;
        if !due(guard.refreshed_at, now) {
            return Ok(Fresh { guard });
        }
        let from = match guard.refreshed_at {
            Some(t) => t - LATENESS_SECS,
            None => now - self.retention_secs,
        };
        let (from_hour, to_hour) = (from.div_euclid(3600), now.div_euclid(3600));
        let started = std::time::Instant::now();
        let facts = self.table.load(from_hour, to_hour).await.map_err(|e| {
            tracing::error!(request_id = %inv.request_id, error = %e, "the inventory table could not be read; failing the invocation so Lambda retries it");
            Failure {
                kind: "natmeter.InventoryUnavailable",
                message: e.to_string(),
            }
        })?;
        let mut bad = 0usize;
        for f in &facts {
            if let Err(e) = guard.inventory.add_stored(f) {
                bad += 1;
                if bad <= LOGGED_ERRORS {
                    tracing::warn!(table = %self.table.name(), error = %e, "a stored fact could not be read; skipped");
                }
            }
        }
        guard
            .inventory
            .prune((now - self.retention_secs).saturating_mul(1_000_000));
        guard.refreshed_at = Some(now);
        tracing::info!(
            request_id = %inv.request_id,
            table = %self.table.name(),
            cold = from == now - self.retention_secs,
            hours = to_hour - from_hour + 1,
            facts = facts.len(),
            facts_unreadable = bad,
            pods = guard.inventory.pods(),
            addresses = guard.inventory.addresses(),
            duration_ms = started.elapsed().as_millis() as u64,
            "inventory refreshed"
        );
        Ok(Fresh { guard })
    }

    /// Stores an audit batch's facts, and adds them to this container's cache.
    pub async fn store(&self, data: &str, inv: &Invocation<'_>) -> Result<Value, Failure> {
        let request_id = inv.request_id;
        let mut decoded = Vec::new();
        let bad_event = |e: natmeter_core::sources::DecodeError| {
            tracing::error!(request_id = %request_id, error = %e, "audit event could not be decoded; failing the invocation so Lambda retries it and the on-failure destination keeps it");
            Failure {
                kind: "natmeter.BadEvent",
                message: e.to_string(),
            }
        };
        lock(&self.decoder)
            .decode(data, &mut decoded)
            .map_err(bad_event)?;
        let payload = Payload::parse(&decoded).map_err(bad_event)?;
        if !is_audit_batch(&payload.log_group, &payload.log_stream) {
            tracing::warn!(request_id = %request_id, log_group = %payload.log_group, log_stream = %payload.log_stream, "a batch named like an EKS audit stream from another log group: skipped");
            return Ok(json!({"batch": "skipped_not_nat", "log_stream": payload.log_stream}));
        }
        let mut facts = Vec::new();
        let mut errors = 0usize;
        for e in &payload.log_events {
            match StoredFact::of_line(e.message.as_bytes()) {
                Ok(Some(f)) => facts.push(f),
                Ok(None) => {}
                Err(err) => {
                    errors += 1;
                    if errors <= LOGGED_ERRORS {
                        tracing::warn!(request_id = %request_id, log_stream = %payload.log_stream, event_id = %e.id, error = %err, "audit message skipped: not an audit event");
                    }
                }
            }
        }
        let written = self.table.put(&facts, inv.deadline).await.map_err(|e| {
            tracing::error!(request_id = %request_id, error = %e, facts = facts.len(), "audit facts not stored; failing the invocation so Lambda retries it (storing is idempotent)");
            Failure {
                kind: "natmeter.InventoryNotStored",
                message: e.to_string(),
            }
        })?;
        {
            let mut cache = self.cache.lock().await;
            for f in &facts {
                // Read back from the stored form: what other containers will see.
                let _ = cache.inventory.add_stored(&f.json);
            }
        }
        let hours: std::collections::BTreeSet<i64> =
            facts.iter().map(|f| hour_of_micros(f.time)).collect();
        tracing::info!(
            request_id = %request_id,
            log_stream = %payload.log_stream,
            batch = "audit",
            audit_events = payload.log_events.len(),
            facts_written = written,
            audit_errors = errors,
            hour_buckets = hours.len(),
            "natmeter audit batch stored"
        );
        Ok(json!({
            "batch": "audit",
            "log_stream": payload.log_stream,
            "audit_events": payload.log_events.len(),
            "facts_written": written,
            "audit_errors": errors,
        }))
    }
}
