//! Reports merged: the `natmeter.report/v1` objects the function writes for records older than
//! CloudWatch accepts (one per hour and gateway, docs/s3.md §4), read back and summed into one
//! report, so that a quarter of history is reported from its results objects.
//!
//! Every count is a sum: bytes, packets and the record and batch counters (the function puts an
//! object's counters in one of its results objects only). Rows are keyed as the report keys them
//! (a source by address and holder, a destination by name, region and remote network, a gateway
//! by id and ENI), costs are recomputed from the summed bytes, and rows are sorted as a built
//! report sorts them. A workload's `pods` cannot be unioned from counts: the merged value is the
//! largest of the parts', a lower bound (docs/s3.md §4).

use std::collections::HashMap;

use serde::Deserialize;

use crate::engine::{BatchStats, RecordStats};
use crate::price::{cost, INTER_AZ_USD_PER_GB};
use crate::report::{
    sort_destinations, DestinationBytes, Diagnostic, GatewayRow, IdentityTotals, Report, SourceRow,
    Totals, WorkloadRow, SCHEMA,
};

/// A report as read, before its fixed strings are checked: serde cannot read the report's
/// `&'static str` fields without the input living forever.
#[derive(Deserialize)]
pub(crate) struct RawReport {
    schema: String,
    price_per_gb_usd: f64,
    #[serde(default)]
    region: Option<String>,
    totals: Totals,
    batches: BatchStats,
    records: RecordStats,
    sources: Vec<RawSource>,
    #[serde(default)]
    workloads: Option<Vec<WorkloadRow>>,
    #[serde(default)]
    identity: Option<IdentityTotals>,
    nat_gateways: Vec<GatewayRow>,
    destinations: Vec<DestinationBytes>,
    #[serde(default)]
    diagnostics: Vec<RawDiagnostic>,
}

