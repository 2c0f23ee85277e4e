//! The decoded CloudWatch Logs subscription payload (the JSON inside `awslogs.data`), its
//! general serde_json reader, and the errors of decoding a batch. Types only and serde: the
//! fast reader ([`super::scan`]) builds these, and [`super::subscription`] chooses between the
//! two, so the dependency runs one way: payload ← scan ← subscription.

use std::borrow::Cow;

use serde::Deserialize;

/// Why a subscription event could not be decoded. Each of these fails the invocation, so Lambda
/// retries the event and finally hands it to the on-failure destination for replay.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event is not a CloudWatch Logs subscription event ({{\"awslogs\":{{\"data\":\"...\"}}}}): {0}")]
    Envelope(serde_json::Error),
    #[error("awslogs.data is not valid base64: {0}")]
    Base64(base64::DecodeError),
    #[error("awslogs.data is not valid gzip: {0}")]
    Gzip(std::io::Error),
    #[error("awslogs.data inflates to more than {max} bytes; refused (a gzip bomb, or not a CloudWatch Logs batch)")]
    TooLarge { max: usize },
    #[error("decoded payload is not the CloudWatch Logs JSON document: {0}")]
    Payload(serde_json::Error),
    #[error("decoded payload is a DATA_MESSAGE without logEvents")]
    NoLogEvents,
}

/// `messageType` of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Data,
    /// A reachability probe from CloudWatch Logs: acknowledge it and emit nothing.
    Control,
}

/// One log event of a batch; for flow logs, `message` is one flow record and `timestamp` its
/// `start` in milliseconds.
#[derive(Debug, PartialEq, Deserialize)]
pub struct LogEvent<'a> {
    #[serde(borrow, default)]
    pub id: Cow<'a, str>,
    pub timestamp: i64,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPayload<'a> {
    #[serde(borrow)]
    message_type: Cow<'a, str>,
    #[serde(borrow, default)]
    owner: Cow<'a, str>,
    #[serde(borrow, default)]
    log_group: Cow<'a, str>,
    #[serde(borrow, default)]
    log_stream: Cow<'a, str>,
    #[serde(borrow, default)]
    log_events: Option<Vec<LogEvent<'a>>>,
}

/// A decoded CloudWatch Logs subscription payload, borrowing from the decoded buffer.
#[derive(Debug, PartialEq)]
pub struct Payload<'a> {
    pub message_type: MessageType,
    pub owner: Cow<'a, str>,
    pub log_group: Cow<'a, str>,
    pub log_stream: Cow<'a, str>,
    pub log_events: Vec<LogEvent<'a>>,
}

impl<'a> Payload<'a> {
    /// Parses the decoded JSON with borrowed serde_json only: the general path, and the floor
    /// that `natmeter bench` measures against.
    pub fn parse_serde(json: &'a [u8]) -> Result<Payload<'a>, DecodeError> {
        let raw: RawPayload<'a> = serde_json::from_slice(json).map_err(DecodeError::Payload)?;
        let message_type = if raw.message_type == "CONTROL_MESSAGE" {
            MessageType::Control
        } else {
            MessageType::Data
        };
        let log_events = match (message_type, raw.log_events) {
            (_, Some(events)) => events,
            (MessageType::Control, None) => Vec::new(),
            (MessageType::Data, None) => return Err(DecodeError::NoLogEvents),
        };
        Ok(Payload {
            message_type,
            owner: raw.owner,
            log_group: raw.log_group,
            log_stream: raw.log_stream,
            log_events,
        })
    }
}
