//! VPC Flow Logs: the field table (versions 2–8), format strings and zero-copy records.
//!
//! A flow log's format is chosen when the flow log is created and never changes, so the parser is
//! driven by a [`Format`] built once (from the AWS `${field}` syntax or from the header line of an
//! S3-delivered file). Records borrow from the caller's buffer: parsing a line allocates nothing.
//!
//! Owns: what a flow-log line says, field by field. Must never: know about NAT gateways, EKS,
//! CloudWatch or where a line came from, or allocate per record.

pub mod bytes;
mod field;
mod format;
mod record;

pub use field::Field;
pub use format::{Column, Format, FormatError, Parser};
pub use record::{Action, FlowDirection, LogStatus, Record, RecordError, RecordErrorKind};
