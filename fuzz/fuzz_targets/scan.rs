//! The specialised payload, head and envelope readers against serde_json: whenever a reader
//! answers, serde_json must read the same bytes to the same value. The seeds hold the shapes the
//! reader takes at full speed (plain batches, `extractedFields`, `policyLevel`, unknown keys
//! with nested values), so mutations start next to its fast paths.
#![no_main]
use libfuzzer_sys::fuzz_target;
use natmeter_core::sources::scan;
use natmeter_core::sources::subscription::{event_data_serde, Payload};

fuzz_target!(|data: &[u8]| {
    let slow = Payload::parse_serde(data);
    if let Some(fast) = scan::payload(data) {
        assert!(matches!(&slow, Ok(p) if *p == fast), "{fast:?} vs {slow:?}");
    }
    // The non-NAT skip peeks at the first kilobyte only; what it names must be serde's stream.
    if let (Some(peek), Ok(p)) = (scan::log_stream(&data[..data.len().min(1024)]), &slow) {
        assert_eq!(peek, p.log_stream, "head peek vs serde");
    }
    if let Some(fast) = scan::envelope_data(data) {
        let slow = event_data_serde(data);
        assert!(matches!(&slow, Ok(d) if d == fast), "{fast:?} vs {slow:?}");
    }
});
