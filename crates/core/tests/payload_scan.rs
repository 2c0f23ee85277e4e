//! The specialised payload reader against serde_json, the ground truth for JSON: whenever the
//! reader answers, serde_json must give the same payload; and on the shapes CloudWatch writes
//! (the simulator's batches, the AWS fixture, the same batches with the `extractedFields` of a
//! space-delimited filter pattern and the `policyLevel` of an account-level policy) the reader
//! must answer, or the hot path is lost.

use natmeter_core::sources::scan;
use natmeter_core::sources::subscription::{event_data, event_data_serde, Decoder, Payload};
use natmeter_sim::{simulate, Scope, SimConfig};
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

/// `payload` as CloudWatch writes it for a space-delimited filter pattern naming every field
/// (`[version, account_id, interface_id, …]`, the module's pattern): each event gains
/// `"extractedFields"`, string values under the pattern's names, in an order of its own.
fn with_extracted_fields(payload: &[u8], names: &[String]) -> Vec<u8> {
    let p = Payload::parse_serde(payload).unwrap();
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let events: Vec<String> = p
        .log_events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut pairs: Vec<String> = names
                .iter()
                .zip(e.message.split(' '))
                .map(|(k, v)| format!("{}:{}", q(k), q(v)))
                .collect();
            let n = pairs.len().max(1);
            pairs.rotate_left(i % n);
            if i % 2 == 1 {
                pairs.reverse();
            }
            format!(
                r#"{{"id":{},"timestamp":{},"message":{},"extractedFields":{{{}}}}}"#,
                q(&e.id),
                e.timestamp,
                q(&e.message),
                pairs.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":{},"logGroup":{},"logStream":{},"subscriptionFilters":["natmeter"],"logEvents":[{}]}}"#,
        q(&p.owner),
        q(&p.log_group),
        q(&p.log_stream),
        events.join(",")
    )
    .into_bytes()
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
    let names: Vec<String> = sim
        .log_format
        .split(' ')
        .map(|f| {
            f.trim_start_matches("${")
                .trim_end_matches('}')
                .replace('-', "_")
        })
        .collect();
    for e in &sim.events {
        let json = decoded(e.json.as_bytes());
        assert!(agree(&json), "fast path refused {}", e.file_name);
        let extracted = with_extracted_fields(&json, &names);
        assert!(extracted.len() > json.len() * 2, "{}", e.file_name);
        assert!(
            agree(&extracted),
            "fast path refused {} with extractedFields",
            e.file_name
        );
        // An account-level subscription policy's payload.
        let account = String::from_utf8(extracted).unwrap().replacen(
            "\"logEvents\":",
            "\"policyLevel\":\"ACCOUNT_LEVEL_POLICY\",\"logEvents\":",
            1,
        );
        assert!(
            agree(account.as_bytes()),
            "fast path refused {} with policyLevel",
            e.file_name
        );
    }
    let fixture = include_str!("data/cloudwatch-logs-event.json");
    assert!(agree(&decoded(fixture.as_bytes())));
    let control = include_str!("../../../events/control-message.json");
    assert!(agree(&decoded(control.as_bytes())));
    // The scan fuzz target's seeds start next to the fast paths, so the reader must take them.
    for seed in [
        &include_bytes!("../../../fuzz/seeds/scan/payload-extracted-fields.json")[..],
        include_bytes!("../../../fuzz/seeds/scan/payload-policy-level.json"),
        include_bytes!("../../../fuzz/seeds/scan/payload-unknown-keys.json"),
    ] {
        assert!(agree(seed), "{}", String::from_utf8_lossy(seed));
    }
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
        r#"{"messageType":"DATA_MESSAGE","extra":1.5,"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":[1e3],"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":"a\nb","logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","ex\u0074ra":1,"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"a":"\u0041"}}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"a":0.5}}]}"#,
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
        r#"{"messageType":"DATA_MESSAGE","extra":01,"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":-,"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":[1,],"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":[1 2],"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":{"a"},"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":{1:2},"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":tru,"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":nul,"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":,"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","extra":"x"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"a":"b",}}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"a":"b"}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"a":"b"},"message":"n"}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"a":"b""c":"d"}}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"a":"b":"c"}}]}"#,
        "{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"id\":\"1\",\"timestamp\":1,\"message\":\"m\",\"extractedFields\":{\"a\":\"b\tc\"}}]}",
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
        // Keys serde ignores, whatever their value, are skipped, with serde's syntax.
        r#"{"messageType":"DATA_MESSAGE","extra":{"a":[1,2]},"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","x":null}]}"#,
        r#"{"x":[true,false,null,-0,0,-12345678901234567890123,"s",{},[],{"a":{"b":[{}]}}],"messageType":"DATA_MESSAGE","logEvents":[]}"#,
        " {\"x\" : [ 1 , { \"a\" : \"b\" } ] ,\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[]}",
        r#"{"messageType":"DATA_MESSAGE","x":1,"x":"twice","logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","subscriptionFilters":"not an array","logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","été":1,"logEvents":[]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{}}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"srcaddr":"10.0.0.1","bytes":"42"}}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"extractedFields":{"a":"b"},"id":"1","timestamp":1,"message":"m"}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"a" : "b", "c":1,"d":{"e":"f"}}}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"a":"b"},"extractedFields":{"a":"c"}}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","extractedFields":{"a":"é","b":"0123456789abcdefghijklmnopqrstuvwxyz","c":""}}]}"#,
        r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"m","@aws.account":"123456789012","@aws.region":"us-east-1"}]}"#,
    ] {
        assert!(agree(c.as_bytes()), "{c}");
    }
    // A key serde reads as a `str` must be UTF-8, even one it then ignores; inside an ignored
    // value serde checks nothing, keys included.
    let bad_key = b"{\"messageType\":\"DATA_MESSAGE\",\"\xff\":1,\"logEvents\":[]}";
    assert!(!agree(bad_key));
    assert!(Payload::parse_serde(bad_key).is_err());
    assert!(agree(
        b"{\"messageType\":\"DATA_MESSAGE\",\"x\":{\"\xff\":\"\xfe\"},\"logEvents\":[]}"
    ));
    // Nesting past the reader's depth is serde's to read (it has no limit on ignored values).
    let deep = format!(
        r#"{{"messageType":"DATA_MESSAGE","x":{}{},"logEvents":[]}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    assert!(!agree(deep.as_bytes()));
    assert!(Payload::parse_serde(deep.as_bytes()).is_ok());
    let shallow = format!(
        r#"{{"messageType":"DATA_MESSAGE","x":{}{},"logEvents":[]}}"#,
        "[{\"a\":".repeat(15) + "1",
        "}]".repeat(15)
    );
    assert!(agree(shallow.as_bytes()), "{shallow}");
}

