//! The inventory's store: what the EKS audit log said about pods and nodes, kept in a DynamoDB
//! table so that every container of the function names sources the same way
//! (docs/attribution.md §4.3).
//!
//! One item per audit event the identity rule reads: `pk` = `h#<hour of its stageTimestamp>`,
//! `sk` = its `auditID`, `f` = the reduced fact ([`StoredFact`]), `expires_at` = when DynamoDB's
//! TTL may delete it. A retried audit batch writes the same keys with the same values, so storing
//! is idempotent; an hour's bucket is one Query, so a cold container reads the retention window
//! in `retention_hours` queries and a warm one re-reads only the last hour or two.
//!
//! Owns: the table's item layout and the SDK calls. Must never: decide identities (that is the
//! core's inventory) or swallow an error (a failed write or read fails the invocation, which
//! Lambda retries).

pub mod objects;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use natmeter_core::inventory::StoredFact;
use tokio::time::Instant;

/// BatchWriteItem's limit.
const BATCH: usize = 25;
/// Unprocessed items are retried after this, doubling (DynamoDB's advice for BatchWriteItem).
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB table {table}: {operation} failed: {message}")]
    Sdk {
        table: String,
        operation: &'static str,
        message: String,
    },
    #[error("DynamoDB table {table}: {left} items still unprocessed at the deadline (throttled)")]
    Unprocessed { table: String, left: usize },
    #[error("DynamoDB table {table}: item {pk}/{sk} has no string attribute f")]
    BadItem {
        table: String,
        pk: String,
        sk: String,
    },
}

/// The bucket of a fact: hours since the epoch of its `stageTimestamp`.
pub fn hour_of_micros(micros: i64) -> i64 {
    micros.div_euclid(3_600_000_000)
}

fn pk(hour: i64) -> String {
    format!("h#{hour}")
}

/// The DynamoDB client: the SDK's standard retries (throttling backs off and retries up to 3
/// attempts; then the invocation fails and Lambda retries it) and short timeouts, so a stuck
/// table fails an invocation well before its deadline. The endpoint comes from the environment
/// (`AWS_ENDPOINT_URL_DYNAMODB` in the tests).
pub async fn client() -> Client {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await;
    Client::new(&conf)
}

/// The table, and how long its items live.
#[derive(Debug, Clone)]
pub struct Table {
    client: Client,
    name: String,
    retention_secs: i64,
}

impl Table {
    pub fn new(client: Client, name: String, retention_hours: u32) -> Table {
        Table {
            client,
            name,
            retention_secs: i64::from(retention_hours) * 3600,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes `facts` (duplicates by id collapse: BatchWriteItem refuses two writes of one key
    /// in a request). Returns the number of items written. Throttled items are retried with
    /// backoff until `deadline`; then, or on any other error, the write fails.
    pub async fn put(&self, facts: &[StoredFact], deadline: Instant) -> Result<usize, StoreError> {
        let mut unique: BTreeMap<(i64, &str), &StoredFact> = BTreeMap::new();
        for f in facts {
            unique.insert((hour_of_micros(f.time), f.id.as_str()), f);
        }
        let requests: Vec<WriteRequest> = unique
            .into_iter()
            .map(|((hour, id), f)| self.write_request(hour, id, f))
            .collect::<Result<_, _>>()?;
        let written = requests.len();
        for chunk in requests.chunks(BATCH) {
            self.write_chunk(chunk.to_vec(), deadline).await?;
        }
        Ok(written)
    }

    fn write_request(
        &self,
        hour: i64,
        id: &str,
        f: &StoredFact,
    ) -> Result<WriteRequest, StoreError> {
        let expires = f
            .time
            .div_euclid(1_000_000)
            .saturating_add(self.retention_secs);
        let put = PutRequest::builder()
            .item("pk", AttributeValue::S(pk(hour)))
            .item("sk", AttributeValue::S(id.to_string()))
            .item("f", AttributeValue::S(f.json.clone()))
            .item("expires_at", AttributeValue::N(expires.to_string()))
            .build()
            .map_err(|e| self.sdk("BatchWriteItem", e.to_string()))?;
        Ok(WriteRequest::builder().put_request(put).build())
    }

    async fn write_chunk(
        &self,
        mut pending: Vec<WriteRequest>,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.name, pending)
                .send()
                .await
                .map_err(|e| self.sdk("BatchWriteItem", DisplayErrorContext(e).to_string()))?;
            let mut left: HashMap<String, Vec<WriteRequest>> =
                out.unprocessed_items.unwrap_or_default();
            pending = left.remove(&self.name).unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() + backoff >= deadline {
                return Err(StoreError::Unprocessed {
                    table: self.name.clone(),
                    left: pending.len(),
                });
            }
            tracing::warn!(table = %self.name, unprocessed = pending.len(), backoff_ms = backoff.as_millis() as u64, "DynamoDB left items unprocessed; retrying them");
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }

    /// Every fact stored in the hour buckets `from..=to`, as [`StoredFact::json`] strings.
    pub async fn load(&self, from_hour: i64, to_hour: i64) -> Result<Vec<String>, StoreError> {
        let mut facts = Vec::new();
        for hour in from_hour..=to_hour {
            let mut start: Option<HashMap<String, AttributeValue>> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.name)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", AttributeValue::S(pk(hour)))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| self.sdk("Query", DisplayErrorContext(e).to_string()))?;
                for item in out.items.unwrap_or_default() {
                    match item.get("f") {
                        Some(AttributeValue::S(f)) => facts.push(f.clone()),
                        _ => {
                            let s = |k: &str| match item.get(k) {
                                Some(AttributeValue::S(v)) => v.clone(),
                                _ => String::new(),
                            };
                            return Err(StoreError::BadItem {
                                table: self.name.clone(),
                                pk: s("pk"),
                                sk: s("sk"),
                            });
                        }
                    }
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(facts)
    }

    fn sdk(&self, operation: &'static str, message: String) -> StoreError {
        StoreError::Sdk {
            table: self.name.clone(),
            operation,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_bucket_by_stage_time() {
        // 2025-12-01T00:59:59.999999Z and 01:00:00Z fall in consecutive buckets.
        let t = 1_764_550_800_000_000i64;
        assert_eq!(hour_of_micros(t - 1) + 1, hour_of_micros(t));
        assert_eq!(pk(hour_of_micros(t)), "h#490153");
        assert_eq!(hour_of_micros(-1), -1, "before the epoch rounds down");
    }
}
