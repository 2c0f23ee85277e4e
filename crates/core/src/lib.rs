//! natmeter's pure core: bytes in, values out. No async, no AWS SDK, no environment, no clock,
//! no randomness (the simulator is its own crate, `natmeter-sim`, and never linked here).
//!
//! The data walks one way:
//!
//! ```text
//! sources ──► parse ──► attribute ──► resolve ──► aggregate ──► price ──► report | metrics
//! [`sources`]  flowlog   [`attribution`] [`identity`] [`ledger`]  [`price`]  [`report`] [`metrics`]
//! ```
//!
//! [`sources`] turns every input (subscription batches, flow-log text, S3 objects) into records
//! with their context; `flowlog` parses each; [`attribution`] decides whether it is
//! NAT-processed bytes and whose address; [`identity`]'s resolver says who that address is at
//! the record's own time; the [`ledger`] sums by (minute, gateway, direction, source,
//! destination); [`price`] prices; [`report`] and [`metrics`] project the ledger for people and
//! for CloudWatch. [`engine`] is the walk itself: an immutable attributor and mergeable results.
//!
//! Must never: do I/O, read the environment or the clock, allocate per record on the hot path
//! (tests/no_alloc_per_record.rs), or hold state that belongs to the function (its retry memory
//! lives in the Lambda crate).

pub mod attribution;
pub mod civil;
pub mod config;
pub mod engine;
pub mod identity;
pub mod inventory;
pub mod ipranges;
pub mod ledger;
pub mod merge;
pub mod metrics;
pub mod price;
pub mod report;
pub mod sources;
pub mod topology;

pub use flowlog;