/// The head peek (the non-NAT skip) reads the stream name serde reads, or says nothing, and skips
/// keys before `logStream` as the full reader does.
#[test]
fn log_stream_peek() {
    for (p, want) in [
        (
            r#"{"policyLevel":"ACCOUNT_LEVEL_POLICY","logStream":"eni-0b-all","logEvents":[]}"#,
            Some("eni-0b-all"),
        ),
        (
            r#"{"x":{"logStream":"eni-0a-all"},"logStream":"eni-0b-all","logEvents":[]}"#,
            Some("eni-0b-all"),
        ),
        (
            r#"{"x":[1.5],"logStream":"eni-0b-all","logEvents":[]}"#,
            None,
        ),
        (r#"{"x":[1,2,"#, None),
        (r#"{"logStream":"eni-0a-all","x":1}"#, None),
    ] {
        assert_eq!(scan::log_stream(p.as_bytes()), want, "{p}");
    }
    // Every cut of these heads names serde's stream or nothing (the peek sees a kilobyte).
    for p in [
        "{\"\":[{\"\u{1260}\u{0ab2}\":\" ]aa 00 ]0a #a]# #a A a#0Aa]aa\",\"0aa00aA0Aaa  aa0#AAA A\":\"\"}],\"messageType\":\"DATA_MESSAGE\",\"owner\":\"123456789012\",\"logGroup\":\"/vpc/flow\",\"logStream\":\"\",\"logEvents\":[]}",
        include_str!("../../../fuzz/seeds/scan/payload-unknown-keys.json"),
        include_str!("../../../fuzz/seeds/scan/payload-policy-level.json"),
    ] {
        let b = p.as_bytes();
        let serde = Payload::parse_serde(b).unwrap();
        for cut in 0..=b.len().min(1500) {
            if let Some(peek) = scan::log_stream(&b[..cut]) {
                assert_eq!(peek, serde.log_stream, "cut {cut}: {p}");
            }
        }
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
    // Millisecond timestamps mostly, as CloudWatch writes them (a 19-digit `any::<i64>()` is
    // always serde's to read, so a payload of several such events would never test the reader).
    prop_oneof![
        2 => any::<i64>().prop_map(|n| n.to_string()),
        8 => (-1_000i64..2_000_000_000_000).prop_map(|n| n.to_string()),
        1 => Just("0".to_string()),
        1 => Just("-0".to_string()),
        1 => "[-0-9.eE+]{1,22}",
        1 => "-?[1-9][0-9]{16,20}",
    ]
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just(""), 1 => Just(" "), 1 => Just("\n\t "), 1 => Just("\r")]
}

/// Any JSON value as text, some of it awkward (floats, escapes, whitespace, nesting), for the
/// keys serde ignores.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => (text(), any::<bool>()).prop_map(|(s, raw)| json_string(&s, raw)),
        3 => number(),
        1 => prop_oneof![Just("true"), Just("false"), Just("null"), Just("nul"), Just("")]
            .prop_map(str::to_string),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..5), ws())
                .prop_map(|(v, w)| format!("[{w}{}]", v.join(&format!(",{w}")))),
            (prop::collection::vec((text(), inner), 0..5), ws()).prop_map(|(v, w)| {
                let pairs: Vec<String> = v
                    .iter()
                    .map(|(k, v)| format!("{}{w}:{v}", json_string(k, false)))
                    .collect();
                format!("{{{}}}", pairs.join(","))
            }),
        ]
    })
}

