//! natmeter's metric sinks: PutMetricData through aws-sdk-cloudwatch, and Embedded Metric Format
//! lines. Both take the pure metric model's [`Datum`]s; neither decides what to emit.

pub mod batch;
pub mod emf;
pub mod publish;
pub mod put;

pub use natmeter_core::metrics::Datum;
