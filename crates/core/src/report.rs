//! The report: the ledger summed over time, priced, with counters and diagnostics; and its
//! renderings (JSON is the `natmeter.report/v1` contract; table and CSV are for people).

use std::fmt::Write as _;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::attribution::Direction;
use crate::engine::{BatchStats, RecordStats, Results};
use crate::identity::SourceId;
use crate::ledger::Ledger;
use crate::price::cost;
use crate::topology::Topology;

pub const SCHEMA: &str = "natmeter.report/v1";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Totals {
    pub bytes: u64,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub packets: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DestinationBytes {
    pub destination: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceRow {
    pub source: String,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub bytes: u64,
    pub packets: u64,
    pub cost_usd: f64,
    pub destinations: Vec<DestinationBytes>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GatewayRow {
    pub nat_gateway: String,
    pub eni: String,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub bytes: u64,
    pub cost_usd: f64,
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
    pub totals: Totals,
    pub batches: BatchStats,
    pub records: RecordStats,
    pub sources: Vec<SourceRow>,
    pub nat_gateways: Vec<GatewayRow>,
    pub destinations: Vec<DestinationBytes>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Default)]
struct Acc {
    outbound: u64,
    inbound: u64,
    packets: u64,
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
    fn bytes(&self) -> u64 {
        self.outbound.saturating_add(self.inbound)
    }
}

/// Destinations by bytes, then name (interned names are distinct, so the order is total).
fn by_bytes(ledger: &Ledger, m: Vec<(u16, u64)>) -> Vec<DestinationBytes> {
    let mut v: Vec<_> = m
        .into_iter()
        .map(|(d, bytes)| DestinationBytes {
            destination: ledger.destination(d).to_string(),
            bytes,
        })
        .collect();
    v.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.destination.cmp(&b.destination))
    });
    v
}

impl Report {
    pub fn build(results: &Results, topo: &Topology, price_per_gb_usd: f64) -> Report {
        let ledger = results.ledger();
        let mut total = Acc::default();
        // Hashed, not ordered: the rows are sorted below by a total order (bytes, then the
        // source's distinct text).
        let mut sources: FxHashMap<SourceId, Acc> = FxHashMap::default();
        let mut gateways: Vec<Acc> = topo.gateways().iter().map(|_| Acc::default()).collect();
        for (k, t) in ledger.iter() {
            total.add(k.direction, t.bytes, t.packets);
            total.add_destination(k.destination, t.bytes);
            let s = sources.entry(k.source).or_default();
            s.add(k.direction, t.bytes, t.packets);
            s.add_destination(k.destination, t.bytes);
            if let Some(g) = gateways.get_mut(usize::from(k.gateway)) {
                g.add(k.direction, t.bytes, t.packets);
            }
        }
        let mut sources: Vec<SourceRow> = sources
            .into_iter()
            .map(|(src, a)| SourceRow {
                source: ledger.source(src).to_string(),
                outbound_bytes: a.outbound,
                inbound_bytes: a.inbound,
                bytes: a.bytes(),
                packets: a.packets,
                cost_usd: cost(a.bytes(), price_per_gb_usd),
                destinations: by_bytes(ledger, a.destinations),
            })
            .collect();
        sources.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.source.cmp(&b.source)));
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
            })
            .collect();
        Report {
            schema: SCHEMA,
            price_per_gb_usd,
            totals: Totals {
                bytes: total.bytes(),
                outbound_bytes: total.outbound,
                inbound_bytes: total.inbound,
                packets: total.packets,
                cost_usd: cost(total.bytes(), price_per_gb_usd),
            },
            batches: results.batches(),
            records: results.records(),
            sources,
            nat_gateways,
            destinations: by_bytes(ledger, std::mem::take(&mut total.destinations)),
            diagnostics: diagnostics(results, topo),
        }
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

    /// The table for people: top sources with a bar, totals, skips, diagnostics.
    pub fn to_table(&self, top: usize) -> String {
        let mut s = String::new();
        let total = self.totals.bytes.max(1) as f64;
        let _ = writeln!(
            s,
            "NAT Gateway processed bytes by source (price ${}/GB, GB = 2^30 bytes)\n",
            self.price_per_gb_usd
        );
        let _ = writeln!(
            s,
            "{:<4} {:<40} {:>11} {:>11} {:>11} {:>10} {:>7}",
            "#", "SOURCE", "TOTAL", "OUTBOUND", "INBOUND", "COST $", "SHARE"
        );
        for (i, r) in self.sources.iter().take(top).enumerate() {
            let share = r.bytes as f64 / total;
            let _ = writeln!(
                s,
                "{:<4} {:<40} {:>11} {:>11} {:>11} {:>10.4} {:>6.1}%  {}",
                i + 1,
                r.source,
                human(r.bytes),
                human(r.outbound_bytes),
                human(r.inbound_bytes),
                r.cost_usd,
                share * 100.0,
                bar(share, 20)
            );
        }
        if self.sources.len() > top {
            let rest = self.sources[top..]
                .iter()
                .fold(0u64, |a, r| a.saturating_add(r.bytes));
            let _ = writeln!(
                s,
                "     {:<40} {:>11} {:>11} {:>11} {:>10.4} {:>6.1}%",
                format!("({} more sources)", self.sources.len() - top),
                human(rest),
                "",
                "",
                cost(rest, self.price_per_gb_usd),
                rest as f64 / total * 100.0
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
        if !self.nat_gateways.is_empty() {
            let _ = writeln!(s, "\nBy NAT gateway:");
            for g in &self.nat_gateways {
                let _ = writeln!(
                    s,
                    "  {:<24} {:<24} {:>11}  ${:.4}",
                    g.nat_gateway,
                    g.eni,
                    human(g.bytes),
                    g.cost_usd
                );
            }
        }
        if !self.destinations.is_empty() {
            let _ = writeln!(s, "\nBy destination:");
            for d in &self.destinations {
                let note = match d.destination.as_str() {
                    "S3" | "DYNAMODB" => "  avoidable: a gateway endpoint is free",
                    _ => "",
                };
                let _ = writeln!(
                    s,
                    "  {:<24} {:>11}  ${:.4}{note}",
                    d.destination,
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
