//! The function's invocation policy without the runtime: control messages, bad events, duplicate
//! deliveries and retries after a partial delivery. Metrics go through the real request builder
//! (`batch::requests`, `batch::digest`); only the transport is replaced, to inject failures.

use std::collections::HashSet;
use std::sync::Mutex;

use natmeter_cloudwatch::batch;
use natmeter_cloudwatch::put::{SendError, SendReport, Sender};
use natmeter_core::config::Config;
use natmeter_core::metrics::Datum;
use natmeter_lambda::{Function, Invocation};

mod common;

/// A PutMetricData transport that delivers every request except those whose position is listed
/// in `fail` (for the next call only), and records what each call was asked to send.
#[derive(Default)]
struct Transport {
    fail: Mutex<Vec<usize>>,
    calls: Mutex<Vec<Call>>,
}

#[derive(Debug, Clone)]
struct Call {
    /// Digests of the requests the batch splits into, in order.
    requests: Vec<u64>,
    /// Digests skipped because an earlier attempt delivered them.
    already: HashSet<u64>,
    /// Digests this call delivered.
    delivered: Vec<u64>,
    timestamps: Vec<i64>,
}

impl Sender for Transport {
    async fn send(
        &self,
        _namespace: &str,
        datums: &[Datum],
        _deadline: tokio::time::Instant,
        already: &HashSet<u64>,
    ) -> Result<SendReport, SendError> {
        let requests = batch::requests(batch::to_wire(datums));
        let fail = std::mem::take(&mut *self.fail.lock().unwrap());
        let mut report = SendReport::default();
        let mut failed = 0;
        let digests: Vec<u64> = requests.iter().map(|r| batch::digest(r)).collect();
        for (i, (req, d)) in requests.iter().zip(&digests).enumerate() {
            if already.contains(d) {
                report.already_delivered += 1;
            } else if fail.contains(&i) {
                failed += 1;
            } else {
                report.requests += 1;
                report.datums += req.len();
                report.delivered.push(*d);
            }
        }
        self.calls.lock().unwrap().push(Call {
            requests: digests.clone(),
            already: already.clone(),
            delivered: report.delivered.clone(),
            timestamps: datums.iter().map(|d| d.timestamp).collect(),
        });
        if failed > 0 {
            return Err(SendError {
                failed,
                requests: digests.len() - report.already_delivered,
                datums: 0,
                last: "injected failure".into(),
                delivered: report,
            });
        }
        Ok(report)
    }
}

fn function() -> Function<Transport> {
    let cfg = Config::from_lookup(|k| match k {
        "NATMETER_NAT_GATEWAYS" => Some(common::gateways_json()),
        "NATMETER_LOG_FORMAT" => Some(common::LOG_FORMAT.into()),
        "AWS_REGION" => Some("us-east-1".into()),
        _ => None,
    })
    .unwrap();
    Function::new(cfg, Some(Transport::default()), None)
}

/// Ten pods over two hours in one NAT ENI batch: its metrics need more than one PutMetricData
/// request (1,000 datums each).
fn big_event() -> Vec<u8> {
    common::nat_event(120, 10, 0)
}

fn inv(now: i64) -> Invocation<'static> {
    Invocation {
        request_id: "req",
        deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(30),
        now,
    }
}

/// A clock an hour after the simulated traffic ends: inside CloudWatch's 14-day window.
const NOW: i64 = common::START + 3 * 3600;

fn transport(f: &Function<Transport>) -> &Transport {
    f.sender().unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn control_messages_are_acknowledged_and_emit_nothing() {
    let f = function();
    let event = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/control-message.json"
    ))
    .unwrap();
    let mut out = Vec::new();
    let v = f.invoke(&event, &inv(NOW), &mut out).await.unwrap();
    assert_eq!(v["batch"], "control");
    assert!(transport(&f).calls.lock().unwrap().is_empty());
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}