/// `extractedFields`: mostly as CloudWatch writes it (flow-log field names, plain string values,
/// compact), sometimes with awkward keys, values and spacing.
fn extracted_fields() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "version",
        "account_id",
        "interface_id",
        "srcaddr",
        "dstaddr",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "action",
        "log_status",
        "pkt_srcaddr",
        "pkt_dstaddr",
        "pkt_src_aws_service",
        "flow_direction",
    ]);
    let clean = prop::collection::vec((names, "[ -~&&[^\"\\\\]]{0,24}"), 0..30).prop_map(|pairs| {
        let pairs: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("\"{k}\":\"{v}\""))
            .collect();
        format!("{{{}}}", pairs.join(","))
    });
    let val = prop_oneof![
        2 => (text(), any::<bool>()).prop_map(|(s, raw)| json_string(&s, raw)),
        1 => value(),
    ];
    let awkward = (prop::collection::vec((text(), val), 0..8), ws()).prop_map(|(pairs, w)| {
        let pairs: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}:{w}{v}", json_string(k, false)))
            .collect();
        format!("{{{w}{}}}", pairs.join(&format!("{w},")))
    });
    prop_oneof![6 => clean, 1 => awkward]
}

prop_compose! {
    fn event()(id in text(), ts in number(), msg in text(), raw in any::<[bool; 2]>(),
               order in 0usize..6, extra in prop::option::weighted(0.05, (text(), value())),
               fields in prop::option::weighted(0.5, (extracted_fields(), 0usize..8)),
               w in ws())
        -> String {
        let mut parts = vec![
            format!("\"id\":{w}{}", json_string(&id, raw[0])),
            format!("\"timestamp\":{ts}"),
            format!("\"message\"{w}:{}", json_string(&msg, raw[1])),
        ];
        parts.rotate_left(order % 3);
        if order >= 3 { parts.swap(0, 1); }
        if let Some((key, v)) = extra { parts.push(format!("{}:{v}", json_string(&key, false))); }
        // Last as CloudWatch writes it, mostly; anywhere now and then.
        if let Some((f, at)) = fields {
            let at = if at < 6 { parts.len() } else { at % (parts.len() + 1) };
            parts.insert(at, format!("\"extractedFields\":{f}"));
        }
        format!("{{{}}}", parts.join(","))
    }
}

