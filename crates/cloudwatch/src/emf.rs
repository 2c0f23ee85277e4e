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

/// Renders datums as EMF lines (without trailing newlines). Non-finite values are dropped.
pub fn lines(namespace: &str, datums: &[Datum]) -> Vec<String> {
    // Group by (timestamp, dimension set with values); within a group each metric appears once
    // because the model emits one datum per (metric, dimensions, minute).
    let mut groups: BTreeMap<GroupKey<'_>, Vec<&Datum>> = BTreeMap::new();
    for d in datums {
        if crate::batch::rejection(d).is_some() {
            continue;
        }
        let dims: Vec<(&str, &str)> = d.dimensions.iter().map(|(k, v)| (*k, v.as_str())).collect();
        groups.entry((d.timestamp, dims)).or_default().push(d);
    }
    let mut out = Vec::with_capacity(groups.len());
    for ((ts, dims), ds) in groups {
        for chunk in ds.chunks(MAX_METRICS_PER_LINE) {
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
            for (k, v) in &dims {
                obj.insert((*k).to_string(), Value::String((*v).to_string()));
            }
            for d in chunk {
                obj.insert(d.metric.to_string(), json!(d.value));
            }
            let line = Value::Object(obj).to_string();
            if line.len() <= MAX_LINE_BYTES {
                out.push(line);
            }
        }
    }
    out
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
            d("NatBytes", &[], 180, f64::NAN),
        ];
        let ls = lines("NatMeter", &ds);
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
}
