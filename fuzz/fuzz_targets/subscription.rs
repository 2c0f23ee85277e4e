//! Subscription decoding: arbitrary bytes as a Lambda event, and as base64 data.
#![no_main]
use libfuzzer_sys::fuzz_target;
use natmeter_core::sources::subscription::{event_data, Decoder, Payload};

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(1 << 20);
    let mut buf = Vec::new();
    if let Ok(d) = event_data(data) {
        let _ = decoder.log_stream(&d);
        if decoder.decode(&d, &mut buf).is_ok() {
            let _ = Payload::parse(&buf);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = decoder.log_stream(s);
        if decoder.decode(s, &mut buf).is_ok() {
            assert!(buf.len() <= 1 << 20);
        }
    }
    let _ = Payload::parse(data);
});
