//! Which pod or node held an address at a given time, from the EKS control plane's audit log
//! (docs/attribution.md §4.2). Pure: audit events in (as the bytes of their JSON lines, in any
//! order), (address, time) → identity out.
//!
//! The identity rule, exactly:
//! - an address belongs to a pod from the `stageTimestamp` of the `pods/status` patch that
//!   reports it as `podIP`/`podIPs` (inclusive), until the earliest of (exclusive) the pod's final
//!   deletion (`gracePeriodSeconds: 0`), a status patch with phase `Succeeded` or `Failed`, or
//!   another owner's claim of that address. A graceful delete does not end it;
//! - a status patch's `hostIP`, and a pod whose `podIP` equals its `hostIP` (hostNetwork), claim
//!   the address for the node, named from the patching kubelet's `system:node:<name>` (or the
//!   pod's `spec.nodeName`); a `nodes/status` patch's `InternalIP` addresses claim it for that node;
//! - the workload comes from the pod's controller `ownerReferences`: a ReplicaSet named
//!   `<d>-<pod-template-hash>` is Deployment `d`, a Job named `<c>-<digits>` is CronJob `c`, any
//!   other controller is itself, and a pod with none is kind `Pod` under its own name. A pod whose
//!   create event never came is named from its delete's `responseObject`, else from its name;
//! - an address no claim covers at that time is unresolved: never guessed.
//!
//! Events arrive minutes late and in no order, so claims are kept sorted by time and every
//! question is answered from the whole set; [`Inventory::prune`] drops what ended longer ago than
//! the lateness window, which bounds memory.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::identity::{Identity, PodName, PodSource, Resolver, Sighting, SourceId, Sources};

/// Microseconds since the Unix epoch: audit timestamps have microseconds, and two claims of one
/// address within a second must keep their order.
pub type Micros = i64;

/// What a workload is: the controller that owns a pod, resolved through ReplicaSets and Jobs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    pub namespace: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Job`, `ReplicaSet`, `Pod`, ...
    pub kind: String,
    pub name: String,
}

/// A pod as the audit log has described it so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub workload: Workload,
    /// The node it ran on, when an event said.
    pub node: Option<String>,
    /// Where the workload came from: `true` once a create or delete gave the pod object.
    owner_known: bool,
    /// `spec.hostNetwork`: its addresses are its node's, whatever its claims say (decided when
    /// resolving, since the pod object may arrive after the status patches).
    host_network: bool,
    /// The earliest end (final deletion, terminal phase), when one was seen.
    ended: Option<Micros>,
    /// The names as a source carries them, built at the first resolution after the last change
    /// (the inventory does not change while it resolves).
    named: OnceLock<Arc<PodName>>,
}

impl Pod {
    fn named(&self) -> &Arc<PodName> {
        self.named.get_or_init(|| {
            Arc::new(PodName {
                namespace: self.namespace.clone(),
                kind: self.workload.kind.clone(),
                workload: self.workload.name.clone(),
                pod: self.name.clone(),
                node: self.node.clone(),
                uid: self.uid.clone(),
            })
        })
    }
}

/// Who holds an address at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    Pod(&'a Pod),
    Node(&'a str),
}

/// One audit event that says something about pods, nodes and addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
enum Fact {
    /// A `pods/status` patch.
    Status {
        time: Micros,
        pod: PodRef,
        node: Option<String>,
        pod_ips: Vec<IpAddr>,
        host_ip: Option<IpAddr>,
        terminal: bool,
    },
    /// A pod create, or a delete (final or graceful), with the pod object where the event has it.
    Object {
        time: Micros,
        pod: PodRef,
        object: Option<PodObject>,
        final_delete: bool,
    },
    /// A `nodes/status` patch's internal addresses.
    Node {
        time: Micros,
        name: String,
        ips: Vec<IpAddr>,
    },
}

/// How an event names its pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PodRef {
    uid: Option<String>,
    namespace: String,
    name: String,
}

/// What a pod object (a create's or delete's `responseObject`) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PodObject {
    uid: Option<String>,
    name: String,
    workload: Option<(String, String)>,
    node: Option<String>,
    host_network: bool,
}

/// Why an audit line was refused (it is counted and skipped, never guessed at).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("not an audit.k8s.io/v1 Event: {0}")]
    Json(String),
    #[error("bad stageTimestamp {0:?}: expected RFC 3339 (2024-05-01T12:34:56.123456Z)")]
    Time(String),
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "auditID", default)]
    audit_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    verb: Cow<'a, str>,
    #[serde(borrow, default)]
    stage: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "stageTimestamp", default)]
    stage_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "objectRef", default)]
    object_ref: Option<RawObjectRef<'a>>,
    #[serde(borrow, default)]
    user: Option<RawUser<'a>>,
    #[serde(rename = "responseStatus", default)]
    response_status: Option<RawStatus>,
    /// Read only once the event is known to matter: a refused request's response is a
    /// `Status` whose `status` is a string, and other resources' objects are anything.
    #[serde(borrow, rename = "requestObject", default)]
    request_object: Option<&'a RawValue>,
    #[serde(borrow, rename = "responseObject", default)]
    response_object: Option<&'a RawValue>,
}

/// `kind` alone, to read a response object only when it is a Pod.
#[derive(Deserialize)]
struct RawKind<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
}

fn object<'a>(raw: Option<&'a RawValue>) -> Result<Option<RawObject<'a>>, AuditError> {
    raw.map(|r| serde_json::from_str(r.get()))
        .transpose()
        .map_err(|e| AuditError::Json(e.to_string()))
}

#[derive(Deserialize)]
struct RawObjectRef<'a> {
    #[serde(borrow, default)]
    resource: Cow<'a, str>,
    #[serde(borrow, default)]
    subresource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Cow<'a, str>,
    #[serde(borrow, default)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    uid: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawUser<'a> {
    #[serde(borrow, default)]
    username: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default)]
    code: Option<u16>,
}

