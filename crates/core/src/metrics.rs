//! The metric model (docs/contracts.md §2): which datums and source detail lines one
//! invocation produces. Pure: the sinks in `natmeter-cloudwatch` only encode and send them.
//!
//! Cardinality is the product's own cost (every distinct dimension value is a $0.30/month custom
//! metric), so `SourceIp` series are capped per invocation and the rest summed as `other`; every
//! source, uncapped, goes to the source detail lines instead, which cost nothing as metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::attribution::{Direction, SkipReason};
use crate::engine::Results;
use crate::identity::{Identity, SourceId};
use crate::price::cost;
use crate::report::IdentityTotals;
use crate::topology::Topology;

pub const DEFAULT_NAMESPACE: &str = "NatMeter";
pub const DEFAULT_MAX_SOURCES: usize = 20;
/// A source gets its own `SourceIp` series only with at least this share of the invocation's
/// bytes. Custom metrics are billed per distinct dimension value per hour, so a per-invocation
/// top-N alone lets the tail of small sources rotate through the series and multiply the bill
/// (`natmeter cost` measures it); heavy hitters, which are what the series are for, are stable.
pub const DEFAULT_MIN_SOURCE_SHARE: f64 = 0.05;
/// The `SourceIp` value that sums every source past the cap.
pub const OTHER_SOURCE: &str = "other";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    Bytes,
    Count,
    Seconds,
    None,
}

impl Unit {
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Bytes => "Bytes",
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::None => "None",
        }
    }
}

/// One metric of the contract.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MetricSpec {
    pub name: &'static str,
    pub unit: Unit,
    pub dimension_sets: &'static [&'static [&'static str]],
}

const NAT_SETS: &[&[&str]] = &[
    &[],
    &["NatGatewayId"],
    &["NatGatewayId", "Direction"],
    &["Destination"],
    &["SourceIp"],
    // With an inventory only (names from the EKS audit log).
    &["Namespace"],
    &["Namespace", "Workload"],
];

/// The `Namespace` of node traffic and of unresolved addresses (a Kubernetes namespace is a DNS
/// label, so neither can be a real one), and their `Workload`s.
pub const NODE_NAMESPACE: &str = "(node)";
pub const UNRESOLVED_NAMESPACE: &str = "(unresolved)";
pub const UNRESOLVED_WORKLOAD: &str = "Unresolved";

pub const NAT_BYTES: &str = "NatBytes";
pub const NAT_COST: &str = "NatCost";
pub const NAT_PACKETS: &str = "NatPackets";
pub const RECORDS_COUNTED: &str = "RecordsCounted";
pub const RECORDS_SKIPPED: &str = "RecordsSkipped";
pub const PARSE_ERRORS: &str = "ParseErrors";
pub const INGEST_LAG: &str = "IngestLag";
pub const NAT_AVOIDABLE_BYTES: &str = "NatAvoidableBytes";
pub const NAT_AVOIDABLE_COST: &str = "NatAvoidableCost";
pub const NAT_CROSS_AZ_BYTES: &str = "NatCrossAzBytes";
pub const NAT_CROSS_AZ_COST: &str = "NatCrossAzCost";
pub const NAT_NODE_BYTES: &str = "NatNodeBytes";
pub const NAT_UNRESOLVED_BYTES: &str = "NatUnresolvedBytes";

