//! The report: the ledger summed over time, priced, with counters and diagnostics; and its
//! renderings (JSON is the `natmeter.report/v1` contract; table and CSV are for people).

use std::fmt::Write as _;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::attribution::Direction;
use crate::engine::{BatchStats, RecordStats, Results};
use crate::identity::{Identity, SourceId, WorkloadKey};
use crate::ledger::{Ledger, Part};
use crate::price::cost;
use crate::topology::Topology;

pub const SCHEMA: &str = "natmeter.report/v1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    pub bytes: u64,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub packets: u64,
    pub cost_usd: f64,
    /// With subnets configured: the bytes between a source and a NAT gateway in different AZs,
    /// and their inter-AZ transfer price (on top of `cost_usd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_az_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_az_cost_usd: Option<f64>,
    /// With AWS's ranges (`--ip-ranges`): the bytes to S3 and DynamoDB in the gateways' own
    /// region, which gateway endpoints (free) would take off the NAT gateway, and their NAT
    /// processing cost (docs/attribution.md §5.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avoidable_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avoidable_cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DestinationBytes {
    pub destination: String,
    /// With AWS's ranges: the remote's region (`GLOBAL` for global services), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// With remote prefixes (`--remote-prefixes`): the remote's /24 (IPv6 /48) of an internet
    /// destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    pub bytes: u64,
}

impl DestinationBytes {
    /// How a person reads it: `S3 us-east-1`, `INTERNET 203.0.113.0/24`, `INTERNET`.
    pub fn label(&self) -> String {
        match (&self.region, &self.remote) {
            (Some(r), _) => format!("{} {r}", self.destination),
            (None, Some(p)) => format!("{} {p}", self.destination),
            (None, None) => self.destination.clone(),
        }
    }
}

/// The destinations a gateway endpoint takes off a NAT gateway, in the gateway's region only.
pub const GATEWAY_ENDPOINT_SERVICES: [&str; 2] = ["S3", "DYNAMODB"];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceRow {
    /// The address the NAT gateway saw.
    pub source: String,
    /// With an inventory: `pod`, `node` or `unresolved` (who held the address then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `Kind/name`, e.g. `Deployment/checkout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub bytes: u64,
    pub packets: u64,
    pub cost_usd: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_az_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_az_cost_usd: Option<f64>,
    pub destinations: Vec<DestinationBytes>,
}

/// One workload's bytes (with an inventory): nodes are `("", "Node", name)`, and every
/// unresolved address together is `("", "Unresolved", "")`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadRow {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub bytes: u64,
    pub cost_usd: f64,
    /// Distinct pods (by uid) whose bytes these are; 0 for nodes and unresolved.
    pub pods: u64,
}

/// How much of the NAT bytes have a name (with an inventory).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct IdentityTotals {
    /// Bytes of pods.
    pub resolved_bytes: u64,
    /// Bytes of nodes: their own, hostNetwork pods', and every pod's under SNAT.
    pub node_bytes: u64,
    /// Bytes of addresses no claim covered at the record's time.
    pub unresolved_bytes: u64,
}

impl IdentityTotals {
    /// Counts `bytes` of `who` under what named it (an address without an inventory behind it
    /// is unresolved).
    pub fn add(&mut self, who: &Identity, bytes: u64) {
        let bucket = match who {
            Identity::Pod(_) => &mut self.resolved_bytes,
            Identity::Node { .. } => &mut self.node_bytes,
            Identity::Unresolved(_) | Identity::Address(_) => &mut self.unresolved_bytes,
        };
        *bucket = bucket.saturating_add(bytes);
    }

    /// The totals of a run's results.
    pub fn of(results: &Results) -> IdentityTotals {
        let ledger = results.ledger();
        let mut t = IdentityTotals::default();
        for (k, v) in ledger.iter() {
            t.add(ledger.source(k.source), v.bytes);
        }
        t
    }
}

/// What the table and CSV group rows by (`natmeter report --by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum By {
    /// One row per source: the address (and who held it, with an inventory).
    #[default]
    Ip,
    Workload,
    Namespace,
    Pod,
}