/// The parts of a request or response object natmeter reads: a pod, a status patch, a node
/// status patch or DeleteOptions, all in one shape (every field optional).
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawObject<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    metadata: Option<RawMeta<'a>>,
    #[serde(borrow)]
    spec: Option<RawSpec<'a>>,
    #[serde(borrow)]
    status: Option<RawPodStatus<'a>>,
    #[serde(rename = "gracePeriodSeconds")]
    grace_period_seconds: Option<i64>,
    /// DeleteOptions: the kubelet's final delete names the pod's uid here.
    #[serde(borrow)]
    preconditions: Option<RawMeta<'a>>,
}

/// `kubectl get pods -o json`: a `List` of Pods.
#[derive(Deserialize)]
struct RawList<'a> {
    #[serde(borrow)]
    items: Vec<RawObject<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMeta<'a> {
    #[serde(borrow)]
    uid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    labels: Option<FxHashMap<Cow<'a, str>, Cow<'a, str>>>,
    #[serde(borrow, rename = "ownerReferences")]
    owner_references: Option<Vec<RawOwner<'a>>>,
}

#[derive(Deserialize)]
struct RawOwner<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    controller: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSpec<'a> {
    #[serde(borrow, rename = "nodeName")]
    node_name: Option<Cow<'a, str>>,
    #[serde(rename = "hostNetwork")]
    host_network: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawPodStatus<'a> {
    #[serde(borrow, rename = "podIP")]
    pod_ip: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "podIPs")]
    pod_ips: Option<Vec<RawIp<'a>>>,
    #[serde(borrow, rename = "hostIP")]
    host_ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    phase: Option<Cow<'a, str>>,
    #[serde(borrow)]
    addresses: Option<Vec<RawAddress<'a>>>,
}

impl RawPodStatus<'_> {
    /// `podIP` and `podIPs`, each address once.
    fn addresses(&self) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = Vec::new();
        let listed = self.pod_ips.iter().flatten().map(|p| &*p.ip);
        for ip in self.pod_ip.as_deref().into_iter().chain(listed) {
            if let Ok(ip) = ip.parse() {
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
        }
        ips
    }

    fn host(&self) -> Option<IpAddr> {
        self.host_ip.as_deref().and_then(|h| h.parse().ok())
    }

    fn terminal(&self) -> bool {
        matches!(self.phase.as_deref(), Some("Succeeded" | "Failed"))
    }
}

#[derive(Deserialize)]
struct RawIp<'a> {
    #[serde(borrow)]
    ip: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawAddress<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    address: Cow<'a, str>,
}

/// Reads one audit event. `Ok(None)` for an event that says nothing about pod or node addresses
/// (another resource, another verb, a failed request, an earlier stage).
fn parse(line: &[u8]) -> Result<Option<Fact>, AuditError> {
    parse_event(line).map(|f| f.map(|(_, f)| f))
}

/// [`parse`], with the event's `auditID` (unique per request; retried deliveries repeat it).
fn parse_event(line: &[u8]) -> Result<Option<(Option<String>, Fact)>, AuditError> {
    let ev: RawEvent<'_> =
        serde_json::from_slice(line).map_err(|e| AuditError::Json(e.to_string()))?;
    let id = ev.audit_id.as_deref().map(str::to_string);
    Ok(fact(ev)?.map(|f| (id, f)))
}

fn fact(ev: RawEvent<'_>) -> Result<Option<Fact>, AuditError> {
    // Any JSON object reads as an event with every field missing: without this, a wrapper (an
    // export's `{"events":[…]}`) would pass as an event about nothing.
    if ev.kind.as_deref() != Some("Event") {
        return Err(AuditError::Json(format!(
            "kind is {:?}, not \"Event\"",
            ev.kind.as_deref().unwrap_or("missing")
        )));
    }
    if ev.stage.as_deref().is_some_and(|s| s != "ResponseComplete") {
        return Ok(None);
    }
    // A refused request changed nothing (a 409 on a uid precondition, a 404 on a gone pod).
    if ev
        .response_status
        .and_then(|s| s.code)
        .is_some_and(|c| !(200..300).contains(&c))
    {
        return Ok(None);
    }
    let Some(r) = ev.object_ref else {
        return Ok(None);
    };
    let sub = r.subresource.as_deref().unwrap_or_default();
    let relevant = matches!(
        (&*r.resource, sub, &*ev.verb),
        ("pods", "status", "patch" | "update")
            | ("pods", "", "create" | "delete")
            | ("nodes", "status", "patch" | "update")
    );
    if !relevant {
        return Ok(None);
    }
    let stamp = ev.stage_timestamp.as_deref().unwrap_or_default();
    let time = rfc3339_micros(stamp).ok_or_else(|| AuditError::Time(stamp.to_string()))?;
    let node_user = ev
        .user
        .as_ref()
        .and_then(|u| u.username.strip_prefix("system:node:"))
        .map(str::to_string);
    if r.resource == "nodes" {
        let status = object(ev.request_object)?
            .and_then(|o| o.status)
            .unwrap_or_default();
        let ips = status
            .addresses
            .unwrap_or_default()
            .iter()
            .filter(|a| a.kind == "InternalIP")
            .filter_map(|a| a.address.parse().ok())
            .collect();
        return Ok(Some(Fact::Node {
            time,
            name: r.name.into_owned(),
            ips,
        }));
    }
    let request = object(ev.request_object)?.unwrap_or_default();
    let mut pod = PodRef {
        uid: request
            .metadata
            .as_ref()
            .or(request.preconditions.as_ref())
            .and_then(|m| m.uid.as_deref())
            .or(r.uid.as_deref())
            .map(str::to_string),
        namespace: r.namespace.into_owned(),
        name: r.name.into_owned(),
    };
    if sub == "status" {
        let status = request.status.unwrap_or_default();
        return Ok(Some(Fact::Status {
            time,
            pod,
            node: node_user,
            pod_ips: status.addresses(),
            host_ip: status.host(),
            terminal: status.terminal(),
        }));
    }
    // A create's or delete's response is the Pod (a delete of a gone pod answers a Status).
    let is_pod = |raw: &&RawValue| {
        serde_json::from_str::<RawKind<'_>>(raw.get())
            .is_ok_and(|k| matches!(k.kind.as_deref(), None | Some("Pod")))
    };
    let object = object(ev.response_object.filter(is_pod))?.and_then(|o| pod_object(o, &pod));
    if let Some(o) = &object {
        // A controller's create names the pod only in the response (`generateName`).
        if pod.name.is_empty() {
            pod.name.clone_from(&o.name);
        }
        if pod.uid.is_none() {
            pod.uid.clone_from(&o.uid);
        }
    }
    Ok(Some(Fact::Object {
        time,
        pod,
        object,
        final_delete: ev.verb == "delete" && request.grace_period_seconds == Some(0),
    }))
}

