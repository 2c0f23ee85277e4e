//! A synthetic EKS cluster's flow logs, with the exact answer.
//!
//! The simulator decides conversations first (which pod talked to what, through which NAT
//! gateway, how many bytes each way) and only then writes the flow records AWS would write for
//! them: the four NAT-ENI records (A)–(D), the node-ENI records, pod-to-pod traffic, S3 and
//! DynamoDB, REJECT, NODATA, SKIPDATA, IPv6 and a few malformed lines. The ground truth is summed
//! from the conversations, never from the engine, so comparing the two tests the engine.
//!
//! With [`SimConfig::cluster`] the pods come and go (cluster.rs): the conversations are those of
//! the pods holding their addresses at the time, the control plane's audit log says who held
//! what, and the truth is also summed per workload, node or Unresolved.
//!
//! Owns: synthetic traffic and its truth, for the tests, `natmeter simulate` and `make bench`.
//! Must never: be linked into the function (it brings `rand`; `cargo tree -p natmeter-lambda -i
//! rand` finds nothing), or compute its truth with the engine it is there to check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use flowlog::Format;

use natmeter_core::topology::{Connectivity, NatGateway, Subnet, Topology, DEFAULT_PRIVATE_CIDRS};

mod cluster;

use cluster::Ident;
pub use cluster::{civil, rfc3339, AuditLine, ClusterConfig};

/// What the flow log covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A VPC-wide flow log: node ENIs too (their batches must be skipped).
    Vpc,
    /// Dedicated flow logs on the NAT gateway ENIs only.
    NatEnis,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub pods: usize,
    pub nodes: usize,
    pub nat_gateways: usize,
    pub minutes: usize,
    /// `AWS_VPC_K8S_CNI_EXTERNALSNAT`: when false, the node SNATs pod traffic to its own IP.
    pub external_snat: bool,
    pub scope: Scope,
    /// Unix seconds of the first minute (rounded down to a minute).
    pub start: i64,
    /// Shuffle the format's field order (any order must work).
    pub shuffle_format: bool,
    /// Largest decoded payload per event; CloudWatch's async invoke limit is 1 MB.
    pub max_batch_bytes: usize,
    /// Start a new batch at every minute, as a 1-minute flow log delivers them.
    pub batch_per_minute: bool,
    /// Make gateway 0 a private NAT gateway (`connectivity_type = private`): its conversations
    /// go to other private networks, so both sides of its records are private addresses.
    pub private_nat: bool,
    /// An EKS cluster whose pods come and go, with its audit log and the truth per workload;
    /// `None`: fixed pods known only by address, as before clusters were simulated.
    pub cluster: Option<ClusterConfig>,
    /// AWS destinations in more than one region, named by the simulator's `ip-ranges.json`
    /// ([`Simulation::ip_ranges_json`]): a third of the S3 traffic goes to S3 in eu-west-1, and a
    /// quarter of the S3 and DynamoDB conversations carry `-` in `pkt-*-aws-service` (the field
    /// is sometimes empty even for S3). The truth by service and region is
    /// [`Simulation::aws_truth`]. Off: the traffic of earlier versions, draw for draw.
    pub aws_regions: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            pods: 40,
            nodes: 4,
            nat_gateways: 2,
            minutes: 5,
            external_snat: true,
            scope: Scope::Vpc,
            start: 1_764_547_200, // 2025-12-01T00:00:00Z
            shuffle_format: false,
            max_batch_bytes: 1_000_000,
            batch_per_minute: false,
            private_nat: false,
            cluster: None,
            aws_regions: false,
        }
    }
}

