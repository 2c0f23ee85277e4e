//! `bootstrap`: natmeter's Lambda function, triggered by a CloudWatch Logs subscription filter on
//! a VPC flow-log group. It attributes NAT Gateway bytes to pod IPs (or, with an inventory, to
//! pods, workloads and nodes named from the EKS audit log, whose batches it also stores) and
//! publishes metrics.
//!
//! Set-up happens once in `main` (configuration, tracing, the CloudWatch and DynamoDB clients); the handler is
//! a thin shell over [`natmeter_lambda::Function`], whose policy is tested without the runtime.
//! The end-to-end tests drive this binary through a Runtime API of their own (docs/testing.md §3.2).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use natmeter_core::config::Config;
use natmeter_lambda::{Failure, Function, Invocation};
use serde_json::value::RawValue;
use serde_json::Value;

/// lambda_runtime sets `_X_AMZN_TRACE_ID` with `setenv` on every invocation, and glibc never
/// frees a replaced value. On glibc's heap those leftovers sat between each invocation's
/// temporaries and pinned their pages: a warm container grew ~2-16 KB per invocation (the e2e
/// memory test; `mallopt` and `malloc_trim` only reduced it). mimalloc keeps Rust's allocations
/// in its own heap, so only setenv's ~150 bytes per invocation remain (an upstream leak).
///
/// mimalloc is built with `no_thp`: otherwise it asks for transparent huge pages on its arenas
/// (`madvise(MADV_HUGEPAGE)`, honoured under the common `madvise` THP setting), and the first few
/// small allocations made before `main` pinned 6 MB of huge pages: 16 MB resident while idle
/// instead of 9 MB (measured with /proc/<pid>/smaps_rollup, AnonHugePages).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn tune_mimalloc() {
    // mimalloc option indices (mimalloc.h, the same in v2 and v3): commit on demand and purge
    // freed pages at once, trading a little speed for a small resident set in a 128 MB function.
    // These apply from here on; the arena reserved before `main` keeps its defaults.
    const EAGER_COMMIT: i32 = 3;
    const ARENA_EAGER_COMMIT: i32 = 4;
    const PURGE_DELAY: i32 = 15;
    // SAFETY: setting options is allowed at any time; called first thing in main.
    unsafe {
        libmimalloc_sys::mi_option_set(EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// Time kept back from the deadline to post the response (or the error) to the Runtime API.
const DEADLINE_MARGIN: Duration = Duration::from_millis(750);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tune_mimalloc();
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let cfg = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            // Lambda reports the exit as Runtime.ExitError with this line in the function's log.
            tracing::error!(variable = e.variable, error = %e, "invalid configuration; fix the variable and redeploy");
            eprintln!("natmeter: invalid configuration: {e}");
            std::process::exit(2);
        }
    };
    let client = match cfg.sinks.put_metric_data() {
        Some(_) => Some(natmeter_cloudwatch::put::client(None).await),
        None => None,
    };
    let inventory = cfg.inventory.clone();
    let objects_table = cfg.s3.objects_table.clone();
    let ip_ranges_url = cfg.ip_ranges_url.clone();
    let discovery = match cfg.discovery.clone() {
        None => None,
        Some(settings) => {
            let ec2 = match natmeter_ec2::client::Client::from_env(None).await {
                Ok(c) => c,
                Err(e) => start_up_failed(&e.to_string()),
            };
            let describe: natmeter_lambda::discovery::Describe = Box::new(move |scope| {
                let ec2 = ec2.clone();
                Box::pin(async move { ec2.discover(&scope).await })
            });
            let d = natmeter_lambda::discovery::Discoverer::new(settings, describe);
            match d.initial(&cfg, (now_ms() / 1000) as i64).await {
                Ok(described) => Some((d, described)),
                Err(e) => start_up_failed(&e),
            }
        }
    };
    let mut function = Function::new(cfg, client, std::env::var("NATMETER_TEST_PANIC_ON").ok());
    if let Some((d, described)) = discovery {
        function = function.with_discovery(d, described);
    }
    if let Some(url) = ip_ranges_url {
        if let Some(r) = ip_ranges(&url).await {
            function = function.with_ranges(r);
        }
    }
    if let Some(i) = inventory {
        let table = natmeter_dynamodb::Table::new(
            natmeter_dynamodb::client().await,
            i.table,
            i.retention_hours,
        );
        function = function.with_inventory(table, i.retention_hours);
    }
    if let Some(t) = objects_table {
        let claims = natmeter_dynamodb::objects::Objects::new(natmeter_dynamodb::client().await, t);
        function = function.with_object_claims(claims);
    }
    let function = Arc::new(function);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Box<RawValue>>| {
        let function = Arc::clone(&function);
        async move { handle(&function, ev).await }
    }))
    .await
}

/// AWS's ranges, read once. They name destinations; they decide no byte, so a file that cannot
/// be read leaves the function metering without them (destinations named by the records'
/// `pkt-*-aws-service` alone), with a warning, rather than down (docs/attribution.md §5.1).
async fn ip_ranges(url: &str) -> Option<natmeter_core::ipranges::IpRanges> {
    let t0 = std::time::Instant::now();
    let got = natmeter_ec2::client::fetch(url, 64 << 20, Duration::from_secs(5))
        .await
        .and_then(|b| natmeter_core::ipranges::IpRanges::from_json(&b));
    match got {
        Ok(r) => {
            let (v4, v6) = r.ranges();
            tracing::info!(url, prefixes = r.prefixes, ipv4_ranges = v4, ipv6_ranges = v6, create_date = %r.create_date, ms = t0.elapsed().as_millis() as u64, "AWS ip-ranges read");
            Some(r)
        }
        Err(e) => {
            tracing::warn!(url, error = %e, "AWS ip-ranges could not be read (NATMETER_IP_RANGES_URL): destinations are named by the records' pkt-*-aws-service only, without regions, until the next cold start");
            None
        }
    }
}

/// The topology could not be described at start-up: Lambda reports the exit as an init error and
/// retries the events; nothing is metered against a guessed topology.
fn start_up_failed(e: &str) -> ! {
    tracing::error!(error = %e, "NAT gateways could not be described from the EC2 API (NATMETER_VPC_IDS / NATMETER_NAT_GATEWAY_IDS); the function needs ec2:DescribeNatGateways and ec2:DescribeSubnets");
    eprintln!("natmeter: discovery failed: {e}");
    std::process::exit(3);
}

async fn handle(
    function: &Function<aws_sdk_cloudwatch::Client>,
    ev: LambdaEvent<Box<RawValue>>,
) -> Result<Value, Failure> {
    let remaining = Duration::from_millis(ev.context.deadline.saturating_sub(now_ms()));
    let inv = Invocation {
        request_id: &ev.context.request_id,
        deadline: tokio::time::Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN),
        now: (now_ms() / 1000) as i64,
    };
    let mut stdout = std::io::stdout().lock();
    function
        .invoke(ev.payload.get().as_bytes(), &inv, &mut stdout)
        .await
}