fn pod_object(o: RawObject<'_>, r: &PodRef) -> Option<PodObject> {
    let meta = o.metadata?;
    let name = meta.name.as_deref().unwrap_or(&r.name).to_string();
    let hash = meta
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .map(|h| h.to_string());
    let workload = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| controller(&o.kind, &o.name, hash.as_deref()));
    let spec = o.spec.unwrap_or_default();
    Some(PodObject {
        uid: meta.uid.map(Cow::into_owned),
        name,
        workload,
        node: spec
            .node_name
            .map(Cow::into_owned)
            .filter(|n| !n.is_empty()),
        host_network: spec.host_network.unwrap_or(false),
    })
}

/// The workload behind a pod's controller.
fn controller(kind: &str, name: &str, template_hash: Option<&str>) -> (String, String) {
    let strip = |suffix: &str| name.strip_suffix(suffix)?.strip_suffix('-');
    match kind {
        "ReplicaSet" => match template_hash.and_then(strip) {
            Some(d) if !d.is_empty() => ("Deployment".into(), d.into()),
            _ => (kind.into(), name.into()),
        },
        "Job" => match name.rsplit_once('-') {
            Some((c, n))
                if !c.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                ("CronJob".into(), c.into())
            }
            _ => (kind.into(), name.into()),
        },
        _ => (kind.into(), name.into()),
    }
}

/// A node's holder index (see [`Inventory::holder_span`]) has this bit; a pod's does not.
/// Indexes stay below it and the next two bits.
const NODE_BIT: u32 = 1 << 31;
/// With [`NODE_BIT`]: no holder (see [`UNRESOLVED`]).
const NO_HOLDER_BIT: u32 = 1 << 30;
/// In a [`Sources::keyed`] key: the address is IPv6 (its 128 bits would otherwise collide with
/// an IPv4 address's 32).
const V6_BIT: u32 = 1 << 29;
/// The key of an address no claim covers.
const UNRESOLVED: u32 = NODE_BIT | NO_HOLDER_BIT;

/// The inventory is a resolver: a source is the pod or node holding the address at the record's
/// own time (docs/attribution.md §4.2), else `Unresolved`. The identity's strings are built once
/// per (address, holder) in a run; each record after that costs two hash lookups.
impl Resolver for Inventory {
    fn resolve(&self, seen: &Sighting<'_>, into: &mut Sources) -> SourceId {
        intern(
            seen.address,
            self.holder_span(seen.address, seen.time).0,
            into,
        )
    }

    /// The answer holds while the claim in force and the pod's end stay on the same side of the
    /// record's second (see [`Inventory::holder_span`]): a batch's records of one pod are then
    /// named with one lookup in the engine.
    fn resolve_span(&self, seen: &Sighting<'_>, into: &mut Sources) -> (SourceId, i64, i64) {
        let (holder, from, until) = self.holder_span(seen.address, seen.time);
        (intern(seen.address, holder, into), from, until)
    }
}

/// The interned identity of `address` held by `holder` (built once per run and holder).
fn intern(address: IpAddr, holder: Option<(u32, Holder<'_>)>, into: &mut Sources) -> SourceId {
    let (bits, v6) = match address {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 0),
        IpAddr::V6(a) => (u128::from(a), V6_BIT),
    };
    match holder {
        // An address's unresolved key and a pod's (address, index) name one identity each.
        None => into.keyed((bits, UNRESOLVED | v6), || Identity::Unresolved(address)),
        Some((k, Holder::Node(name))) => into.keyed((bits, k | v6), || Identity::Node {
            address,
            name: Arc::from(name),
        }),
        Some((k, Holder::Pod(p))) => into.keyed((bits, k | v6), || {
            Identity::Pod(PodSource {
                address,
                name: Arc::clone(p.named()),
            })
        }),
    }
}

/// Who claimed an address, from when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Pod(u32),
    Node(u32),
}

#[derive(Debug, Clone, Copy)]
struct Claim {
    from: Micros,
    owner: Owner,
}

/// What audit events were read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuditStats {
    pub events: u64,
    /// Events about pod or node addresses (the rest say nothing natmeter needs).
    pub used: u64,
    pub errors: u64,
}

/// Claims on addresses, the pods and nodes they name.
#[derive(Debug, Default)]
pub struct Inventory {
    pods: Vec<Pod>,
    by_uid: FxHashMap<String, u32>,
    nodes: Vec<String>,
    by_node: FxHashMap<String, u32>,
    /// Per address, sorted by `from`; a run of claims by one owner counts from its first.
    claims: FxHashMap<IpAddr, Vec<Claim>>,
    pub stats: AuditStats,
}

/// An audit event reduced to what the identity rule reads, for a store (the function's DynamoDB
/// table) to keep and give back: a few hundred bytes instead of the event's kilobytes, read back
/// by [`Inventory::add_stored`] into exactly the fact the event was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFact {
    /// The event's `auditID` (else a hash of the line): a retried batch writes the same id, so
    /// storing is idempotent.
    pub id: String,
    /// `stageTimestamp`, microseconds.
    pub time: Micros,
    /// The fact as JSON (versioned by its `f` tag's names).
    pub json: String,
}