impl std::str::FromStr for By {
    type Err = String;
    fn from_str(s: &str) -> Result<By, String> {
        Ok(match s {
            "ip" => By::Ip,
            "workload" => By::Workload,
            "namespace" => By::Namespace,
            "pod" => By::Pod,
            _ => {
                return Err(format!(
                    "--by {s:?}: expected workload, namespace, pod or ip"
                ))
            }
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GatewayRow {
    pub nat_gateway: String,
    pub eni: String,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub bytes: u64,
    pub cost_usd: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_az_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_az_cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub schema: &'static str,
    pub price_per_gb_usd: f64,
    /// With AWS's ranges: the gateways' region, the one `avoidable_bytes` counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub totals: Totals,
    pub batches: BatchStats,
    pub records: RecordStats,
    pub sources: Vec<SourceRow>,
    /// With an inventory only (absent otherwise, so reports without one are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workloads: Option<Vec<WorkloadRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityTotals>,
    pub nat_gateways: Vec<GatewayRow>,
    pub destinations: Vec<DestinationBytes>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Default)]
struct Acc {
    outbound: u64,
    inbound: u64,
    packets: u64,
    /// Bytes between AZs (subnets configured).
    cross_az: u64,
    /// Bytes by interned destination ([`Ledger::destination`]): a handful per source, so a short
    /// list, named only at the end (a `String` per ledger entry and a map keyed by it were most
    /// of the time of a report over many minutes and sources).
    destinations: Vec<(u16, u64)>,
}

impl Acc {
    fn add(&mut self, dir: Direction, bytes: u64, packets: u64) {
        match dir {
            Direction::Outbound => self.outbound = self.outbound.saturating_add(bytes),
            Direction::Inbound => self.inbound = self.inbound.saturating_add(bytes),
        }
        self.packets = self.packets.saturating_add(packets);
    }
    fn add_destination(&mut self, destination: u16, bytes: u64) {
        match self
            .destinations
            .iter_mut()
            .find(|(d, _)| *d == destination)
        {
            Some((_, b)) => *b = b.saturating_add(bytes),
            None => self.destinations.push((destination, bytes)),
        }
    }
    /// Adds another part's sums for the same key.
    fn merge(&mut self, o: &Acc) {
        self.outbound = self.outbound.saturating_add(o.outbound);
        self.inbound = self.inbound.saturating_add(o.inbound);
        self.packets = self.packets.saturating_add(o.packets);
        self.cross_az = self.cross_az.saturating_add(o.cross_az);
        for &(d, bytes) in &o.destinations {
            self.add_destination(d, bytes);
        }
    }
    fn bytes(&self) -> u64 {
        self.outbound.saturating_add(self.inbound)
    }
}

/// The ledger's entries (or a part of them) summed: in all, per source (by interned index,
/// dense), per gateway, and the bytes a gateway endpoint would avoid.
struct Sums {
    total: Acc,
    sources: Vec<Option<Acc>>,
    gateways: Vec<Acc>,
    avoidable: u64,
}

impl Sums {
    fn of(
        ledger: &Ledger,
        topo: &Topology,
        avoidable_dest: Option<&[bool]>,
        part: Part<'_>,
    ) -> Sums {
        let mut total = Acc::default();
        // By the source's interned index (dense), not hashed: the rows are sorted later by a
        // total order (bytes, then the source's distinct text).
        let mut sources: Vec<Option<Acc>> = Vec::new();
        sources.resize_with(ledger.sources_len(), || None);
        let mut gateways: Vec<Acc> = topo.gateways().iter().map(|_| Acc::default()).collect();
        // Each source's AZ, looked up once per source (not per ledger entry).
        let mut crosses_az = ledger.crosses_az(topo);
        let mut avoidable = 0u64;
        for (k, t) in part.iter() {
            if avoidable_dest.is_some_and(|a| a[usize::from(k.destination)]) {
                avoidable = avoidable.saturating_add(t.bytes);
            }
            total.add(k.direction, t.bytes, t.packets);
            total.add_destination(k.destination, t.bytes);
            let crossing = crosses_az(&k);
            let s = sources[k.source.index()].get_or_insert_with(Acc::default);
            s.add(k.direction, t.bytes, t.packets);
            s.add_destination(k.destination, t.bytes);
            if crossing {
                total.cross_az = total.cross_az.saturating_add(t.bytes);
                s.cross_az = s.cross_az.saturating_add(t.bytes);
            }
            if let Some(g) = gateways.get_mut(usize::from(k.gateway)) {
                g.add(k.direction, t.bytes, t.packets);
                if crossing {
                    g.cross_az = g.cross_az.saturating_add(t.bytes);
                }
            }
        }
        Sums {
            total,
            sources,
            gateways,
            avoidable,
        }
    }

    fn add(mut self, o: Sums) -> Sums {
        self.total.merge(&o.total);
        for (a, b) in self.sources.iter_mut().zip(&o.sources) {
            if let Some(b) = b {
                a.get_or_insert_with(Acc::default).merge(b);
            }
        }
        for (a, b) in self.gateways.iter_mut().zip(&o.gateways) {
            a.merge(b);
        }
        self.avoidable = self.avoidable.saturating_add(o.avoidable);
        self
    }
}

/// Destinations by bytes, then name (interned names are distinct, so the order is total).
fn by_bytes(ledger: &Ledger, m: &[(u16, u64)]) -> Vec<DestinationBytes> {
    let mut v: Vec<_> = m
        .iter()
        .map(|&(d, bytes)| DestinationBytes {
            destination: ledger.destination(d).to_string(),
            region: ledger.destination_region(d).map(str::to_string),
            remote: ledger.destination_prefix(d).map(|p| p.to_string()),
            bytes,
        })
        .collect();
    sort_destinations(&mut v);
    v
}

/// The key of the [`Report::groups`] row source row `r` (the `i`th) belongs to: what the `--by
/// ip` and `--by pod` rows are keyed by, and, for workloads and namespaces (built from
/// `workloads`), the key their rows are built with.
fn group_key(by: By, i: usize, r: &SourceRow) -> Vec<String> {
    let node = r.node.clone().unwrap_or_default();
    match (by, r.holder) {
        (By::Ip, _) => vec![i.to_string()],
        (By::Workload, Some("pod")) => {
            let w = r.workload.as_deref().unwrap_or_default();
            let (kind, name) = w.split_once('/').unwrap_or((w, ""));
            vec![
                r.namespace.clone().unwrap_or_default(),
                kind.to_string(),
                name.to_string(),
            ]
        }
        (By::Workload, Some("node")) => vec![String::new(), "Node".into(), node],
        (By::Workload, _) => vec![String::new(), "Unresolved".into(), String::new()],
        (By::Namespace, Some("pod")) => vec![r.namespace.clone().unwrap_or_default()],
        (By::Namespace, Some("node")) => vec!["(nodes)".into()],
        (By::Namespace, _) => vec!["(unresolved)".into()],
        (By::Pod, _) => match (&r.namespace, &r.pod, r.holder) {
            (Some(ns), Some(pod), _) => vec![ns.clone(), pod.clone(), node],
            (_, _, Some("node")) => vec![String::new(), String::new(), node],
            _ => vec![String::new(); 3],
        },
    }
}

/// Biggest first, then by name, region and remote network: a total order.
pub(crate) fn sort_destinations(v: &mut [DestinationBytes]) {
    v.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.destination.cmp(&b.destination))
            .then_with(|| a.region.cmp(&b.region))
            .then_with(|| a.remote.cmp(&b.remote))
    });
}

