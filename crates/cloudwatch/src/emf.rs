//! Embedded Metric Format: one JSON object per line, which CloudWatch turns into metrics when
//! it arrives in a log group (Lambda's stdout is enough).
//!
//! Each line carries one dimension set with its values and the metrics of that set for one
//! minute, so every datapoint is counted exactly once per dimension set: no two lines put the
//! same bytes under the same dimension set.

use std::collections::BTreeMap;

use natmeter_core::metrics::Datum;
use serde_json::{json, Map, Value};

/// EMF limits: 100 metrics per directive, 30 dimension keys, 256 KB per line.
pub const MAX_METRICS_PER_LINE: usize = 100;
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// (timestamp, dimension names and values): one EMF line each.
type GroupKey<'a> = (i64, Vec<(&'a str, &'a str)>);

/// EMF lines, and the datums that fit in no line.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Lines {
    pub lines: Vec<String>,
    /// Datums whose single-metric line still exceeds [`MAX_LINE_BYTES`] (only possible with
    /// dimension values far beyond CloudWatch's own limits): counted, never silently lost.
    pub oversized: usize,
}

/// Renders admissible datums ([`crate::batch::admissible`]) as EMF lines, without trailing
/// newlines. A document over [`MAX_LINE_BYTES`] is split into halves until each fits: CloudWatch
/// Logs would drop the whole line, and with it every metric on it.
pub fn lines(namespace: &str, datums: &[Datum]) -> Lines {
    // Group by (timestamp, dimension set with values); within a group each metric appears once
    // because the model emits one datum per (metric, dimensions, minute).
    let mut groups: BTreeMap<GroupKey<'_>, Vec<&Datum>> = BTreeMap::new();
    for d in datums {
        let dims: Vec<(&str, &str)> = d.dimensions.iter().map(|(k, v)| (*k, v.as_str())).collect();
        groups.entry((d.timestamp, dims)).or_default().push(d);
    }
    let mut out = Lines {
        lines: Vec::with_capacity(groups.len()),
        oversized: 0,
    };
    for ((ts, dims), ds) in groups {
        for chunk in ds.chunks(MAX_METRICS_PER_LINE) {
            render(namespace, ts, &dims, chunk, MAX_LINE_BYTES, &mut out);
        }
    }
    out
}

fn render(
    namespace: &str,
    ts: i64,
    dims: &[(&str, &str)],
    chunk: &[&Datum],
    max_bytes: usize,
    out: &mut Lines,
) {
    let line = document(namespace, ts, dims, chunk);
    if line.len() <= max_bytes {
        out.lines.push(line);
    } else if chunk.len() > 1 {
        let (a, b) = chunk.split_at(chunk.len() / 2);
        render(namespace, ts, dims, a, max_bytes, out);
        render(namespace, ts, dims, b, max_bytes, out);
    } else {
        out.oversized += 1;
    }
}

fn document(namespace: &str, ts: i64, dims: &[(&str, &str)], chunk: &[&Datum]) -> String {
    let mut obj = Map::new();
    let keys: Vec<&str> = dims.iter().map(|(k, _)| *k).collect();
    let metrics: Vec<Value> = chunk
        .iter()
        .map(|d| json!({"Name": d.metric, "Unit": d.unit.as_str()}))
        .collect();
    obj.insert(
        "_aws".into(),
        json!({
            "Timestamp": ts.saturating_mul(1000),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [keys],
                "Metrics": metrics,
            }],
        }),
    );
    for (k, v) in dims {
        obj.insert((*k).to_string(), Value::String((*v).to_string()));
    }
    for d in chunk {
        obj.insert(d.metric.to_string(), json!(d.value));
    }
    Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use natmeter_core::metrics::Unit;

    fn d(metric: &'static str, dims: &[(&'static str, &str)], ts: i64, value: f64) -> Datum {
        Datum {
            metric,
            unit: if metric == "NatBytes" {
                Unit::Bytes
            } else {
                Unit::None
            },
            dimensions: dims.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            timestamp: ts,
            value,
        }
    }

    #[test]
    fn one_line_per_dimension_values_and_minute() {
        let ds = vec![
            d("NatBytes", &[], 60, 10.0),
            d("NatCost", &[], 60, 0.5),
            d("NatBytes", &[("SourceIp", "10.0.0.1")], 60, 4.0),
            d("NatBytes", &[("SourceIp", "10.0.0.2")], 60, 6.0),
            d("NatBytes", &[], 120, 1.0),
        ];
        let ls = lines("NatMeter", &ds).lines;
        assert_eq!(ls.len(), 4);
        let v: Vec<Value> = ls
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(v[0]["_aws"]["Timestamp"], 60_000);
        assert_eq!(
            v[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(v[0]["NatBytes"], 10.0);
        assert_eq!(v[0]["NatCost"], 0.5);
        assert_eq!(v[1]["SourceIp"], "10.0.0.1");
        assert_eq!(
            v[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["SourceIp"]])
        );
        // Total under the [] set counts each minute once.
        let total: f64 = v
            .iter()
            .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == json!([[]]))
            .map(|l| l["NatBytes"].as_f64().unwrap())
            .sum();
        assert_eq!(total, 11.0);
    }

    /// A document over the line limit is split until every piece fits, and the pieces hold
    /// every metric once.
    #[test]
    fn oversized_documents_are_split_not_dropped() {
        let long = "v".repeat(900);
        let dims: Vec<(&'static str, &str)> = vec![("SourceIp", long.as_str())];
        let mut chunk_owned = Vec::new();
        for i in 0..40 {
            let mut x = d("NatBytes", &dims, 60, i as f64);
            x.metric = Box::leak(format!("M{i:02}{}", "m".repeat(400)).into_boxed_str());
            chunk_owned.push(x);
        }
        let chunk: Vec<&Datum> = chunk_owned.iter().collect();
        let whole = document("NatMeter", 60, &dims, &chunk);
        let limit = whole.len() / 3;
        let mut out = Lines::default();
        render("NatMeter", 60, &dims, &chunk, limit, &mut out);
        assert!(out.lines.len() >= 3, "{} lines", out.lines.len());
        assert!(out.lines.iter().all(|l| l.len() <= limit));
        assert_eq!(out.oversized, 0);
        let mut seen: Vec<f64> = Vec::new();
        for l in &out.lines {
            let v: Value = serde_json::from_str(l).unwrap();
            for m in v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
            {
                seen.push(v[m["Name"].as_str().unwrap()].as_f64().unwrap());
            }
        }
        seen.sort_by(f64::total_cmp);
        assert_eq!(seen, (0..40).map(f64::from).collect::<Vec<_>>());
        // A single metric that cannot fit is counted.
        let mut out = Lines::default();
        render("NatMeter", 60, &dims, &chunk[..1], 10, &mut out);
        assert_eq!((out.lines.len(), out.oversized), (0, 1));
    }
}
