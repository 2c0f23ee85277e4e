//! Claims on S3 objects, so that an object S3 delivers twice (or a queue message handled twice)
//! counts once (docs/s3.md §3). One item per object version: `pk` = `o#<bucket>`, `sk` =
//! `<key>#<etag>`, in a table with the inventory's key schema (it may be the inventory table).
//!
//! An item's `st` is `claimed` (an invocation is reading it, until `lease`), `partial` (an
//! attempt delivered some of its metric requests, whose digests are in `dl`, computed at clock
//! `clk`: a retry reuses that clock and sends the rest), or `done`. Every change is a conditional
//! write, so two containers never both own one object.

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use std::collections::{HashMap, HashSet};

use crate::StoreError;

/// How long `done` items are kept: S3 redelivers within minutes, a replay within days.
pub const KEEP_SECONDS: i64 = 30 * 86_400;

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This invocation owns the object; nothing was delivered before.
    New,
    /// This invocation owns the object; an earlier attempt delivered these request digests at
    /// clock `now`.
    Resumed { now: i64, delivered: HashSet<u64> },
    /// The object was counted already.
    Done,
    /// Another invocation holds a live claim (until `lease`): try again later.
    Busy { lease: i64 },
}

/// The claims of one table.
#[derive(Debug, Clone)]
pub struct Objects {
    client: Client,
    table: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl Objects {
    pub fn new(client: Client, table: String) -> Objects {
        Objects { client, table }
    }

    fn key(bucket: &str, key: &str, etag: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_string(), s(&format!("o#{bucket}"))),
            ("sk".to_string(), s(&format!("{key}#{etag}"))),
        ])
    }

    fn sdk<E, R>(&self, operation: &'static str, e: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StoreError::Sdk {
            table: self.table.clone(),
            operation,
            message: DisplayErrorContext(&e).to_string(),
        }
    }

    /// Claims the object for `lease_seconds` from `now`: a new object, a partly delivered one,
    /// or one whose earlier claim's lease ran out (its invocation died) become this
    /// invocation's; a counted one is [`Claim::Done`], a live claim [`Claim::Busy`].
    pub async fn claim(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Objects::key(bucket, key, etag)))
            .update_expression("SET st = :claimed, lease = :lease, expires_at = :exp")
            .condition_expression(
                "attribute_not_exists(pk) OR st = :partial OR (st = :claimed AND lease < :now)",
            )
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":partial", s("partial"))
            .expression_attribute_values(":lease", n(now + lease_seconds))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(now + KEEP_SECONDS))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => {
                let old = out.attributes.unwrap_or_default();
                // A clock means an earlier attempt delivered under it (a partial one, or a
                // resumed one that died holding its claim): resume from what it delivered.
                if old.contains_key("clk") {
                    let now = old
                        .get("clk")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(now);
                    let delivered = old
                        .get("dl")
                        .and_then(|v| v.as_ns().ok())
                        .map(|ns| ns.iter().filter_map(|d| d.parse().ok()).collect())
                        .unwrap_or_default();
                    return Ok(Claim::Resumed { now, delivered });
                }
                Ok(Claim::New)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                let got = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(Objects::key(bucket, key, etag)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| self.sdk("GetItem", e))?;
                let item = got.item.unwrap_or_default();
                match item
                    .get("st")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                {
                    Some("done") => Ok(Claim::Done),
                    _ => Ok(Claim::Busy {
                        lease: item
                            .get("lease")
                            .and_then(|v| v.as_n().ok())
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(now),
                    }),
                }
            }
            Err(e) => Err(self.sdk("UpdateItem", e)),
        }
    }

    /// The object is counted: later deliveries are [`Claim::Done`].
    pub async fn done(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Objects::key(bucket, key, etag)))
            .update_expression("SET st = :done, expires_at = :exp REMOVE lease, dl, clk")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":exp", n(now + KEEP_SECONDS))
            .send()
            .await
            .map_err(|e| self.sdk("UpdateItem", e))?;
        Ok(())
    }

    /// An attempt delivered some requests (`delivered`, at clock `clock`) and failed: the next
    /// claim resumes from there.
    pub async fn partial(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        clock: i64,
        delivered: &HashSet<u64>,
    ) -> Result<(), StoreError> {
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Objects::key(bucket, key, etag)))
            .expression_attribute_values(":partial", s("partial"))
            .expression_attribute_values(":clk", n(clock));
        if delivered.is_empty() {
            u = u.update_expression("SET st = :partial, clk = :clk REMOVE lease");
        } else {
            let ns: Vec<String> = delivered.iter().map(u64::to_string).collect();
            u = u
                .update_expression("SET st = :partial, clk = :clk ADD dl :dl REMOVE lease")
                .expression_attribute_values(":dl", AttributeValue::Ns(ns));
        }
        u.send().await.map_err(|e| self.sdk("UpdateItem", e))?;
        Ok(())
    }

    /// The attempt failed before delivering anything: the object is free for a retry at once.
    pub async fn release(&self, bucket: &str, key: &str, etag: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Objects::key(bucket, key, etag)))
            .condition_expression("st = :claimed")
            .expression_attribute_values(":claimed", s("claimed"))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                // Already something else (partial or done by a later step): leave it.
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception())
                {
                    Ok(())
                } else {
                    Err(self.sdk("DeleteItem", e))
                }
            })
    }
}
