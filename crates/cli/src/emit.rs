//! `natmeter emit`: the function's pipeline on local inputs, sending to CloudWatch (or an
//! emulator via --endpoint-url) exactly as the Lambda would.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::settings::EngineArgs;

#[derive(clap::Args)]
pub struct EmitArgs {
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
    /// CloudWatch namespace.
    #[arg(long, env = "NATMETER_NAMESPACE")]
    namespace: Option<String>,
    /// cloudwatch, emf or both (both needs --emf-namespace: one namespace, one sink).
    #[arg(long, env = "NATMETER_SINK")]
    sink: Option<String>,
    /// Namespace of the EMF copy with --sink both; must differ from --namespace.
    #[arg(long, env = "NATMETER_EMF_NAMESPACE")]
    emf_namespace: Option<String>,
    /// Cap on distinct SourceIp series; the rest is summed as SourceIp=other.
    #[arg(long, env = "NATMETER_MAX_SOURCES")]
    max_sources: Option<String>,
    /// Minimum share of an invocation's bytes for a source to get its own SourceIp series.
    #[arg(long, env = "NATMETER_MIN_SOURCE_SHARE")]
    min_source_share: Option<String>,
    /// CloudWatch endpoint (an emulator); default: AWS_ENDPOINT_URL_CLOUDWATCH or AWS.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Give up retrying after this many seconds (1-86400).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
}

pub fn run(a: EmitArgs) -> anyhow::Result<ExitCode> {
    let mut extra = HashMap::new();
    for (k, v) in [
        ("NATMETER_NAMESPACE", &a.namespace),
        ("NATMETER_SINK", &a.sink),
        ("NATMETER_EMF_NAMESPACE", &a.emf_namespace),
        ("NATMETER_MAX_SOURCES", &a.max_sources),
        ("NATMETER_MIN_SOURCE_SHARE", &a.min_source_share),
    ] {
        if let Some(v) = v {
            extra.insert(k, v.clone());
        }
    }
    let cfg = a.engine.settings_with(&extra)?;
    let Some(ran) = crate::run_inputs(&a.inputs, &cfg, None, None, None, cfg.remote_prefixes)
    else {
        return Ok(ExitCode::from(1));
    };
    // A report's bytes went to CloudWatch when it was made, or are history CloudWatch no longer
    // takes (docs/s3.md §4): emit sends what flow records say, never a report's sums. Like any
    // file emit cannot read, a document is named and left out, and the rest is published.
    for d in &ran.documents {
        eprintln!(
            "natmeter: {}: a natmeter.report/v1 document: `natmeter emit` publishes the metrics of flow records, not of reports (`natmeter report` merges them); left out",
            d.name
        );
    }
    if ran.flow_inputs == 0 {
        eprintln!(
            "natmeter: no flow-log input to publish ({} report documents given)",
            ran.documents.len()
        );
        return Ok(ExitCode::from(1));
    }
    let engine = ran.engine;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let published = rt.block_on(async {
        let client = natmeter_cloudwatch::put::client(a.endpoint_url.as_deref()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(a.timeout);
        let mut out = std::io::stdout().lock();
        natmeter_cloudwatch::publish::publish(
            &engine,
            &cfg,
            Some(&client),
            deadline,
            crate::now(),
            &Default::default(),
            &mut out,
        )
        .await
    });
    match published {
        Ok(p) => {
            let sent = p.sent.unwrap_or_default();
            eprintln!(
                "natmeter: {} datums ({} PutMetricData requests, {} retries), {} EMF lines, {} source detail lines; {} records counted of {}",
                p.datums, sent.requests, sent.retries, p.emf_lines, p.detail_lines, engine.records().counted, engine.records().read
            );
            let dropped = p.rejected.total() + p.out_of_window + p.emf_oversized;
            if dropped > 0 {
                eprintln!(
                    "natmeter: {dropped} datums not sent: {} with a non-finite value, {} with more than 30 dimensions, {} outside CloudWatch's 14-day/2-hour window, {} whose EMF line exceeds 256 KB",
                    p.rejected.non_finite, p.rejected.too_many_dimensions, p.out_of_window, p.emf_oversized
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("natmeter: emit failed: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