/// Every metric natmeter emits. The dashboard, alarms and Contributor Insights rule are tested
/// against this list (`natmeter metrics --json`).
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: NAT_BYTES,
        unit: Unit::Bytes,
        dimension_sets: NAT_SETS,
    },
    MetricSpec {
        name: NAT_COST,
        unit: Unit::None,
        dimension_sets: NAT_SETS,
    },
    MetricSpec {
        name: NAT_PACKETS,
        unit: Unit::Count,
        dimension_sets: &[&["NatGatewayId"]],
    },
    MetricSpec {
        name: RECORDS_COUNTED,
        unit: Unit::Count,
        dimension_sets: &[&[]],
    },
    MetricSpec {
        name: RECORDS_SKIPPED,
        unit: Unit::Count,
        dimension_sets: &[&[], &["Reason"]],
    },
    MetricSpec {
        name: PARSE_ERRORS,
        unit: Unit::Count,
        dimension_sets: &[&[]],
    },
    MetricSpec {
        name: INGEST_LAG,
        unit: Unit::Seconds,
        dimension_sets: &[&[]],
    },
    // With subnets only: bytes between a source and a gateway in different AZs, and their
    // inter-AZ transfer price.
    MetricSpec {
        name: NAT_CROSS_AZ_BYTES,
        unit: Unit::Bytes,
        dimension_sets: &[&[], &["NatGatewayId"]],
    },
    MetricSpec {
        name: NAT_CROSS_AZ_COST,
        unit: Unit::None,
        dimension_sets: &[&[], &["NatGatewayId"]],
    },
    // With AWS's ranges only: the bytes to S3 and DynamoDB in the gateways' own region, which a
    // gateway endpoint (free) would take off the NAT gateways, and their NAT processing cost.
    MetricSpec {
        name: NAT_AVOIDABLE_BYTES,
        unit: Unit::Bytes,
        dimension_sets: &[&[]],
    },
    MetricSpec {
        name: NAT_AVOIDABLE_COST,
        unit: Unit::None,
        dimension_sets: &[&[]],
    },
    // With an inventory only: how much went through nodes (what SNAT hides) and how much no
    // name covered.
    MetricSpec {
        name: NAT_NODE_BYTES,
        unit: Unit::Bytes,
        dimension_sets: &[&[]],
    },
    MetricSpec {
        name: NAT_UNRESOLVED_BYTES,
        unit: Unit::Bytes,
        dimension_sets: &[&[]],
    },
];

/// The environment variables the function reads (the Terraform module sets them).
pub const CONFIG_VARIABLES: &[&str] = &[
    "NATMETER_LOG_FORMAT",
    "NATMETER_NAT_GATEWAYS",
    "NATMETER_PRIVATE_CIDRS",
    "NATMETER_NAMESPACE",
    "NATMETER_PRICE_PER_GB",
    "NATMETER_SINK",
    "NATMETER_EMF_NAMESPACE",
    "NATMETER_MAX_SOURCES",
    "NATMETER_MIN_SOURCE_SHARE",
    "NATMETER_SUBNETS",
    "NATMETER_INVENTORY_TABLE",
    "NATMETER_INVENTORY_RETENTION_HOURS",
    "NATMETER_VPC_IDS",
    "NATMETER_NAT_GATEWAY_IDS",
    "NATMETER_REDISCOVER_SECONDS",
    "NATMETER_IP_RANGES_URL",
    "NATMETER_REMOTE_PREFIXES",
    "NATMETER_RESULTS_BUCKET",
    "NATMETER_RESULTS_PREFIX",
    "NATMETER_OBJECTS_TABLE",
];

/// The fields of a source detail line, and the member that marks it.
pub const DETAIL_MARKER: (&str, &str) = ("natmeter", "source");
pub const DETAIL_FIELDS: &[&str] = &[
    "SourceIp",
    "NatGatewayId",
    "Direction",
    "Destination",
    NAT_BYTES,
    NAT_PACKETS,
    NAT_COST,
    // With AWS's ranges, where known.
    "DestinationRegion",
    // With remote prefixes, on internet destinations.
    "RemotePrefix",
    // With an inventory, where known.
    "Namespace",
    "Workload",
    "Pod",
    "Node",
];

/// The detail-line fields only some lines have: the destination's region (AWS's ranges), and
/// the names (an inventory).
pub const DETAIL_OPTIONAL_FIELDS: &[&str] = &[
    "DestinationRegion",
    "RemotePrefix",
    "Namespace",
    "Workload",
    "Pod",
    "Node",
];

/// The `Namespace` and `Workload` dimension values of a source; `None` without an inventory.
pub fn workload_dimensions(source: &Identity) -> Option<(String, String)> {
    let w = source.workload()?;
    Some(match w.kind {
        "Node" => (NODE_NAMESPACE.to_string(), format!("Node/{}", w.name)),
        "Unresolved" => (
            UNRESOLVED_NAMESPACE.to_string(),
            UNRESOLVED_WORKLOAD.to_string(),
        ),
        _ => (w.namespace.to_string(), format!("{}/{}", w.kind, w.name)),
    })
}