impl StoredFact {
    /// One audit line's fact; `Ok(None)` for an event the rule does not read.
    pub fn of_line(line: &[u8]) -> Result<Option<StoredFact>, AuditError> {
        let Some((id, fact)) = parse_event(line)? else {
            return Ok(None);
        };
        let time = match &fact {
            Fact::Status { time, .. } | Fact::Object { time, .. } | Fact::Node { time, .. } => {
                *time
            }
        };
        let id = id.unwrap_or_else(|| {
            use std::hash::{Hash, Hasher};
            let mut h = rustc_hash::FxHasher::default();
            line.hash(&mut h);
            format!("line-{:016x}", h.finish())
        });
        let json = serde_json::to_string(&fact).map_err(|e| AuditError::Json(e.to_string()))?;
        Ok(Some(StoredFact { id, time, json }))
    }
}

impl Inventory {
    /// Adds a fact a store gave back ([`StoredFact::json`]). Adding one twice changes nothing.
    pub fn add_stored(&mut self, json: &str) -> Result<(), AuditError> {
        let fact: Fact = serde_json::from_str(json).map_err(|e| AuditError::Json(e.to_string()))?;
        self.stats.events += 1;
        self.stats.used += 1;
        self.add(fact);
        Ok(())
    }

    /// Adds one audit event (a JSON line). A line that is not an audit event is an error: it is
    /// counted in [`Inventory::stats`] and the caller decides how loudly to say so.
    pub fn add_line(&mut self, line: &[u8]) -> Result<(), AuditError> {
        self.stats.events += 1;
        match parse(line) {
            Ok(Some(fact)) => {
                self.stats.used += 1;
                self.add(fact);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                self.stats.errors += 1;
                Err(e)
            }
        }
    }

    fn add(&mut self, fact: Fact) {
        match fact {
            Fact::Status {
                time,
                pod,
                node,
                pod_ips,
                host_ip,
                terminal,
            } => {
                let node_id = node.as_deref().map(|n| self.node(n));
                let p = self.pod(&pod);
                if let Some(n) = &node {
                    self.pods[p as usize].node.get_or_insert_with(|| n.clone());
                }
                if let (Some(ip), Some(n)) = (host_ip, node_id) {
                    self.claim(ip, time, Owner::Node(n));
                }
                for ip in pod_ips {
                    // podIP == hostIP: a hostNetwork pod, which is the node.
                    if Some(ip) == host_ip {
                        if let Some(n) = node_id {
                            self.claim(ip, time, Owner::Node(n));
                        }
                    } else {
                        self.claim(ip, time, Owner::Pod(p));
                    }
                }
                if terminal {
                    self.end(p, time);
                }
            }
            Fact::Object {
                time,
                pod,
                object,
                final_delete,
            } => {
                let p = self.pod(&pod);
                if let Some(o) = object {
                    // Every node a pod names is a node of the table: a hostNetwork pod resolves
                    // to it, under the node's own key.
                    if let Some(n) = &o.node {
                        self.node(n);
                    }
                    let pod = &mut self.pods[p as usize];
                    if !pod.owner_known {
                        pod.owner_known = true;
                        if let Some((kind, name)) = o.workload {
                            pod.workload.kind = kind;
                            pod.workload.name = name;
                        }
                    }
                    if pod.node.is_none() {
                        pod.node = o.node;
                    }
                    pod.host_network |= o.host_network;
                }
                if final_delete {
                    self.end(p, time);
                }
            }
            Fact::Node { time, name, ips } => {
                let n = self.node(&name);
                for ip in ips {
                    self.claim(ip, time, Owner::Node(n));
                }
            }
        }
    }

    fn pod(&mut self, r: &PodRef) -> u32 {
        // Without a uid (never seen from EKS, but not impossible), namespace/name is the key.
        let key: Cow<'_, str> = match &r.uid {
            Some(uid) => Cow::Borrowed(uid),
            None => Cow::Owned(format!("{}/{}", r.namespace, r.name)),
        };
        if let Some(&i) = self.by_uid.get(&*key) {
            let pod = &mut self.pods[i as usize];
            // Whatever changes below, the names are built again when next resolved.
            pod.named = OnceLock::new();
            if pod.name.is_empty() && !r.name.is_empty() {
                pod.name.clone_from(&r.name);
                if !pod.owner_known {
                    pod.workload.name.clone_from(&r.name);
                }
            }
            return i;
        }
        let i = self.pods.len() as u32;
        self.pods.push(Pod {
            uid: r.uid.clone().unwrap_or_default(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            workload: Workload {
                namespace: r.namespace.clone(),
                kind: "Pod".into(),
                name: r.name.clone(),
            },
            node: None,
            owner_known: false,
            host_network: false,
            ended: None,
            named: OnceLock::new(),
        });
        self.by_uid.insert(key.into_owned(), i);
        i
    }

    fn node(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.by_node.get(name) {
            return i;
        }
        let i = self.nodes.len() as u32;
        self.nodes.push(name.to_string());
        self.by_node.insert(name.to_string(), i);
        i
    }

    fn end(&mut self, p: u32, time: Micros) {
        let e = &mut self.pods[p as usize].ended;
        *e = Some(e.map_or(time, |t| t.min(time)));
    }

    fn claim(&mut self, ip: IpAddr, from: Micros, owner: Owner) {
        let v = self.claims.entry(ip).or_default();
        let at = v.partition_point(|c| c.from <= from);
        // The same owner again just after: the run already counts from its first claim.
        if at > 0 && v[at - 1].owner == owner {
            return;
        }
        // The same owner just before the next claim: that claim now starts here.
        if at < v.len() && v[at].owner == owner {
            v[at].from = from;
            return;
        }
        v.insert(at, Claim { from, owner });
    }

