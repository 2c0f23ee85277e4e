//! natmeter's pure core: bytes in, values out. No async, no AWS SDK, no environment, no clock.
//!
//! The data walks one way: [`subscription`] decodes a batch, `flowlog` parses each record,
//! [`attribution`] decides whether it is NAT-processed bytes and whose, the [`ledger`] sums them,
//! [`price`] prices them, and [`report`] / [`metrics`] project the ledger for people and for
//! CloudWatch. [`engine`] ties the steps together for every record source.

pub mod attribution;
pub mod config;
pub mod engine;
pub mod ledger;
pub mod price;
pub mod report;
pub mod scan;
pub mod subscription;
pub mod topology;

pub use flowlog;
pub mod metrics;
pub mod simulate;