/// A source row with the names its identity carries.
fn named_row(mut row: SourceRow, who: &Identity) -> SourceRow {
    match who {
        Identity::Address(_) => {}
        Identity::Pod(p) => {
            row.holder = Some("pod");
            row.namespace = Some(p.namespace.clone());
            row.workload = Some(format!("{}/{}", p.kind, p.workload));
            row.pod = Some(p.pod.clone());
            row.node.clone_from(&p.node);
        }
        Identity::Node { name, .. } => {
            row.holder = Some("node");
            row.node = Some(name.to_string());
        }
        Identity::Unresolved(_) => row.holder = Some("unresolved"),
    }
    row
}

/// The sources with ledger entries, by id.
fn seen(sources: &[Option<Acc>]) -> impl Iterator<Item = (SourceId, &Acc)> {
    sources
        .iter()
        .enumerate()
        .filter_map(|(i, a)| Some((SourceId::from_raw(i as u32), a.as_ref()?)))
}

/// Sources summed by workload, and the identity totals.
fn workloads(
    ledger: &Ledger,
    sources: &[Option<Acc>],
    price_per_gb_usd: f64,
) -> (Vec<WorkloadRow>, IdentityTotals) {
    let mut by: FxHashMap<WorkloadKey<'_>, (u64, u64, Vec<&str>)> = FxHashMap::default();
    let mut totals = IdentityTotals::default();
    for (id, a) in seen(sources) {
        let who = ledger.source(id);
        totals.add(who, a.bytes());
        // Without a name (no inventory behind this source), the address stands as unresolved.
        let key = who.workload().unwrap_or(WorkloadKey {
            namespace: "",
            kind: "Unresolved",
            name: "",
        });
        let e = by.entry(key).or_default();
        e.0 = e.0.saturating_add(a.outbound);
        e.1 = e.1.saturating_add(a.inbound);
        if let Identity::Pod(p) = who {
            if !e.2.contains(&p.uid.as_str()) {
                e.2.push(&p.uid);
            }
        }
    }
    let mut rows: Vec<WorkloadRow> = by
        .into_iter()
        .map(|(k, (outbound, inbound, pods))| {
            let bytes = outbound.saturating_add(inbound);
            WorkloadRow {
                namespace: k.namespace.to_string(),
                kind: k.kind.to_string(),
                name: k.name.to_string(),
                outbound_bytes: outbound,
                inbound_bytes: inbound,
                bytes,
                cost_usd: cost(bytes, price_per_gb_usd),
                pods: pods.len() as u64,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name)))
    });
    (rows, totals)
}

impl Report {
    /// The report of sources as the attributor's resolver named them.
    pub fn build(results: &Results, topo: &Topology, price_per_gb_usd: f64) -> Report {
        Report::build_on(results, topo, price_per_gb_usd, false, 1)
    }