#[tokio::test(flavor = "current_thread")]
async fn a_bad_event_fails_loudly_every_time() {
    let f = function();
    for event in [&br#"{"awslogs":{"data":"not base64!"}}"#[..], b"{}", b""] {
        for _ in 0..2 {
            let e = f
                .invoke(event, &inv(NOW), &mut Vec::new())
                .await
                .unwrap_err();
            assert_eq!(e.kind, "natmeter.BadEvent", "{e:?}");
        }
    }
    assert!(transport(&f).calls.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn a_duplicate_delivery_is_published_once() {
    let f = function();
    let event = big_event();
    let mut out = Vec::new();
    let first = f.invoke(&event, &inv(NOW), &mut out).await.unwrap();
    assert_eq!(first["batch"], "data");
    assert!(first["bytes"].as_u64().unwrap() > 0);
    let detail_lines = out.len();
    let second = f.invoke(&event, &inv(NOW + 60), &mut out).await.unwrap();
    assert_eq!(second["batch"], "duplicate");
    assert_eq!(transport(&f).calls.lock().unwrap().len(), 1);
    assert_eq!(out.len(), detail_lines, "no detail lines written twice");
}

#[tokio::test(flavor = "current_thread")]
async fn a_retry_after_a_partial_delivery_sends_only_what_failed() {
    let f = function();
    let event = big_event();
    *transport(&f).fail.lock().unwrap() = vec![1];
    let mut out = Vec::new();
    let e = f.invoke(&event, &inv(NOW), &mut out).await.unwrap_err();
    assert_eq!(e.kind, "natmeter.MetricsNotDelivered");
    assert!(
        out.is_empty(),
        "no log lines before the metrics are delivered"
    );

    // Lambda's retry comes a minute later; the function reuses the first attempt's clock.
    let v = f.invoke(&event, &inv(NOW + 60), &mut out).await.unwrap();
    assert_eq!(v["batch"], "data");
    let calls = transport(&f).calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    let (a, b) = (&calls[0], &calls[1]);
    assert!(a.requests.len() >= 2, "the batch needs several requests");
    assert_eq!(
        a.requests, b.requests,
        "the retry rebuilt identical requests"
    );
    assert_eq!(a.timestamps, b.timestamps);
    let first_delivered: HashSet<u64> = a.delivered.iter().copied().collect();
    assert_eq!(b.already, first_delivered);
    assert_eq!(
        b.delivered,
        vec![a.requests[1]],
        "only the failed request is sent again"
    );

    // Every request delivered exactly once over both attempts.
    let mut all: Vec<u64> = a.delivered.iter().chain(&b.delivered).copied().collect();
    all.sort_unstable();
    let mut want = a.requests.clone();
    want.sort_unstable();
    assert_eq!(all, want);

    // And the batch is now published: a third delivery is a duplicate.
    let v = f.invoke(&event, &inv(NOW + 120), &mut out).await.unwrap();
    assert_eq!(v["batch"], "duplicate");
}

#[tokio::test(flavor = "current_thread")]
async fn a_retry_after_nothing_was_delivered_sends_everything_with_its_own_clock() {
    let f = function();
    let event = big_event();
    let n = {
        // Learn the request count from a separate function, so this one keeps no memory.
        let probe = function();
        probe
            .invoke(&event, &inv(NOW), &mut Vec::new())
            .await
            .unwrap();
        let c = transport(&probe).calls.lock().unwrap()[0].requests.len();
        c
    };
    *transport(&f).fail.lock().unwrap() = (0..n).collect();
    f.invoke(&event, &inv(NOW), &mut Vec::new())
        .await
        .unwrap_err();
    f.invoke(&event, &inv(NOW + 60), &mut Vec::new())
        .await
        .unwrap();
    let calls = transport(&f).calls.lock().unwrap().clone();
    assert!(calls[1].already.is_empty());
    assert_eq!(calls[1].delivered.len(), n);
}