/// The largest keys of `per` that carry at least `min_share` of its total, at most `max`: the
/// cap of every high-cardinality dimension (ties broken by the key, so the choice does not
/// depend on interning order).
fn top<K: Ord + Clone>(per: BTreeMap<K, u64>, max: usize, min_share: f64) -> Vec<K> {
    let total: u64 = per.values().fold(0, |a, b| a.saturating_add(*b));
    let floor = total as f64 * min_share.clamp(0.0, 1.0);
    let mut v: Vec<_> = per
        .into_iter()
        .filter(|(_, b)| *b as f64 >= floor)
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter().take(max).map(|(k, _)| k).collect()
}

/// The model as JSON (`natmeter metrics --json`).
pub fn model_json(namespace: &str) -> serde_json::Value {
    let reasons: Vec<_> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
    serde_json::json!({
        "schema": "natmeter.metrics/v1",
        "namespace": namespace,
        "metrics": METRICS,
        "dimension_values": {
            "Direction": [Direction::Outbound.as_str(), Direction::Inbound.as_str()],
            "Reason": reasons,
            "Destination": ["INTERNET", "PRIVATE", "UNKNOWN", "S3", "DYNAMODB"],
        },
        "source_detail_line": {
            "discriminator": { DETAIL_MARKER.0: DETAIL_MARKER.1 },
            "fields": DETAIL_FIELDS,
            "optional_fields": DETAIL_OPTIONAL_FIELDS,
        },
        "config_variables": CONFIG_VARIABLES,
    })
}

/// One datapoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub metric: &'static str,
    pub unit: Unit,
    /// In the order of the contract's dimension set.
    pub dimensions: Vec<(&'static str, String)>,
    /// Unix seconds: the flow's minute for traffic metrics, `now` for processing counters.
    pub timestamp: i64,
    pub value: f64,
}

/// Settings of the projection.
#[derive(Debug, Clone, Copy)]
pub struct MetricOptions {
    pub max_sources: usize,
    /// Minimum share (0–1) of the invocation's bytes for a source to get its own series.
    pub min_source_share: f64,
    pub price_per_gb: f64,
    /// The invocation's clock, Unix seconds (the core has no clock of its own).
    pub now: i64,
}

#[derive(Default, Clone, Copy)]
struct Sum {
    bytes: u64,
    packets: u64,
}

impl Sum {
    fn add(&mut self, bytes: u64, packets: u64) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.packets = self.packets.saturating_add(packets);
    }
}

/// The `SourceIp` values kept under the cap: the largest sources of this invocation that carry
/// at least `min_share` of its bytes.
pub fn kept_sources(results: &Results, max: usize, min_share: f64) -> Vec<Identity> {
    let ledger = results.ledger();
    // By identity, not by interned id: ties between equal sources break the same way whatever
    // order the threads interned them in.
    let mut per: BTreeMap<&Identity, u64> = BTreeMap::new();
    for (k, t) in ledger.iter() {
        let e = per.entry(ledger.source(k.source)).or_default();
        *e = e.saturating_add(t.bytes);
    }
    top(per, max, min_share).into_iter().cloned().collect()
}

