//! natmeter's metric sinks: PutMetricData through aws-sdk-cloudwatch, and Embedded Metric Format
//! lines. Both take the pure metric model's [`Datum`]s; neither decides what to emit.
//!
//! Owns: the AWS side of metrics (request batching, limits, retries, the deadline, the EMF and
//! detail-line encodings). Must never: attribute, aggregate or price (that is the core's), or
//! read the environment.

pub mod batch;
pub mod emf;
pub mod publish;
pub mod put;

pub use natmeter_core::metrics::Datum;
