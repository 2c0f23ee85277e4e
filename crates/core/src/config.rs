//! Configuration from `NATMETER_*` variables (docs/contracts.md §3).
//!
//! The core reads no environment: callers pass a lookup function (the Lambda passes the process
//! environment, the CLI its flags under the same names), so both validate identically and every
//! error names the variable, the value and what was expected.

use flowlog::Format;

use crate::metrics::{DEFAULT_MAX_SOURCES, DEFAULT_MIN_SOURCE_SHARE, DEFAULT_NAMESPACE};
use crate::price::PriceTable;
use crate::topology::{Topology, DEFAULT_PRIVATE_CIDRS};

/// Where metrics go: each sink with the namespace it writes.
///
/// On AWS, CloudWatch Logs turns EMF lines into metrics too, so PutMetricData and EMF writing the
/// same datums into one namespace would double every Sum (dashboards, daily cost, alarms). The
/// only constructor refuses that: two sinks always write two different namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sinks {
    put_metric_data: Option<String>,
    emf: Option<String>,
}

impl Sinks {
    pub fn put_metric_data_only(namespace: String) -> Sinks {
        Sinks {
            put_metric_data: Some(namespace),
            emf: None,
        }
    }

    pub fn emf_only(namespace: String) -> Sinks {
        Sinks {
            put_metric_data: None,
            emf: Some(namespace),
        }
    }

    /// Both sinks; `None` when they would write the same namespace.
    pub fn both(put_metric_data: String, emf: String) -> Option<Sinks> {
        (put_metric_data != emf).then_some(Sinks {
            put_metric_data: Some(put_metric_data),
            emf: Some(emf),
        })
    }

    /// The namespace PutMetricData writes, when that sink is on.
    pub fn put_metric_data(&self) -> Option<&str> {
        self.put_metric_data.as_deref()
    }

    /// The namespace the EMF lines name, when that sink is on.
    pub fn emf(&self) -> Option<&str> {
        self.emf.as_deref()
    }
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
    pub sinks: Sinks,
    pub max_sources: usize,
    pub min_source_share: f64,
    /// Names from the EKS audit log, kept in a DynamoDB table (docs/attribution.md §4.2).
    pub inventory: Option<InventoryConfig>,
    /// What to describe from the EC2 API at start-up (docs/topology.md §2); `None` when the
    /// topology is all given.
    pub discovery: Option<Discovery>,
    /// Where the function reads AWS's ip-ranges.json at cold start (docs/attribution.md §5.1);
    /// `None`: not read (`NATMETER_IP_RANGES_URL=""`).
    pub ip_ranges_url: Option<String>,
    /// `NATMETER_REMOTE_PREFIXES=on`: internet destinations split by the remote's /24 (IPv6
    /// /48) in the source detail lines (docs/attribution.md §5.3).
    pub remote_prefixes: bool,
    /// Flow logs delivered to S3 (docs/s3.md): where results older than CloudWatch's window go,
    /// and the table that makes a repeated object count once.
    pub s3: S3Config,
}

/// `NATMETER_RESULTS_BUCKET`, `NATMETER_RESULTS_PREFIX`, `NATMETER_OBJECTS_TABLE`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Config {
    /// Where results of records older than CloudWatch accepts are written as report objects;
    /// `None`: such records are counted as out of the window and not kept.
    pub results_bucket: Option<String>,
    pub results_prefix: String,
    /// The DynamoDB table holding (bucket, key, etag) claims; `None`: this container's memory
    /// only (docs/s3.md §3).
    pub objects_table: Option<String>,
}

pub const DEFAULT_RESULTS_PREFIX: &str = "natmeter/results/";

/// AWS's published address ranges, the default of `NATMETER_IP_RANGES_URL`.
pub const DEFAULT_IP_RANGES_URL: &str = "https://ip-ranges.amazonaws.com/ip-ranges.json";

/// `NATMETER_VPC_IDS`, `NATMETER_NAT_GATEWAY_IDS` and `NATMETER_REDISCOVER_SECONDS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub vpc_ids: Vec<String>,
    pub nat_gateway_ids: Vec<String>,
    /// The gateways come from the API (`NATMETER_NAT_GATEWAYS` unset; it overrides them).
    pub gateways: bool,
    /// The subnets come from the API (`NATMETER_SUBNETS` unset; it overrides them).
    pub subnets: bool,
    /// Least time between two re-describes prompted by an unknown ENI.
    pub rediscover_seconds: u64,
}

pub const DEFAULT_REDISCOVER_SECONDS: u64 = 300;