    /// The report with `workloads` and `identity` (for runs with an inventory: present even
    /// when no byte was counted).
    pub fn build_named(results: &Results, topo: &Topology, price_per_gb_usd: f64) -> Report {
        Report::build_on(results, topo, price_per_gb_usd, true, 1)
    }

    fn is_home(&self, d: &DestinationBytes) -> bool {
        d.region.is_some() && d.region == self.region
    }

    /// [`Report::build`] (or, `named`, [`Report::build_named`]) with the ledger's entries
    /// summed on up to `threads` threads: the same report. Summing them was 7 ms of a 110 ms
    /// `natmeter report --threads 2`, on one thread after the workers had finished, and it
    /// grows with minutes x sources, not bytes.
    pub fn build_on(
        results: &Results,
        topo: &Topology,
        price_per_gb_usd: f64,
        named: bool,
        threads: usize,
    ) -> Report {
        let ledger = results.ledger();
        // With AWS's ranges and the gateways' region (Attributor::with_ranges): the bytes to
        // S3 and DynamoDB there, which gateway endpoints would take off the NAT gateways. S3 in
        // another region is not avoidable: a gateway endpoint serves its own region only.
        let home = results.home_region();
        let avoidable_dest = home.map(|h| ledger.avoidable_in(h));
        let sum = |part| Sums::of(ledger, topo, avoidable_dest.as_deref(), part);
        let parts = ledger.parts(threads);
        let Sums {
            total,
            sources,
            gateways,
            avoidable,
        } = match parts[..] {
            [] => sum(Part::default()),
            [part] => sum(part),
            // Sums of disjoint parts, added up: what one walk over the whole ledger gives.
            _ => std::thread::scope(|s| {
                let handles: Vec<_> = parts
                    .into_iter()
                    .map(|part| s.spawn(move || sum(part)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .reduce(Sums::add)
                    .expect("two parts or more")
            }),
        };
        let cross = |a: &Acc| topo.has_subnets().then_some(a.cross_az);
        let cross_cost = |a: &Acc| {
            topo.has_subnets()
                .then(|| cost(a.cross_az, crate::price::INTER_AZ_USD_PER_GB))
        };
        let (workloads, identity) = if named {
            let (w, i) = workloads(ledger, &sources, price_per_gb_usd);
            (Some(w), Some(i))
        } else {
            (None, None)
        };
        let mut sources: Vec<(SourceRow, &Identity)> = seen(&sources)
            .map(|(src, a)| {
                let who = ledger.source(src);
                let row = SourceRow {
                    source: who.to_string(),
                    holder: None,
                    namespace: None,
                    workload: None,
                    pod: None,
                    node: None,
                    outbound_bytes: a.outbound,
                    inbound_bytes: a.inbound,
                    bytes: a.bytes(),
                    packets: a.packets,
                    cost_usd: cost(a.bytes(), price_per_gb_usd),
                    cross_az_bytes: cross(a),
                    cross_az_cost_usd: cross_cost(a),
                    destinations: by_bytes(ledger, &a.destinations),
                };
                (named_row(row, who), who)
            })
            .collect();
        // An address reused by two pods is two rows with one `source`: the identity breaks the tie.
        sources.sort_by(|(a, ia), (b, ib)| {
            b.bytes
                .cmp(&a.bytes)
                .then_with(|| a.source.cmp(&b.source))
                .then_with(|| ia.cmp(ib))
        });
        let sources: Vec<SourceRow> = sources.into_iter().map(|(r, _)| r).collect();
        let nat_gateways = topo
            .gateways()
            .iter()
            .zip(&gateways)
            .map(|(g, a)| GatewayRow {
                nat_gateway: g.id.clone(),
                eni: g.eni.clone(),
                outbound_bytes: a.outbound,
                inbound_bytes: a.inbound,
                bytes: a.bytes(),
                cost_usd: cost(a.bytes(), price_per_gb_usd),
                cross_az_bytes: cross(a),
                cross_az_cost_usd: cross_cost(a),
            })
            .collect();
        Report {
            schema: SCHEMA,
            price_per_gb_usd,
            region: home.map(str::to_string),
            totals: Totals {
                bytes: total.bytes(),
                outbound_bytes: total.outbound,
                inbound_bytes: total.inbound,
                packets: total.packets,
                cost_usd: cost(total.bytes(), price_per_gb_usd),
                cross_az_bytes: cross(&total),
                cross_az_cost_usd: cross_cost(&total),
                avoidable_bytes: home.map(|_| avoidable),
                avoidable_cost_usd: home.map(|_| cost(avoidable, price_per_gb_usd)),
            },
            batches: results.batches(),
            records: results.records(),
            sources,
            workloads,
            identity,
            nat_gateways,
            destinations: by_bytes(ledger, &total.destinations),
            diagnostics: diagnostics(results, topo),
        }
    }

    /// The rows of `by`, largest first: for `Ip` the sources themselves; for the others sums of
    /// the workloads (`Workload`, `Namespace`) or of the sources (`Pod`). Without an inventory
    /// every grouping but `Ip` is one unresolved row.
    pub fn groups(&self, by: By) -> Vec<Group> {
        let mut map: FxHashMap<Vec<String>, Group> = FxHashMap::default();
        let mut add = |key: Vec<String>, label: String, out: u64, inb: u64, pods: u64| {
            let g = map.entry(key.clone()).or_insert_with(|| Group {
                key,
                label,
                outbound_bytes: 0,
                inbound_bytes: 0,
                bytes: 0,
                cost_usd: 0.0,
                pods: 0,
                destinations: Vec::new(),
            });
            g.outbound_bytes = g.outbound_bytes.saturating_add(out);
            g.inbound_bytes = g.inbound_bytes.saturating_add(inb);
            g.bytes = g.outbound_bytes.saturating_add(g.inbound_bytes);
            g.pods += pods;
        };
        match by {
            By::Ip => {
                for (i, r) in self.sources.iter().enumerate() {
                    let who = match (&r.holder, &r.namespace, &r.pod, &r.node) {
                        (_, Some(ns), Some(pod), _) => format!("{} {ns}/{pod}", r.source),
                        (Some("node"), _, _, Some(n)) => format!("{} node {n}", r.source),
                        (Some("unresolved"), ..) => format!("{} (unresolved)", r.source),
                        _ => r.source.clone(),
                    };
                    // Rows stay rows (one address can have two holders): the index keeps them apart.
                    add(
                        group_key(by, i, r),
                        who,
                        r.outbound_bytes,
                        r.inbound_bytes,
                        0,
                    );
                }
            }
            By::Workload | By::Namespace => {
                let unnamed = self.sources.iter().map(|r| WorkloadRow {
                    namespace: String::new(),
                    kind: "Unresolved".into(),
                    name: String::new(),
                    outbound_bytes: r.outbound_bytes,
                    inbound_bytes: r.inbound_bytes,
                    bytes: r.bytes,
                    cost_usd: 0.0,
                    pods: 0,
                });
                let rows: Vec<WorkloadRow> = match &self.workloads {
                    Some(w) => w.clone(),
                    None => unnamed.collect(),
                };
                for w in rows {
                    let (key, label) = match (by, w.kind.as_str()) {
                        (By::Namespace, "Unresolved") => {
                            (vec!["(unresolved)".into()], "(unresolved)".into())
                        }
                        (By::Namespace, "Node") => (vec!["(nodes)".into()], "(nodes)".into()),
                        (By::Namespace, _) => (vec![w.namespace.clone()], w.namespace.clone()),
                        (_, "Unresolved") => (
                            vec![String::new(), w.kind.clone(), String::new()],
                            "(unresolved)".into(),
                        ),
                        (_, "Node") => (
                            vec![String::new(), w.kind.clone(), w.name.clone()],
                            format!("Node/{}", w.name),
                        ),
                        _ => (
                            vec![w.namespace.clone(), w.kind.clone(), w.name.clone()],
                            format!("{}/{}/{}", w.namespace, w.kind, w.name),
                        ),
                    };
                    add(key, label, w.outbound_bytes, w.inbound_bytes, w.pods);
                }
            }
            By::Pod => {
                for (i, r) in self.sources.iter().enumerate() {
                    let label = match (&r.namespace, &r.pod, r.holder) {
                        (Some(ns), Some(pod), _) => format!("{ns}/{pod}"),
                        (_, _, Some("node")) => {
                            format!("Node/{}", r.node.as_deref().unwrap_or_default())
                        }
                        _ => "(unresolved)".into(),
                    };
                    add(
                        group_key(by, i, r),
                        label,
                        r.outbound_bytes,
                        r.inbound_bytes,
                        0,
                    );
                }
            }
        }
        // Each group's destinations: its sources' (a source's row says which group it is in).
        for (i, r) in self.sources.iter().enumerate() {
            let Some(g) = map.get_mut(&group_key(by, i, r)) else {
                continue;
            };
            for d in &r.destinations {
                match g.destinations.iter_mut().find(|x| {
                    (&x.destination, &x.region, &x.remote) == (&d.destination, &d.region, &d.remote)
                }) {
                    Some(x) => x.bytes = x.bytes.saturating_add(d.bytes),
                    None => g.destinations.push(d.clone()),
                }
            }
        }
        let mut rows: Vec<Group> = map.into_values().collect();
        for g in &mut rows {
            g.cost_usd = cost(g.bytes, self.price_per_gb_usd);
            sort_destinations(&mut g.destinations);
        }
        rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.key.cmp(&b.key)));
        if by == By::Ip {
            // The sources' own order (bytes, address, identity), which the index key does not keep.
            rows.sort_by_key(|g| g.key[0].parse::<usize>().unwrap_or(usize::MAX));
        }
        rows
    }

