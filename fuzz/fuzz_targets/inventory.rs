//! The EKS audit-log inventory on arbitrary lines: never panics, and the facts it stores read
//! back into an inventory that answers exactly as the one fed the lines (docs/attribution.md
//! §4.3: a stored fact is the fact its event was). Lines are split on newlines; a line starting
//! with `K` is offered as a kubectl snapshot instead.
#![no_main]
use libfuzzer_sys::fuzz_target;
use natmeter_core::inventory::{Inventory, StoredFact};

fuzz_target!(|data: &[u8]| {
    let mut direct = Inventory::default();
    let mut stored = Inventory::default();
    let mut ips = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if let Some(snapshot) = line.strip_prefix(b"K") {
            let _ = direct.add_snapshot(snapshot);
            let _ = stored.add_snapshot(snapshot);
            continue;
        }
        let a = direct.add_line(line);
        match StoredFact::of_line(line) {
            Ok(Some(f)) => {
                assert!(a.is_ok(), "a line read as a fact must be accepted");
                stored.add_stored(&f.json).expect("a stored fact reads back");
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&f.json) {
                    collect_ips(&v, &mut ips);
                }
            }
            Ok(None) => assert!(a.is_ok()),
            Err(_) => assert!(a.is_err(), "add_line and StoredFact::of_line agree on errors"),
        }
    }
    for ip in ips.iter().take(16) {
        for t in [i64::MIN / 2, -1, 0, 1, 1_764_547_200, 1_764_550_800, i64::MAX / 2_000_000] {
            let (a, b) = (direct.resolve(*ip, t), stored.resolve(*ip, t));
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{ip} at {t}");
        }
    }
    direct.prune(0);
});

fn collect_ips(v: &serde_json::Value, out: &mut Vec<std::net::IpAddr>) {
    match v {
        serde_json::Value::String(s) => {
            if let Ok(ip) = s.parse() {
                out.push(ip);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_ips(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_ips(x, out)),
        _ => {}
    }
}
