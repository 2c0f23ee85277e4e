//! Configuration from `NATMETER_*` variables (docs/contracts.md §3).
//!
//! The core reads no environment: callers pass a lookup function (the Lambda passes the process
//! environment, the CLI its flags under the same names), so both validate identically and every
//! error names the variable, the value and what was expected.

use flowlog::Format;

use crate::metrics::{DEFAULT_MAX_SOURCES, DEFAULT_MIN_SOURCE_SHARE, DEFAULT_NAMESPACE};
use crate::price::PriceTable;
use crate::topology::{Topology, DEFAULT_PRIVATE_CIDRS};

/// Where metrics go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// PutMetricData through the AWS SDK.
    CloudWatch,
    /// Embedded Metric Format lines on stdout.
    Emf,
    Both,
}

/// A setting that stops start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub problem: String,
}

/// Largest `NATMETER_MAX_SOURCES`: past this, the cap no longer protects the bill.
pub const MAX_SOURCES_LIMIT: usize = 500;

#[derive(Debug, Clone)]
pub struct Config {
    pub format: Format,
    pub topology: Topology,
    pub namespace: String,
    pub region: Option<String>,
    pub price_per_gb: f64,
    pub sink: Sink,
    pub max_sources: usize,
    pub min_source_share: f64,
}

