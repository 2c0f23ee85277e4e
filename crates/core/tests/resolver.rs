//! The identity seam (docs/attribution.md §4.1): an injected resolver is asked once per counted
//! record, during attribution, with the record's own time, its gateway, and the account and VPC
//! where the input says them; what it answers is what the report shows. And interning does not
//! leak into the output: results merged from threads that met the sources in different orders
//! report exactly what one thread does.

use std::net::IpAddr;
use std::sync::Mutex;

use natmeter_core::engine::{Attributor, Results};
use natmeter_core::flowlog::Format;
use natmeter_core::identity::{Resolver, Sighting, SourceId, Sources};
use natmeter_core::report::Report;
use natmeter_core::sources::{Input, Reader, Text};
use natmeter_core::topology::{NatGateway, Topology, DEFAULT_PRIVATE_CIDRS};
use natmeter_sim::{simulate, Scope, SimConfig};

const ENI_A: &str = "eni-0a1b2c3d4e5f60001";
const ENI_B: &str = "eni-0a1b2c3d4e5f60002";

fn topology() -> Topology {
    let gw = |id: &str, eni: &str, ip: &str| NatGateway {
        id: id.into(),
        eni: eni.into(),
        private_ips: vec![ip.parse().unwrap()],
        az_id: None,
        connectivity_type: Default::default(),
    };
    Topology::new(
        vec![
            gw("nat-a", ENI_A, "10.0.0.220"),
            gw("nat-b", ENI_B, "10.0.32.9"),
        ],
        Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).unwrap(),
    )
    .unwrap()
}

/// What a sighting said, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    address: IpAddr,
    time: i64,
    gateway: usize,
    account: Option<String>,
    vpc: Option<String>,
}

/// Records every sighting, and names every source by one address per gateway: a resolver whose
/// answer differs from the default, so the report can only show it if it was asked.
struct Recording {
    seen: Mutex<Vec<Seen>>,
}

impl Resolver for Recording {
    fn resolve(&self, s: &Sighting<'_>, into: &mut Sources) -> SourceId {
        self.seen.lock().unwrap().push(Seen {
            address: s.address,
            time: s.time,
            gateway: s.gateway,
            account: s.account.map(str::to_string),
            vpc: s.vpc.map(str::to_string),
        });
        into.address(IpAddr::from([192, 0, 2, s.gateway as u8]))
    }
}

#[test]
fn the_resolver_is_asked_with_the_records_own_context() {
    let topo = topology();
    let format = Format::from_aws_syntax(
        "${account-id} ${vpc-id} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} \
         ${pkt-dstaddr} ${bytes} ${packets} ${start} ${end} ${action} ${log-status}",
    )
    .unwrap();
    let resolver = Recording {
        seen: Mutex::new(Vec::new()),
    };
    let attributor = Attributor::new(&topo, format).with_resolver(&resolver);
    let mut results = attributor.results();
    // (A) through gateway a, (D) through gateway b, a public-side (B) record that is not counted
    // (and so never resolved), and a record without account-id.
    let text = format!(
        "111122223333 vpc-0aaa {ENI_A} 10.0.1.5 10.0.0.220 10.0.1.5 203.0.113.5 1000 5 1700000010 1700000070 ACCEPT OK\n\
         111122223333 vpc-0bbb {ENI_B} 10.0.32.9 10.0.40.7 203.0.113.9 10.0.40.7 400 2 1700000130 1700000190 ACCEPT OK\n\
         111122223333 vpc-0aaa {ENI_A} 10.0.0.220 203.0.113.5 10.0.0.220 203.0.113.5 1000 5 1700000010 1700000070 ACCEPT OK\n\
         - vpc-0aaa {ENI_A} 10.0.1.6 10.0.0.220 10.0.1.6 203.0.113.5 7 1 1700000200 1700000260 ACCEPT OK\n"
    );
    let input = Input::Text(Text {
        bytes: text.as_bytes(),
        format: None,
        origin: "flows.log",
        first_line: 1,
        fallback_time: 42,
    });
    attributor
        .ingest(input, &mut Reader::default(), &mut results)
        .unwrap();
    let seen = resolver.seen.lock().unwrap().clone();
    let s = |address: &str, time, gateway, account: Option<&str>, vpc: &str| Seen {
        address: address.parse().unwrap(),
        time,
        gateway,
        account: account.map(str::to_string),
        vpc: Some(vpc.to_string()),
    };
    assert_eq!(
        seen,
        vec![
            s("10.0.1.5", 1700000010, 0, Some("111122223333"), "vpc-0aaa"),
            s("10.0.40.7", 1700000130, 1, Some("111122223333"), "vpc-0bbb"),
            s("10.0.1.6", 1700000200, 0, None, "vpc-0aaa"),
        ]
    );
    let report = Report::build(&results, &topo, 0.045);
    let rows: Vec<(&str, u64)> = report
        .sources
        .iter()
        .map(|r| (r.source.as_str(), r.bytes))
        .collect();
    assert_eq!(rows, vec![("192.0.2.0", 1007), ("192.0.2.1", 400)]);
}