/// The format the simulator writes: the module's recommended NAT format plus time and status.
pub const SIM_FIELDS: &[&str] = &[
    "version",
    "account-id",
    "region",
    "vpc-id",
    "az-id",
    "subnet-id",
    "instance-id",
    "interface-id",
    "flow-direction",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "traffic-path",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "type",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthTotals {
    pub bytes: u64,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub packets: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthBatches {
    pub read: u64,
    pub control_messages: u64,
    pub skipped_not_nat: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthRecords {
    pub read: u64,
    pub counted: u64,
    pub public_side: u64,
    pub not_nat: u64,
    pub rejected: u64,
    pub no_data: u64,
    #[serde(default)]
    pub skip_data: u64,
    pub zero_bytes: u64,
    #[serde(default)]
    pub ambiguous: u64,
    pub parse_errors: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthDestination {
    pub destination: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthSource {
    pub source: String,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub bytes: u64,
    pub packets: u64,
    pub destinations: Vec<TruthDestination>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthGateway {
    pub nat_gateway: String,
    pub eni: String,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub bytes: u64,
}

/// NAT bytes per workload (or node, or Unresolved), as the audit log's identity rule names them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthIdentity {
    pub namespace: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Job`, `ReplicaSet`, `Pod`, `Node`
    /// or `Unresolved`.
    pub kind: String,
    pub name: String,
    pub outbound_bytes: u64,
    pub inbound_bytes: u64,
    pub bytes: u64,
}

/// `truth.json`: what a correct engine must report for the simulated events.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Truth {
    pub schema: String,
    pub seed: u64,
    pub region: String,
    pub price_per_gb_usd: f64,
    pub log_format: String,
    pub external_snat: bool,
    pub totals: TruthTotals,
    pub batches: TruthBatches,
    pub records: TruthRecords,
    pub sources: Vec<TruthSource>,
    pub nat_gateways: Vec<TruthGateway>,
    pub destinations: Vec<TruthDestination>,
    /// Processed bytes per flow minute (Unix seconds), for metric checks.
    pub minutes: BTreeMap<i64, u64>,
    /// With a cluster: every NAT byte's owner at the record's start, biggest first. Left out of
    /// truth.json when empty, so a run without a cluster writes what it always wrote.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<TruthIdentity>,
}

/// The cross-AZ share of the NAT bytes (the inter-AZ surcharge), from the simulator's own
/// address plan: a conversation's bytes cross when its VPC-side address (the pod's, or the
/// node's own under SNAT) is in a node subnet of [`Simulation::subnets`] whose AZ differs from
/// the gateway's `az_id`. Addresses outside every subnet (a cluster's unknown instances) never
/// cross. Not part of truth.json; see [`Simulation::cross_az_truth`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthCrossAz {
    pub bytes: u64,
    /// Per NAT-processed source address (every source of the truth, 0 when none crosses).
    pub by_source: BTreeMap<String, u64>,
    /// Per gateway id (every simulated gateway).
    pub by_gateway: BTreeMap<String, u64>,
}

/// One Lambda event file.
#[derive(Debug, Clone)]
pub struct SimEvent {
    pub file_name: String,
    pub log_stream: String,
    /// `{"awslogs":{"data":"..."}}`
    pub json: String,
    pub decoded_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct Simulation {
    pub gateways: Vec<NatGateway>,
    pub log_format: String,
    pub events: Vec<SimEvent>,
    pub truth: Truth,
    /// With a cluster: its audit log in delivery order (late, and shuffled where delivery times
    /// tie); empty without one.
    pub audit: Vec<AuditLine>,
    audit_log_group: String,
    subnets: Vec<Subnet>,
    cross_az: TruthCrossAz,
    aws: TruthAws,
}

/// The NAT bytes by AWS service and region, as AWS's ranges name the remotes (the simulator's
/// [`Simulation::ip_ranges_json`]), and the part a gateway endpoint would take off the NAT
/// gateways: S3 and DynamoDB in the simulated region, us-east-1. Not part of truth.json; see
/// [`Simulation::aws_truth`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthAws {
    /// Biggest first, then by name and region, as the report orders them.
    pub destinations: Vec<TruthAwsDestination>,
    pub avoidable_bytes: u64,
    /// The INTERNET bytes (remotes no AWS range holds) by the remote's /24, biggest first.
    pub remote_prefixes: Vec<TruthPrefix>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthPrefix {
    pub prefix: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TruthAwsDestination {
    pub destination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub bytes: u64,
}

/// The region every simulated record is in (the flow log's `region` field and truth.json's).
const REGION: &str = "us-east-1";

/// The simulator's AWS address ranges, in `ip-ranges.json`'s shape: S3 and DynamoDB in
/// us-east-1 (inside AMAZON prefixes, as AWS lists them), S3 in eu-west-1, and nothing for the
/// documentation ranges its internet traffic goes to.
const IP_RANGES: &[(&str, &str, &str)] = &[
    ("52.216.0.0/14", "us-east-1", "AMAZON"),
    ("52.216.0.0/15", "us-east-1", "S3"),
    ("52.218.0.0/17", "eu-west-1", "AMAZON"),
    ("52.218.0.0/17", "eu-west-1", "S3"),
    ("3.218.180.0/22", "us-east-1", "AMAZON"),
    ("3.218.180.0/22", "us-east-1", "DYNAMODB"),
];

struct Node {
    ip: Ipv4Addr,
    ipv6: Ipv6Addr,
    eni: String,
    instance: String,
    subnet: String,
    az: usize,
    /// Its address (and its pods') is in [`Simulation::subnets`]; false for a cluster's
    /// instances outside it, whose AZ the subnets do not tell.
    listed: bool,
}

struct Pod {
    ip: Ipv4Addr,
    node: usize,
    /// Heavy-tailed traffic weight: a few pods spend most of the money, as in real clusters.
    weight: f64,
}

const AZS: [&str; 3] = ["use1-az1", "use1-az2", "use1-az4"];
const ACCOUNT: &str = "123456789012";
const VPC: &str = "vpc-0a1b2c3d4e5f60718";

/// One record as AWS would write it, before rendering in the format's order.
#[derive(Clone)]
struct Rec {
    eni: String,
    instance: Option<String>,
    subnet: String,
    az: &'static str,
    direction: &'static str,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: u16,
    dport: u16,
    proto: u8,
    pkt_src: Option<IpAddr>,
    pkt_dst: Option<IpAddr>,
    svc_src: Option<&'static str>,
    svc_dst: Option<&'static str>,
    path: Option<u8>,
    packets: Option<u64>,
    bytes: Option<u64>,
    start: i64,
    end: i64,
    action: Option<&'static str>,
    status: &'static str,
}

enum Corrupt {
    None,
    DropField,
    BadSrcAddr,
    NegativeBytes,
}

fn hex_id(rng: &mut ChaCha8Rng, prefix: &str) -> String {
    let mut s = String::from(prefix);
    for _ in 0..17 {
        let _ = write!(s, "{:x}", rng.gen_range(0..16u8));
    }
    s
}

fn opt<T: std::fmt::Display>(s: &mut String, v: Option<T>) {
    match v {
        Some(v) => {
            let _ = write!(s, "{v}");
        }
        None => s.push('-'),
    }
}

impl Rec {
    fn render(&self, fields: &[&str], corrupt: &Corrupt) -> String {
        let mut s = String::with_capacity(256);
        let n = fields.len() - usize::from(matches!(corrupt, Corrupt::DropField));
        for (i, f) in fields[..n].iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            let nodata = self.status != "OK";
            match *f {
                "version" => s.push('5'),
                "account-id" => s.push_str(ACCOUNT),
                "region" => s.push_str(REGION),
                "vpc-id" => s.push_str(VPC),
                "az-id" => s.push_str(self.az),
                "subnet-id" => s.push_str(&self.subnet),
                "instance-id" => opt(&mut s, self.instance.as_deref()),
                "interface-id" => s.push_str(&self.eni),
                "flow-direction" => opt(&mut s, (!nodata).then_some(self.direction)),
                "srcaddr" if matches!(corrupt, Corrupt::BadSrcAddr) => s.push_str("10.0.300.7"),
                "srcaddr" => opt(&mut s, self.src),
                "dstaddr" => opt(&mut s, self.dst),
                "srcport" => opt(&mut s, (!nodata).then_some(self.sport)),
                "dstport" => opt(&mut s, (!nodata).then_some(self.dport)),
                "protocol" => opt(&mut s, (!nodata).then_some(self.proto)),
                "pkt-srcaddr" => opt(&mut s, self.pkt_src),
                "pkt-dstaddr" => opt(&mut s, self.pkt_dst),
                "pkt-src-aws-service" => opt(&mut s, self.svc_src),
                "pkt-dst-aws-service" => opt(&mut s, self.svc_dst),
                "traffic-path" => opt(&mut s, self.path),
                "packets" => opt(&mut s, self.packets),
                "bytes" if matches!(corrupt, Corrupt::NegativeBytes) => s.push_str("-12"),
                "bytes" => opt(&mut s, self.bytes),
                "start" => {
                    let _ = write!(s, "{}", self.start);
                }
                "end" => {
                    let _ = write!(s, "{}", self.end);
                }
                "action" => opt(&mut s, self.action),
                "log-status" => s.push_str(self.status),
                "type" => opt(
                    &mut s,
                    (!nodata).then_some(match self.src {
                        Some(IpAddr::V6(_)) => "IPv6",
                        _ => "IPv4",
                    }),
                ),
                _ => s.push('-'),
            }
        }
        s
    }
}

#[derive(Default)]
struct SourceAcc {
    outbound: u64,
    inbound: u64,
    packets: u64,
    destinations: BTreeMap<String, u64>,
}

struct Builder<'c> {
    cfg: &'c SimConfig,
    fields: Vec<&'static str>,
    /// Records per ENI stream, with the log event timestamp (ms).
    streams: BTreeMap<String, Vec<(i64, String)>>,
    nat_streams: Vec<String>,
    truth: Truth,
    sources: BTreeMap<IpAddr, SourceAcc>,
    gateways: Vec<(u64, u64)>,
    destinations: BTreeMap<String, u64>,
    /// With a cluster: (outbound, inbound) bytes per owner.
    identities: BTreeMap<Ident, (u64, u64)>,
    /// Cross-AZ bytes per source and per gateway.
    cross_sources: BTreeMap<IpAddr, u64>,
    cross_gateways: Vec<u64>,
    /// NAT bytes by (service, region) as the ranges name them.
    aws: BTreeMap<(String, Option<String>), u64>,
    /// INTERNET bytes by the remote's /24.
    prefixes: BTreeMap<String, u64>,
}

impl Builder<'_> {
    fn emit(&mut self, rec: &Rec, corrupt: Corrupt) {
        let line = rec.render(&self.fields, &corrupt);
        let on_nat = self.nat_streams.iter().any(|s| s == &rec.eni);
        if !on_nat && self.cfg.scope == Scope::NatEnis {
            return;
        }
        if on_nat {
            let r = &mut self.truth.records;
            r.read += 1;
            if !matches!(corrupt, Corrupt::None) {
                r.parse_errors += 1;
            }
        }
        self.streams
            .entry(rec.eni.clone())
            .or_default()
            .push((rec.start * 1000, line));
    }

    /// Books one NAT-processed record in the truth (called for (A) and (D) only).
    #[allow(clippy::too_many_arguments)]
    fn book(
        &mut self,
        gw: usize,
        local: IpAddr,
        outbound: bool,
        dest: &str,
        bytes: u64,
        packets: u64,
        minute: i64,
        identity: Option<&Ident>,
        cross_az: bool,
    ) {
        let r = &mut self.truth.records;
        r.counted += 1;
        let crossed = self.cross_sources.entry(local).or_default();
        if cross_az {
            *crossed += bytes;
            self.cross_gateways[gw] += bytes;
        }
        debug_assert!(identity.is_some() || self.cfg.cluster.is_none());
        if let Some(id) = identity {
            let acc = self.identities.entry(id.clone()).or_default();
            if outbound {
                acc.0 += bytes;
            } else {
                acc.1 += bytes;
            }
        }
        let s = self.sources.entry(local).or_default();
        if outbound {
            s.outbound += bytes;
            self.gateways[gw].0 += bytes;
            self.truth.totals.outbound_bytes += bytes;
        } else {
            s.inbound += bytes;
            self.gateways[gw].1 += bytes;
            self.truth.totals.inbound_bytes += bytes;
        }
        s.packets += packets;
        *s.destinations.entry(dest.to_string()).or_default() += bytes;
        *self.destinations.entry(dest.to_string()).or_default() += bytes;
        self.truth.totals.bytes += bytes;
        self.truth.totals.packets += packets;
        *self.truth.minutes.entry(minute).or_default() += bytes;
    }
}

impl Simulation {
    /// The topology to run the engine on these events with (the simulated gateways and the
    /// default private ranges).
    pub fn topology(&self) -> Topology {
        let private =
            Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).expect("the default CIDRs parse");
        Topology::new(self.gateways.clone(), private).expect("simulated gateways are valid")
    }

    /// The subnets every simulated VPC address lives in, with their AZ ids (see
    /// [`Simulation::cross_az_truth`] for what is left out).
    pub fn subnets(&self) -> &[Subnet] {
        &self.subnets
    }

    /// [`Simulation::subnets`] as `NATMETER_SUBNETS` / `natmeter report --subnets` take them.
    pub fn subnets_json(&self) -> String {
        serde_json::to_string(&self.subnets).expect("serializing plain structs cannot fail")
    }

    /// The cross-AZ bytes a correct engine must report given [`Simulation::subnets`].
    pub fn cross_az_truth(&self) -> &TruthCrossAz {
        &self.cross_az
    }

    /// The NAT bytes by service and region, by [`Simulation::ip_ranges_json`].
    pub fn aws_truth(&self) -> &TruthAws {
        &self.aws
    }

    /// The AWS address ranges the simulated remotes are in, as an `ip-ranges.json`.
    pub fn ip_ranges_json() -> String {
        let prefixes: Vec<_> = IP_RANGES
            .iter()
            .map(|(p, r, s)| {
                serde_json::json!({"ip_prefix": p, "region": r, "service": s, "network_border_group": r})
            })
            .collect();
        serde_json::json!({
            "syncToken": "1764547200",
            "createDate": "2025-12-01-00-00-00",
            "prefixes": prefixes,
            "ipv6_prefixes": [],
        })
        .to_string()
    }

    /// The format the events are written in.
    pub fn format(&self) -> Format {
        Format::parse(&self.log_format).expect("the simulator writes a valid format")
    }

    /// The audit log group, `/aws/eks/<cluster>/cluster` (empty without a cluster).
    pub fn audit_log_group(&self) -> &str {
        &self.audit_log_group
    }

    /// The audit lines as a JSON-lines file, in delivery order.
    pub fn audit_jsonl(&self) -> String {
        let mut s = String::with_capacity(self.audit.iter().map(|l| l.json.len() + 1).sum());
        for l in &self.audit {
            s.push_str(&l.json);
            s.push('\n');
        }
        s
    }

    /// The audit lines as CloudWatch Logs subscription events of the cluster's log group: per
    /// stream, the lines delivered within ten seconds of a batch's first go in it (up to
    /// `max_batch_bytes` decoded), and a batch is sent when the next one of its stream starts.
    pub fn audit_events(&self, max_batch_bytes: usize) -> Vec<SimEvent> {
        const WINDOW_MS: i64 = 10_000;
        struct Open {
            first_ms: i64,
            size: usize,
            lines: Vec<(i64, String)>,
        }
        let group = self.audit_log_group.as_str();
        let mut open: BTreeMap<&str, Open> = BTreeMap::new();
        let mut events = Vec::new();
        for l in &self.audit {
            let stream = l.log_stream.as_str();
            let overhead = 256 + group.len() + stream.len();
            // The message is a JSON string in the payload: every quote and backslash is escaped.
            let escapes = l.json.bytes().filter(|b| matches!(b, b'"' | b'\\')).count();
            let add = l.json.len() + escapes + 110;
            let o = open.entry(stream).or_insert(Open {
                first_ms: l.delivered_at_ms,
                size: 0,
                lines: Vec::new(),
            });
            if !o.lines.is_empty()
                && (l.delivered_at_ms - o.first_ms >= WINDOW_MS
                    || overhead + o.size + add > max_batch_bytes)
            {
                let batch = std::mem::take(&mut o.lines);
                events.push(make_event(stream, group, batch, events.len()));
                o.size = 0;
            }
            if o.lines.is_empty() {
                o.first_ms = l.delivered_at_ms;
            }
            o.size += add;
            o.lines.push((l.stage_time_ms, l.json.clone()));
        }
        let mut rest: Vec<(&str, Open)> = open
            .into_iter()
            .filter(|(_, o)| !o.lines.is_empty())
            .collect();
        rest.sort_by_key(|(_, o)| o.first_ms);
        for (stream, o) in rest {
            events.push(make_event(stream, group, o.lines, events.len()));
        }
        for (i, e) in events.iter_mut().enumerate() {
            e.file_name = format!("audit-{i:05}-{}.json", e.log_stream);
        }
        events
    }
}

/// The simulator's address plan: NAT IPs in 10.0.0-63.x, node IPs in 10.0.64-127.x (200 a /24),
/// pod IPs in 10.0.128-255.x (250 a /24). Beyond these counts addresses would collide. A
/// cluster's instances outside it are 10.0.63.200-201 (above any NAT IP).
pub const MAX_NAT_GATEWAYS: usize = 64;
pub const MAX_NODES: usize = 64 * 200;
pub const MAX_PODS: usize = 128 * 250;

impl SimConfig {
    /// Refuses sizes the address plan cannot hold, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        for (name, value, max) in [
            ("pods", self.pods, MAX_PODS),
            ("nodes", self.nodes, MAX_NODES),
            ("nat-gateways", self.nat_gateways, MAX_NAT_GATEWAYS),
        ] {
            if !(1..=max).contains(&value) {
                return Err(format!(
                    "--{name} {value}: expected 1-{max} (the simulator's address plan holds at most {max})"
                ));
            }
        }
        if let Some(c) = &self.cluster {
            if c.max_audit_delay_secs < 0 {
                return Err(format!(
                    "cluster max_audit_delay_secs {}: expected 0 or more",
                    c.max_audit_delay_secs
                ));
            }
            if !(0.0..=1.0).contains(&c.drop_create_share) {
                return Err(format!(
                    "cluster drop_create_share {}: expected 0-1",
                    c.drop_create_share
                ));
            }
        }
        Ok(())
    }
}

/// Runs the simulation. Sizes beyond [`SimConfig::check`]'s limits are clamped to them.
pub fn simulate(cfg: &SimConfig) -> Simulation {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let g_count = cfg.nat_gateways.clamp(1, MAX_NAT_GATEWAYS);
    let gateways: Vec<NatGateway> = (0..g_count)
        .map(|g| {
            let mut private_ips = vec![IpAddr::V4(Ipv4Addr::new(
                10,
                0,
                g as u8,
                10 + (g as u8 % 200),
            ))];
            if g == 0 {
                // A secondary private IP: each is a NAT IP.
                private_ips.push(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 250)));
            }
            NatGateway {
                id: hex_id(&mut rng, "nat-"),
                eni: hex_id(&mut rng, "eni-"),
                private_ips,
                az_id: Some(AZS[g % AZS.len()].to_string()),
                connectivity_type: if cfg.private_nat && g == 0 {
                    Connectivity::Private
                } else {
                    Connectivity::Public
                },
            }
        })
        .collect();
    let nodes: Vec<Node> = (0..cfg.nodes.clamp(1, MAX_NODES))
        .map(|k| Node {
            ip: Ipv4Addr::new(10, 0, 64 + (k / 200) as u8, 10 + (k % 200) as u8),
            ipv6: Ipv6Addr::new(
                0x2600,
                0x1f18,
                0xabc,
                0x4a00 + (k as u16 % 3),
                0,
                0,
                0,
                10 + k as u16,
            ),
            eni: hex_id(&mut rng, "eni-"),
            instance: hex_id(&mut rng, "i-"),
            subnet: hex_id(&mut rng, "subnet-"),
            az: k % AZS.len(),
            listed: true,
        })
        .collect();
    let pods: Vec<Pod> = (0..cfg.pods.clamp(1, MAX_PODS))
        .map(|p| Pod {
            ip: Ipv4Addr::new(10, 0, 128 + (p / 250) as u8, 4 + (p % 250) as u8),
            node: p % nodes.len(),
            weight: 1.0 / (1.0 + p as f64).powf(0.8),
        })
        .collect();
    let mut fields: Vec<&'static str> = SIM_FIELDS.to_vec();
    if cfg.shuffle_format {
        fields.shuffle(&mut rng);
    }
    let log_format = fields
        .iter()
        .map(|f| format!("${{{f}}}"))
        .collect::<Vec<_>>()
        .join(" ");
    let nat_subnets: Vec<String> = (0..g_count).map(|_| hex_id(&mut rng, "subnet-")).collect();
    let mut b = Builder {
        cfg,
        fields,
        streams: BTreeMap::new(),
        nat_streams: gateways.iter().map(|g| g.eni.clone()).collect(),
        truth: Truth {
            schema: "natmeter.truth/v1".into(),
            seed: cfg.seed,
            region: "us-east-1".into(),
            price_per_gb_usd: 0.045,
            log_format: log_format.clone(),
            external_snat: cfg.external_snat,
            totals: TruthTotals::default(),
            batches: TruthBatches::default(),
            records: TruthRecords::default(),
            sources: vec![],
            nat_gateways: vec![],
            destinations: vec![],
            minutes: BTreeMap::new(),
            identities: vec![],
        },
        sources: BTreeMap::new(),
        gateways: vec![(0, 0); g_count],
        destinations: BTreeMap::new(),
        identities: BTreeMap::new(),
        cross_sources: BTreeMap::new(),
        cross_gateways: vec![0; g_count],
        aws: BTreeMap::new(),
        prefixes: BTreeMap::new(),
    };
    let start = cfg.start - cfg.start.rem_euclid(60);
    let mut nodes = nodes;
    let cluster = cfg.cluster.as_ref().map(|cc| {
        let ips: Vec<Ipv4Addr> = nodes.iter().map(|n| n.ip).collect();
        let cl = cluster::build(cc, cfg.seed, start, cfg.minutes, cfg.pods, &ips);
        if cc.unknown_sources {
            // Instances in the VPC but not in the cluster (a bastion, a build box): no audit
            // event names their addresses. Their own RNG keeps the cluster's traffic unchanged.
            let mut orng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x0075_7e1d_e000_0002);
            for i in 0..2usize {
                nodes.push(Node {
                    ip: Ipv4Addr::new(10, 0, 63, 200 + i as u8),
                    ipv6: Ipv6Addr::new(0x2600, 0x1f18, 0xabc, 0x4a00, 0, 0, 1, 1 + i as u16),
                    eni: hex_id(&mut orng, "eni-"),
                    instance: hex_id(&mut orng, "i-"),
                    subnet: hex_id(&mut orng, "subnet-"),
                    az: i % AZS.len(),
                    listed: false,
                });
            }
        }
        cl
    });
    let pod_nodes: Vec<(Ipv4Addr, usize)> = match &cluster {
        None => pods.iter().map(|p| (p.ip, p.node)).collect(),
        Some(cl) => cl.tenancies.iter().map(|t| (t.ip, t.node)).collect(),
    };
    let subnets = subnets_of(&gateways, &nodes, &pod_nodes);
    let env = Env {
        gateways: &gateways,
        nat_subnets: &nat_subnets,
        nodes: &nodes,
    };
    match &cluster {
        None => {
            for m in 0..cfg.minutes as i64 {
                let minute = start + m * 60;
                for pod in &pods {
                    if !rng.gen_bool((0.3 + 0.7 * pod.weight).min(1.0)) {
                        continue;
                    }
                    let kind: i32 = rng.gen_range(0..100);
                    let t0 = minute + rng.gen_range(0..50);
                    let t1 = t0 + rng.gen_range(1..10);
                    let sport = rng.gen_range(32768..60999u16);
                    let talk = Talk {
                        pod,
                        peers: &pods,
                        kind,
                        t0,
                        t1,
                        sport,
                        minute,
                        identity: None,
                    };
                    traffic(&mut b, &mut rng, &env, talk);
                }
                noise(&mut b, &mut rng, &env, minute);
            }
        }
        Some(cl) => {
            let peers: Vec<Pod> = cl
                .tenancies
                .iter()
                .map(|t| Pod {
                    ip: t.ip,
                    node: t.node,
                    weight: t.weight,
                })
                .collect();
            let node_ids: Vec<Ident> = cl.node_names.iter().map(|n| Ident::node(n)).collect();
            let unresolved = Ident::unresolved();
            let outsiders: Vec<Pod> = (cl.node_names.len()..nodes.len())
                .map(|k| Pod {
                    ip: nodes[k].ip,
                    node: k,
                    weight: 0.35,
                })
                .collect();
            for m in 0..cfg.minutes as i64 {
                let minute = start + m * 60;
                for (t, pod) in cl.tenancies.iter().zip(&peers) {
                    // The seconds this pod may start a record at within the minute. A record
                    // is resolved at its start, a whole second: the second must lie inside
                    // [claim, end), since a hand-over within it goes to the later claim.
                    let lo = minute.max(ceil_secs(t.from_us));
                    let hi = (minute + 50).min(t.until_us.div_euclid(1_000_000));
                    if lo >= hi || !rng.gen_bool((0.3 + 0.7 * pod.weight).min(1.0)) {
                        continue;
                    }
                    let kind: i32 = rng.gen_range(0..100);
                    // Now and then the first or last second of the tenancy: where an engine
                    // that resolves a second off, or at arrival, names the wrong pod.
                    let t0 = match rng.gen_range(0..8) {
                        0 if lo > minute => lo,
                        1 if hi < minute + 50 => hi - 1,
                        _ => rng.gen_range(lo..hi),
                    };
                    let t1 = t0 + rng.gen_range(1..10);
                    let sport = rng.gen_range(32768..60999u16);
                    let identity = if !cfg.external_snat || t.host_network {
                        &node_ids[t.node]
                    } else {
                        &t.ident
                    };
                    let talk = Talk {
                        pod,
                        peers: &peers,
                        kind,
                        t0,
                        t1,
                        sport,
                        minute,
                        identity: Some(identity),
                    };
                    traffic(&mut b, &mut rng, &env, talk);
                }
                for pod in &outsiders {
                    if !rng.gen_bool(0.5) {
                        continue;
                    }
                    // NAT traffic only: an outsider's other traffic would add nothing here.
                    let kind: i32 = rng.gen_range(12..100);
                    let t0 = minute + rng.gen_range(0..50);
                    let t1 = t0 + rng.gen_range(1..10);
                    let sport = rng.gen_range(32768..60999u16);
                    let talk = Talk {
                        pod,
                        peers: &peers,
                        kind,
                        t0,
                        t1,
                        sport,
                        minute,
                        identity: Some(&unresolved),
                    };
                    traffic(&mut b, &mut rng, &env, talk);
                }
                noise(&mut b, &mut rng, &env, minute);
            }
        }
    }
    let (audit, audit_log_group) = match cluster {
        Some(cl) => (cl.audit, cl.log_group),
        None => (Vec::new(), String::new()),
    };
    let mut sim = finish(b, gateways, log_format, cfg);
    sim.audit = audit;
    sim.audit_log_group = audit_log_group;
    sim.subnets = subnets;
    sim
}

/// The address plan as subnets: each listed node's address and its pods' (a pod's address is
/// in its node's subnet, so in its AZ) and each gateway's private IPs, as /32s since the plan
/// interleaves AZs within every /24. A cluster's instances outside it are left out.
fn subnets_of(
    gateways: &[NatGateway],
    nodes: &[Node],
    pod_nodes: &[(Ipv4Addr, usize)],
) -> Vec<Subnet> {
    let mut by_ip: BTreeMap<IpAddr, &'static str> = BTreeMap::new();
    for (g, gw) in gateways.iter().enumerate() {
        for ip in &gw.private_ips {
            by_ip.insert(*ip, AZS[g % AZS.len()]);
        }
    }
    for n in nodes.iter().filter(|n| n.listed) {
        by_ip.insert(n.ip.into(), AZS[n.az]);
    }
    for &(ip, node) in pod_nodes {
        let n = &nodes[node];
        if n.listed {
            by_ip.insert(ip.into(), AZS[n.az]);
        }
    }
    by_ip
        .into_iter()
        .map(|(ip, az)| Subnet {
            cidr: format!("{ip}/32"),
            az_id: az.to_string(),
        })
        .collect()
}

/// Microseconds to the first whole second at or after them.
fn ceil_secs(us: i64) -> i64 {
    us.div_euclid(1_000_000) + i64::from(us.rem_euclid(1_000_000) != 0)
}

/// What every minute's traffic draws on.
struct Env<'a> {
    gateways: &'a [NatGateway],
    nat_subnets: &'a [String],
    nodes: &'a [Node],
}

/// One pod's turn to talk in a minute, its kind and times already drawn.
struct Talk<'a> {
    pod: &'a Pod,
    peers: &'a [Pod],
    kind: i32,
    t0: i64,
    t1: i64,
    sport: u16,
    minute: i64,
    /// Whose NAT bytes these are (with a cluster).
    identity: Option<&'a Ident>,
}

fn traffic(b: &mut Builder<'_>, rng: &mut ChaCha8Rng, env: &Env<'_>, talk: Talk<'_>) {
    let Talk {
        pod,
        peers,
        kind,
        t0,
        t1,
        sport,
        minute,
        identity,
    } = talk;
    let (gateways, nodes, cfg) = (env.gateways, env.nodes, b.cfg);
    let g_count = gateways.len();
    let node = &nodes[pod.node];
    if kind < 8 {
        pod_to_pod(b, rng, pod, peers, nodes, t0, t1, sport);
        return;
    }
    if kind < 12 {
        ipv6_egress(b, rng, node, t0, t1, sport);
        return;
    }
    let (remote, svc, dport): (IpAddr, Option<&'static str>, u16) = if kind < 30 {
        let remote = if cfg.aws_regions && rng.gen_bool(1.0 / 3.0) {
            Ipv4Addr::new(52, 218, rng.gen_range(0..128), rng.gen()).into()
        } else {
            Ipv4Addr::new(52, 216, rng.gen(), rng.gen()).into()
        };
        (remote, Some("S3"), 443)
    } else if kind < 40 {
        (
            Ipv4Addr::new(3, 218, 180 + rng.gen_range(0..4), rng.gen()).into(),
            Some("DYNAMODB"),
            443,
        )
    } else {
        let nets = [[203, 0, 113], [198, 51, 100], [192, 0, 2]];
        let n = nets[rng.gen_range(0..3)];
        (
            Ipv4Addr::new(n[0], n[1], n[2], rng.gen_range(1..255)).into(),
            None,
            if rng.gen_bool(0.8) { 443 } else { 80 },
        )
    };
    let scale = 1.0 + 60.0 * pod.weight * pod.weight;
    let out_bytes = (rng.gen_range(200..20_000) as f64 * scale) as u64;
    let in_bytes = (rng.gen_range(500..200_000) as f64 * scale) as u64;
    let gw = node.az % g_count;
    // A private gateway reaches another private network (a peered VPC or on premises
    // behind a transit gateway), never an AWS service's public address.
    let (remote, svc) = if gateways[gw].connectivity_type == Connectivity::Private {
        let far: IpAddr = Ipv4Addr::new(10, 200, rng.gen(), rng.gen_range(1..255)).into();
        (far, None)
    } else {
        (remote, svc)
    };
    // What AWS's ranges say the remote is, and what the record's field says.
    let aws = ranges_of(remote);
    let svc = if cfg.aws_regions && svc.is_some() && rng.gen_bool(0.25) {
        None
    } else {
        svc
    };
    let nat_ip = if gw == 0 && rng.gen_bool(0.3) {
        gateways[0].private_ips[1]
    } else {
        gateways[gw].private_ips[0]
    };
    let local: IpAddr = if cfg.external_snat {
        pod.ip.into()
    } else {
        node.ip.into()
    };
    nat_conversation(
        b,
        rng,
        NatConv {
            gw,
            private: gateways[gw].connectivity_type == Connectivity::Private,
            eni: &gateways[gw].eni,
            subnet: &env.nat_subnets[gw],
            az: AZS[gw % AZS.len()],
            nat_ip,
            local,
            pod: pod.ip.into(),
            node,
            remote,
            svc,
            aws,
            sport,
            dport,
            out_bytes,
            in_bytes,
            t0,
            t1,
            minute,
            identity,
        },
    );
}

/// Per gateway and minute: scans, idle windows, capacity drops and the odd bad line.
fn noise(b: &mut Builder<'_>, rng: &mut ChaCha8Rng, env: &Env<'_>, minute: i64) {
    for (gw, g) in env.gateways.iter().enumerate() {
        nat_noise(b, rng, g, &env.nat_subnets[gw], AZS[gw % AZS.len()], minute);
    }
}

struct NatConv<'a> {
    gw: usize,
    /// The gateway is a private NAT gateway.
    private: bool,
    eni: &'a str,
    subnet: &'a str,
    az: &'static str,
    nat_ip: IpAddr,
    local: IpAddr,
    pod: IpAddr,
    node: &'a Node,
    remote: IpAddr,
    /// `pkt-*-aws-service` as the record carries it.
    svc: Option<&'static str>,
    /// The remote's (service, region) by the simulator's ranges.
    aws: Option<(&'static str, &'static str)>,
    sport: u16,
    dport: u16,
    out_bytes: u64,
    in_bytes: u64,
    t0: i64,
    t1: i64,
    minute: i64,
    identity: Option<&'a Ident>,
}

fn packets_of(bytes: u64) -> u64 {
    bytes / 1200 + 1
}

fn nat_conversation(b: &mut Builder<'_>, rng: &mut ChaCha8Rng, c: NatConv<'_>) {
    let (out_p, in_p) = (packets_of(c.out_bytes), packets_of(c.in_bytes));
    let nat = |direction, src, dst, pkt_src, pkt_dst, svc_src, svc_dst, path, bytes, packets| Rec {
        eni: c.eni.to_string(),
        instance: None,
        subnet: c.subnet.to_string(),
        az: c.az,
        direction,
        src: Some(src),
        dst: Some(dst),
        sport: c.sport,
        dport: c.dport,
        proto: 6,
        pkt_src: Some(pkt_src),
        pkt_dst: Some(pkt_dst),
        svc_src,
        svc_dst,
        path,
        packets: Some(packets),
        bytes: Some(bytes),
        start: c.t0,
        end: c.t1,
        action: Some("ACCEPT"),
        status: "OK",
    };
    // (A) local → NAT, private side: counted outbound.
    let a = nat(
        "ingress",
        c.local,
        c.nat_ip,
        c.local,
        c.remote,
        None,
        c.svc,
        None,
        c.out_bytes,
        out_p,
    );
    // (B) NAT → remote, public side.
    let bb = nat(
        "egress",
        c.nat_ip,
        c.remote,
        c.nat_ip,
        c.remote,
        None,
        c.svc,
        Some(8),
        c.out_bytes,
        out_p,
    );
    // (C) remote → NAT, public side.
    let cc = nat(
        "ingress", c.remote, c.nat_ip, c.remote, c.nat_ip, c.svc, None, None, c.in_bytes, in_p,
    );
    // (D) NAT → local, private side: counted inbound.
    let d = nat(
        "egress",
        c.nat_ip,
        c.local,
        c.remote,
        c.local,
        c.svc,
        None,
        Some(1),
        c.in_bytes,
        in_p,
    );
    let far_side = if c.private { "PRIVATE" } else { "INTERNET" };
    let dest = c.svc.unwrap_or(far_side);
    // With the ranges: the record's own service when it names one, else the ranges'.
    let aws_dest = (
        c.svc
            .or(c.aws.map(|(s, _)| s))
            .unwrap_or(far_side)
            .to_string(),
        c.aws.map(|(_, region)| region.to_string()),
    );
    for (rec, counted) in [(a, Some(true)), (bb, None), (cc, None), (d, Some(false))] {
        b.emit(&rec, Corrupt::None);
        if b.nat_streams.iter().any(|s| s == &rec.eni) {
            match counted {
                Some(outbound) => {
                    *b.aws.entry(aws_dest.clone()).or_default() += rec.bytes.unwrap_or(0);
                    if aws_dest.0 == "INTERNET" {
                        *b.prefixes.entry(slash24(c.remote)).or_default() += rec.bytes.unwrap_or(0);
                    }
                    b.book(
                        c.gw,
                        c.local,
                        outbound,
                        dest,
                        rec.bytes.unwrap_or(0),
                        rec.packets.unwrap_or(0),
                        c.minute,
                        c.identity,
                        c.node.listed && AZS[c.node.az] != c.az,
                    )
                }
                None => b.truth.records.public_side += 1,
            }
        }
    }
    // The node's own ENI sees the conversation twice more (srcaddr/dstaddr are its primary IP;
    // the pod IP is only in pkt-*, or the node IP again when the node SNATs).
    let n = c.node;
    let inner = if b.cfg.external_snat { c.pod } else { c.local };
    let mut node_rec =
        |direction, src, dst, pkt_src, pkt_dst, svc_src, svc_dst, path, bytes, packets| Rec {
            eni: n.eni.clone(),
            instance: Some(n.instance.clone()),
            subnet: n.subnet.clone(),
            az: AZS[n.az],
            direction,
            src: Some(src),
            dst: Some(dst),
            sport: c.sport,
            dport: c.dport,
            proto: 6,
            pkt_src: Some(pkt_src),
            pkt_dst: Some(pkt_dst),
            svc_src,
            svc_dst,
            path,
            packets: Some(packets),
            bytes: Some(bytes),
            start: c.t0 + rng.gen_range(0..3),
            end: c.t1,
            action: Some("ACCEPT"),
            status: "OK",
        };
    let node_ip: IpAddr = n.ip.into();
    b.emit(
        &node_rec(
            "egress",
            node_ip,
            c.remote,
            inner,
            c.remote,
            None,
            c.svc,
            Some(1),
            c.out_bytes,
            out_p,
        ),
        Corrupt::None,
    );
    b.emit(
        &node_rec(
            "ingress", c.remote, node_ip, c.remote, inner, c.svc, None, None, c.in_bytes, in_p,
        ),
        Corrupt::None,
    );
}

#[allow(clippy::too_many_arguments)]
fn pod_to_pod(
    b: &mut Builder<'_>,
    rng: &mut ChaCha8Rng,
    pod: &Pod,
    pods: &[Pod],
    nodes: &[Node],
    t0: i64,
    t1: i64,
    sport: u16,
) {
    let peer = &pods[rng.gen_range(0..pods.len())];
    let (na, nb) = (&nodes[pod.node], &nodes[peer.node]);
    let bytes = rng.gen_range(100..50_000);
    for (n, direction) in [(na, "egress"), (nb, "ingress")] {
        let rec = Rec {
            eni: n.eni.clone(),
            instance: Some(n.instance.clone()),
            subnet: n.subnet.clone(),
            az: AZS[n.az],
            direction,
            src: Some(na.ip.into()),
            dst: Some(nb.ip.into()),
            sport,
            dport: 8080,
            proto: 6,
            pkt_src: Some(pod.ip.into()),
            pkt_dst: Some(peer.ip.into()),
            svc_src: None,
            svc_dst: None,
            path: (direction == "egress").then_some(1),
            packets: Some(packets_of(bytes)),
            bytes: Some(bytes),
            start: t0,
            end: t1,
            action: Some("ACCEPT"),
            status: "OK",
        };
        b.emit(&rec, Corrupt::None);
    }
}

fn ipv6_egress(b: &mut Builder<'_>, rng: &mut ChaCha8Rng, n: &Node, t0: i64, t1: i64, sport: u16) {
    // IPv6 leaves through an egress-only internet gateway: never through a NAT gateway.
    let remote = IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        0x1234,
        rng.gen(),
        0,
        0,
        0,
        rng.gen(),
    ));
    let bytes = rng.gen_range(100..80_000);
    let rec = Rec {
        eni: n.eni.clone(),
        instance: Some(n.instance.clone()),
        subnet: n.subnet.clone(),
        az: AZS[n.az],
        direction: "egress",
        src: Some(n.ipv6.into()),
        dst: Some(remote),
        sport,
        dport: 443,
        proto: 6,
        pkt_src: Some(n.ipv6.into()),
        pkt_dst: Some(remote),
        svc_src: None,
        svc_dst: None,
        path: Some(8),
        packets: Some(packets_of(bytes)),
        bytes: Some(bytes),
        start: t0,
        end: t1,
        action: Some("ACCEPT"),
        status: "OK",
    };
    b.emit(&rec, Corrupt::None);
}

fn nat_noise(
    b: &mut Builder<'_>,
    rng: &mut ChaCha8Rng,
    g: &NatGateway,
    subnet: &str,
    az: &'static str,
    minute: i64,
) {
    let nat_ip = g.private_ips[0];
    let base = Rec {
        eni: g.eni.clone(),
        instance: None,
        subnet: subnet.to_string(),
        az,
        direction: "ingress",
        src: None,
        dst: None,
        sport: 0,
        dport: 0,
        proto: 6,
        pkt_src: None,
        pkt_dst: None,
        svc_src: None,
        svc_dst: None,
        path: None,
        packets: None,
        bytes: None,
        start: minute,
        end: minute + 59,
        action: None,
        status: "NODATA",
    };
    if rng.gen_bool(0.4) {
        // An internet scan of the NAT's address, dropped: REJECT.
        let remote: IpAddr = Ipv4Addr::new(198, 51, 100, rng.gen_range(1..255)).into();
        let rec = Rec {
            src: Some(remote),
            dst: Some(nat_ip),
            sport: rng.gen_range(1024..65535),
            dport: 22,
            pkt_src: Some(remote),
            pkt_dst: Some(nat_ip),
            packets: Some(1),
            bytes: Some(44),
            start: minute + 3,
            end: minute + 4,
            action: Some("REJECT"),
            status: "OK",
            ..base.clone()
        };
        b.emit(&rec, Corrupt::None);
        b.truth.records.rejected += 1;
    }
    for status in ["NODATA", "SKIPDATA"] {
        if rng.gen_bool(0.15) {
            b.emit(
                &Rec {
                    status,
                    ..base.clone()
                },
                Corrupt::None,
            );
            match status {
                "NODATA" => b.truth.records.no_data += 1,
                _ => b.truth.records.skip_data += 1,
            }
        }
    }
    // A private-side record without bytes: counted as zero_bytes, not as a source.
    if rng.gen_bool(0.1) {
        let local: IpAddr = Ipv4Addr::new(10, 0, 128, 4).into();
        let remote: IpAddr = Ipv4Addr::new(203, 0, 113, 9).into();
        let rec = Rec {
            src: Some(local),
            dst: Some(nat_ip),
            pkt_src: Some(local),
            pkt_dst: Some(remote),
            sport: 40000,
            dport: 443,
            packets: Some(0),
            bytes: Some(0),
            start: minute + 7,
            end: minute + 8,
            action: Some("ACCEPT"),
            status: "OK",
            ..base.clone()
        };
        b.emit(&rec, Corrupt::None);
        b.truth.records.zero_bytes += 1;
    }
    // Malformed lines: a missing field, a bad address, negative bytes on an (A) record.
    if rng.gen_bool(0.08) {
        let local: IpAddr = Ipv4Addr::new(10, 0, 128, 5).into();
        let remote: IpAddr = Ipv4Addr::new(203, 0, 113, 10).into();
        let rec = Rec {
            src: Some(local),
            dst: Some(nat_ip),
            pkt_src: Some(local),
            pkt_dst: Some(remote),
            sport: 40001,
            dport: 443,
            packets: Some(3),
            bytes: Some(999),
            start: minute + 9,
            end: minute + 10,
            action: Some("ACCEPT"),
            status: "OK",
            ..base
        };
        let corrupt = match rng.gen_range(0..3) {
            0 => Corrupt::DropField,
            1 => Corrupt::BadSrcAddr,
            _ => Corrupt::NegativeBytes,
        };
        b.emit(&rec, corrupt);
    }
}

fn sorted_destinations(m: BTreeMap<String, u64>) -> Vec<TruthDestination> {
    let mut v: Vec<_> = m
        .into_iter()
        .map(|(destination, bytes)| TruthDestination { destination, bytes })
        .collect();
    v.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.destination.cmp(&b.destination))
    });
    v
}

fn finish(
    mut b: Builder<'_>,
    gateways: Vec<NatGateway>,
    log_format: String,
    cfg: &SimConfig,
) -> Simulation {
    let mut sources: Vec<TruthSource> = std::mem::take(&mut b.sources)
        .into_iter()
        .map(|(ip, a)| TruthSource {
            source: ip.to_string(),
            outbound_bytes: a.outbound,
            inbound_bytes: a.inbound,
            bytes: a.outbound + a.inbound,
            packets: a.packets,
            destinations: sorted_destinations(a.destinations),
        })
        .collect();
    sources.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.source.cmp(&b.source)));
    b.truth.sources = sources;
    b.truth.destinations = sorted_destinations(std::mem::take(&mut b.destinations));
    b.truth.nat_gateways = gateways
        .iter()
        .zip(&b.gateways)
        .map(|(g, (o, i))| TruthGateway {
            nat_gateway: g.id.clone(),
            eni: g.eni.clone(),
            outbound_bytes: *o,
            inbound_bytes: *i,
            bytes: o + i,
        })
        .collect();

    let mut identities: Vec<TruthIdentity> = std::mem::take(&mut b.identities)
        .into_iter()
        .map(|(id, (outbound, inbound))| TruthIdentity {
            namespace: id.namespace,
            kind: id.kind,
            name: id.name,
            outbound_bytes: outbound,
            inbound_bytes: inbound,
            bytes: outbound + inbound,
        })
        .collect();
    identities.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name)))
    });
    b.truth.identities = identities;
    let cross_az = TruthCrossAz {
        bytes: b.cross_gateways.iter().sum(),
        by_source: std::mem::take(&mut b.cross_sources)
            .into_iter()
            .map(|(ip, n)| (ip.to_string(), n))
            .collect(),
        by_gateway: gateways
            .iter()
            .zip(&b.cross_gateways)
            .map(|(g, n)| (g.id.clone(), *n))
            .collect(),
    };

    let mut aws_destinations: Vec<TruthAwsDestination> = std::mem::take(&mut b.aws)
        .into_iter()
        .map(|((destination, region), bytes)| TruthAwsDestination {
            destination,
            region,
            bytes,
        })
        .collect();
    aws_destinations.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.destination.cmp(&b.destination))
            .then_with(|| a.region.cmp(&b.region))
    });
    let aws = TruthAws {
        avoidable_bytes: aws_destinations
            .iter()
            .filter(|d| {
                ["S3", "DYNAMODB"].contains(&d.destination.as_str())
                    && d.region.as_deref() == Some(REGION)
            })
            .map(|d| d.bytes)
            .sum(),
        destinations: aws_destinations,
        remote_prefixes: {
            let mut v: Vec<TruthPrefix> = std::mem::take(&mut b.prefixes)
                .into_iter()
                .map(|(prefix, bytes)| TruthPrefix { prefix, bytes })
                .collect();
            v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.prefix.cmp(&b.prefix)));
            v
        },
    };

    let mut events = Vec::new();
    let streams = std::mem::take(&mut b.streams);
    for (eni, mut recs) in streams {
        recs.sort_by_key(|r| r.0);
        let log_stream = format!("{eni}-all");
        let is_nat = b.nat_streams.contains(&eni);
        let mut batch: Vec<(i64, String)> = Vec::new();
        let mut size = 0usize;
        let overhead = 256 + log_stream.len();
        for (ts, line) in recs {
            let add = line.len() + 100;
            let new_minute = cfg.batch_per_minute
                && batch.last().is_some_and(|(t, _): &(i64, String)| {
                    t.div_euclid(60_000) != ts.div_euclid(60_000)
                });
            if !batch.is_empty() && (new_minute || overhead + size + add > cfg.max_batch_bytes) {
                events.push(make_event(
                    &log_stream,
                    FLOW_LOG_GROUP,
                    std::mem::take(&mut batch),
                    events.len(),
                ));
                size = 0;
            }
            size += add;
            batch.push((ts, line));
        }
        if !batch.is_empty() {
            events.push(make_event(&log_stream, FLOW_LOG_GROUP, batch, events.len()));
        }
        let _ = is_nat;
    }
    for e in &events {
        if b.nat_streams
            .iter()
            .any(|s| e.log_stream.starts_with(s.as_str()))
        {
            b.truth.batches.read += 1;
        } else {
            b.truth.batches.skipped_not_nat += 1;
        }
    }
    // Delivery is out of order across streams: shuffle the file order deterministically.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
    events.shuffle(&mut rng);
    for (i, e) in events.iter_mut().enumerate() {
        e.file_name = format!("{i:05}-{}.json", e.log_stream);
    }
    Simulation {
        gateways,
        log_format,
        events,
        truth: b.truth,
        audit: Vec::new(),
        audit_log_group: String::new(),
        subnets: Vec::new(),
        cross_az,
        aws,
    }
}

const FLOW_LOG_GROUP: &str = "/aws/vpc/flow-logs";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutPayload<'a> {
    message_type: &'a str,
    owner: &'a str,
    log_group: &'a str,
    log_stream: &'a str,
    subscription_filters: [&'a str; 1],
    log_events: Vec<OutEvent>,
}

#[derive(Serialize)]
struct OutEvent {
    id: String,
    timestamp: i64,
    message: String,
}

fn make_event(log_stream: &str, log_group: &str, batch: Vec<(i64, String)>, n: usize) -> SimEvent {
    let log_events = batch
        .into_iter()
        .enumerate()
        .map(|(i, (ts, message))| OutEvent {
            // CloudWatch's ids are ~56-digit decimal strings.
            id: format!("{:020}{:018}{:018}", ts, n, i),
            timestamp: ts,
            message,
        })
        .collect();
    let payload = OutPayload {
        message_type: "DATA_MESSAGE",
        owner: ACCOUNT,
        log_group,
        log_stream,
        subscription_filters: ["natmeter"],
        log_events,
    };
    let json = serde_json::to_vec(&payload).expect("serializing plain structs cannot fail");
    SimEvent {
        file_name: String::new(),
        log_stream: log_stream.to_string(),
        json: lambda_event(&json),
        decoded_bytes: json.len(),
    }
}

/// Wraps a decoded payload as CloudWatch Logs does: gzip, base64, `{"awslogs":{"data":...}}`.
pub fn lambda_event(payload_json: &[u8]) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(payload_json)
        .expect("writing to a Vec cannot fail");
    let gz = gz.finish().expect("writing to a Vec cannot fail");
    format!(
        r#"{{"awslogs":{{"data":"{}"}}}}"#,
        base64::engine::general_purpose::STANDARD.encode(gz)
    )
}

/// The (service, region) of `ip` by [`IP_RANGES`]: the longest prefix, a service over AMAZON.
fn ranges_of(ip: IpAddr) -> Option<(&'static str, &'static str)> {
    IP_RANGES
        .iter()
        .filter_map(|(p, r, s)| {
            let net: ipnet::IpNet = p.parse().ok()?;
            net.contains(&ip)
                .then_some((net.prefix_len(), *s != "AMAZON", *s, *r))
        })
        .max_by_key(|(len, named, _, _)| (*len, *named))
        .map(|(_, _, s, r)| (s, r))
}

/// The remote network an INTERNET destination is named by (docs/attribution.md §5.3): the /24
/// of an IPv4 address (`203.0.113.0/24`), the /48 of an IPv6 one.
fn slash24(ip: IpAddr) -> String {
    let len = if ip.is_ipv4() { 24 } else { 48 };
    ipnet::IpNet::new(ip, len)
        .expect("24 and 48 are valid prefix lengths")
        .trunc()
        .to_string()
}