impl Config {
    /// Builds and validates the configuration. `get(name)` returns a variable's value.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let err = |variable: &'static str, value: &str, problem: String| ConfigError {
            variable,
            value: value.to_string(),
            problem,
        };
        let format = match get("NATMETER_LOG_FORMAT") {
            None => Format::default(),
            Some(v) => Format::from_aws_syntax(&v).map_err(|e| {
                err("NATMETER_LOG_FORMAT", &v, format!("{e} (expected the flow log's format in AWS syntax, e.g. \"${{version}} ${{interface-id}} ${{srcaddr}} ...\")"))
            })?,
        };
        let gateways_json = get("NATMETER_NAT_GATEWAYS").ok_or_else(|| {
            err("NATMETER_NAT_GATEWAYS", "", "is required: a JSON list like [{\"id\":\"nat-0a1b2c\",\"eni\":\"eni-0352f8c82da6aa229\",\"private_ips\":[\"10.0.5.175\"]}]".into())
        })?;
        let gateways = Topology::gateways_from_json(&gateways_json)
            .map_err(|e| err("NATMETER_NAT_GATEWAYS", &gateways_json, e.0))?;
        if gateways.is_empty() {
            return Err(err(
                "NATMETER_NAT_GATEWAYS",
                &gateways_json,
                "lists no NAT gateway; give at least one".into(),
            ));
        }
        let cidrs_value =
            get("NATMETER_PRIVATE_CIDRS").unwrap_or_else(|| DEFAULT_PRIVATE_CIDRS.to_string());
        let cidrs = Topology::cidrs_from_list(&cidrs_value)
            .map_err(|e| err("NATMETER_PRIVATE_CIDRS", &cidrs_value, e.0))?;
        let topology = Topology::new(gateways, cidrs)
            .map_err(|e| err("NATMETER_NAT_GATEWAYS", &gateways_json, e.0))?;
        let namespace = get("NATMETER_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        // CloudWatch: 1-255 printable ASCII, pattern [^:].*, and AWS/ is reserved.
        if namespace.is_empty()
            || namespace.len() > 255
            || namespace.starts_with("AWS/")
            || namespace.starts_with(':')
            || !namespace.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(err(
                "NATMETER_NAMESPACE",
                &namespace,
                "expected 1-255 printable ASCII characters, not starting with \":\" or \"AWS/\" (reserved)".into(),
            ));
        }
        let region = get("AWS_REGION").filter(|r| !r.is_empty());
        let price_override = match get("NATMETER_PRICE_PER_GB") {
            None => None,
            Some(v) => Some(
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| p.is_finite() && *p >= 0.0)
                    .ok_or_else(|| {
                        err(
                            "NATMETER_PRICE_PER_GB",
                            &v,
                            "expected a non-negative number of USD per GB, e.g. 0.045".into(),
                        )
                    })?,
            ),
        };
        let price_per_gb = PriceTable::resolve(region.as_deref(), price_override)
            .map_err(|e| err("NATMETER_PRICE_PER_GB", "", e))?;
        let sink = match get("NATMETER_SINK").as_deref() {
            None | Some("cloudwatch") => Sink::CloudWatch,
            Some("emf") => Sink::Emf,
            Some("both") => Sink::Both,
            Some(v) => {
                return Err(err(
                    "NATMETER_SINK",
                    v,
                    "expected cloudwatch, emf or both".into(),
                ))
            }
        };
        let max_sources = match get("NATMETER_MAX_SOURCES") {
            None => DEFAULT_MAX_SOURCES,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_SOURCES_LIMIT)
                .ok_or_else(|| {
                    err(
                        "NATMETER_MAX_SOURCES",
                        &v,
                        format!("expected an integer 0-{MAX_SOURCES_LIMIT}"),
                    )
                })?,
        };
        let min_source_share = match get("NATMETER_MIN_SOURCE_SHARE") {
            None => DEFAULT_MIN_SOURCE_SHARE,
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| (0.0..=1.0).contains(s))
                .ok_or_else(|| err("NATMETER_MIN_SOURCE_SHARE", &v, "expected a fraction 0-1 of an invocation's bytes, e.g. 0.05 (0 keeps the plain top NATMETER_MAX_SOURCES)".into()))?,
        };
        Ok(Config {
            min_source_share,
            format,
            topology,
            namespace,
            region,
            price_per_gb,
            sink,
            max_sources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const GW: &str = r#"[{"id":"nat-1","eni":"eni-0abc","private_ips":["10.0.0.5"]}]"#;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[("NATMETER_NAT_GATEWAYS", GW), ("AWS_REGION", "us-east-1")]).unwrap();
        assert_eq!(c.namespace, "NatMeter");
        assert_eq!(c.price_per_gb, 0.045);
        assert_eq!(c.sink, Sink::CloudWatch);
        assert_eq!(c.max_sources, 20);
        assert_eq!(c.format, Format::default());
    }

    #[test]
    fn every_bad_setting_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("AWS_REGION", "us-east-1")], "NATMETER_NAT_GATEWAYS"),
            (
                &[("NATMETER_NAT_GATEWAYS", "[]"), ("AWS_REGION", "us-east-1")],
                "NATMETER_NAT_GATEWAYS",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", "nope"),
                    ("AWS_REGION", "us-east-1"),
                ],
                "NATMETER_NAT_GATEWAYS",
            ),
            (
                &[("NATMETER_NAT_GATEWAYS", GW), ("AWS_REGION", "mars-1")],
                "NATMETER_PRICE_PER_GB",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("NATMETER_PRICE_PER_GB", "-1"),
                ],
                "NATMETER_PRICE_PER_GB",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("NATMETER_PRICE_PER_GB", "NaN"),
                ],
                "NATMETER_PRICE_PER_GB",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("AWS_REGION", "us-east-1"),
                    ("NATMETER_SINK", "kafka"),
                ],
                "NATMETER_SINK",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("AWS_REGION", "us-east-1"),
                    ("NATMETER_MAX_SOURCES", "-3"),
                ],
                "NATMETER_MAX_SOURCES",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("AWS_REGION", "us-east-1"),
                    ("NATMETER_MAX_SOURCES", "100000"),
                ],
                "NATMETER_MAX_SOURCES",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("AWS_REGION", "us-east-1"),
                    ("NATMETER_MIN_SOURCE_SHARE", "1.5"),
                ],
                "NATMETER_MIN_SOURCE_SHARE",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("AWS_REGION", "us-east-1"),
                    ("NATMETER_LOG_FORMAT", ""),
                ],
                "NATMETER_LOG_FORMAT",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("AWS_REGION", "us-east-1"),
                    ("NATMETER_LOG_FORMAT", "${bytes} ${bytes}"),
                ],
                "NATMETER_LOG_FORMAT",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("AWS_REGION", "us-east-1"),
                    ("NATMETER_PRIVATE_CIDRS", "10.0.0.0/33"),
                ],
                "NATMETER_PRIVATE_CIDRS",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("AWS_REGION", "us-east-1"),
                    ("NATMETER_NAMESPACE", "AWS/NATGateway"),
                ],
                "NATMETER_NAMESPACE",
            ),
        ];
        for (vars, variable) in cases {
            let e = cfg(vars).unwrap_err();
            assert_eq!(e.variable, *variable, "{vars:?}: {e}");
            assert!(e.to_string().starts_with(variable), "{e}");
        }
    }
}