    /// Who held `ip` at `time` (Unix seconds, a record's `start`): `None` when no claim covers it.
    ///
    /// A record's `start` has whole seconds: the record happened somewhere in the second
    /// `[time, time + 1)`. It is the holder's whose claim overlaps that second; when a claim hands
    /// the address over within it, the later claim's (the earlier holder was by then gone:
    /// the VPC CNI releases an address only after the pod's sandbox is torn down).
    pub fn resolve(&self, ip: IpAddr, time: i64) -> Option<Holder<'_>> {
        self.holder_span(ip, time).0.map(|(_, h)| h)
    }

    /// Who held `ip` at `time`, with the holder's index in this inventory (a pod's, or a node's
    /// with [`NODE_BIT`] set; a hostNetwork pod is its node, under the node's index), and the
    /// seconds `[from, until)` over which `ip` has that same answer: bounded by the claim in force (from the second it was made), the next claim
    /// (up to the second before it is made) and the pod's end (up to its second).
    fn holder_span(&self, ip: IpAddr, time: i64) -> (Option<(u32, Holder<'_>)>, i64, i64) {
        const S: i64 = 1_000_000;
        let Some(v) = self.claims.get(&ip) else {
            return (None, i64::MIN, i64::MAX);
        };
        let second = time.saturating_mul(S);
        let last = second.saturating_add(S - 1);
        let at = v.partition_point(|c| c.from <= last);
        // A record of second T sees the next claim once T*S + S-1 >= its start, i.e. from the
        // second its start falls in.
        let until_next = v.get(at).map_or(i64::MAX, |n| n.from.div_euclid(S));
        let Some(claim) = at.checked_sub(1).map(|i| v[i]) else {
            return (None, i64::MIN, until_next);
        };
        let from = claim.from.div_euclid(S);
        match claim.owner {
            Owner::Pod(p) => {
                let pod = &self.pods[p as usize];
                // Ended for the seconds T with end <= T*S, i.e. from the second after `end`
                // begins (the ceiling of end/S).
                let (ended_from, ended) = match pod.ended {
                    Some(e) => ((e.saturating_add(S - 1)).div_euclid(S), e <= second),
                    None => (i64::MAX, false),
                };
                if ended {
                    return (None, ended_from.max(from), until_next);
                }
                let until = until_next.min(ended_from);
                if let (true, Some(&n)) = (
                    pod.host_network,
                    pod.node.as_ref().and_then(|n| self.by_node.get(n)),
                ) {
                    let node = Holder::Node(&self.nodes[n as usize]);
                    return (Some((n | NODE_BIT, node)), from, until);
                }
                (Some((p, Holder::Pod(pod))), from, until)
            }
            Owner::Node(n) => (
                Some((n | NODE_BIT, Holder::Node(&self.nodes[n as usize]))),
                from,
                until_next,
            ),
        }
    }

    /// Reads `kubectl get pods -A -o json` (a `List` of Pods): each running pod's addresses are
    /// claimed for the whole of time, since a snapshot says nothing about when. Returns the number
    /// of pods read; the caller warns that such names are not time-aware.
    pub fn add_snapshot(&mut self, json: &[u8]) -> Result<usize, AuditError> {
        let list: RawList<'_> =
            serde_json::from_slice(json).map_err(|e| AuditError::Json(e.to_string()))?;
        let mut n = 0;
        for mut item in list.items {
            if item.kind.as_deref().is_some_and(|k| k != "Pod") {
                continue;
            }
            let meta = item.metadata.as_ref();
            let pod = PodRef {
                uid: meta.and_then(|m| m.uid.as_deref()).map(str::to_string),
                namespace: meta
                    .and_then(|m| m.namespace.as_deref())
                    .unwrap_or_default()
                    .to_string(),
                name: meta
                    .and_then(|m| m.name.as_deref())
                    .unwrap_or_default()
                    .to_string(),
            };
            let status = item.status.take().unwrap_or_default();
            let object = pod_object(item, &pod);
            let node = object.as_ref().and_then(|o| o.node.clone());
            self.add(Fact::Object {
                time: Micros::MIN,
                pod: pod.clone(),
                object,
                final_delete: false,
            });
            n += 1;
            // A running pod's addresses are claimed as by a status patch from the beginning of
            // time; a finished pod's address is free for others: it names nothing.
            if !status.terminal() {
                self.add(Fact::Status {
                    time: Micros::MIN,
                    pod,
                    node,
                    pod_ips: status.addresses(),
                    host_ip: status.host(),
                    terminal: false,
                });
            }
        }
        self.stats.events += n as u64;
        self.stats.used += n as u64;
        Ok(n)
    }

    /// Drops what ended before `cutoff` (microseconds): claims followed by another owner's claim
    /// from before it, and pods with no claim left that ended before it. Records older than the
    /// lateness window are then unresolved, as they would be anyway once their claims are gone.
    pub fn prune(&mut self, cutoff: Micros) {
        let pods = &self.pods;
        let pod_ended = |c: &Claim| match c.owner {
            Owner::Pod(p) => pods[p as usize].ended.is_some_and(|e| e < cutoff),
            Owner::Node(_) => false,
        };
        self.claims.retain(|_, v| {
            // Every claim before the last one from before the cutoff was ended by its successor,
            // before the cutoff.
            let keep_from = v.iter().rposition(|c| c.from < cutoff).unwrap_or(0);
            v.drain(..keep_from);
            !(v.len() == 1 && pod_ended(&v[0]))
        });
        // A pod with no claim left that ended before the cutoff is forgotten; one that has not
        // ended may still get an address. Pods are referred to by index, so the table is
        // compacted and the claims renumbered.
        let mut used = vec![false; self.pods.len()];
        for v in self.claims.values() {
            for c in v {
                if let Owner::Pod(p) = c.owner {
                    used[p as usize] = true;
                }
            }
        }
        let keep = |i: usize, pod: &Pod| match pod.ended {
            Some(e) => used[i] || e >= cutoff,
            None => true,
        };
        if self.pods.iter().enumerate().all(|(i, p)| keep(i, p)) {
            return;
        }
        let mut map = vec![u32::MAX; self.pods.len()];
        let old = std::mem::take(&mut self.pods);
        for (i, pod) in old.into_iter().enumerate() {
            if keep(i, &pod) {
                map[i] = self.pods.len() as u32;
                self.pods.push(pod);
            }
        }
        self.by_uid.retain(|_, i| {
            *i = map[*i as usize];
            *i != u32::MAX
        });
        for v in self.claims.values_mut() {
            for c in v {
                if let Owner::Pod(p) = &mut c.owner {
                    *p = map[*p as usize];
                }
            }
        }
    }

    pub fn pods(&self) -> usize {
        self.pods.len()
    }

    /// Addresses with at least one claim.
    pub fn addresses(&self) -> usize {
        self.claims.len()
    }
}