impl TryFrom<RawReport> for Report {
    type Error = String;
    fn try_from(r: RawReport) -> Result<Report, String> {
        if r.schema != SCHEMA {
            return Err(format!("schema {:?}: this build reads {SCHEMA}", r.schema));
        }
        Ok(Report {
            schema: SCHEMA,
            price_per_gb_usd: r.price_per_gb_usd,
            region: r.region,
            totals: r.totals,
            batches: r.batches,
            records: r.records,
            sources: r
                .sources
                .into_iter()
                .map(SourceRow::try_from)
                .collect::<Result<_, _>>()?,
            workloads: r.workloads,
            identity: r.identity,
            nat_gateways: r.nat_gateways,
            destinations: r.destinations,
            diagnostics: r.diagnostics.into_iter().map(Diagnostic::from).collect(),
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct RawSource {
    source: String,
    #[serde(default)]
    holder: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    workload: Option<String>,
    #[serde(default)]
    pod: Option<String>,
    #[serde(default)]
    node: Option<String>,
    outbound_bytes: u64,
    inbound_bytes: u64,
    bytes: u64,
    packets: u64,
    cost_usd: f64,
    #[serde(default)]
    cross_az_bytes: Option<u64>,
    #[serde(default)]
    cross_az_cost_usd: Option<f64>,
    destinations: Vec<DestinationBytes>,
}

impl TryFrom<RawSource> for SourceRow {
    type Error = String;
    fn try_from(s: RawSource) -> Result<SourceRow, String> {
        let holder = match s.holder.as_deref() {
            None => None,
            Some("pod") => Some("pod"),
            Some("node") => Some("node"),
            Some("unresolved") => Some("unresolved"),
            Some(other) => {
                return Err(format!(
                    "source {}: holder {other:?}: expected pod, node or unresolved",
                    s.source
                ))
            }
        };
        Ok(SourceRow {
            source: s.source,
            holder,
            namespace: s.namespace,
            workload: s.workload,
            pod: s.pod,
            node: s.node,
            outbound_bytes: s.outbound_bytes,
            inbound_bytes: s.inbound_bytes,
            bytes: s.bytes,
            packets: s.packets,
            cost_usd: s.cost_usd,
            cross_az_bytes: s.cross_az_bytes,
            cross_az_cost_usd: s.cross_az_cost_usd,
            destinations: s.destinations,
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct RawDiagnostic {
    code: String,
    message: String,
}

impl From<RawDiagnostic> for Diagnostic {
    /// Diagnostic codes are a short open list: an unknown one (from a newer build) is kept by
    /// leaking its string, a few bytes once per document in a CLI run.
    fn from(d: RawDiagnostic) -> Diagnostic {
        let known = [
            "no_pkt_fields",
            "private_nat_no_pkt_fields",
            "no_nat_records",
            "unknown_fields",
            "parse_errors",
            "skip_data",
            "remote_prefixes_folded",
        ];
        let code = known
            .iter()
            .find(|k| **k == d.code)
            .copied()
            .unwrap_or_else(|| Box::leak(d.code.into_boxed_str()));
        Diagnostic {
            code,
            message: d.message,
        }
    }
}

/// Whether `bytes` start like a report document (as the function and `--output json` write it:
/// `schema` first, possibly after whitespace).
pub fn looks_like_report(bytes: &[u8]) -> bool {
    let t = bytes.trim_ascii_start();
    let Some(rest) = t.strip_prefix(b"{") else {
        return false;
    };
    let rest = rest.trim_ascii_start();
    rest.starts_with(b"\"schema\"") && {
        let head = &rest[..rest.len().min(64)];
        head.windows(SCHEMA.len()).any(|w| w == SCHEMA.as_bytes())
    }
}

/// Reads one report document.
pub fn parse(bytes: &[u8]) -> Result<Report, String> {
    let raw: RawReport =
        serde_json::from_slice(bytes).map_err(|e| format!("not a {SCHEMA} document: {e}"))?;
    Report::try_from(raw)
}

fn add(a: &mut u64, b: u64) {
    *a = a.saturating_add(b);
}

fn add_opt(a: &mut Option<u64>, b: Option<u64>) {
    *a = match (*a, b) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0).saturating_add(y.unwrap_or(0))),
    };
}

type DestKey = (String, Option<String>, Option<String>);

fn dest_key(d: &DestinationBytes) -> DestKey {
    (d.destination.clone(), d.region.clone(), d.remote.clone())
}

fn merge_destinations(into: &mut Vec<DestinationBytes>, from: &[DestinationBytes]) {
    let mut at: HashMap<DestKey, usize> = into
        .iter()
        .enumerate()
        .map(|(i, d)| (dest_key(d), i))
        .collect();
    for d in from {
        match at.get(&dest_key(d)) {
            Some(&i) => add(&mut into[i].bytes, d.bytes),
            None => {
                at.insert(dest_key(d), into.len());
                into.push(d.clone());
            }
        }
    }
}

type SourceKey = (
    String,
    Option<&'static str>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn source_key(s: &SourceRow) -> SourceKey {
    (
        s.source.clone(),
        s.holder,
        s.namespace.clone(),
        s.workload.clone(),
        s.pod.clone(),
        s.node.clone(),
    )
}

/// Sums reports into one. `None` for no reports; an error when their prices differ (costs of
/// two prices cannot be one sum).
pub fn merge(reports: Vec<Report>) -> Result<Option<Report>, String> {
    let mut it = reports.into_iter();
    let Some(mut out) = it.next() else {
        return Ok(None);
    };
    let mut sources: HashMap<SourceKey, usize> = out
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| (source_key(s), i))
        .collect();
    let mut gateways: HashMap<(String, String), usize> = out
        .nat_gateways
        .iter()
        .enumerate()
        .map(|(i, g)| ((g.nat_gateway.clone(), g.eni.clone()), i))
        .collect();
    let mut workloads: HashMap<(String, String, String), usize> = HashMap::new();
    if let Some(w) = &out.workloads {
        for (i, r) in w.iter().enumerate() {
            workloads.insert((r.namespace.clone(), r.kind.clone(), r.name.clone()), i);
        }
    }
    for r in it {
        if (r.price_per_gb_usd - out.price_per_gb_usd).abs() > 1e-12 {
            return Err(format!(
                "reports priced at ${}/GB and ${}/GB cannot be summed: report them apart (or with one --price-per-gb)",
                out.price_per_gb_usd, r.price_per_gb_usd
            ));
        }
        if out.region.is_none() {
            out.region = r.region.clone();
        }
        let (t, u) = (&mut out.totals, &r.totals);
        add(&mut t.bytes, u.bytes);
        add(&mut t.outbound_bytes, u.outbound_bytes);
        add(&mut t.inbound_bytes, u.inbound_bytes);
        add(&mut t.packets, u.packets);
        add_opt(&mut t.cross_az_bytes, u.cross_az_bytes);
        add_opt(&mut t.avoidable_bytes, u.avoidable_bytes);
        out.batches.merge(&r.batches);
        out.records.merge(&r.records);
        for s in r.sources {
            match sources.get(&source_key(&s)) {
                Some(&i) => {
                    let o = &mut out.sources[i];
                    add(&mut o.outbound_bytes, s.outbound_bytes);
                    add(&mut o.inbound_bytes, s.inbound_bytes);
                    add(&mut o.bytes, s.bytes);
                    add(&mut o.packets, s.packets);
                    add_opt(&mut o.cross_az_bytes, s.cross_az_bytes);
                    merge_destinations(&mut o.destinations, &s.destinations);
                }
                None => {
                    sources.insert(source_key(&s), out.sources.len());
                    out.sources.push(s);
                }
            }
        }
        for g in r.nat_gateways {
            let k = (g.nat_gateway.clone(), g.eni.clone());
            match gateways.get(&k) {
                Some(&i) => {
                    let o: &mut GatewayRow = &mut out.nat_gateways[i];
                    add(&mut o.outbound_bytes, g.outbound_bytes);
                    add(&mut o.inbound_bytes, g.inbound_bytes);
                    add(&mut o.bytes, g.bytes);
                    add_opt(&mut o.cross_az_bytes, g.cross_az_bytes);
                }
                None => {
                    gateways.insert(k, out.nat_gateways.len());
                    out.nat_gateways.push(g);
                }
            }
        }
        merge_destinations(&mut out.destinations, &r.destinations);
        if let Some(ws) = r.workloads {
            let list = out.workloads.get_or_insert_with(Vec::new);
            for w in ws {
                let k = (w.namespace.clone(), w.kind.clone(), w.name.clone());
                match workloads.get(&k) {
                    Some(&i) => {
                        let o: &mut WorkloadRow = &mut list[i];
                        add(&mut o.outbound_bytes, w.outbound_bytes);
                        add(&mut o.inbound_bytes, w.inbound_bytes);
                        add(&mut o.bytes, w.bytes);
                        o.pods = o.pods.max(w.pods);
                    }
                    None => {
                        workloads.insert(k, list.len());
                        list.push(w);
                    }
                }
            }
        }
        if let Some(i) = r.identity {
            let o = out.identity.get_or_insert_with(IdentityTotals::default);
            add(&mut o.resolved_bytes, i.resolved_bytes);
            add(&mut o.node_bytes, i.node_bytes);
            add(&mut o.unresolved_bytes, i.unresolved_bytes);
        }
        for d in r.diagnostics {
            if !out
                .diagnostics
                .iter()
                .any(|x: &Diagnostic| x.code == d.code)
            {
                out.diagnostics.push(d);
            }
        }
    }
    finish(&mut out);
    Ok(Some(out))
}

/// Costs from the summed bytes, rows in a built report's order.
fn finish(r: &mut Report) {
    let p = r.price_per_gb_usd;
    let inter = |b: Option<u64>| b.map(|b| cost(b, INTER_AZ_USD_PER_GB));
    r.totals.cost_usd = cost(r.totals.bytes, p);
    r.totals.cross_az_cost_usd = inter(r.totals.cross_az_bytes);
    r.totals.avoidable_cost_usd = r.totals.avoidable_bytes.map(|b| cost(b, p));
    for s in &mut r.sources {
        s.cost_usd = cost(s.bytes, p);
        s.cross_az_cost_usd = inter(s.cross_az_bytes);
        sort_destinations(&mut s.destinations);
    }
    r.sources.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| source_key(a).cmp(&source_key(b)))
    });
    for g in &mut r.nat_gateways {
        g.cost_usd = cost(g.bytes, p);
        g.cross_az_cost_usd = inter(g.cross_az_bytes);
    }
    if let Some(ws) = &mut r.workloads {
        for w in ws.iter_mut() {
            w.cost_usd = cost(w.bytes, p);
        }
        ws.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then_with(|| a.namespace.cmp(&b.namespace))
                .then_with(|| a.kind.cmp(&b.kind))
                .then_with(|| a.name.cmp(&b.name))
        });
    }
    sort_destinations(&mut r.destinations);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_recognised_by_their_schema() {
        assert!(looks_like_report(
            b"  {\"schema\":\"natmeter.report/v1\",\"x\":1}"
        ));
        assert!(looks_like_report(
            b"{\n  \"schema\": \"natmeter.report/v1\""
        ));
        assert!(!looks_like_report(b"{\"awslogs\":{}}"));
        assert!(!looks_like_report(b"{\"schema\":\"other/v1\"}"));
        assert!(parse(br#"{"schema":"natmeter.report/v2"}"#).is_err());
    }
}
