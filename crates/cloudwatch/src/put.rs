//! PutMetricData through aws-sdk-cloudwatch: requests within limits, sent concurrently, each
//! retried with backoff until the invocation's deadline nears. A request that still fails makes
//! `send` fail, so the caller fails the invocation and Lambda retries the event: data is never
//! dropped silently (delivery is at-least-once).

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_cloudwatch::Client;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use natmeter_core::metrics::{Datum, Unit};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::batch::{self, WireDatum};

/// First backoff, and its ceiling.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// An attempt is not started with less time than this before the deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

/// Builds the CloudWatch client. The SDK's own retries are off: [`send`] retries against the
/// invocation deadline instead, which the SDK does not know. `AWS_ENDPOINT_URL_CLOUDWATCH` is
/// honoured by the SDK; `endpoint_url` overrides it.
pub async fn client(endpoint_url: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .build(),
        );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let conf = loader.load().await;
    // PutMetricData bodies compress well (repeated names and dimensions): gzip from 1 KB.
    let cw = aws_sdk_cloudwatch::config::Builder::from(&conf)
        .request_min_compression_size_bytes(1024)
        .build();
    Client::from_conf(cw)
}

/// What a send did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendReport {
    pub requests: usize,
    pub datums: usize,
    /// Attempts beyond the first, over all requests.
    pub retries: usize,
    /// Requests not sent because an earlier, failed attempt at the same batch delivered them.
    pub already_delivered: usize,
    /// [`batch::digest`] of each request this call delivered.
    pub delivered: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("{failed} of {requests} PutMetricData requests ({datums} datums) were not delivered; last error: {last}")]
pub struct SendError {
    pub failed: usize,
    pub requests: usize,
    pub datums: usize,
    pub last: String,
    /// What did get through. A retry in the same warm container skips it (by digest); a retry
    /// elsewhere sends it again.
    pub delivered: SendReport,
}

fn unit(u: Unit) -> StandardUnit {
    match u {
        Unit::Bytes => StandardUnit::Bytes,
        Unit::Count => StandardUnit::Count,
        Unit::Seconds => StandardUnit::Seconds,
        Unit::None => StandardUnit::None,
    }
}

fn to_sdk(d: &WireDatum) -> MetricDatum {
    let dims = d
        .dimensions
        .iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect();
    MetricDatum::builder()
        .metric_name(&d.metric)
        .set_dimensions(Some(dims))
        .timestamp(DateTime::from_secs(d.timestamp))
        .unit(unit(d.unit))
        .value(d.value)
        .build()
}

/// Throttling, server errors and transport failures are worth another attempt; a request
/// CloudWatch calls invalid is not.
fn retryable<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    match e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            code.contains("Throttl")
                || code.contains("InternalFailure")
                || code.contains("ServiceUnavailable")
                || !(code.starts_with("Invalid") || code.starts_with("MissingParameter"))
        }
        _ => true,
    }
}

/// Where PutMetricData requests go. The SDK client is the one implementation the function ships;
/// the seam exists so the Lambda's retry policy can be tested with injected partial failures.
pub trait Sender {
    /// Sends datums to `namespace` as [`send`] does.
    fn send(
        &self,
        namespace: &str,
        datums: &[Datum],
        deadline: Instant,
        already: &HashSet<u64>,
    ) -> impl std::future::Future<Output = Result<SendReport, SendError>>;
}

impl Sender for Client {
    async fn send(
        &self,
        namespace: &str,
        datums: &[Datum],
        deadline: Instant,
        already: &HashSet<u64>,
    ) -> Result<SendReport, SendError> {
        send(self, namespace, datums, deadline, already).await
    }
}

/// Sends admissible datums ([`batch::admissible`]) to `namespace`, concurrently, retrying each request until `deadline` nears.
/// Requests whose [`batch::digest`] is in `already` are skipped: an earlier attempt at the same
/// batch delivered them, and CloudWatch would add them up twice.
pub async fn send(
    client: &Client,
    namespace: &str,
    datums: &[Datum],
    deadline: Instant,
    already: &HashSet<u64>,
) -> Result<SendReport, SendError> {
    let requests = batch::requests(batch::to_wire(datums));
    let mut report = SendReport::default();
    let mut set = JoinSet::new();
    for (i, req) in requests.into_iter().enumerate() {
        let digest = batch::digest(&req);
        if already.contains(&digest) {
            report.already_delivered += 1;
            continue;
        }
        let client = client.clone();
        let ns = namespace.to_string();
        let n = req.len();
        let body: Vec<MetricDatum> = req.iter().map(to_sdk).collect();
        set.spawn(async move {
            let sent = send_one(&client, &ns, body, deadline, i as u64).await;
            (n, digest, sent)
        });
    }
    let total_requests = set.len();
    let mut failed = 0;
    let mut failed_datums = 0;
    let mut last = String::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((n, digest, Ok(attempts))) => {
                report.requests += 1;
                report.datums += n;
                report.retries += attempts - 1;
                report.delivered.push(digest);
            }
            Ok((n, _, Err((attempts, e)))) => {
                failed += 1;
                failed_datums += n;
                report.retries += attempts.saturating_sub(1);
                last = e;
            }
            Err(e) => {
                failed += 1;
                last = format!("send task failed: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(SendError {
            failed,
            requests: total_requests,
            datums: failed_datums,
            last,
            delivered: report,
        });
    }
    Ok(report)
}

/// One request with retries. Returns the number of attempts, or (attempts, last error).
async fn send_one(
    client: &Client,
    namespace: &str,
    body: Vec<MetricDatum>,
    deadline: Instant,
    salt: u64,
) -> Result<usize, (usize, String)> {
    let mut attempts = 0usize;
    let mut backoff = BACKOFF_START;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < MIN_ATTEMPT {
            return Err((
                attempts,
                format!("deadline reached after {attempts} attempts"),
            ));
        }
        attempts += 1;
        let call = client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(body.clone()))
            .send();
        let err = match tokio::time::timeout(remaining, call).await {
            Ok(Ok(_)) => return Ok(attempts),
            Ok(Err(e)) => {
                let msg = DisplayErrorContext(&e).to_string();
                if !retryable(&e) {
                    return Err((
                        attempts,
                        format!("rejected by CloudWatch (not retried): {msg}"),
                    ));
                }
                msg
            }
            Err(_) => format!("attempt {attempts} timed out at the deadline"),
        };
        tracing::warn!(attempt = attempts, error = %err, "PutMetricData failed; retrying");
        // Full jitter, derived without a random source: spread concurrent requests apart.
        let jitter = (salt
            .wrapping_mul(2_654_435_761)
            .wrapping_add(attempts as u64 * 40_503)
            % 1000) as f64
            / 1000.0;
        let sleep = backoff.mul_f64(0.5 + jitter / 2.0);
        if Instant::now() + sleep + MIN_ATTEMPT > deadline {
            return Err((attempts, err));
        }
        tokio::time::sleep(sleep).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
