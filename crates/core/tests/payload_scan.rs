//! The specialised payload reader against serde_json, the ground truth for JSON: whenever the
//! reader answers, serde_json must give the same payload; and on the shapes CloudWatch writes
//! (the simulator's batches, the AWS fixture) the reader must answer, or the hot path is lost.

use natmeter_core::scan;
use natmeter_core::simulate::{simulate, Scope, SimConfig};
use natmeter_core::subscription::{event_data, event_data_serde, Decoder, Payload};
use proptest::prelude::*;

fn agree(json: &[u8]) -> bool {
    match scan::payload(json) {
        Some(fast) => {
            let slow = Payload::parse_serde(json);
            assert!(
                matches!(&slow, Ok(p) if *p == fast),
                "reader accepted what serde_json reads differently:\n{}\nreader: {fast:?}\nserde: {slow:?}",
                String::from_utf8_lossy(json)
            );
            true
        }
        None => false,
    }
}

fn decoded(event: &[u8]) -> Vec<u8> {
    let data = event_data(event).unwrap();
    let mut out = Vec::new();
    Decoder::default().decode(&data, &mut out).unwrap();
    out
}

#[test]
fn cloudwatch_shapes_take_the_fast_path() {
    let sim = simulate(&SimConfig {
        seed: 7,
        pods: 30,
        nodes: 3,
        nat_gateways: 2,
        minutes: 3,
        scope: Scope::Vpc,
        ..SimConfig::default()
    });
    assert!(!sim.events.is_empty());
    for e in &sim.events {
        let json = decoded(e.json.as_bytes());
        assert!(agree(&json), "fast path refused {}", e.file_name);
    }
    let fixture = include_str!("data/cloudwatch-logs-event.json");
    assert!(agree(&decoded(fixture.as_bytes())));
    let control = include_str!("../../../events/control-message.json");
    assert!(agree(&decoded(control.as_bytes())));
}

#[test]
fn fallbacks_and_errors_are_serdes() {
    let cases: &[&str] = &[
        // serde reads these; the reader leaves them to it.
        r#"{"messageType":"DATA_MESSAGE","logStream":"a\"b","logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1.0e3,"message":"m"}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":12345678901234567890,"message":"m"}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":9999999999999999999,"message":"m"}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":-9223372036854775808,"message":"m"}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"\u0041"}]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":{"a":[1,2]},"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","x":null}]}"#,
        // serde refuses these; so must the reader.
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":01,"message":"m"}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logStream":"a","logStream":"b","logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","message":"m"}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[]} x"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[],}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m"},]}"#,
        r#"{"messageType":"DATA_MESSAGE"}"#,
        r#"{"logEvents":[]}"#,
        "{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"id\":\"1\",\"timestamp\":1,\"message\":\"a\tb\"}]}",
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":-,"message":"m"}]}"#,
    ];
    for c in cases {
        assert!(
            !agree(c.as_bytes()),
            "reader should leave this to serde: {c}"
        );
    }
    // And these it reads itself, as serde does.
    for c in [
        " {\n \"messageType\" : \"DATA_MESSAGE\" ,\t\"logEvents\" : [ ] } \n",
        r#"{"logEvents":[{"message":"m","timestamp":-5,"id":"x"}],"messageType":"DATA_MESSAGE"}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":0,"message":"été"}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":999999999999999999,"message":""}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":-999999999999999999,"message":""}]}"#,
        r#"{"messageType":"CONTROL_MESSAGE","subscriptionFilters":[],"policyLevel":"ACCOUNT_LEVEL_POLICY"}"#,
    ] {
        assert!(agree(c.as_bytes()), "{c}");
    }
}

/// Pieces a CloudWatch-like payload is built from, some of them awkward.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[ -~&&[^\"\\\\]]{0,40}",
        1 => "[ -~]{0,20}",
        1 => "\\PC{0,12}",
        1 => prop::collection::vec(any::<char>(), 0..6).prop_map(|v| v.into_iter().collect()),
    ]
}