#[test]
fn a_subscription_batch_gives_its_owner_and_event_time() {
    let topo = topology();
    // No account-id, vpc-id or start: the batch's owner and the event's timestamp stand in.
    let format = Format::from_aws_syntax(
        "${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${bytes} ${action}",
    )
    .unwrap();
    let resolver = Recording {
        seen: Mutex::new(Vec::new()),
    };
    let attributor = Attributor::new(&topo, format).with_resolver(&resolver);
    let mut results = attributor.results();
    let payload = format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"444455556666","logGroup":"g","logStream":"{ENI_A}-all","subscriptionFilters":["f"],"logEvents":[{{"id":"1","timestamp":1700000123456,"message":"{ENI_A} 10.0.1.5 10.0.0.220 10.0.1.5 203.0.113.5 900 ACCEPT"}}]}}"#
    );
    let input = Input::Payload {
        json: payload.as_bytes(),
        origin: "batch.json",
    };
    attributor
        .ingest(input, &mut Reader::default(), &mut results)
        .unwrap();
    assert_eq!(
        resolver.seen.lock().unwrap().clone(),
        vec![Seen {
            address: "10.0.1.5".parse().unwrap(),
            time: 1700000123,
            gateway: 0,
            account: Some("444455556666".into()),
            vpc: None,
        }]
    );
    assert_eq!(results.records().counted, 1);
}

/// Two threads that meet the sources in the opposite order intern them under different ids;
/// merged, their results report byte for byte what one thread reports.
#[test]
fn merged_results_do_not_depend_on_interning_order() {
    let sim = simulate(&SimConfig {
        pods: 150,
        minutes: 4,
        scope: Scope::NatEnis,
        max_batch_bytes: 20_000,
        ..SimConfig::default()
    });
    let topo = sim.topology();
    let attributor = Attributor::new(&topo, sim.format());
    let run = |events: &mut dyn Iterator<Item = &natmeter_sim::SimEvent>| -> Results {
        let mut r = attributor.results();
        let mut reader = Reader::default();
        for e in events {
            let input = Input::Event {
                bytes: e.json.as_bytes(),
                origin: "x",
            };
            attributor.ingest(input, &mut reader, &mut r).unwrap();
        }
        r
    };
    let one = run(&mut sim.events.iter());
    let half = sim.events.len() / 2;
    let mut a = run(&mut sim.events[half..].iter().rev());
    let b = run(&mut sim.events[..half].iter().rev());
    a.merge(&b);
    // Parse-error samples follow input order by design (the CLI merges them in file order);
    // everything else is a sum and must not depend on any order.
    let json = |r: &Results| {
        let mut v = serde_json::to_value(Report::build(r, &topo, 0.045)).unwrap();
        v.as_object_mut().unwrap().remove("diagnostics");
        v.to_string()
    };
    assert!(Report::build(&one, &topo, 0.045).sources.len() > 50);
    assert_eq!(json(&a), json(&one));
    let details = |r: &Results| {
        natmeter_core::metrics::source_details(r, &topo, 0.045)
            .iter()
            .map(|d| d.to_json_line())
            .collect::<Vec<_>>()
    };
    assert_eq!(details(&a), details(&one));
}