    /// CSV of `by`'s rows: `--by ip` is [`Report::to_csv`]; the others have their key columns,
    /// then `outbound_bytes,inbound_bytes,bytes,cost_usd` (and `pods` by workload).
    pub fn to_csv_by(&self, by: By) -> String {
        let (header, pods) = match by {
            By::Ip => return self.to_csv(),
            By::Workload => ("namespace,kind,name", true),
            By::Namespace => ("namespace", false),
            By::Pod => ("namespace,pod,node", false),
        };
        let mut s = format!("{header},outbound_bytes,inbound_bytes,bytes,cost_usd");
        s.push_str(if pods { ",pods\n" } else { "\n" });
        for g in self.groups(by) {
            let key: Vec<_> = g.key.iter().map(|k| csv_field(k)).collect();
            let _ = write!(
                s,
                "{},{},{},{},{:.6}",
                key.join(","),
                g.outbound_bytes,
                g.inbound_bytes,
                g.bytes,
                g.cost_usd
            );
            if pods {
                let _ = write!(s, ",{}", g.pods);
            }
            s.push('\n');
        }
        s
    }

    /// CSV: one row per source.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("source,outbound_bytes,inbound_bytes,bytes,packets,cost_usd\n");
        for r in &self.sources {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{:.6}",
                r.source, r.outbound_bytes, r.inbound_bytes, r.bytes, r.packets, r.cost_usd
            );
        }
        s
    }

    /// The table for people: top sources with a bar, totals, skips, diagnostics. With an
    /// inventory it leads with workloads.
    pub fn to_table(&self, top: usize) -> String {
        let by = if self.workloads.is_some() {
            By::Workload
        } else {
            By::Ip
        };
        self.to_table_by(top, by)
    }

    /// [`Report::to_table`] leading with the rows of `by`.
    pub fn to_table_by(&self, top: usize, by: By) -> String {
        let mut s = String::new();
        let total = self.totals.bytes.max(1) as f64;
        let (what, column, plural) = match by {
            By::Ip => ("source", "SOURCE", "sources"),
            By::Workload => ("workload", "WORKLOAD", "workloads"),
            By::Namespace => ("namespace", "NAMESPACE", "namespaces"),
            By::Pod => ("pod", "POD", "pods"),
        };
        let rows = self.groups(by);
        // Each row's top destinations, when they say more than the service name: with AWS's
        // ranges (regions) or remote prefixes (/24s).
        let detailed = self.region.is_some()
            || self
                .destinations
                .iter()
                .any(|d| d.region.is_some() || d.remote.is_some());
        let _ = writeln!(
            s,
            "NAT Gateway processed bytes by {what} (price ${}/GB, GB = 2^30 bytes)\n",
            self.price_per_gb_usd
        );
        let _ = writeln!(
            s,
            "{:<4} {:<40} {:>11} {:>11} {:>11} {:>10} {:>7}",
            "#", column, "TOTAL", "OUTBOUND", "INBOUND", "COST $", "SHARE"
        );
        for (i, r) in rows.iter().take(top).enumerate() {
            let share = r.bytes as f64 / total;
            let _ = writeln!(
                s,
                "{:<4} {:<40} {:>11} {:>11} {:>11} {:>10.4} {:>6.1}%  {}",
                i + 1,
                r.label,
                human(r.bytes),
                human(r.outbound_bytes),
                human(r.inbound_bytes),
                r.cost_usd,
                share * 100.0,
                bar(share, 20)
            );
            if detailed {
                let top3: Vec<String> = r
                    .destinations
                    .iter()
                    .take(3)
                    .map(|d| format!("{} {}", d.label(), human(d.bytes)))
                    .collect();
                if !top3.is_empty() {
                    let _ = writeln!(s, "     to: {}", top3.join(", "));
                }
            }
        }
        if rows.len() > top {
            let rest = rows[top..]
                .iter()
                .fold(0u64, |a, r| a.saturating_add(r.bytes));
            let _ = writeln!(
                s,
                "     {:<40} {:>11} {:>11} {:>11} {:>10.4} {:>6.1}%",
                format!("({} more {plural})", rows.len() - top),
                human(rest),
                "",
                "",
                cost(rest, self.price_per_gb_usd),
                rest as f64 / total * 100.0
            );
        }
        if let Some(i) = &self.identity {
            let _ = writeln!(
                s,
                "\nNamed from the EKS audit log: {} pods, {} nodes, {} unresolved",
                human(i.resolved_bytes),
                human(i.node_bytes),
                human(i.unresolved_bytes)
            );
        }
        let t = &self.totals;
        let _ = writeln!(
            s,
            "\nTOTAL  {} ({} outbound, {} inbound), {} packets, ${:.4}",
            human(t.bytes),
            human(t.outbound_bytes),
            human(t.inbound_bytes),
            t.packets,
            t.cost_usd
        );
        if let (Some(b), Some(c)) = (t.cross_az_bytes, t.cross_az_cost_usd) {
            let _ = writeln!(
                s,
                "CROSS-AZ  {} between a source and a NAT gateway in different AZs: ${c:.4} inter-AZ transfer (${}/GB) on top of NAT processing",
                human(b),
                crate::price::INTER_AZ_USD_PER_GB
            );
        }
        if let (Some(b), Some(c)) = (t.avoidable_bytes, t.avoidable_cost_usd) {
            let _ = writeln!(
                s,
                "AVOIDABLE {} to S3 and DynamoDB in the gateways' region: ${c:.4} of NAT processing a gateway endpoint (free) would save",
                human(b)
            );
        }
        if !self.nat_gateways.is_empty() {
            let _ = writeln!(s, "\nBy NAT gateway:");
            for g in &self.nat_gateways {
                let cross = match (g.cross_az_bytes, g.cross_az_cost_usd) {
                    (Some(b), Some(c)) => format!("  cross-AZ {} ${c:.4}", human(b)),
                    _ => String::new(),
                };
                let _ = writeln!(
                    s,
                    "  {:<24} {:<24} {:>11}  ${:.4}{cross}",
                    g.nat_gateway,
                    g.eni,
                    human(g.bytes),
                    g.cost_usd
                );
            }
        }
        if !self.destinations.is_empty() {
            let _ = writeln!(s, "\nBy destination:");
            // With regions (AWS's ranges), only the gateways' own region is avoidable; without
            // them, S3 and DynamoDB in any region are shown as an upper bound.
            let avoidable_known = t.avoidable_bytes.is_some();
            for d in &self.destinations {
                let endpoint = GATEWAY_ENDPOINT_SERVICES.contains(&d.destination.as_str());
                let note = match (endpoint, avoidable_known, &d.region) {
                    (false, _, _) => "",
                    (true, false, _) => {
                        "  avoidable if in the gateways' region: a gateway endpoint is free"
                    }
                    (true, true, Some(_)) if self.is_home(d) => {
                        "  avoidable: a gateway endpoint is free"
                    }
                    (true, true, _) => "  another region: a gateway endpoint does not serve it",
                };
                let name = d.label();
                let _ = writeln!(
                    s,
                    "  {:<24} {:>11}  ${:.4}{note}",
                    name,
                    human(d.bytes),
                    cost(d.bytes, self.price_per_gb_usd)
                );
            }
        }
        let b = &self.batches;
        let r = &self.records;
        let _ = writeln!(
            s,
            "\nBatches: {} read, {} control messages, {} skipped (not a NAT ENI)",
            b.read, b.control_messages, b.skipped_not_nat
        );
        let _ = writeln!(
            s,
            "Records: {} read, {} counted; skipped: {} public side, {} not NAT, {} rejected, {} no data, {} skip data (lost), {} zero bytes, {} ambiguous, {} parse errors",
            r.read, r.counted, r.public_side, r.not_nat, r.rejected, r.no_data, r.skip_data, r.zero_bytes, r.ambiguous, r.parse_errors
        );
        for d in &self.diagnostics {
            let _ = writeln!(s, "\n! {}: {}", d.code, d.message);
        }
        let (nodes, unresolved) = self
            .identity
            .as_ref()
            .map_or((0, 0), |i| (i.node_bytes, i.unresolved_bytes));
        if self.identity.is_some() && nodes > 0 {
            let _ = writeln!(
                s,
                "\n{} went through nodes: a node's own traffic, hostNetwork pods', and under the VPC \
                 CNI's default SNAT (AWS_VPC_K8S_CNI_EXTERNALSNAT=false) every pod's, which leaves as \
                 its node's IP and cannot be told apart; set AWS_VPC_K8S_CNI_EXTERNALSNAT=true on the \
                 aws-node daemonset to see pods.",
                human(nodes)
            );
        }
        if unresolved > 0 {
            let _ = writeln!(
                s,
                "\n{} is unresolved: no pod or node held the address at the record's time in the \
                 inventory given (an address outside the cluster, or audit events not yet delivered \
                 or older than the inventory).",
                human(unresolved)
            );
        }
        if self.identity.is_some() {
            return s;
        }
        let _ = writeln!(
            s,
            "\nSources are the addresses the NAT gateway saw. Under the VPC CNI's default SNAT \
             (AWS_VPC_K8S_CNI_EXTERNALSNAT=false) pod traffic leaves as its node's IP, so a node IP \
             here stands for all its pods; set AWS_VPC_K8S_CNI_EXTERNALSNAT=true on the aws-node \
             daemonset to see pod IPs."
        );
        s
    }
}

