//! The one-pass skip-or-decode of a subscription batch against the two steps it replaces, on
//! simulated batches (moved out of the module's unit tests with the simulator, which the core
//! does not link).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use natmeter_core::sources::subscription::{event_data, Decoder};

/// Small batches of one simulation (several per ENI), and its first NAT ENI: the stream the
/// tests keep.
fn simulated() -> (natmeter_sim::Simulation, String) {
    let sim = natmeter_sim::simulate(&natmeter_sim::SimConfig {
        pods: 60,
        max_batch_bytes: 30_000,
        ..Default::default()
    });
    let nat = sim.gateways[0].eni.clone();
    (sim, nat)
}

/// `decode_or_skip` decides, decodes and fails exactly as the peek then `decode` it
/// replaces, on good batches and on batches corrupted anywhere (base64, deflate, trailer),
/// before and after the head.
#[test]
fn decode_or_skip_is_the_peek_then_decode() {
    let (sim, nat) = simulated();
    let foreign = |s: &str| !s.starts_with(nat.as_str());
    let mut datas: Vec<String> = Vec::new();
    for e in sim.events.iter().take(12) {
        let data = event_data(e.json.as_bytes()).unwrap().into_owned();
        let raw = STANDARD.decode(&data).unwrap();
        datas.push(data.clone());
        datas.push(format!(" {data}\n"));
        for at in [3, 40, 700, 1100, 1399, 1401, 5000, data.len() - 3] {
            if at < data.len() {
                let mut d = data.clone().into_bytes();
                d[at] = b'!';
                datas.push(String::from_utf8(d).unwrap());
            }
        }
        for at in [12, 200, 800, 1040, 4000, raw.len() - 6] {
            if at < raw.len() {
                let mut r = raw.clone();
                r[at] ^= 0x5a;
                datas.push(STANDARD.encode(&r));
                datas.push(STANDARD.encode(&r[..at]));
            }
        }
    }
    let (mut a, mut b) = (Decoder::default(), Decoder::default());
    let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
    for data in &datas {
        let old = match a.log_stream(data) {
            Some(s) if foreign(&s) => Ok(Some(s)),
            _ => a.decode(data, &mut out_a).map(|()| None),
        };
        let new = b.decode_or_skip(data, &mut out_b, &mut |s| foreign(s));
        match (&old, &new) {
            (Ok(x), Ok(y)) => {
                assert_eq!(x, y, "{data}");
                if x.is_none() {
                    assert_eq!(out_a, out_b);
                }
            }
            (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string()),
            _ => panic!("{old:?} vs {new:?} on {data}"),
        }
    }
}

/// A reader that has stopped peeking (after a run of kept batches) reads every input as one
/// that peeks at each: kept batches, foreign ones whole or broken past their head, control
/// messages of a foreign stream and of a kept one, broken kept batches; and it peeks again
/// after a foreign batch.
#[test]
fn a_reader_past_a_run_of_kept_batches_reads_as_one_that_always_peeks() {
    use flate2::write::GzEncoder;
    use natmeter_core::sources::{Input, Reader};
    use std::io::Write as _;

    let (sim, nat) = simulated();
    let foreign = |s: &str| !s.starts_with(nat.as_str());
    let data = |e: &natmeter_sim::SimEvent| event_data(e.json.as_bytes()).unwrap().into_owned();
    let (kept, other): (Vec<String>, Vec<String>) = sim
        .events
        .iter()
        .map(data)
        .partition(|d| !foreign(&Decoder::default().log_stream(d).unwrap()));
    assert!(
        kept.len() >= 3 && !other.is_empty(),
        "{} {}",
        kept.len(),
        other.len()
    );
    let control = |stream: &str| {
        let json = format!(
            r#"{{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"{stream}","subscriptionFilters":[],"logEvents":[{{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination."}}]}}"#
        );
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json.as_bytes()).unwrap();
        STANDARD.encode(gz.finish().unwrap())
    };
    let broken = |d: &str, at: usize| {
        let mut raw = STANDARD.decode(d).unwrap();
        let at = at.min(raw.len() - 6);
        raw[at] ^= 0x5a;
        STANDARD.encode(&raw)
    };
    // Each case after a run long enough to stop peeking.
    let cases = [
        other[0].clone(),
        broken(&other[0], 4000),
        broken(&other[0], 12),
        control(""),
        control(&format!("{nat}-all")),
        broken(&kept[0], 4000),
        broken(&kept[0], 200),
        format!(" {}\n", kept[1]),
        kept[2][..kept[2].len() - 8].to_string(),
    ];
    let mut inputs = Vec::new();
    for case in &cases {
        inputs.extend(kept.iter().cycle().take(20).cloned());
        inputs.push(case.clone());
    }
    let (mut direct, mut peeking) = (Reader::default(), Reader::default().always_peeking());
    let (mut skipped_peeks, mut peeks_again) = (0, 0);
    for (i, d) in inputs.iter().enumerate() {
        let was_direct = direct.skips_peek();
        skipped_peeks += usize::from(was_direct);
        let read = |r: &mut Reader| {
            let input = Input::Data {
                data: d,
                origin: "x",
            };
            format!("{:?}", r.read(input, &mut |s| foreign(s)))
        };
        let (a, b) = (read(&mut direct), read(&mut peeking));
        assert_eq!(a, b, "input {i}");
        assert!(!peeking.skips_peek());
        if was_direct && a.contains("Foreign") {
            assert!(
                !direct.skips_peek(),
                "input {i}: a foreign batch ends the run"
            );
            peeks_again += 1;
        }
    }
    assert!(skipped_peeks >= 9 * 4, "{skipped_peeks}");
    assert!(peeks_again >= 3, "{peeks_again}");
}