/// `NATMETER_INVENTORY_TABLE` and `NATMETER_INVENTORY_RETENTION_HOURS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryConfig {
    pub table: String,
    /// How long a stored fact lives (the table's TTL) and how far back a cold container loads.
    pub retention_hours: u32,
}

pub const DEFAULT_INVENTORY_RETENTION_HOURS: u32 = 24;

/// A DynamoDB table name from `variable`, as DynamoDB allows them.
fn table_name(variable: &'static str, t: String) -> Result<String, ConfigError> {
    let ok = (3..=255).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        return Err(ConfigError {
            variable,
            problem:
                "expected a DynamoDB table name (3-255 characters of A-Z, a-z, 0-9, '_', '-', '.')"
                    .into(),
            value: t,
        });
    }
    Ok(t)
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
        let ids = |variable: &'static str, prefix: &str| -> Result<Vec<String>, ConfigError> {
            let Some(v) = get(variable) else {
                return Ok(Vec::new());
            };
            let list: Vec<String> = v
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect();
            let valid = |id: &str| {
                id.strip_prefix(prefix).is_some_and(|h| {
                    !h.is_empty() && h.len() <= 32 && h.bytes().all(|b| b.is_ascii_hexdigit())
                })
            };
            match list.iter().find(|id| !valid(id)) {
                Some(bad) => Err(err(
                    variable,
                    &v,
                    format!("{bad:?} is not an id like {prefix}0a1b2c3d4e5f60718 (a comma-separated list of them is expected)"),
                )),
                None if list.is_empty() => Err(err(variable, &v, format!("lists no id; give ids like {prefix}0a1b2c3d4e5f60718, comma-separated, or unset it"))),
                None => Ok(list),
            }
        };
        let vpc_ids = ids("NATMETER_VPC_IDS", "vpc-")?;
        let nat_gateway_ids = ids("NATMETER_NAT_GATEWAY_IDS", "nat-")?;
        let discover = !vpc_ids.is_empty() || !nat_gateway_ids.is_empty();
        let gateways = match get("NATMETER_NAT_GATEWAYS") {
            None if discover => None,
            None => return Err(err("NATMETER_NAT_GATEWAYS", "", "is required unless the gateways are discovered (NATMETER_VPC_IDS or NATMETER_NAT_GATEWAY_IDS): a JSON list like [{\"id\":\"nat-0a1b2c\",\"eni\":\"eni-0352f8c82da6aa229\",\"private_ips\":[\"10.0.5.175\"]}]".into())),
            Some(json) => {
                let gateways = Topology::gateways_from_json(&json)
                    .map_err(|e| err("NATMETER_NAT_GATEWAYS", &json, e.0))?;
                if gateways.is_empty() {
                    return Err(err(
                        "NATMETER_NAT_GATEWAYS",
                        &json,
                        "lists no NAT gateway; give at least one, or unset it and set NATMETER_VPC_IDS to discover them".into(),
                    ));
                }
                Some((json, gateways))
            }
        };
        let cidrs_value =
            get("NATMETER_PRIVATE_CIDRS").unwrap_or_else(|| DEFAULT_PRIVATE_CIDRS.to_string());
        let cidrs = Topology::cidrs_from_list(&cidrs_value)
            .map_err(|e| err("NATMETER_PRIVATE_CIDRS", &cidrs_value, e.0))?;
        let mut topology = match &gateways {
            Some((json, g)) => Topology::new(g.clone(), cidrs)
                .map_err(|e| err("NATMETER_NAT_GATEWAYS", json, e.0))?,
            // Filled in by discovery at start-up.
            None => Topology::new(Vec::new(), cidrs).expect("an empty gateway list is valid"),
        };
        let subnets_given = get("NATMETER_SUBNETS");
        if let Some(json) = &subnets_given {
            let subnets = Topology::subnets_from_json(json)
                .map_err(|e| err("NATMETER_SUBNETS", json, e.0))?;
            topology = topology.with_subnets(subnets);
        }
        let rediscover_seconds = match get("NATMETER_REDISCOVER_SECONDS") {
            None => DEFAULT_REDISCOVER_SECONDS,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 86_400)
                .ok_or_else(|| err("NATMETER_REDISCOVER_SECONDS", &v, "expected whole seconds 0-86400: the least time between two re-describes of the NAT gateways, made when a batch comes from an ENI natmeter does not know".into()))?,
        };
        // Both given: nothing is left to describe.
        let discover = discover && (gateways.is_none() || subnets_given.is_none());
        let discovery = discover.then(|| Discovery {
            vpc_ids,
            nat_gateway_ids,
            gateways: gateways.is_none(),
            subnets: subnets_given.is_none(),
            rediscover_seconds,
        });
        let namespace = get("NATMETER_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        // CloudWatch: 1-255 printable ASCII, pattern [^:].*, and AWS/ is reserved.
        let valid_namespace = |ns: &str| {
            !ns.is_empty()
                && ns.len() <= 255
                && !ns.starts_with("AWS/")
                && !ns.starts_with(':')
                && ns.bytes().all(|b| (0x20..0x7f).contains(&b))
        };
        const NAMESPACE_RULE: &str = "expected 1-255 printable ASCII characters, not starting with \":\" or \"AWS/\" (reserved)";
        if !valid_namespace(&namespace) {
            return Err(err("NATMETER_NAMESPACE", &namespace, NAMESPACE_RULE.into()));
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
            .map_err(|e| err("AWS_REGION", region.as_deref().unwrap_or(""), e))?;
        let emf_namespace = get("NATMETER_EMF_NAMESPACE");
        let sinks = match get("NATMETER_SINK").as_deref() {
            None | Some("cloudwatch") => Sinks::put_metric_data_only(namespace.clone()),
            Some("emf") => Sinks::emf_only(namespace.clone()),
            Some("both") => {
                let emf = emf_namespace.ok_or_else(|| {
                    err("NATMETER_EMF_NAMESPACE", "", format!("is required with NATMETER_SINK=both: CloudWatch turns EMF lines into metrics too, so both sinks writing NATMETER_NAMESPACE={namespace:?} would count every datum twice. Name a second namespace for the EMF copy (e.g. {namespace}/emf), or choose one sink"))
                })?;
                if !valid_namespace(&emf) {
                    return Err(err("NATMETER_EMF_NAMESPACE", &emf, NAMESPACE_RULE.into()));
                }
                Sinks::both(namespace.clone(), emf.clone()).ok_or_else(|| {
                    err("NATMETER_EMF_NAMESPACE", &emf, "must differ from NATMETER_NAMESPACE: CloudWatch turns EMF lines into metrics too, so both sinks writing one namespace would count every datum twice".into())
                })?
            }
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
        let retention_hours = match get("NATMETER_INVENTORY_RETENTION_HOURS") {
            None => DEFAULT_INVENTORY_RETENTION_HOURS,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|h| (1..=8760).contains(h))
                .ok_or_else(|| err("NATMETER_INVENTORY_RETENTION_HOURS", &v, "expected whole hours 1-8760: how long the names of pods are kept (the table's TTL) and how far back a new container loads them".into()))?,
        };
        let inventory = match get("NATMETER_INVENTORY_TABLE") {
            None => None,
            Some(t) => Some(InventoryConfig {
                table: table_name("NATMETER_INVENTORY_TABLE", t)?,
                retention_hours,
            }),
        };
        let ip_ranges_url = match get("NATMETER_IP_RANGES_URL") {
            None => Some(DEFAULT_IP_RANGES_URL.to_string()),
            Some(v) if v.trim().is_empty() => None,
            Some(v) => {
                let t = v.trim();
                let host = t
                    .strip_prefix("https://")
                    .or_else(|| t.strip_prefix("http://"))
                    .and_then(|rest| rest.split('/').next())
                    .filter(|h| !h.is_empty());
                if host.is_none() || t.contains(char::is_whitespace) {
                    return Err(err("NATMETER_IP_RANGES_URL", &v, format!("expected an http:// or https:// URL of an ip-ranges.json (default {DEFAULT_IP_RANGES_URL}), or \"\" to read none")));
                }
                Some(t.to_string())
            }
        };
        let remote_prefixes = match get("NATMETER_REMOTE_PREFIXES").as_deref().map(str::trim) {
            None | Some("off") | Some("") => false,
            Some("on") => true,
            Some(v) => {
                return Err(err(
                    "NATMETER_REMOTE_PREFIXES",
                    v,
                    "expected on or off: on names internet destinations by the remote's /24 (IPv6 /48) in the source detail lines".into(),
                ))
            }
        };
        let s3 = S3Config {
            results_bucket: match get("NATMETER_RESULTS_BUCKET") {
                None => None,
                Some(b) => {
                    let t = b.trim();
                    let ok = (3..=63).contains(&t.len())
                        && t.bytes().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || b".-".contains(&c)
                        });
                    if !ok {
                        return Err(err(
                            "NATMETER_RESULTS_BUCKET",
                            &b,
                            "expected an S3 bucket name (3-63 characters of a-z, 0-9, '.', '-')"
                                .into(),
                        ));
                    }
                    Some(t.to_string())
                }
            },
            results_prefix: match get("NATMETER_RESULTS_PREFIX") {
                None => DEFAULT_RESULTS_PREFIX.to_string(),
                Some(p) => {
                    let t = p.trim().trim_start_matches('/');
                    if t.is_empty() || t.len() > 512 || t.contains(char::is_whitespace) {
                        return Err(err("NATMETER_RESULTS_PREFIX", &p, format!("expected a key prefix without spaces, e.g. {DEFAULT_RESULTS_PREFIX}")));
                    }
                    if t.ends_with('/') {
                        t.to_string()
                    } else {
                        format!("{t}/")
                    }
                }
            },
            objects_table: match get("NATMETER_OBJECTS_TABLE") {
                None => None,
                Some(t) => Some(table_name("NATMETER_OBJECTS_TABLE", t)?),
            },
        };
        Ok(Config {
            s3,
            remote_prefixes,
            ip_ranges_url,
            discovery,
            inventory,
            min_source_share,
            format,
            topology,
            namespace,
            region,
            price_per_gb,
            sinks,
            max_sources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn s3_settings() {
        let base = [("NATMETER_NAT_GATEWAYS", GW), ("AWS_REGION", "us-east-1")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = base.to_vec();
            vars.extend_from_slice(extra);
            cfg(&vars)
        };
        let c = with(&[]).unwrap().s3;
        assert_eq!(
            c,
            S3Config {
                results_bucket: None,
                results_prefix: DEFAULT_RESULTS_PREFIX.into(),
                objects_table: None
            }
        );
        let c = with(&[
            ("NATMETER_RESULTS_BUCKET", "flow-logs.b"),
            ("NATMETER_RESULTS_PREFIX", "/r/x"),
            ("NATMETER_OBJECTS_TABLE", "natmeter-objects"),
        ])
        .unwrap()
        .s3;
        assert_eq!(
            c,
            S3Config {
                results_bucket: Some("flow-logs.b".into()),
                results_prefix: "r/x/".into(),
                objects_table: Some("natmeter-objects".into())
            }
        );
        for (var, bad) in [
            ("NATMETER_RESULTS_BUCKET", "Bad_Bucket"),
            ("NATMETER_RESULTS_PREFIX", "a b"),
            ("NATMETER_OBJECTS_TABLE", "a b"),
        ] {
            assert_eq!(with(&[(var, bad)]).unwrap_err().variable, var);
        }
    }

    #[test]
    fn ip_ranges_url() {
        let base = [("NATMETER_NAT_GATEWAYS", GW), ("AWS_REGION", "us-east-1")];
        assert_eq!(
            cfg(&base).unwrap().ip_ranges_url.as_deref(),
            Some(DEFAULT_IP_RANGES_URL)
        );
        let with = |v: &'static str| {
            let mut vars = base.to_vec();
            vars.push(("NATMETER_IP_RANGES_URL", v));
            cfg(&vars)
        };
        assert_eq!(with("").unwrap().ip_ranges_url, None);
        assert_eq!(
            with("http://127.0.0.1:8080/r.json")
                .unwrap()
                .ip_ranges_url
                .as_deref(),
            Some("http://127.0.0.1:8080/r.json")
        );
        for bad in [
            "ftp://x/r.json",
            "https://",
            "ip-ranges.json",
            "https://a b/c",
        ] {
            let e = with(bad).unwrap_err();
            assert_eq!(e.variable, "NATMETER_IP_RANGES_URL", "{bad}");
        }
    }

    #[test]
    fn discovery_settings() {
        let region = ("AWS_REGION", "us-east-1");
        let c = cfg(&[region, ("NATMETER_VPC_IDS", "vpc-0a1b2c3d, vpc-0e0e")]).unwrap();
        let d = c.discovery.unwrap();
        assert_eq!(d.vpc_ids, ["vpc-0a1b2c3d", "vpc-0e0e"]);
        assert!(d.gateways && d.subnets);
        assert_eq!(d.rediscover_seconds, DEFAULT_REDISCOVER_SECONDS);
        assert!(c.topology.gateways().is_empty());
        // NATMETER_NAT_GATEWAYS overrides the gateways; the subnets are still described.
        let c = cfg(&[
            region,
            ("NATMETER_NAT_GATEWAY_IDS", "nat-04e77a5e9c34432f9"),
            ("NATMETER_NAT_GATEWAYS", GW),
            ("NATMETER_REDISCOVER_SECONDS", "0"),
        ])
        .unwrap();
        let d = c.discovery.unwrap();
        assert_eq!(d.nat_gateway_ids, ["nat-04e77a5e9c34432f9"]);
        assert!(!d.gateways && d.subnets);
        assert_eq!(d.rediscover_seconds, 0);
        assert_eq!(c.topology.gateways().len(), 1);
        // Everything given: nothing to describe.
        let c = cfg(&[
            region,
            ("NATMETER_VPC_IDS", "vpc-0a1b"),
            ("NATMETER_NAT_GATEWAYS", GW),
            (
                "NATMETER_SUBNETS",
                r#"[{"cidr":"10.0.0.0/16","az_id":"use1-az1"}]"#,
            ),
        ])
        .unwrap();
        assert_eq!(c.discovery, None);
        for (vars, variable, says) in [
            (&[region][..], "NATMETER_NAT_GATEWAYS", "NATMETER_VPC_IDS"),
            (
                &[region, ("NATMETER_VPC_IDS", "vpc-zz")][..],
                "NATMETER_VPC_IDS",
                "vpc-zz",
            ),
            (
                &[region, ("NATMETER_VPC_IDS", " , ")][..],
                "NATMETER_VPC_IDS",
                "lists no id",
            ),
            (
                &[region, ("NATMETER_NAT_GATEWAY_IDS", "eni-0a1b")][..],
                "NATMETER_NAT_GATEWAY_IDS",
                "eni-0a1b",
            ),
            (
                &[
                    region,
                    ("NATMETER_VPC_IDS", "vpc-0a"),
                    ("NATMETER_REDISCOVER_SECONDS", "-1"),
                ][..],
                "NATMETER_REDISCOVER_SECONDS",
                "0-86400",
            ),
        ] {
            let e = cfg(vars).unwrap_err();
            assert_eq!(e.variable, variable, "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn inventory_settings() {
        let base = [("NATMETER_NAT_GATEWAYS", GW), ("AWS_REGION", "us-east-1")];
        assert_eq!(cfg(&base).unwrap().inventory, None);
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            cfg(&v)
        };
        let c = with(&[("NATMETER_INVENTORY_TABLE", "natmeter-inventory")]).unwrap();
        assert_eq!(
            c.inventory,
            Some(InventoryConfig {
                table: "natmeter-inventory".into(),
                retention_hours: 24
            })
        );
        let e = with(&[("NATMETER_INVENTORY_TABLE", "a b")]).unwrap_err();
        assert_eq!(e.variable, "NATMETER_INVENTORY_TABLE");
        let e = with(&[
            ("NATMETER_INVENTORY_TABLE", "t-1"),
            ("NATMETER_INVENTORY_RETENTION_HOURS", "0"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "NATMETER_INVENTORY_RETENTION_HOURS");
    }

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
        assert_eq!(c.sinks.put_metric_data(), Some("NatMeter"));
        assert_eq!(c.sinks.emf(), None);
        assert_eq!(c.max_sources, 20);
        assert_eq!(c.format, Format::default());
    }

    #[test]
    fn two_sinks_never_share_a_namespace() {
        let c = cfg(&[
            ("NATMETER_NAT_GATEWAYS", GW),
            ("AWS_REGION", "us-east-1"),
            ("NATMETER_SINK", "both"),
            ("NATMETER_EMF_NAMESPACE", "NatMeter/emf"),
        ])
        .unwrap();
        assert_eq!(c.sinks.put_metric_data(), Some("NatMeter"));
        assert_eq!(c.sinks.emf(), Some("NatMeter/emf"));
        let emf = cfg(&[
            ("NATMETER_NAT_GATEWAYS", GW),
            ("AWS_REGION", "us-east-1"),
            ("NATMETER_SINK", "emf"),
        ])
        .unwrap();
        assert_eq!(emf.sinks.put_metric_data(), None);
        assert_eq!(emf.sinks.emf(), Some("NatMeter"));
        assert!(Sinks::both("A".into(), "A".into()).is_none());
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
                "AWS_REGION",
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
                    ("NATMETER_SINK", "both"),
                ],
                "NATMETER_EMF_NAMESPACE",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("AWS_REGION", "us-east-1"),
                    ("NATMETER_SINK", "both"),
                    ("NATMETER_NAMESPACE", "Team/NAT"),
                    ("NATMETER_EMF_NAMESPACE", "Team/NAT"),
                ],
                "NATMETER_EMF_NAMESPACE",
            ),
            (
                &[
                    ("NATMETER_NAT_GATEWAYS", GW),
                    ("AWS_REGION", "us-east-1"),
                    ("NATMETER_SINK", "both"),
                    ("NATMETER_EMF_NAMESPACE", "AWS/Lambda"),
                ],
                "NATMETER_EMF_NAMESPACE",
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
