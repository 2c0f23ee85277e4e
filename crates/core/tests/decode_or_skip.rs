//! The one-pass skip-or-decode of a subscription batch against the two steps it replaces, on
//! simulated batches (moved out of the module's unit tests with the simulator, which the core
//! does not link).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use natmeter_core::sources::subscription::{event_data, Decoder};

/// `decode_or_skip` decides, decodes and fails exactly as the peek then `decode` it
/// replaces, on good batches and on batches corrupted anywhere (base64, deflate, trailer),
/// before and after the head.
#[test]
fn decode_or_skip_is_the_peek_then_decode() {
    let sim = natmeter_sim::simulate(&natmeter_sim::SimConfig {
        pods: 60,
        max_batch_bytes: 30_000,
        ..Default::default()
    });
    let foreign = |s: &str| !s.starts_with(sim.gateways[0].eni.as_str());
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
