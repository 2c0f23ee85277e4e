//! The re-describe policy of a function whose gateways are discovered (docs/topology.md §2),
//! with the EC2 API replaced by a describer that counts its calls and fails on demand (fault
//! injection; the real calls are tests/e2e/test_discovery.py against LocalStack's EC2).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use natmeter_core::config::Config;
use natmeter_core::topology::NatGateway;
use natmeter_ec2::client::Ec2Error;
use natmeter_ec2::Discovered;
use natmeter_lambda::discovery::{Describe, Discoverer};

const FIRST: &str = "eni-0a0000000000000a1";
const LATER: &str = "eni-0b0000000000000b2";

fn gw(id: &str, eni: &str, ip: &str) -> NatGateway {
    NatGateway {
        id: id.into(),
        eni: eni.into(),
        private_ips: vec![ip.parse().unwrap()],
        az_id: None,
        connectivity_type: Default::default(),
    }
}

struct Fake {
    calls: Arc<AtomicU32>,
    fail: Arc<AtomicBool>,
    later: Arc<AtomicBool>,
}

fn setup(rediscover: &str) -> (Discoverer, Config, Fake) {
    let cfg = Config::from_lookup(|k| match k {
        "NATMETER_VPC_IDS" => Some("vpc-0a1b2c".into()),
        "NATMETER_REDISCOVER_SECONDS" => Some(rediscover.into()),
        "AWS_REGION" => Some("us-east-1".into()),
        _ => None,
    })
    .unwrap();
    let fake = Fake {
        calls: Arc::default(),
        fail: Arc::default(),
        later: Arc::default(),
    };
    let (calls, fail, later) = (fake.calls.clone(), fake.fail.clone(), fake.later.clone());
    let describe: Describe = Box::new(move |_scope| {
        calls.fetch_add(1, Ordering::SeqCst);
        let (fail, later) = (fail.load(Ordering::SeqCst), later.load(Ordering::SeqCst));
        Box::pin(async move {
            if fail {
                return Err(Ec2Error::Transport {
                    action: "DescribeNatGateways",
                    endpoint: "http://127.0.0.1:9".into(),
                    problem: "injected".into(),
                });
            }
            let mut gateways = vec![gw("nat-first", FIRST, "10.0.0.10")];
            if later {
                gateways.push(gw("nat-later", LATER, "10.0.32.10"));
            }
            Ok(Discovered {
                gateways,
                ..Discovered::default()
            })
        })
    });
    let d = Discoverer::new(cfg.discovery.clone().unwrap(), describe);
    (d, cfg, fake)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn unknown_enis_re_describe_at_most_once_per_interval_and_once_each() {
    rt().block_on(async {
        let (d, base, fake) = setup("60");
        let cfg = d.initial(&base, 1000).await.unwrap();
        assert_eq!(cfg.topology.gateways().len(), 1);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        // Too soon after the cold start: not described, not remembered as checked.
        assert!(d.on_unknown(&cfg, LATER, 1030).await.unwrap().is_none());
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        // Due, and the new gateway is there now.
        fake.later.store(true, Ordering::SeqCst);
        let new = d.on_unknown(&cfg, LATER, 1060).await.unwrap().unwrap();
        assert_eq!(new.topology.gateway_by_eni(LATER), Some(1));
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        // A non-NAT ENI: one describe, then never again however late.
        let other = "eni-0c0000000000000c3";
        assert!(d.on_unknown(&new, other, 1200).await.unwrap().is_some());
        assert!(d.on_unknown(&new, other, 9000).await.unwrap().is_none());
        assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
        assert_eq!(d.describes().await, 3);
    });
}

#[test]
fn a_failed_describe_fails_and_backs_off_then_recovers() {
    rt().block_on(async {
        let (d, base, fake) = setup("300");
        let cfg = d.initial(&base, 1000).await.unwrap();
        fake.fail.store(true, Ordering::SeqCst);
        let e = d.on_unknown(&cfg, LATER, 1300).await.unwrap_err();
        assert!(e.contains(LATER) && e.contains("injected"), "{e}");
        // Within the 30 s backoff: an error at once, without calling EC2.
        let e = d.on_unknown(&cfg, LATER, 1310).await.unwrap_err();
        assert!(e.contains("failed 10s ago"), "{e}");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        // After it, the next batch asks again (a failure starts no interval), and EC2 answers.
        fake.fail.store(false, Ordering::SeqCst);
        fake.later.store(true, Ordering::SeqCst);
        let new = d.on_unknown(&cfg, LATER, 1340).await.unwrap().unwrap();
        assert!(new.topology.gateway_by_eni(LATER).is_some());
        assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn a_cold_start_failure_is_an_error_naming_the_scope() {
    rt().block_on(async {
        let (d, base, fake) = setup("300");
        fake.fail.store(true, Ordering::SeqCst);
        let e = d.initial(&base, 1000).await.unwrap_err();
        assert!(e.contains("vpc-0a1b2c") && e.contains("injected"), "{e}");
    });
}