prop_compose! {
    fn payload()(events in prop::collection::vec(event(), 0..6), stream in text(),
                 control in prop::bool::weighted(0.1), with_filters in any::<bool>(),
                 drop_events in prop::bool::weighted(0.05), w in ws(), dup in prop::bool::weighted(0.05),
                 policy in prop::bool::weighted(0.3),
                 unknown in prop::option::weighted(0.2, (text(), value(), 0usize..8)))
        -> String {
        let mut parts = vec![
            format!("\"messageType\":\"{}\"", if control { "CONTROL_MESSAGE" } else { "DATA_MESSAGE" }),
            "\"owner\":\"123456789012\"".to_string(),
            "\"logGroup\":\"/vpc/flow\"".to_string(),
            format!("\"logStream\":{w}{}", json_string(&stream, false)),
        ];
        if with_filters { parts.push("\"subscriptionFilters\":[\"natmeter\",\"x\"]".to_string()); }
        if policy { parts.push("\"policyLevel\":\"ACCOUNT_LEVEL_POLICY\"".to_string()); }
        if dup { parts.push("\"owner\":\"1\"".to_string()); }
        if !drop_events { parts.push(format!("\"logEvents\":[{w}{}]", events.join(","))); }
        if let Some((key, v, at)) = unknown {
            let at = at % (parts.len() + 1);
            parts.insert(at, format!("{}:{w}{v}", json_string(&key, false)));
        }
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
    fn nor_does_the_head_peek(json in payload(), cut in 0usize..1200) {
        let b = json.as_bytes();
        let head = &b[..cut.min(b.len())];
        if let (Some(peek), Ok(p)) = (scan::log_stream(head), Payload::parse_serde(b)) {
            prop_assert_eq!(peek, &*p.log_stream, "{}", json);
        }
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

/// The differential properties above only test something where the reader answers: the
/// generators must reach its fast paths (extractedFields and unknown keys included), not only
/// its fallbacks.
#[test]
fn the_generators_reach_the_reader() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut answered, mut with_fields, mut fields_answered, mut unknown_answered) = (0, 0, 0, 0);
    let n = 2000;
    for _ in 0..n {
        let json = payload().new_tree(&mut runner).unwrap().current();
        let ok = agree(json.as_bytes());
        answered += usize::from(ok);
        if json.contains("\"extractedFields\":{\"") {
            with_fields += 1;
            fields_answered += usize::from(ok);
        }
        if ok && json.contains("\"policyLevel\"") {
            unknown_answered += 1;
        }
    }
    eprintln!("{answered}/{n} answered; extractedFields {fields_answered}/{with_fields}; policyLevel {unknown_answered}");
    // Measured at 29%, 15% and 8.5% (2,000 payloads); these floors leave room for tuning.
    assert!(answered * 5 > n, "{answered} of {n}");
    assert!(
        fields_answered * 10 > with_fields,
        "{fields_answered} of {with_fields}"
    );
    assert!(unknown_answered * 20 > n, "{unknown_answered}");
}
