//! Record parsing and every typed accessor, under a rich format and the default one.
#![no_main]
use flowlog::{Field, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    let formats = [
        Format::default(),
        Format::parse("${version} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${bytes} ${packets} ${start} ${end} ${action} ${log-status} ${srcport} ${protocol} ${flow-direction} ${traffic-path} ${pkt-src-aws-service}").unwrap(),
    ];
    for f in &formats {
        if let Ok(r) = f.parse_line(line) {
            for field in Field::ALL {
                let _ = r.get(*field);
                let _ = r.u64(*field);
                let _ = r.ip(*field);
                let _ = r.port(*field);
            }
            let _ = (r.action(), r.log_status(), r.flow_direction(), r.traffic_path(), r.protocol());
        }
    }
});
