//! The emission step shared by the Lambda function and `natmeter emit`: metrics to CloudWatch
//! (PutMetricData and/or EMF) and the uncapped source detail lines.

use std::collections::HashSet;
use std::io::Write;

use natmeter_core::config::Config;
use natmeter_core::engine::Results;
use natmeter_core::metrics::{self, MetricOptions};
use tokio::time::Instant;

use crate::batch::Rejected;
use crate::put::{SendError, SendReport, Sender};

/// What one publication did.
#[derive(Debug, Default, Clone)]
pub struct Publication {
    pub datums: usize,
    pub emf_lines: usize,
    pub detail_lines: usize,
    /// Datums CloudWatch would refuse for their timestamp (flow minutes over 14 days old or in the
    /// future): dropped and counted instead of failing the whole request.
    pub out_of_window: usize,
    /// Datums refused by the admissibility rule (non-finite value, too many dimensions).
    pub rejected: Rejected,
    /// Datums whose EMF line could not be made to fit 256 KB.
    pub emf_oversized: usize,
    pub sent: Option<SendReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Send(#[from] SendError),
    #[error("writing metric lines to stdout: {0}")]
    Write(#[from] std::io::Error),
    #[error("NATMETER_SINK includes cloudwatch but no CloudWatch client was set up")]
    NoClient,
}

/// Publishes one invocation's results. PutMetricData goes first and the log lines only after it
/// succeeded: when sending fails the invocation fails and is retried, and lines written before
/// the failure would be counted twice by Logs Insights and Contributor Insights.
///
/// `already` holds the digests of requests an earlier, failed attempt at the same batch
/// delivered; with that attempt's `now`, the requests come out identical and those are skipped.
pub async fn publish<S: Sender>(
    results: &Results,
    cfg: &Config,
    client: Option<&S>,
    deadline: Instant,
    now: i64,
    already: &HashSet<u64>,
    out: &mut dyn Write,
) -> Result<Publication, PublishError> {
    let opts = MetricOptions {
        max_sources: cfg.max_sources,
        min_source_share: cfg.min_source_share,
        price_per_gb: cfg.price_per_gb,
        now,
    };
    let (datums, out_of_window) =
        crate::batch::within_window(metrics::datums(results, &cfg.topology, &opts), now);
    let (datums, rejected) = crate::batch::admissible(datums);
    let mut p = Publication {
        datums: datums.len(),
        out_of_window,
        rejected,
        ..Publication::default()
    };
    if let Some(namespace) = cfg.sinks.put_metric_data() {
        if !datums.is_empty() {
            let client = client.ok_or(PublishError::NoClient)?;
            p.sent = Some(client.send(namespace, &datums, deadline, already).await?);
        }
    }
    let mut buf = Vec::with_capacity(64 * 1024);
    if let Some(namespace) = cfg.sinks.emf() {
        let emf = crate::emf::lines(namespace, &datums);
        p.emf_oversized = emf.oversized;
        for line in emf.lines {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            p.emf_lines += 1;
        }
    }
    for d in metrics::source_details(results, &cfg.topology, cfg.price_per_gb) {
        buf.extend_from_slice(d.to_json_line().as_bytes());
        buf.push(b'\n');
        p.detail_lines += 1;
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(p)
}