/// The start of an EKS audit log stream's name.
pub const AUDIT_STREAM_PREFIX: &str = "kube-apiserver-audit-";

/// Whether a subscription batch comes from an EKS cluster's audit log: log group
/// `/aws/eks/<cluster>/cluster`, stream `kube-apiserver-audit-<hex>` (the group's other streams
/// are the API server's, the authenticator's, the scheduler's... and say nothing about pods).
pub fn is_audit_batch(log_group: &str, log_stream: &str) -> bool {
    let cluster = log_group
        .strip_prefix("/aws/eks/")
        .and_then(|g| g.strip_suffix("/cluster"));
    matches!(cluster, Some(c) if !c.is_empty() && !c.contains('/'))
        && log_stream.starts_with(AUDIT_STREAM_PREFIX)
}

impl Inventory {
    /// Adds every event of an audit batch's payload; returns the errors (counted in
    /// [`Inventory::stats`] as well) with the log event's id, for the caller to report.
    pub fn add_payload(&mut self, p: &crate::sources::Payload<'_>) -> Vec<(String, AuditError)> {
        let mut errors = Vec::new();
        for e in &p.log_events {
            if let Err(err) = self.add_line(e.message.as_bytes()) {
                errors.push((e.id.to_string(), err));
            }
        }
        errors
    }
}