fn json_string(s: &str, raw: bool) -> String {
    if raw {
        format!("\"{s}\"")
    } else {
        serde_json::to_string(s).unwrap()
    }
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<i64>().prop_map(|n| n.to_string()),
        2 => (0i64..2_000_000_000_000).prop_map(|n| n.to_string()),
        1 => Just("0".to_string()),
        1 => Just("-0".to_string()),
        1 => "[-0-9.eE+]{1,22}",
        1 => "-?[1-9][0-9]{16,20}",
    ]
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just(""), 1 => Just(" "), 1 => Just("\n\t "), 1 => Just("\r")]
}

prop_compose! {
    fn event()(id in text(), ts in number(), msg in text(), raw in any::<[bool; 2]>(),
               order in 0usize..6, extra in prop::option::weighted(0.05, text()), w in ws())
        -> String {
        let mut parts = vec![
            format!("\"id\":{w}{}", json_string(&id, raw[0])),
            format!("\"timestamp\":{ts}"),
            format!("\"message\"{w}:{}", json_string(&msg, raw[1])),
        ];
        parts.rotate_left(order % 3);
        if order >= 3 { parts.swap(0, 1); }
        if let Some(x) = extra { parts.push(format!("{}:1", json_string(&x, false))); }
        format!("{{{}}}", parts.join(","))
    }
}

prop_compose! {
    fn payload()(events in prop::collection::vec(event(), 0..6), stream in text(),
                 control in prop::bool::weighted(0.1), with_filters in any::<bool>(),
                 drop_events in prop::bool::weighted(0.05), w in ws(), dup in prop::bool::weighted(0.05))
        -> String {
        let mut parts = vec![
            format!("\"messageType\":\"{}\"", if control { "CONTROL_MESSAGE" } else { "DATA_MESSAGE" }),
            "\"owner\":\"123456789012\"".to_string(),
            "\"logGroup\":\"/vpc/flow\"".to_string(),
            format!("\"logStream\":{w}{}", json_string(&stream, false)),
        ];
        if with_filters { parts.push("\"subscriptionFilters\":[\"natmeter\",\"x\"]".to_string()); }
        if dup { parts.push("\"owner\":\"1\"".to_string()); }
        if !drop_events { parts.push(format!("\"logEvents\":[{w}{}]", events.join(","))); }
        format!("{w}{{{}}}", parts.join(&format!(",{w}")))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_reader_never_disagrees_with_serde(json in payload()) {
        agree(json.as_bytes());
    }

    #[test]
    fn nor_on_corrupted_payloads(json in payload(), at in any::<prop::sample::Index>(),
                                 byte in any::<u8>(), how in 0u8..3) {
        let mut b = json.into_bytes();
        let i = at.index(b.len() + 1);
        match how {
            0 if i < b.len() => b[i] = byte,
            1 => b.insert(i, byte),
            _ => b.truncate(i),
        }
        agree(&b);
    }
}

fn envelope_agrees(event: &[u8]) {
    if let Some(fast) = scan::envelope_data(event) {
        let slow = event_data_serde(event);
        assert!(
            matches!(&slow, Ok(d) if d == fast),
            "envelope reader accepted what serde_json reads differently: {}",
            String::from_utf8_lossy(event)
        );
    }
}

#[test]
fn envelopes() {
    for (e, fast) in [
        (r#"{"awslogs":{"data":"H4sIAAAA"}}"#, true),
        (" {\"awslogs\" : {\n\"data\":\"QUJD\"} } ", true),
        (r#"{"awslogs":{"data":"a\/b"}}"#, false),
        (r#"{"awslogs":{"data":"x","more":1}}"#, false),
        (r#"{"awslogs":{"data":"x"},"other":{}}"#, false),
        (r#"{"awslogs":{"data":"x"}}}"#, false),
        (r#"{"awslogs":{"data":5}}"#, false),
        (r#"{"awslogs":{}}"#, false),
    ] {
        assert_eq!(scan::envelope_data(e.as_bytes()).is_some(), fast, "{e}");
        envelope_agrees(e.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn envelope_reader_never_disagrees(data in text(), w in ws(), at in any::<prop::sample::Index>(),
                                       byte in any::<u8>(), corrupt in any::<bool>()) {
        let e = format!("{w}{{\"awslogs\":{w}{{\"data\":{}}}{w}}}", serde_json::to_string(&data).unwrap());
        let mut b = e.into_bytes();
        if corrupt {
            let i = at.index(b.len());
            b[i] = byte;
        }
        envelope_agrees(&b);
    }
}
