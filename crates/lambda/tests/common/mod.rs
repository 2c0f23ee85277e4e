//! Subscription events for the function's own tests, written the way CloudWatch Logs delivers a
//! NAT gateway ENI's stream: `{"awslogs":{"data": base64(gzip(payload))}}`. Deterministic and
//! built here rather than by the simulator, so the function's crate never depends on it (the
//! bootstrap must not link `rand`, even for tests).

use std::io::Write as _;

use base64::Engine as _;

pub const NAT_ID: &str = "nat-0e2e00000000000a1";
pub const NAT_ENI: &str = "eni-0e2e00000000000a1";
pub const NAT_IP: &str = "10.0.0.10";
pub const LOG_FORMAT: &str = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${pkt-srcaddr} ${pkt-dstaddr} ${pkt-src-aws-service} ${pkt-dst-aws-service}";
/// 2025-12-01T00:00:00Z.
pub const START: i64 = 1_764_547_200;

pub fn gateways_json() -> String {
    format!(r#"[{{"id":"{NAT_ID}","eni":"{NAT_ENI}","private_ips":["{NAT_IP}"]}}]"#)
}

/// One NAT ENI batch: for each minute and each of `sources` pods, an upload (A) and a download
/// (D) through the gateway, `id_base` making the log event ids (and so the batch) distinct.
pub fn nat_event(minutes: i64, sources: u32, id_base: u64) -> Vec<u8> {
    let mut events = Vec::new();
    let mut id = id_base;
    for m in 0..minutes {
        let t = START + m * 60;
        for s in 0..sources {
            let pod = format!("10.0.{}.{}", 128 + s / 250, 4 + s % 250);
            let remote = format!("203.0.113.{}", 1 + s % 250);
            let port = 40000 + s;
            let up = 1000 + u64::from(s) * 10 + m as u64;
            let down = 5000 + u64::from(s) * 7 + m as u64;
            for line in [
                format!("5 123456789012 {NAT_ENI} {pod} {NAT_IP} {port} 443 6 2 {up} {t} {} ACCEPT OK {pod} {remote} - -", t + 30),
                format!("5 123456789012 {NAT_ENI} {NAT_IP} {pod} 443 {port} 6 4 {down} {t} {} ACCEPT OK {remote} {pod} - -", t + 30),
            ] {
                events.push(format!(
                    r#"{{"id":"{id:056}","timestamp":{},"message":"{line}"}}"#,
                    t * 1000
                ));
                id += 1;
            }
        }
    }
    let payload = format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/vpc/flow-logs","logStream":"{NAT_ENI}-all","subscriptionFilters":["natmeter"],"logEvents":[{}]}}"#,
        events.join(",")
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(payload.as_bytes()).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    format!(r#"{{"awslogs":{{"data":"{data}"}}}}"#).into_bytes()
}