/// `2024-05-01T12:34:56.123456Z` (or with `+hh:mm`) in microseconds since the epoch.
pub fn rfc3339_micros(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0i64, |a, &c| a * 10 + i64::from(c - b'0')))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(secs * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const NODE: &str = "ip-10-0-1-5.ec2.internal";

    fn at(s: &str) -> String {
        format!("2025-11-03T10:{s}Z")
    }

    /// A kubelet's `pods/status` patch, as EKS logs it (level Request: the patch is the
    /// requestObject).
    fn status(time: &str, ns: &str, name: &str, uid: &str, status: Value) -> Vec<u8> {
        json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request",
            "auditID": "6d1f0a3e-0000-4000-8000-000000000001", "stage": "ResponseComplete",
            "requestURI": format!("/api/v1/namespaces/{ns}/pods/{name}/status"),
            "verb": "patch",
            "user": {"username": format!("system:node:{NODE}"), "groups": ["system:nodes", "system:authenticated"]},
            "sourceIPs": ["10.0.1.5"], "userAgent": "kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46",
            "objectRef": {"resource": "pods", "namespace": ns, "name": name, "apiVersion": "v1", "subresource": "status"},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestObject": {"metadata": {"uid": uid}, "status": status},
            "requestReceivedTimestamp": at(time), "stageTimestamp": at(time),
        })
        .to_string()
        .into_bytes()
    }

    fn running(ip: &str) -> Value {
        json!({"hostIP": "10.0.1.5", "hostIPs": [{"ip": "10.0.1.5"}], "phase": "Running",
               "podIP": ip, "podIPs": [{"ip": ip}]})
    }

    /// A pod object as a create's or delete's responseObject (level RequestResponse).
    fn pod(
        name: &str,
        uid: &str,
        owner: Option<(&str, &str)>,
        hash: Option<&str>,
        host_network: bool,
    ) -> Value {
        let mut labels = json!({"app": "web"});
        if let Some(h) = hash {
            labels["pod-template-hash"] = json!(h);
        }
        let owners = owner.map_or(json!([]), |(k, n)| {
            json!([{"apiVersion": "apps/v1", "kind": k, "name": n, "uid": "0000", "controller": true, "blockOwnerDeletion": true}])
        });
        json!({"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": name, "generateName": "x-", "namespace": "shop", "uid": uid, "labels": labels, "ownerReferences": owners},
               "spec": {"nodeName": NODE, "hostNetwork": host_network, "containers": [{"name": "c", "image": "nginx"}]},
               "status": {"phase": "Pending"}})
    }

    fn create(time: &str, object: Value) -> Vec<u8> {
        json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "stage": "ResponseComplete", "verb": "create",
            "requestURI": "/api/v1/namespaces/shop/pods",
            "user": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            // A controller's create uses generateName: objectRef.name is empty.
            "objectRef": {"resource": "pods", "namespace": "shop", "name": "", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 201},
            "requestObject": {"kind": "Pod", "apiVersion": "v1", "metadata": {"generateName": "x-"}},
            "responseObject": object,
            "requestReceivedTimestamp": at(time), "stageTimestamp": at(time),
        })
        .to_string()
        .into_bytes()
    }

    fn delete(time: &str, name: &str, uid: &str, grace: i64, object: Option<Value>) -> Vec<u8> {
        let mut ev = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "stage": "ResponseComplete", "verb": "delete",
            "requestURI": format!("/api/v1/namespaces/shop/pods/{name}"),
            "user": {"username": if grace == 0 { format!("system:node:{NODE}") } else { "system:serviceaccount:kube-system:replicaset-controller".into() }},
            "objectRef": {"resource": "pods", "namespace": "shop", "name": name, "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestObject": {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": grace,
                              "preconditions": {"uid": uid}},
            "requestReceivedTimestamp": at(time), "stageTimestamp": at(time),
        });
        if let Some(o) = object {
            ev["responseObject"] = o;
        }
        ev.to_string().into_bytes()
    }

    fn secs(t: &str) -> i64 {
        rfc3339_micros(&at(t)).unwrap().div_euclid(1_000_000)
    }

    fn inventory(lines: &[Vec<u8>]) -> Inventory {
        let mut inv = Inventory::default();
        for l in lines {
            inv.add_line(l).unwrap();
        }
        inv
    }

    fn who(inv: &Inventory, ip: &str, t: &str) -> Option<String> {
        inv.resolve(ip.parse().unwrap(), secs(t)).map(|h| match h {
            Holder::Pod(p) => format!(
                "{}/{} {}/{}",
                p.namespace, p.name, p.workload.kind, p.workload.name
            ),
            Holder::Node(n) => format!("node {n}"),
        })
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_micros("2025-11-03T10:00:00.123456Z"),
            Some(1_762_164_000_123_456)
        );
        assert_eq!(
            rfc3339_micros("2025-11-03T11:00:00.5+01:00"),
            Some(1_762_164_000_500_000)
        );
        for bad in [
            "",
            "2025-11-03",
            "2025-13-03T10:00:00Z",
            "2025-11-03T10:00:00",
            "2025-11-03T10:00:00.Z",
        ] {
            assert_eq!(rfc3339_micros(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_address_is_a_pods_from_its_status_patch_until_its_final_deletion() {
        let inv = inventory(&[
            create(
                "00:01.000000",
                pod(
                    "web-7d4b9c-x2x4q",
                    "u1",
                    Some(("ReplicaSet", "web-7d4b9c")),
                    Some("7d4b9c"),
                    false,
                ),
            ),
            status(
                "00:05.000000",
                "shop",
                "web-7d4b9c-x2x4q",
                "u1",
                running("10.0.1.23"),
            ),
            // Graceful delete: the pod still runs and holds its address.
            delete(
                "10:00.000000",
                "web-7d4b9c-x2x4q",
                "u1",
                30,
                Some(pod(
                    "web-7d4b9c-x2x4q",
                    "u1",
                    Some(("ReplicaSet", "web-7d4b9c")),
                    Some("7d4b9c"),
                    false,
                )),
            ),
            delete("10:31.000000", "web-7d4b9c-x2x4q", "u1", 0, None),
        ]);
        assert_eq!(who(&inv, "10.0.1.23", "00:04"), None, "before the patch");
        assert_eq!(
            who(&inv, "10.0.1.23", "00:05").as_deref(),
            Some("shop/web-7d4b9c-x2x4q Deployment/web"),
            "inclusive start"
        );
        assert_eq!(
            who(&inv, "10.0.1.23", "10:20").as_deref(),
            Some("shop/web-7d4b9c-x2x4q Deployment/web"),
            "a graceful delete does not end it"
        );
        assert_eq!(
            who(&inv, "10.0.1.23", "10:31"),
            None,
            "the final deletion ends it (exclusive)"
        );
        // The patching kubelet's node: its hostIP is the node.
        assert_eq!(
            who(&inv, "10.0.1.5", "00:05").as_deref(),
            Some(&*format!("node {NODE}"))
        );
    }

    #[test]
    fn out_of_order_and_reused_addresses() {
        // Pod a gets the address, fails; pod b gets it 20 s later. Delivered backwards.
        let mut lines = vec![
            status("01:00.000000", "shop", "a", "ua", running("10.0.1.40")),
            status(
                "03:00.000000",
                "shop",
                "a",
                "ua",
                json!({"phase": "Failed"}),
            ),
            status("03:20.000000", "shop", "b", "ub", running("10.0.1.40")),
        ];
        lines.reverse();
        let inv = inventory(&lines);
        assert_eq!(
            who(&inv, "10.0.1.40", "02:00").as_deref(),
            Some("shop/a Pod/a"),
            "a bare pod is kind Pod"
        );
        assert_eq!(
            who(&inv, "10.0.1.40", "03:10"),
            None,
            "terminal phase ends it"
        );
        assert_eq!(
            who(&inv, "10.0.1.40", "03:20").as_deref(),
            Some("shop/b Pod/b")
        );
        // Another pod's claim ends the first even without an end event of its own.
        let inv = inventory(&[
            status("01:00.000000", "shop", "a", "ua", running("10.0.1.41")),
            status("02:00.000000", "shop", "b", "ub", running("10.0.1.41")),
            status("02:30.000000", "shop", "a", "ua", running("10.0.1.41")),
        ]);
        assert_eq!(
            who(&inv, "10.0.1.41", "01:59").as_deref(),
            Some("shop/a Pod/a")
        );
        assert_eq!(
            who(&inv, "10.0.1.41", "02:10").as_deref(),
            Some("shop/b Pod/b")
        );
    }

    #[test]
    fn workloads_from_owners() {
        let cases = [
            (
                ("ReplicaSet", "api-5f6d8c7b9"),
                Some("5f6d8c7b9"),
                "Deployment/api",
            ),
            (("ReplicaSet", "legacy"), None, "ReplicaSet/legacy"),
            (("Job", "report-29012345"), None, "CronJob/report"),
            (("Job", "migrate"), None, "Job/migrate"),
            (("StatefulSet", "db"), None, "StatefulSet/db"),
            (("DaemonSet", "fluent-bit"), None, "DaemonSet/fluent-bit"),
        ];
        for (i, (owner, hash, want)) in cases.into_iter().enumerate() {
            let (uid, ip) = (format!("u{i}"), format!("10.0.2.{i}"));
            let inv = inventory(&[
                create("00:00.000000", pod("p", &uid, Some(owner), hash, false)),
                status("00:01.000000", "shop", "p", &uid, running(&ip)),
            ]);
            let got = who(&inv, &ip, "00:02").unwrap();
            assert!(got.ends_with(want), "{owner:?}: {got}");
        }
    }

    #[test]
    fn a_missing_create_is_named_from_the_delete() {
        let inv = inventory(&[
            status(
                "00:01.000000",
                "shop",
                "api-5f6d8c7b9-abcde",
                "u9",
                running("10.0.3.9"),
            ),
            delete(
                "05:00.000000",
                "api-5f6d8c7b9-abcde",
                "u9",
                30,
                Some(pod(
                    "api-5f6d8c7b9-abcde",
                    "u9",
                    Some(("ReplicaSet", "api-5f6d8c7b9")),
                    Some("5f6d8c7b9"),
                    false,
                )),
            ),
        ]);
        assert_eq!(
            who(&inv, "10.0.3.9", "01:00").as_deref(),
            Some("shop/api-5f6d8c7b9-abcde Deployment/api")
        );
        // With neither create nor delete: its own name, kind Pod.
        let inv = inventory(&[status(
            "00:01.000000",
            "shop",
            "lonely",
            "u8",
            running("10.0.3.8"),
        )]);
        assert_eq!(
            who(&inv, "10.0.3.8", "01:00").as_deref(),
            Some("shop/lonely Pod/lonely")
        );
    }

    #[test]
    fn host_network_pods_are_the_node() {
        let inv = inventory(&[
            create(
                "00:00.000000",
                pod("agent-x", "uh", Some(("DaemonSet", "agent")), None, true),
            ),
            status(
                "00:01.000000",
                "kube-system",
                "agent-x",
                "uh",
                running("10.0.1.5"),
            ),
        ]);
        assert_eq!(
            who(&inv, "10.0.1.5", "00:02").as_deref(),
            Some(&*format!("node {NODE}"))
        );
        // The podIP alone in a later patch (the hostIP came in an earlier one), and the pod
        // object after both: still the node, decided from spec.hostNetwork when resolving.
        let inv = inventory(&[
            status(
                "00:01.000000",
                "kube-system",
                "agent-y",
                "uy",
                json!({"hostIP": "10.0.1.5", "phase": "Pending"}),
            ),
            status(
                "00:02.000000",
                "kube-system",
                "agent-y",
                "uy",
                json!({"podIP": "10.0.1.77", "phase": "Running"}),
            ),
            create(
                "00:00.000000",
                pod("agent-y", "uy", Some(("DaemonSet", "agent")), None, true),
            ),
        ]);
        assert_eq!(
            who(&inv, "10.0.1.77", "00:03").as_deref(),
            Some(&*format!("node {NODE}"))
        );
    }

    #[test]
    fn node_status_and_ignored_events() {
        let node = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "stage": "ResponseComplete",
            "verb": "patch", "user": {"username": "system:node:ip-10-0-9-9.ec2.internal"},
            "objectRef": {"resource": "nodes", "name": "ip-10-0-9-9.ec2.internal", "apiVersion": "v1", "subresource": "status"},
            "responseStatus": {"code": 200},
            "requestObject": {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.9.9"}, {"type": "Hostname", "address": "ip-10-0-9-9"}]}},
            "stageTimestamp": at("00:00.000000"),
        });
        let mut inv = inventory(&[node.to_string().into_bytes()]);
        assert_eq!(
            who(&inv, "10.0.9.9", "00:01").as_deref(),
            Some("node ip-10-0-9-9.ec2.internal")
        );
        // A refused request, another resource, another stage: read, not used.
        let mut refused = json!(serde_json::from_slice::<Value>(&status(
            "00:00.000000",
            "shop",
            "z",
            "uz",
            running("10.0.4.4")
        ))
        .unwrap());
        refused["responseStatus"]["code"] = json!(409);
        let mut other = refused.clone();
        other["responseStatus"]["code"] = json!(200);
        other["objectRef"]["resource"] = json!("configmaps");
        let mut early = other.clone();
        early["objectRef"]["resource"] = json!("pods");
        early["stage"] = json!("RequestReceived");
        for v in [refused, other, early] {
            inv.add_line(v.to_string().as_bytes()).unwrap();
        }
        assert_eq!(
            inv.stats,
            AuditStats {
                events: 4,
                used: 1,
                errors: 0
            }
        );
        assert_eq!(who(&inv, "10.0.4.4", "00:01"), None);
        let e = inv.add_line(b"{\"stageTimestamp\": 5").unwrap_err();
        assert!(
            e.to_string().starts_with("not an audit.k8s.io/v1 Event"),
            "{e}"
        );
        let mut bad_time = serde_json::from_slice::<Value>(&status(
            "00:00.000000",
            "shop",
            "z",
            "uz",
            running("10.0.4.4"),
        ))
        .unwrap();
        bad_time["stageTimestamp"] = json!("yesterday");
        let e = inv.add_line(bad_time.to_string().as_bytes()).unwrap_err();
        assert_eq!(e, AuditError::Time("yesterday".into()));
        assert_eq!(inv.stats.errors, 2);
    }

    #[test]
    fn prune_forgets_what_ended_before_the_window() {
        let mut inv = inventory(&[
            status("00:00.000000", "shop", "old", "u1", running("10.0.5.1")),
            delete("01:00.000000", "old", "u1", 0, None),
            status("02:00.000000", "shop", "new", "u2", running("10.0.5.1")),
            status("02:00.000000", "shop", "gone", "u3", running("10.0.5.2")),
            delete("03:00.000000", "gone", "u3", 0, None),
            status("04:00.000000", "shop", "live", "u4", running("10.0.5.3")),
        ]);
        assert_eq!(inv.addresses(), 4);
        inv.prune(rfc3339_micros(&at("30:00.000000")).unwrap());
        // 10.0.5.1 keeps only its current claim, 10.0.5.2 is gone, the live pod and node stay.
        assert_eq!(inv.addresses(), 3);
        assert_eq!(who(&inv, "10.0.5.1", "00:30"), None);
        assert_eq!(
            who(&inv, "10.0.5.1", "40:00").as_deref(),
            Some("shop/new Pod/new")
        );
        assert_eq!(who(&inv, "10.0.5.2", "02:30"), None);
        assert_eq!(
            who(&inv, "10.0.5.3", "40:00").as_deref(),
            Some("shop/live Pod/live")
        );
        assert_eq!(inv.pods(), 2, "the two ended pods are forgotten");
    }
}