/// One row of [`Report::groups`].
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// What tells rows apart (its columns in CSV).
    pub key: Vec<String>,
    /// The row as a person reads it: `shop/Deployment/web`, `Node/ip-10-0-1-5.ec2.internal`.
    pub label: String,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub bytes: u64,
    pub cost_usd: f64,
    pub pods: u64,
    /// Where its bytes went, biggest first (with regions and remote networks when known).
    pub destinations: Vec<DestinationBytes>,
}

/// A CSV field, quoted when it holds a comma, quote or line break (Kubernetes names never do,
/// but a hand-written inventory might).
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Binary units, as AWS bills them (GB = 2^30 bytes).
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

fn bar(share: f64, width: usize) -> String {
    let n = (share * width as f64).round() as usize;
    "#".repeat(n.min(width))
}

fn diagnostics(e: &Results, topology: &Topology) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let o = e.observed();
    let r = &e.records();
    if o.records_without_pkt > 0 {
        out.push(Diagnostic {
            code: "no_pkt_fields",
            message: format!(
                "{} records were read with a format lacking pkt-srcaddr/pkt-dstaddr: sources are the addresses the NAT saw, the remote side is unknown, and the public side was told apart only by the private CIDR list. Create a flow log with ${{pkt-srcaddr}} ${{pkt-dstaddr}} ${{pkt-src-aws-service}} ${{pkt-dst-aws-service}} in its format (a format cannot be changed).",
                o.records_without_pkt
            ),
        });
    }
    let on_nat = r.counted + r.public_side + r.rejected + r.zero_bytes;
    if on_nat == 0 && (r.read > 0 || e.batches().skipped_not_nat > 0) {
        let configured: Vec<_> = topology.gateways().iter().map(|g| g.eni.as_str()).collect();
        let seen: Vec<_> = o
            .other_enis
            .iter()
            .map(|(eni, n)| format!("{eni} ({n} records)"))
            .collect();
        out.push(Diagnostic {
            code: "no_nat_records",
            message: format!(
                "no record matched the configured NAT ENIs ({}). ENIs seen: {}. Configure each NAT gateway's network interface (aws ec2 describe-nat-gateways --query 'NatGateways[].NatGatewayAddresses[].[NetworkInterfaceId,PrivateIp]').",
                if configured.is_empty() { "none".to_string() } else { configured.join(", ") },
                if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
            ),
        });
    }
    if r.ambiguous > 0 {
        let private: Vec<&str> = topology
            .gateways()
            .iter()
            .filter(|g| g.connectivity_type == crate::topology::Connectivity::Private)
            .map(|g| g.id.as_str())
            .collect();
        out.push(Diagnostic {
            code: "private_nat_no_pkt_fields",
            message: format!(
                "{} records of private NAT gateways ({}) were not counted: the format lacks pkt-srcaddr/pkt-dstaddr, and both sides of a private gateway are private addresses, so its public-side records cannot be told from the private-side ones and counting them would count every byte twice. Create a flow log with ${{pkt-srcaddr}} ${{pkt-dstaddr}} in its format (a format cannot be changed).",
                r.ambiguous,
                private.join(", ")
            ),
        });
    }
    if r.skip_data > 0 {
        out.push(Diagnostic {
            code: "skip_data",
            message: format!(
                "{} SKIPDATA records: the flow log dropped records for capacity in those capture windows, so natmeter undercounts them (the NAT gateway still billed those bytes). Compare with the gateway's own AWS/NATGateway BytesInFromSource and BytesOutToSource for those minutes; a flow log on the NAT ENIs only (less traffic per log) or a longer aggregation interval makes SKIPDATA rarer.",
                r.skip_data
            ),
        });
    }
    let folded = e.ledger().prefixes_folded();
    if folded > 0 {
        out.push(Diagnostic {
            code: "remote_prefixes_folded",
            message: format!(
                "{folded} records went to more remote networks than natmeter names one by one ({} /24s or /48s): their bytes are counted under plain INTERNET",
                crate::ledger::MAX_PREFIXES
            ),
        });
    }
    if !o.unknown_fields.is_empty() {
        out.push(Diagnostic {
            code: "unknown_fields",
            message: format!(
                "the format names fields this version does not know: {}. Their values were ignored; the other fields were used.",
                o.unknown_fields.join(", ")
            ),
        });
    }
    if r.parse_errors > 0 {
        let samples: Vec<_> = o
            .parse_error_samples
            .iter()
            .map(|s| format!("{}: {}", s.location, s.error))
            .collect();
        out.push(Diagnostic {
            code: "parse_errors",
            message: format!(
                "{} records could not be parsed and were skipped. First: {}. Check that the configured format (--log-format / NATMETER_LOG_FORMAT) is the flow log's own.",
                r.parse_errors,
                samples.join("; ")
            ),
        });
    }
    out
}