/// Projects an engine's results onto the metric contract. Returns nothing when no record was
/// read (a CONTROL_MESSAGE or a skipped batch emits nothing).
pub fn datums(results: &Results, topo: &Topology, opts: &MetricOptions) -> Vec<Datum> {
    let mut out = Vec::new();
    if results.records().read == 0 {
        return out;
    }
    let ledger = results.ledger();
    let kept = kept_sources(results, opts.max_sources, opts.min_source_share);
    // (minute, dimension values) → sum; BTreeMaps keep the output deterministic.
    let mut all: BTreeMap<i64, Sum> = BTreeMap::new();
    let mut by_gw: BTreeMap<(i64, u16), Sum> = BTreeMap::new();
    let mut by_gw_dir: BTreeMap<(i64, u16, Direction), Sum> = BTreeMap::new();
    let mut by_dest: BTreeMap<(i64, String), Sum> = BTreeMap::new();
    // A source's series is under its identity's dimension (`SourceIp` for an address).
    let mut by_src: BTreeMap<(i64, &'static str, String), Sum> = BTreeMap::new();
    // With an inventory: the same bytes by namespace and by workload, each capped like sources.
    let names: Vec<Option<(String, String)>> = (0..ledger.sources().len())
        .map(|i| workload_dimensions(ledger.sources().get(SourceId::from_raw(i as u32))))
        .collect();
    let named = names.iter().any(Option::is_some);
    let (kept_ns, kept_wl) = if named {
        let mut ns: BTreeMap<&str, u64> = BTreeMap::new();
        let mut wl: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (k, t) in ledger.iter() {
            if let Some((n, w)) = &names[k.source.index()] {
                let e = ns.entry(n).or_default();
                *e = e.saturating_add(t.bytes);
                let e = wl.entry((n, w)).or_default();
                *e = e.saturating_add(t.bytes);
            }
        }
        (
            top(ns, opts.max_sources, opts.min_source_share),
            top(wl, opts.max_sources, opts.min_source_share),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let mut by_ns: BTreeMap<(i64, String), Sum> = BTreeMap::new();
    let mut by_wl: BTreeMap<(i64, String, String), Sum> = BTreeMap::new();
    let mut cross_all: BTreeMap<i64, u64> = BTreeMap::new();
    let mut cross_gw: BTreeMap<(i64, u16), u64> = BTreeMap::new();
    let mut crosses_az = ledger.crosses_az(topo);
    let mut identity: BTreeMap<i64, IdentityTotals> = BTreeMap::new();
    let mut avoidable: BTreeMap<i64, u64> = BTreeMap::new();
    let avoidable_dest = results.home_region().map(|h| ledger.avoidable_in(h));
    // A regional gateway's ENIs are one NatGatewayId series (docs/topology.md §2).
    let canonical: Vec<u16> = (0..topo.gateways().len())
        .map(|g| topo.canonical_gateway(g) as u16)
        .collect();
    for (k, t) in ledger.iter() {
        let gw = canonical
            .get(usize::from(k.gateway))
            .copied()
            .unwrap_or(k.gateway);
        if let Some((n, w)) = &names[k.source.index()] {
            let ns = if kept_ns.contains(&n.as_str()) {
                n.clone()
            } else {
                OTHER_SOURCE.to_string()
            };
            by_ns
                .entry((k.minute, ns))
                .or_default()
                .add(t.bytes, t.packets);
            let (ns, wl) = if kept_wl.contains(&(n.as_str(), w.as_str())) {
                (n.clone(), w.clone())
            } else {
                (OTHER_SOURCE.to_string(), OTHER_SOURCE.to_string())
            };
            by_wl
                .entry((k.minute, ns, wl))
                .or_default()
                .add(t.bytes, t.packets);
        }
        if topo.has_subnets() {
            // Zeros too, per minute and gateway: a dashboard shows "no cross-AZ", not "no data".
            let b = if crosses_az(&k) { t.bytes } else { 0 };
            let e = cross_all.entry(k.minute).or_default();
            *e = e.saturating_add(b);
            let e = cross_gw.entry((k.minute, gw)).or_default();
            *e = e.saturating_add(b);
        }
        if named {
            identity
                .entry(k.minute)
                .or_default()
                .add(ledger.source(k.source), t.bytes);
        }
        all.entry(k.minute).or_default().add(t.bytes, t.packets);
        if let Some(a) = &avoidable_dest {
            // Zeros too: a dashboard shows "nothing avoidable", not "no data".
            let e = avoidable.entry(k.minute).or_default();
            if a[usize::from(k.destination)] {
                *e = e.saturating_add(t.bytes);
            }
        }
        by_gw
            .entry((k.minute, gw))
            .or_default()
            .add(t.bytes, t.packets);
        by_gw_dir
            .entry((k.minute, gw, k.direction))
            .or_default()
            .add(t.bytes, t.packets);
        by_dest
            .entry((k.minute, ledger.destination(k.destination).to_string()))
            .or_default()
            .add(t.bytes, t.packets);
        let source = ledger.source(k.source);
        let src = if kept.contains(source) {
            source.to_string()
        } else {
            OTHER_SOURCE.to_string()
        };
        by_src
            .entry((k.minute, source.dimension(), src))
            .or_default()
            .add(t.bytes, t.packets);
    }
    let gw_id = |g: u16| {
        topo.gateways()
            .get(usize::from(g))
            .map_or_else(|| format!("gateway-{g}"), |g| g.id.clone())
    };
    let mut both = |dims: Vec<(&'static str, String)>, minute: i64, s: Sum| {
        out.push(Datum {
            metric: NAT_BYTES,
            unit: Unit::Bytes,
            dimensions: dims.clone(),
            timestamp: minute,
            value: s.bytes as f64,
        });
        out.push(Datum {
            metric: NAT_COST,
            unit: Unit::None,
            dimensions: dims,
            timestamp: minute,
            value: cost(s.bytes, opts.price_per_gb),
        });
    };
    for (m, s) in &all {
        both(vec![], *m, *s);
    }
    for ((m, g), s) in &by_gw {
        both(vec![("NatGatewayId", gw_id(*g))], *m, *s);
    }
    for ((m, g, d), s) in &by_gw_dir {
        both(
            vec![
                ("NatGatewayId", gw_id(*g)),
                ("Direction", d.as_str().to_string()),
            ],
            *m,
            *s,
        );
    }
    for ((m, d), s) in &by_dest {
        both(vec![("Destination", d.clone())], *m, *s);
    }
    for ((m, dim, src), s) in &by_src {
        both(vec![(*dim, src.clone())], *m, *s);
    }
    for ((m, ns), s) in &by_ns {
        both(vec![("Namespace", ns.clone())], *m, *s);
    }
    for ((m, ns, wl), s) in &by_wl {
        both(
            vec![("Namespace", ns.clone()), ("Workload", wl.clone())],
            *m,
            *s,
        );
    }
    for (dims, m, b) in cross_all.iter().map(|(m, b)| (vec![], *m, *b)).chain(
        cross_gw
            .iter()
            .map(|((m, g), b)| (vec![("NatGatewayId", gw_id(*g))], *m, *b)),
    ) {
        out.push(Datum {
            metric: NAT_CROSS_AZ_BYTES,
            unit: Unit::Bytes,
            dimensions: dims.clone(),
            timestamp: m,
            value: b as f64,
        });
        out.push(Datum {
            metric: NAT_CROSS_AZ_COST,
            unit: Unit::None,
            dimensions: dims,
            timestamp: m,
            value: cost(b, crate::price::INTER_AZ_USD_PER_GB),
        });
    }
    for (m, b) in &avoidable {
        out.push(Datum {
            metric: NAT_AVOIDABLE_BYTES,
            unit: Unit::Bytes,
            dimensions: vec![],
            timestamp: *m,
            value: *b as f64,
        });
        out.push(Datum {
            metric: NAT_AVOIDABLE_COST,
            unit: Unit::None,
            dimensions: vec![],
            timestamp: *m,
            value: cost(*b, opts.price_per_gb),
        });
    }
    for (m, i) in &identity {
        for (metric, b) in [
            (NAT_NODE_BYTES, i.node_bytes),
            (NAT_UNRESOLVED_BYTES, i.unresolved_bytes),
        ] {
            out.push(Datum {
                metric,
                unit: Unit::Bytes,
                dimensions: vec![],
                timestamp: *m,
                value: b as f64,
            });
        }
    }
    for ((m, g), s) in &by_gw {
        out.push(Datum {
            metric: NAT_PACKETS,
            unit: Unit::Count,
            dimensions: vec![("NatGatewayId", gw_id(*g))],
            timestamp: *m,
            value: s.packets as f64,
        });
    }
    let r = &results.records();
    let counter = |metric, dimensions, value: u64| Datum {
        metric,
        unit: Unit::Count,
        dimensions,
        timestamp: opts.now,
        value: value as f64,
    };
    out.push(counter(RECORDS_COUNTED, vec![], r.counted));
    let skipped: u64 = SkipReason::ALL.iter().map(|s| r.skipped(*s)).sum();
    out.push(counter(RECORDS_SKIPPED, vec![], skipped));
    for reason in SkipReason::ALL {
        out.push(counter(
            RECORDS_SKIPPED,
            vec![("Reason", reason.as_str().to_string())],
            r.skipped(reason),
        ));
    }
    out.push(counter(PARSE_ERRORS, vec![], r.parse_errors));
    if let Some(end) = results.observed().latest_end {
        let lag = opts
            .now
            .saturating_sub(i64::try_from(end).unwrap_or(i64::MAX));
        out.push(Datum {
            metric: INGEST_LAG,
            unit: Unit::Seconds,
            dimensions: vec![],
            timestamp: opts.now,
            value: lag.max(0) as f64,
        });
    }
    out
}

/// One source detail line: a plain log field set per (minute, source, gateway, direction,
/// destination), uncapped, for Logs Insights and Contributor Insights.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDetail {
    pub minute: i64,
    pub source: String,
    pub nat_gateway: String,
    pub direction: Direction,
    pub destination: String,
    /// With AWS's ranges: the destination's region (`DestinationRegion`), where known.
    pub region: Option<String>,
    /// With remote prefixes: an internet destination's /24 or /48 (`RemotePrefix`).
    pub remote: Option<String>,
    pub bytes: u64,
    pub packets: u64,
    pub cost_usd: f64,
    /// With an inventory: the `Namespace` and `Workload` dimension values, and the pod and node
    /// where known.
    pub names: Option<DetailNames>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DetailNames {
    pub namespace: String,
    pub workload: String,
    pub pod: Option<String>,
    pub node: Option<String>,
}

impl DetailNames {
    fn of(source: &Identity) -> Option<DetailNames> {
        let (namespace, workload) = workload_dimensions(source)?;
        let (pod, node) = match source {
            Identity::Pod(p) => (Some(p.pod.clone()), p.node.clone()),
            Identity::Node { name, .. } => (None, Some(name.to_string())),
            _ => (None, None),
        };
        Some(DetailNames {
            namespace,
            workload,
            pod,
            node,
        })
    }
}

impl SourceDetail {
    /// The JSON line written to stdout.
    pub fn to_json_line(&self) -> String {
        let mut s = String::with_capacity(256);
        let _ = write!(
            s,
            r#"{{"{}":"{}","Timestamp":{},"SourceIp":{},"NatGatewayId":{},"Direction":"{}","Destination":{},"NatBytes":{},"NatPackets":{},"NatCost":{}"#,
            DETAIL_MARKER.0,
            DETAIL_MARKER.1,
            self.minute.saturating_mul(1000),
            json_str(&self.source),
            json_str(&self.nat_gateway),
            self.direction.as_str(),
            json_str(&self.destination),
            self.bytes,
            self.packets,
            finite(self.cost_usd),
        );
        // The optional fields (DETAIL_OPTIONAL_FIELDS), only where known.
        let names = self.names.as_ref();
        for (k, v) in [
            ("DestinationRegion", self.region.as_ref()),
            ("RemotePrefix", self.remote.as_ref()),
            ("Namespace", names.map(|n| &n.namespace)),
            ("Workload", names.map(|n| &n.workload)),
            ("Pod", names.and_then(|n| n.pod.as_ref())),
            ("Node", names.and_then(|n| n.node.as_ref())),
        ] {
            if let Some(v) = v {
                let _ = write!(s, r#","{k}":{}"#, json_str(v));
            }
        }
        s.push('}');
        s
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// JSON has no NaN or infinity; a cost is never either, but a line must never be invalid.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Every ledger entry as a detail line, in deterministic order.
pub fn source_details(results: &Results, topo: &Topology, price_per_gb: f64) -> Vec<SourceDetail> {
    let ledger = results.ledger();
    ledger
        .sorted()
        .into_iter()
        .map(|(k, t)| SourceDetail {
            minute: k.minute,
            source: ledger.source(k.source).to_string(),
            nat_gateway: topo
                .gateways()
                .get(usize::from(k.gateway))
                .map_or_else(String::new, |g| g.id.clone()),
            direction: k.direction,
            destination: ledger.destination(k.destination).to_string(),
            region: ledger.destination_region(k.destination).map(str::to_string),
            remote: ledger
                .destination_prefix(k.destination)
                .map(|p| p.to_string()),
            bytes: t.bytes,
            packets: t.packets,
            cost_usd: cost(t.bytes, price_per_gb),
            names: DetailNames::of(ledger.source(k.source)),
        })
        .collect()
}
