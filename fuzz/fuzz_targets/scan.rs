//! The specialised payload and envelope readers against serde_json: whenever a reader answers,
//! serde_json must read the same bytes to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use natmeter_core::scan;
use natmeter_core::subscription::{event_data_serde, Payload};

fuzz_target!(|data: &[u8]| {
    if let Some(fast) = scan::payload(data) {
        let slow = Payload::parse_serde(data);
        assert!(matches!(&slow, Ok(p) if *p == fast), "{fast:?} vs {slow:?}");
    }
    if let Some(fast) = scan::envelope_data(data) {
        let slow = event_data_serde(data);
        assert!(matches!(&slow, Ok(d) if d == fast), "{fast:?} vs {slow:?}");
    }
});
