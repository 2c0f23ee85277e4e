//! A cluster that changes while it is metered: pods come and go on nodes, addresses are released
//! and handed to other pods, and the control plane's audit log says so, late and out of order
//! (docs/attribution.md §4.2).
//!
//! The plan comes first (which pod ran on which node, held which address from when to when) and
//! is the truth; the audit lines are written from it, never read back. The rule the engine applies
//! to those lines (crates/core/src/inventory.rs) is what the lines are shaped for, so the plan only
//! does what the rule can see: a pod's address is its own from its running status patch until its
//! end, and is handed to another pod only after that end.

use std::net::Ipv4Addr;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::MAX_PODS;

/// Turns the simulated cluster from fixed pods identified by address into one with workloads,
/// churn and an EKS audit log.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The EKS cluster's name: the audit log group is `/aws/eks/<name>/cluster`.
    pub name: String,
    /// Each audit line is delivered this many seconds after its `stageTimestamp` at most
    /// (uniformly from zero): EKS delivers control-plane logs minutes late.
    pub max_audit_delay_secs: i64,
    /// The share of the pods whose deletes are in the log that lose their create event; the
    /// rule must then name them from the delete's `responseObject`.
    pub drop_create_share: f64,
    /// Some NAT traffic from VPC addresses no audit event ever claims (instances outside the
    /// cluster): Unresolved.
    pub unknown_sources: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            name: "sim".into(),
            max_audit_delay_secs: 300,
            drop_create_share: 0.1,
            unknown_sources: true,
        }
    }
}

/// One line of the control plane's audit log, as CloudWatch Logs holds it.
#[derive(Debug, Clone)]
pub struct AuditLine {
    /// The event's `stageTimestamp` in milliseconds: its CloudWatch log event timestamp.
    pub stage_time_ms: i64,
    /// When CloudWatch Logs delivered it; the lines are sorted by this.
    pub delivered_at_ms: i64,
    /// `kube-apiserver-audit-<32 hex>`: one stream per API server instance.
    pub log_stream: String,
    /// One `audit.k8s.io/v1` Event, one line.
    pub json: String,
}

/// Whose NAT bytes they are, as the truth names them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ident {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

impl Ident {
    fn new(namespace: &str, kind: &str, name: &str) -> Ident {
        Ident {
            namespace: namespace.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    pub(crate) fn node(name: &str) -> Ident {
        Ident::new("", "Node", name)
    }

    pub(crate) fn unresolved() -> Ident {
        Ident::new("", "Unresolved", "")
    }
}

/// A pod's hold on an address, for the traffic: it may talk from `ip` at any second in
/// `[from_us, until_us)`.
pub(crate) struct Tenancy {
    pub ip: Ipv4Addr,
    pub node: usize,
    pub from_us: i64,
    /// `i64::MAX` when nothing ends it within the run.
    pub until_us: i64,
    pub weight: f64,
    /// The pod's workload (the truth under external SNAT, unless `host_network`).
    pub ident: Ident,
    pub host_network: bool,
}

pub(crate) struct Cluster {
    pub tenancies: Vec<Tenancy>,
    pub node_names: Vec<String>,
    pub audit: Vec<AuditLine>,
    pub log_group: String,
}

const SEC: i64 = 1_000_000;
const MS: i64 = 1_000;
const K8S: &str = "v1.31.4-eks-2d5f260";
const GIT: &str = "a78aa47";
/// Kubernetes' alphabet for generated names and template hashes (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub(crate) fn node_name(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("ip-{}-{}-{}-{}.ec2.internal", o[0], o[1], o[2], o[3])
}

/// The simulator's pod address plan (10.0.128-255.x), shared with the static pods.
fn pod_ip(g: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 128 + (g / 250) as u8, 4 + (g % 250) as u8)
}

fn suffix(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn hex(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    let v: u128 = rng.gen();
    // Version 4, RFC 4122 variant, as Kubernetes' uids are.
    let v = (v & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Days since the epoch to a civil date (year, month, day; Howard Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `2025-12-01T00:03:12.345678Z`, or without the fraction (object timestamps have seconds).
pub fn rfc3339(us: i64, micros: bool) -> String {
    let secs = us.div_euclid(SEC);
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    if micros {
        let f = us.rem_euclid(SEC);
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:06}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// JSON with its keys in the order written: the audit lines look like EKS's whatever features
/// serde_json was built with (its `Value` sorts keys unless `preserve_order` is on somewhere in
/// the build, which would change the simulator's bytes between builds).
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::Int(i) => s.serialize_i64(*i),
            J::Str(x) => s.serialize_str(x),
            J::Arr(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for x in v {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            J::Obj(v) => {
                let mut m = s.serialize_map(Some(v.len()))?;
                for (k, x) in v {
                    m.serialize_entry(k, x)?;
                }
                m.end()
            }
        }
    }
}

impl From<&str> for J {
    fn from(s: &str) -> J {
        J::Str(s.into())
    }
}
impl From<String> for J {
    fn from(s: String) -> J {
        J::Str(s)
    }
}
impl From<&String> for J {
    fn from(s: &String) -> J {
        J::Str(s.clone())
    }
}
impl From<i64> for J {
    fn from(i: i64) -> J {
        J::Int(i)
    }
}
impl From<bool> for J {
    fn from(b: bool) -> J {
        J::Bool(b)
    }
}
impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> J {
        J::Arr(v)
    }
}

impl J {
    fn push(&mut self, k: &'static str, v: impl Into<J>) {
        if let J::Obj(o) = self {
            o.push((k, v.into()));
        }
    }
}

macro_rules! obj {
    ($($k:literal => $v:expr),* $(,)?) => { J::Obj(vec![$(($k, J::from($v))),*]) };
}

/// Who made a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// A kube-controller-manager controller's service account.
    Controller(&'static str),
    /// A person with kubectl.
    User,
    Kubelet,
    Scheduler,
}

#[derive(Clone)]
struct OwnerRef {
    api_version: &'static str,
    kind: &'static str,
    name: String,
    uid: String,
}

/// What a workload's pods have in common.
#[derive(Clone)]
struct Template {
    namespace: &'static str,
    owner: Option<OwnerRef>,
    labels: Vec<(&'static str, String)>,
    ident: Ident,
    image: &'static str,
    creator: Who,
    restart_policy: &'static str,
    weight: f64,
    host_network: bool,
}

enum Name {
    /// `generateName`: the create's `objectRef.name` is empty, the name is in the response.
    Generate(String),
    Fixed(String),
}

#[derive(Clone, Copy)]
enum Placement {
    Any,
    On(usize),
    /// Where another pod ran (a StatefulSet pod's local volume keeps it on its node).
    Beside(usize),
}

enum Ending {
    /// Still running when the run ends.
    Runs,
    /// A Job's pod: a terminal status patch, and perhaps a cleanup (graceful, final) later.
    Completes {
        phase: &'static str,
        at: i64,
        cleanup: Option<(i64, i64)>,
    },
    /// Deleted while running: gracefully, perhaps a terminal patch as its containers stop, then
    /// the kubelet's final delete; perhaps a refused (409) repeat of that once the name is taken
    /// by a new pod.
    Deleted {
        by: Who,
        graceful: i64,
        terminal: Option<(&'static str, i64)>,
        fin: i64,
        conflict: Option<(i64, usize)>,
    },
}

struct Plan {
    t: Template,
    name: String,
    generate_name: Option<String>,
    uid: String,
    placement: Placement,
    create: i64,
    bind: i64,
    started: i64,
    /// The running status patch that reports the pod's address.
    claim: i64,
    ending: Ending,
}

impl Plan {
    /// When the pod's address stops being its own: the earliest ending event.
    fn end(&self) -> Option<i64> {
        match self.ending {
            Ending::Runs => None,
            Ending::Completes { at, .. } => Some(at),
            Ending::Deleted { terminal, fin, .. } => {
                Some(terminal.map_or(fin, |(_, t)| t.min(fin)))
            }
        }
    }
}

struct Deployment {
    base: Template,
    name: &'static str,
    pods: Vec<usize>,
}

struct Planner {
    rng: ChaCha8Rng,
    plans: Vec<Plan>,
}

impl Planner {
    fn spawn(&mut self, t: &Template, name: Name, placement: Placement, create: i64) -> usize {
        let rng = &mut self.rng;
        let (name, generate_name) = match name {
            Name::Generate(prefix) => (format!("{prefix}{}", suffix(rng, 5)), Some(prefix)),
            Name::Fixed(n) => (n, None),
        };
        let bind = create + rng.gen_range(2 * MS..40 * MS);
        let started = bind + rng.gen_range(20 * MS..400 * MS);
        let claim = started + rng.gen_range(600 * MS..4 * SEC);
        let mut t = t.clone();
        t.weight *= rng.gen_range(0.7..1.3);
        let uid = uuid(rng);
        self.plans.push(Plan {
            t,
            name,
            generate_name,
            uid,
            placement,
            create,
            bind,
            started,
            claim,
            ending: Ending::Runs,
        });
        self.plans.len() - 1
    }

    fn delete(&mut self, i: usize, by: Who, graceful: i64) {
        let rng = &mut self.rng;
        // SIGTERM handled in well under the 30 s grace period.
        let exit = graceful + rng.gen_range(500 * MS..20 * SEC);
        // Since Kubernetes 1.27 the kubelet reports a terminal phase before the final delete;
        // either event ends the address's tenancy, so both orders are written.
        let terminal = if rng.gen_bool(0.5) {
            Some((
                if rng.gen_bool(0.7) {
                    "Succeeded"
                } else {
                    "Failed"
                },
                exit,
            ))
        } else {
            None
        };
        let fin = exit + rng.gen_range(20 * MS..400 * MS);
        debug_assert!(graceful > self.plans[i].claim);
        self.plans[i].ending = Ending::Deleted {
            by,
            graceful,
            terminal,
            fin,
            conflict: None,
        };
    }

    fn fin(&self, i: usize) -> i64 {
        match self.plans[i].ending {
            Ending::Deleted { fin, .. } => fin,
            _ => unreachable!("only deleted pods have a final delete"),
        }
    }

    /// A ReplicaSet of the Deployment: its pods carry the template hash in their name and label.
    fn replica_set(&mut self, d: &Deployment) -> (Template, String) {
        let n = self.rng.gen_range(9..=10);
        let hash = suffix(&mut self.rng, n);
        let rs = format!("{}-{hash}", d.name);
        let mut t = d.base.clone();
        t.labels.push(("pod-template-hash", hash));
        t.owner = Some(OwnerRef {
            api_version: "apps/v1",
            kind: "ReplicaSet",
            name: rs.clone(),
            uid: uuid(&mut self.rng),
        });
        (t, format!("{rs}-"))
    }

    /// A rolling update (25% surge, 25% unavailable): a batch of new pods, and once they are
    /// ready, as many old ones deleted.
    fn rollout(&mut self, d: &mut Deployment, at: i64) {
        let (t, prefix) = self.replica_set(d);
        let old = std::mem::take(&mut d.pods);
        let step = old.len().div_ceil(4).max(1);
        let mut now = at;
        for chunk in old.chunks(step) {
            let mut ready = now;
            for _ in chunk {
                let create = now + self.rng.gen_range(0..300 * MS);
                let i = self.spawn(&t, Name::Generate(prefix.clone()), Placement::Any, create);
                ready = ready.max(self.plans[i].claim + self.rng.gen_range(SEC..3 * SEC));
                d.pods.push(i);
            }
            for &o in chunk {
                let graceful = ready + self.rng.gen_range(0..200 * MS);
                self.delete(o, Who::Controller("replicaset-controller"), graceful);
            }
            now = ready + self.rng.gen_range(200 * MS..SEC);
        }
    }

    /// One scheduled run of a CronJob: the Job `<cron>-<scheduled minute>` and its pods (a
    /// failed pod is replaced after the Job's 10 s back-off).
    fn cron_run(&mut self, base: &Template, cron: &str, scheduled: i64) -> Vec<usize> {
        let job = format!("{cron}-{}", scheduled.div_euclid(60 * SEC));
        let job_uid = uuid(&mut self.rng);
        let mut t = base.clone();
        t.labels = vec![
            ("batch.kubernetes.io/controller-uid", job_uid.clone()),
            ("batch.kubernetes.io/job-name", job.clone()),
            ("controller-uid", job_uid.clone()),
            ("job-name", job.clone()),
        ];
        t.owner = Some(OwnerRef {
            api_version: "batch/v1",
            kind: "Job",
            name: job.clone(),
            uid: job_uid,
        });
        let mut create = scheduled + self.rng.gen_range(300 * MS..1500 * MS);
        let mut pods = Vec::new();
        loop {
            let i = self.spawn(
                &t,
                Name::Generate(format!("{job}-")),
                Placement::Any,
                create,
            );
            let at = self.plans[i].claim + self.rng.gen_range(8 * SEC..40 * SEC);
            let failed = pods.is_empty() && self.rng.gen_bool(0.12);
            self.plans[i].ending = Ending::Completes {
                phase: if failed { "Failed" } else { "Succeeded" },
                at,
                cleanup: None,
            };
            pods.push(i);
            if !failed {
                return pods;
            }
            create = at + self.rng.gen_range(10 * SEC..12 * SEC);
        }
    }

    /// The CronJob's history limit: the pods of a Job three runs back are deleted by the garbage
    /// collector when a new Job starts.
    fn clean_up(&mut self, pods: &[usize], at: i64) {
        for &i in pods {
            let graceful = at + self.rng.gen_range(500 * MS..2 * SEC);
            let fin = graceful + self.rng.gen_range(50 * MS..500 * MS);
            if let Ending::Completes {
                at: done, cleanup, ..
            } = &mut self.plans[i].ending
            {
                debug_assert!(*done < graceful);
                *cleanup = Some((graceful, fin));
            }
        }
    }
}

/// How many pods of each kind: the cluster always has every kind, and the Deployments take what
/// is left of `pods`.
struct Sizes {
    web: usize,
    api: usize,
    db: usize,
    coredns: usize,
    legacy: usize,
    sync: bool,
}

fn sizes(pods: usize) -> Sizes {
    // A quarter of the address plan at most: surges, Jobs and released addresses not yet reused
    // must still fit.
    let b = pods.clamp(1, MAX_PODS / 4);
    let db = if b >= 30 { 3 } else { 2 };
    let coredns = if b >= 10 { 2 } else { 0 };
    let legacy = usize::from(b >= 12);
    let rest = b.saturating_sub(db + coredns + legacy + 2);
    Sizes {
        web: (rest * 3 / 5).max(1),
        api: (rest - rest * 3 / 5).max(1),
        db,
        coredns,
        legacy,
        sync: b >= 20,
    }
}

fn template(
    namespace: &'static str,
    app: &str,
    ident: Ident,
    image: &'static str,
    creator: Who,
    weight: f64,
) -> Template {
    Template {
        namespace,
        owner: None,
        labels: vec![("app", app.to_string())],
        ident,
        image,
        creator,
        restart_policy: "Always",
        weight,
        host_network: false,
    }
}

fn plan(rng: ChaCha8Rng, nodes: usize, pods: usize, run_start: i64, run_end: i64) -> Vec<Plan> {
    let mut p = Planner {
        rng,
        plans: Vec::new(),
    };
    let run = run_end - run_start;
    let s = sizes(pods);
    let early = |p: &mut Planner, from: i64| run_start - from + p.rng.gen_range(0..60 * SEC);
    // Every ReplicaSet's pods are created and deleted by this one controller.
    let rsc = Who::Controller("replicaset-controller");

    // A hostNetwork DaemonSet: its pods' address is the node's.
    let ds_uid = uuid(&mut p.rng);
    let rev = suffix(&mut p.rng, 10);
    let mut agent = template(
        "kube-system",
        "node-agent",
        Ident::new("kube-system", "DaemonSet", "node-agent"),
        "public.ecr.aws/natmeter/node-agent:1.4.2",
        Who::Controller("daemon-set-controller"),
        0.25,
    );
    agent.host_network = true;
    agent.labels.push(("controller-revision-hash", rev));
    agent.labels.push(("pod-template-generation", "1".into()));
    agent.owner = Some(OwnerRef {
        api_version: "apps/v1",
        kind: "DaemonSet",
        name: "node-agent".into(),
        uid: ds_uid,
    });
    for k in 0..nodes {
        let at = early(&mut p, 600 * SEC);
        p.spawn(
            &agent,
            Name::Generate("node-agent-".into()),
            Placement::On(k),
            at,
        );
    }

    let deployment =
        |ns: &'static str, name: &'static str, image: &'static str, weight: f64| Deployment {
            base: template(
                ns,
                name,
                Ident::new(ns, "Deployment", name),
                image,
                rsc,
                weight,
            ),
            name,
            pods: Vec::new(),
        };
    let mut deployments = vec![
        (
            deployment("shop", "web", "public.ecr.aws/nginx/nginx:1.27", 0.5),
            s.web,
            true,
        ),
        (
            deployment(
                "shop",
                "api",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/api:7f3c2e1",
                0.8,
            ),
            s.api,
            true,
        ),
        (
            deployment(
                "kube-system",
                "coredns",
                "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/coredns:v1.11.3-eksbuild.2",
                0.1,
            ),
            s.coredns,
            false,
        ),
    ];
    for (d, replicas, _) in &mut deployments {
        let (t, prefix) = p.replica_set(d);
        for _ in 0..*replicas {
            let at = early(&mut p, 500 * SEC);
            let i = p.spawn(&t, Name::Generate(prefix.clone()), Placement::Any, at);
            d.pods.push(i);
        }
    }

    // A ReplicaSet no Deployment owns (no template hash): it is its own workload.
    if s.legacy > 0 {
        let mut t = template(
            "shop",
            "legacy-cache",
            Ident::new("shop", "ReplicaSet", "legacy-cache"),
            "public.ecr.aws/docker/library/redis:6.2",
            rsc,
            0.2,
        );
        t.owner = Some(OwnerRef {
            api_version: "apps/v1",
            kind: "ReplicaSet",
            name: "legacy-cache".into(),
            uid: uuid(&mut p.rng),
        });
        let at = early(&mut p, 450 * SEC);
        p.spawn(
            &t,
            Name::Generate("legacy-cache-".into()),
            Placement::Any,
            at,
        );
    }

    // A StatefulSet: fixed names, created in order.
    let mut db = template(
        "shop",
        "db",
        Ident::new("shop", "StatefulSet", "db"),
        "public.ecr.aws/docker/library/postgres:16.4",
        Who::Controller("statefulset-controller"),
        0.3,
    );
    let rev = suffix(&mut p.rng, 10);
    db.labels
        .push(("controller-revision-hash", format!("db-{rev}")));
    db.owner = Some(OwnerRef {
        api_version: "apps/v1",
        kind: "StatefulSet",
        name: "db".into(),
        uid: uuid(&mut p.rng),
    });
    let db_pod = |ordinal: usize| {
        let mut t = db.clone();
        t.labels
            .push(("apps.kubernetes.io/pod-index", ordinal.to_string()));
        t.labels.push((
            "statefulset.kubernetes.io/pod-name",
            format!("db-{ordinal}"),
        ));
        t
    };
    let mut db_pods = Vec::new();
    let mut at = run_start - 400 * SEC;
    for ordinal in 0..s.db {
        let i = p.spawn(
            &db_pod(ordinal),
            Name::Fixed(format!("db-{ordinal}")),
            Placement::Any,
            at,
        );
        db_pods.push(i);
        at = p.plans[i].claim + p.rng.gen_range(2 * SEC..6 * SEC);
    }

    // A bare pod someone left running.
    let bare = |name: &str, weight| Template {
        restart_policy: "Never",
        ..template(
            "shop",
            name,
            Ident::new("shop", "Pod", name),
            "public.ecr.aws/docker/library/busybox:1.36",
            Who::User,
            weight,
        )
    };
    let at = early(&mut p, 300 * SEC);
    p.spawn(
        &bare("debug-shell", 0.2),
        Name::Fixed("debug-shell".into()),
        Placement::Any,
        at,
    );

    // The changes during the run, repeating every ten minutes in longer runs.
    let repeat = |first: i64| (0..).map(move |k| run_start + first + k * 600 * SEC);
    for (d, _, rolls) in &mut deployments {
        if !*rolls {
            continue;
        }
        let first = if d.name == "web" {
            run / 3
        } else {
            run * 2 / 3
        };
        for at in repeat(first).take_while(|&t| t < run_end) {
            p.rollout(d, at);
        }
    }
    for (k, at) in repeat(run / 2).take_while(|&t| t < run_end).enumerate() {
        let ordinal = (k + 1) % db_pods.len();
        let old = db_pods[ordinal];
        p.delete(old, Who::User, at);
        let create = p.fin(old) + p.rng.gen_range(50 * MS..500 * MS);
        let new = p.spawn(
            &db_pod(ordinal),
            Name::Fixed(format!("db-{ordinal}")),
            Placement::Beside(old),
            create,
        );
        // The kubelet repeats the final delete of the old pod after the name was taken again.
        let conflict = create + p.rng.gen_range(100 * MS..900 * MS);
        if let Ending::Deleted { conflict: c, .. } = &mut p.plans[old].ending {
            *c = Some((conflict, new));
        }
        db_pods[ordinal] = new;
    }
    for (k, at) in repeat(run / 4).take_while(|&t| t < run_end).enumerate() {
        let name = format!("curl-test-{}", k + 1);
        let i = p.spawn(&bare(&name, 0.3), Name::Fixed(name), Placement::Any, at);
        let gone = at + (run / 2).min(300 * SEC);
        p.delete(i, Who::User, gone.max(p.plans[i].claim + SEC));
    }
    let migrate = Template {
        restart_policy: "Never",
        owner: Some(OwnerRef {
            api_version: "batch/v1",
            kind: "Job",
            // Not `<name>-<digits>`: a Job of its own, not a CronJob's.
            name: "schema-migrate".into(),
            uid: uuid(&mut p.rng),
        }),
        ..template(
            "batch",
            "schema-migrate",
            Ident::new("batch", "Job", "schema-migrate"),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/migrate:42",
            Who::Controller("job-controller"),
            0.7,
        )
    };
    let at = run_start + p.rng.gen_range(3 * SEC..8 * SEC);
    let i = p.spawn(
        &migrate,
        Name::Generate("schema-migrate-".into()),
        Placement::Any,
        at,
    );
    let done = p.plans[i].claim + p.rng.gen_range(20 * SEC..35 * SEC);
    p.plans[i].ending = Ending::Completes {
        phase: "Succeeded",
        at: done,
        cleanup: None,
    };

    // CronJobs, from a few runs before the start so the history limit already applies.
    let mut crons = vec![("report", 1i64, 0.9)];
    if s.sync {
        crons.push(("sync", 2, 0.6));
    }
    let minutes = run.div_euclid(60 * SEC);
    for (cron, every, weight) in crons {
        let base = Template {
            restart_policy: "Never",
            ..template(
                "batch",
                cron,
                Ident::new("batch", "CronJob", cron),
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/batch:2.1.0",
                Who::Controller("job-controller"),
                weight,
            )
        };
        let mut history: Vec<Vec<usize>> = Vec::new();
        let first = -3 * every;
        for m in (first..minutes).filter(|m| m.rem_euclid(every) == 0) {
            let scheduled = run_start + m * 60 * SEC;
            let pods = p.cron_run(&base, cron, scheduled);
            if history.len() >= 3 {
                let old = history.remove(0);
                let at = p.plans[pods[0]].create;
                p.clean_up(&old, at);
            }
            history.push(pods);
        }
    }
    p.plans
}

/// Addresses per node, handed out most recently released first: a released address goes to
/// the next pod on that node, within seconds, which is the hardest case for the rule (the VPC
/// CNI's own cool-down is longer; the rule does not depend on it).
struct Pools {
    free: Vec<Vec<(Ipv4Addr, i64)>>,
    next: usize,
}

impl Pools {
    fn take(&mut self, node: usize, at: i64) -> Ipv4Addr {
        let f = &mut self.free[node];
        if let Some(pos) = f.iter().rposition(|&(_, released)| released < at) {
            return f.remove(pos).0;
        }
        if self.next < MAX_PODS {
            self.next += 1;
            return pod_ip(self.next - 1);
        }
        // The plan is out of fresh addresses: the longest-free one of any node.
        let (k, pos) = self
            .free
            .iter()
            .enumerate()
            .flat_map(|(k, f)| f.iter().enumerate().map(move |(i, e)| (k, i, e.1)))
            .filter(|e| e.2 < at)
            .min_by_key(|e| e.2)
            .map(|(k, i, _)| (k, i))
            .expect("the cluster never holds more pod addresses than the address plan has");
        self.free[k].remove(pos).0
    }
}

/// Puts each pod on a node (the least loaded, or its fixed one) and gives it an address, in time
/// order.
fn place(
    plans: &[Plan],
    node_ips: &[Ipv4Addr],
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, Vec<Ipv4Addr>) {
    let mut order: Vec<(i64, u8, usize)> = Vec::with_capacity(plans.len() * 3);
    for (i, p) in plans.iter().enumerate() {
        order.push((p.create, 1, i));
        order.push((p.claim, 2, i));
        if let Some(e) = p.end() {
            debug_assert!(e > p.claim, "{} ends before it runs", p.name);
            order.push((e, 0, i));
        }
    }
    order.sort_unstable();
    let n = node_ips.len();
    let mut node = vec![0usize; plans.len()];
    let mut ip = vec![Ipv4Addr::UNSPECIFIED; plans.len()];
    let mut load = vec![0u32; n];
    let mut pools = Pools {
        free: vec![Vec::new(); n],
        next: 0,
    };
    for (at, what, i) in order {
        let p = &plans[i];
        match what {
            1 => {
                node[i] = match p.placement {
                    Placement::On(k) => k,
                    Placement::Beside(j) => node[j],
                    Placement::Any => {
                        let min = load.iter().copied().min().unwrap_or(0);
                        let least: Vec<usize> = (0..n).filter(|&k| load[k] == min).collect();
                        least[rng.gen_range(0..least.len())]
                    }
                };
                if !p.t.host_network {
                    load[node[i]] += 1;
                }
            }
            2 => {
                ip[i] = if p.t.host_network {
                    node_ips[node[i]]
                } else {
                    pools.take(node[i], at)
                };
            }
            _ => {
                if !p.t.host_network {
                    pools.free[node[i]].push((ip[i], at));
                    load[node[i]] -= 1;
                }
            }
        }
    }
    (node, ip)
}

struct Actor {
    username: String,
    groups: &'static [&'static str],
    source_ip: String,
    user_agent: String,
    reason: String,
}

const USER: &str = "arn:aws:sts::123456789012:assumed-role/EKSAdmin/alice";

fn actor(who: Who, node: &str, node_ip: Ipv4Addr) -> Actor {
    match who {
        Who::Kubelet => Actor {
            username: format!("system:node:{node}"),
            groups: &["system:nodes", "system:authenticated"],
            source_ip: node_ip.to_string(),
            user_agent: format!("kubelet/{K8S} (linux/amd64) kubernetes/{GIT}"),
            reason: String::new(),
        },
        Who::Controller(sa) => Actor {
            username: format!("system:serviceaccount:kube-system:{sa}"),
            groups: &[
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated",
            ],
            source_ip: "172.16.78.141".into(),
            user_agent: format!(
                "kube-controller-manager/{K8S} (linux/amd64) kubernetes/{GIT}/system:serviceaccount:kube-system:{sa}"
            ),
            reason: format!(
                "RBAC: allowed by ClusterRoleBinding \"system:controller:{sa}\" of ClusterRole \"system:controller:{sa}\" to ServiceAccount \"{sa}/kube-system\""
            ),
        },
        Who::Scheduler => Actor {
            username: "system:kube-scheduler".into(),
            groups: &["system:authenticated"],
            source_ip: "172.16.78.141".into(),
            user_agent: format!("kube-scheduler/{K8S} (linux/amd64) kubernetes/{GIT}/scheduler"),
            reason: "RBAC: allowed by ClusterRoleBinding \"system:kube-scheduler\" of ClusterRole \"system:kube-scheduler\" to User \"system:kube-scheduler\"".into(),
        },
        Who::User => Actor {
            username: USER.into(),
            groups: &["system:authenticated"],
            source_ip: "192.0.2.200".into(),
            user_agent: "kubectl/v1.31.2 (darwin/arm64) kubernetes/5864a46".into(),
            reason: "EKS Access Policy: allowed by ClusterRoleBinding \"arn:aws:iam::123456789012:role/EKSAdmin+arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy\" of ClusterRole \"arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy\" to User \"alice\"".into(),
        },
    }
}

struct Ev<'a> {
    level: &'static str,
    verb: &'static str,
    uri: String,
    actor: &'a Actor,
    object_ref: J,
    code: i64,
    request: Option<J>,
    response: Option<J>,
    at: i64,
}

fn pod_ref(ns: &str, name: &str, sub: Option<&str>) -> J {
    let mut r =
        obj! {"resource" => "pods", "namespace" => ns, "name" => name, "apiVersion" => "v1"};
    if let Some(s) = sub {
        r.push("subresource", s);
    }
    r
}

/// What a pod object shows: the create's request, its response, or a delete's response.
#[derive(Clone, Copy)]
enum View<'a> {
    Request,
    Created,
    Deleting {
        deletion: i64,
        grace: i64,
        phase: &'a str,
    },
}

/// The audit log being written: one line per event, with its stage time.
struct Writer<'a> {
    rng: ChaCha8Rng,
    lines: Vec<(i64, String)>,
    /// Events from this time on are not written: the run (and its log) has ended.
    horizon: i64,
    origin: i64,
    plans: &'a [Plan],
    node_of: &'a [usize],
    ip_of: &'a [Ipv4Addr],
    node_names: &'a [String],
    node_ips: &'a [Ipv4Addr],
}

impl Writer<'_> {
    fn write(&mut self, e: Ev<'_>) {
        if e.at >= self.horizon {
            return;
        }
        let received = e.at - self.rng.gen_range(300..20_000);
        let mut status = obj! {"metadata" => obj! {}};
        if e.code == 409 {
            status.push("status", "Failure");
            status.push("reason", "Conflict");
        }
        status.push("code", e.code);
        let a = e.actor;
        let mut ev = obj! {
            "kind" => "Event",
            "apiVersion" => "audit.k8s.io/v1",
            "level" => e.level,
            "auditID" => uuid(&mut self.rng),
            "stage" => "ResponseComplete",
            "requestURI" => e.uri,
            "verb" => e.verb,
            "user" => obj! {"username" => &a.username, "groups" => a.groups.iter().map(|&g| J::from(g)).collect::<Vec<_>>()},
            "sourceIPs" => vec![J::from(&a.source_ip)],
            "userAgent" => &a.user_agent,
            "objectRef" => e.object_ref,
            "responseStatus" => status,
        };
        if let Some(r) = e.request {
            ev.push("requestObject", r);
        }
        if let Some(r) = e.response {
            ev.push("responseObject", r);
        }
        ev.push("requestReceivedTimestamp", rfc3339(received, true));
        ev.push("stageTimestamp", rfc3339(e.at, true));
        ev.push(
            "annotations",
            obj! {"authorization.k8s.io/decision" => "allow", "authorization.k8s.io/reason" => &a.reason},
        );
        let json = serde_json::to_string(&ev).expect("serializing plain JSON cannot fail");
        self.lines.push((e.at, json));
    }

    fn rv(&self, at: i64) -> String {
        (4_000_000 + (at - self.origin) / (10 * MS)).to_string()
    }

    fn kubelet(&self, i: usize) -> Actor {
        let k = self.node_of[i];
        actor(Who::Kubelet, &self.node_names[k], self.node_ips[k])
    }

    fn pod_object(&self, i: usize, view: View<'_>, at: i64) -> J {
        let p = &self.plans[i];
        let mut meta = obj! {};
        if !matches!(view, View::Request) || p.generate_name.is_none() {
            meta.push("name", &p.name);
        }
        if let Some(g) = &p.generate_name {
            meta.push("generateName", g);
        }
        meta.push("namespace", p.t.namespace);
        if !matches!(view, View::Request) {
            meta.push("uid", &p.uid);
            meta.push("resourceVersion", self.rv(at));
            meta.push("creationTimestamp", rfc3339(p.create, false));
        }
        if let View::Deleting {
            deletion, grace, ..
        } = view
        {
            meta.push("deletionTimestamp", rfc3339(deletion, false));
            meta.push("deletionGracePeriodSeconds", grace);
        }
        meta.push(
            "labels",
            J::Obj(p.t.labels.iter().map(|(k, v)| (*k, J::from(v))).collect()),
        );
        if let Some(o) = &p.t.owner {
            meta.push(
                "ownerReferences",
                vec![obj! {
                    "apiVersion" => o.api_version, "kind" => o.kind, "name" => &o.name,
                    "uid" => &o.uid, "controller" => true, "blockOwnerDeletion" => true,
                }],
            );
        }
        let mut spec = obj! {
            "containers" => vec![obj! {
                "name" => "app", "image" => p.t.image, "resources" => obj! {},
                "terminationMessagePath" => "/dev/termination-log",
                "terminationMessagePolicy" => "File", "imagePullPolicy" => "IfNotPresent",
            }],
            "restartPolicy" => p.t.restart_policy,
            "terminationGracePeriodSeconds" => 30i64,
            "dnsPolicy" => if p.t.host_network { "ClusterFirstWithHostNet" } else { "ClusterFirst" },
            "serviceAccountName" => "default",
        };
        if let View::Deleting { .. } = view {
            spec.push("nodeName", &self.node_names[self.node_of[i]]);
        }
        if p.t.host_network {
            spec.push("hostNetwork", true);
        }
        spec.push("securityContext", obj! {});
        spec.push("schedulerName", "default-scheduler");
        if !matches!(view, View::Request) {
            spec.push("priority", 0i64);
            spec.push("enableServiceLinks", true);
            spec.push("preemptionPolicy", "PreemptLowerPriority");
        }
        let status = match view {
            View::Request => obj! {},
            View::Created => obj! {"phase" => "Pending", "qosClass" => "BestEffort"},
            View::Deleting { phase, .. } => {
                let host = self.node_ips[self.node_of[i]].to_string();
                let ip = self.ip_of[i].to_string();
                obj! {
                    "phase" => phase,
                    "hostIP" => &host, "hostIPs" => vec![obj! {"ip" => &host}],
                    "podIP" => &ip, "podIPs" => vec![obj! {"ip" => &ip}],
                    "startTime" => rfc3339(p.started, false),
                    "qosClass" => "BestEffort",
                }
            }
        };
        obj! {"kind" => "Pod", "apiVersion" => "v1", "metadata" => meta, "spec" => spec, "status" => status}
    }

    /// A kubelet's strategic-merge patch of the pod's status.
    fn status_patch(&mut self, i: usize, at: i64, status: J) {
        let plans = self.plans;
        let p = &plans[i];
        let kubelet = self.kubelet(i);
        let ev = Ev {
            level: "Request",
            verb: "patch",
            uri: format!(
                "/api/v1/namespaces/{}/pods/{}/status",
                p.t.namespace, p.name
            ),
            actor: &kubelet,
            object_ref: pod_ref(p.t.namespace, &p.name, Some("status")),
            code: 200,
            request: Some(obj! {"metadata" => obj! {"uid" => &p.uid}, "status" => status}),
            response: None,
            at,
        };
        self.write(ev);
    }

    fn delete(&mut self, i: usize, who: Who, at: i64, phase: &str, code: i64) {
        let plans = self.plans;
        let p = &plans[i];
        let k = self.node_of[i];
        let a = actor(who, &self.node_names[k], self.node_ips[k]);
        let precondition = obj! {"uid" => &p.uid};
        let (request, response) = if who == Who::Kubelet {
            let request = obj! {
                "kind" => "DeleteOptions", "apiVersion" => "v1", "gracePeriodSeconds" => 0i64,
                "preconditions" => precondition,
            };
            let response = if code == 409 {
                let other = match &p.ending {
                    Ending::Deleted {
                        conflict: Some((_, j)),
                        ..
                    } => self.plans[*j].uid.clone(),
                    _ => String::new(),
                };
                obj! {
                    "kind" => "Status", "apiVersion" => "v1", "metadata" => obj! {}, "status" => "Failure",
                    "message" => format!("Precondition failed: UID in precondition: {}, UID in object meta: {other}", p.uid),
                    "reason" => "Conflict", "details" => obj! {"name" => &p.name, "kind" => "pods"}, "code" => 409i64,
                }
            } else {
                let deletion = match p.ending {
                    Ending::Deleted { graceful, .. } => graceful + 30 * SEC,
                    _ => at,
                };
                self.pod_object(
                    i,
                    View::Deleting {
                        deletion,
                        grace: 0,
                        phase,
                    },
                    at,
                )
            };
            (Some(request), response)
        } else {
            let request = match who {
                Who::Controller("replicaset-controller") => None,
                Who::Controller(_) => Some(obj! {
                    "kind" => "DeleteOptions", "apiVersion" => "v1", "propagationPolicy" => "Background",
                    "preconditions" => precondition,
                }),
                _ => Some(
                    obj! {"kind" => "DeleteOptions", "apiVersion" => "v1", "propagationPolicy" => "Background"},
                ),
            };
            let view = View::Deleting {
                deletion: at + 30 * SEC,
                grace: 30,
                phase,
            };
            (request, self.pod_object(i, view, at))
        };
        let ev = Ev {
            level: "RequestResponse",
            verb: "delete",
            uri: format!("/api/v1/namespaces/{}/pods/{}", p.t.namespace, p.name),
            actor: &a,
            object_ref: pod_ref(p.t.namespace, &p.name, None),
            code,
            request,
            response: Some(response),
            at,
        };
        self.write(ev);
    }

    /// Every event of one pod's life that falls within the log.
    fn pod(&mut self, i: usize, drop_create: bool) {
        let plans = self.plans;
        let p = &plans[i];
        let (ns, name) = (p.t.namespace, p.name.as_str());
        let k = self.node_of[i];
        let host = self.node_ips[k].to_string();
        let ip = self.ip_of[i].to_string();
        let node = self.node_names[k].clone();
        if !drop_create {
            let a = actor(p.t.creator, &node, self.node_ips[k]);
            let ev = Ev {
                level: "RequestResponse",
                verb: "create",
                uri: format!("/api/v1/namespaces/{ns}/pods"),
                actor: &a,
                object_ref: pod_ref(ns, if p.generate_name.is_some() { "" } else { name }, None),
                code: 201,
                request: Some(self.pod_object(i, View::Request, p.create)),
                response: Some(self.pod_object(i, View::Created, p.create)),
                at: p.create,
            };
            self.write(ev);
        }
        let scheduler = actor(Who::Scheduler, &node, self.node_ips[k]);
        let binding = Ev {
            level: "Request",
            verb: "create",
            uri: format!("/api/v1/namespaces/{ns}/pods/{name}/binding"),
            actor: &scheduler,
            object_ref: pod_ref(ns, name, Some("binding")),
            code: 201,
            request: Some(obj! {
                "kind" => "Binding", "apiVersion" => "v1",
                "metadata" => obj! {"name" => name, "namespace" => ns, "uid" => &p.uid},
                "target" => obj! {"kind" => "Node", "name" => &node},
            }),
            response: None,
            at: p.bind,
        };
        self.write(binding);

        let t = |us| J::from(rfc3339(us, false));
        let order = || {
            J::Arr(
                [
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                ]
                .iter()
                .map(|c| obj! {"type" => *c})
                .collect(),
            )
        };
        let cond = |kind: &str, ok: bool, reason: Option<&str>, at: i64| {
            let mut c = obj! {"lastProbeTime" => J::Null, "lastTransitionTime" => t(at)};
            if let Some(r) = reason {
                if r == "ContainersNotReady" {
                    c.push("message", "containers with unready status: [app]");
                }
                c.push("reason", r);
            }
            c.push("status", if ok { "True" } else { "False" });
            c.push("type", kind);
            c
        };
        let image = p.t.image;
        let container = |state: J, ready: bool| {
            vec![obj! {
                "image" => image, "imageID" => "", "lastState" => obj! {}, "name" => "app",
                "ready" => ready, "restartCount" => 0i64, "started" => ready, "state" => state,
            }]
        };

        // Scheduled: the node's address (hostIP), and for a hostNetwork pod its own, the same.
        let mut s = obj! {
            "$setElementOrder/conditions" => order(),
            "conditions" => vec![
                cond("PodReadyToStartContainers", false, None, p.started),
                cond("Initialized", true, None, p.started),
                cond("Ready", false, Some("ContainersNotReady"), p.started),
                cond("ContainersReady", false, Some("ContainersNotReady"), p.started),
            ],
            "containerStatuses" => container(obj! {"waiting" => obj! {"reason" => "ContainerCreating"}}, false),
            "hostIP" => &host,
            "hostIPs" => vec![obj! {"ip" => &host}],
        };
        if p.t.host_network {
            s.push("podIP", &host);
            s.push("podIPs", vec![obj! {"ip" => &host}]);
        }
        s.push("startTime", t(p.started));
        self.status_patch(i, p.started, s);

        // Running: the pod's address.
        let mut s = obj! {
            "$setElementOrder/conditions" => order(),
            "conditions" => vec![
                cond("PodReadyToStartContainers", true, None, p.claim),
                cond("Ready", true, None, p.claim),
                cond("ContainersReady", true, None, p.claim),
            ],
            "containerStatuses" => container(obj! {"running" => obj! {"startedAt" => t(p.claim)}}, true),
            "phase" => "Running",
        };
        if !p.t.host_network {
            s.push("podIP", &ip);
            s.push("podIPs", vec![obj! {"ip" => &ip}]);
        }
        self.status_patch(i, p.claim, s);

        let terminal = |phase: &str, at: i64| {
            let (code, reason) = if phase == "Succeeded" {
                (0i64, "Completed")
            } else {
                (
                    if p.t.restart_policy == "Never" {
                        1
                    } else {
                        143
                    },
                    "Error",
                )
            };
            let done = if phase == "Succeeded" {
                "PodCompleted"
            } else {
                "PodFailed"
            };
            obj! {
                "$setElementOrder/conditions" => order(),
                "conditions" => vec![
                    cond("PodReadyToStartContainers", false, None, at),
                    cond("Ready", false, Some(done), at),
                    cond("ContainersReady", false, Some(done), at),
                ],
                "containerStatuses" => container(obj! {"terminated" => obj! {
                    "containerID" => "containerd://0", "exitCode" => code, "finishedAt" => t(at),
                    "reason" => reason, "startedAt" => t(p.claim),
                }}, false),
                "phase" => phase,
            }
        };
        match p.ending {
            Ending::Runs => {}
            Ending::Completes { phase, at, cleanup } => {
                self.status_patch(i, at, terminal(phase, at));
                if let Some((graceful, fin)) = cleanup {
                    let gc = Who::Controller("generic-garbage-collector");
                    self.delete(i, gc, graceful, phase, 200);
                    self.delete(i, Who::Kubelet, fin, phase, 200);
                }
            }
            Ending::Deleted {
                by,
                graceful,
                terminal: end,
                fin,
                conflict,
            } => {
                self.delete(i, by, graceful, "Running", 200);
                // The containers are being stopped: not ready (no address in the patch).
                let stopping = graceful + self.rng.gen_range(10 * MS..300 * MS);
                let s = obj! {
                    "$setElementOrder/conditions" => order(),
                    "conditions" => vec![
                        cond("Ready", false, Some("ContainersNotReady"), stopping),
                        cond("ContainersReady", false, Some("ContainersNotReady"), stopping),
                    ],
                };
                self.status_patch(i, stopping, s);
                let mut phase = "Running";
                if let Some((ph, at)) = end {
                    self.status_patch(i, at, terminal(ph, at));
                    phase = ph;
                }
                self.delete(i, Who::Kubelet, fin, phase, 200);
                if let Some((at, _)) = conflict {
                    self.delete(i, Who::Kubelet, at, phase, 409);
                }
            }
        }
    }

    fn node_status(&mut self, k: usize, at: i64, addresses: bool) {
        let (name, ip) = (self.node_names[k].clone(), self.node_ips[k]);
        let beat = heartbeat(at);
        let mut status = obj! {};
        if addresses {
            status.push(
                "$setElementOrder/addresses",
                ["InternalIP", "InternalDNS", "Hostname"]
                    .iter()
                    .map(|t| obj! {"type" => *t})
                    .collect::<Vec<_>>(),
            );
        }
        status.push("$setElementOrder/conditions", beat.0);
        if addresses {
            status.push(
                "addresses",
                vec![
                    obj! {"type" => "InternalIP", "address" => ip.to_string()},
                    obj! {"type" => "InternalDNS", "address" => &name},
                    obj! {"type" => "Hostname", "address" => &name},
                ],
            );
        }
        status.push("conditions", beat.1);
        let kubelet = actor(Who::Kubelet, &name, ip);
        let ev = Ev {
            level: "Request",
            verb: "patch",
            uri: format!("/api/v1/nodes/{name}/status?timeout=10s"),
            actor: &kubelet,
            object_ref: obj! {"resource" => "nodes", "name" => &name, "apiVersion" => "v1", "subresource" => "status"},
            code: 200,
            request: Some(obj! {"status" => status}),
            response: None,
            at,
        };
        self.write(ev);
    }

    /// Pods running at `at` (their address held), for events about some pod.
    fn running_at(&self, at: i64) -> Vec<usize> {
        (0..self.plans.len())
            .filter(|&i| {
                let p = &self.plans[i];
                p.claim < at && !matches!(p.end(), Some(e) if e <= at)
            })
            .collect()
    }

    /// Requests the rule must pass over: reads, other resources and subresources, and a
    /// readiness flap (a status patch without addresses).
    fn chatter(&mut self, at: i64) {
        let user = actor(Who::User, "", Ipv4Addr::UNSPECIFIED);
        let running = self.running_at(at);
        let Some(&i) = running.choose(&mut self.rng) else {
            return;
        };
        let k = self.node_of[i];
        let (node, node_ip) = (self.node_names[k].clone(), self.node_ips[k]);
        let plans = self.plans;
        let p = &plans[i];
        let (ns, name) = (p.t.namespace, p.name.clone());
        let rv = self.rv(at);
        let lease = actor(Who::Kubelet, &node, node_ip);
        let ev = Ev {
            level: "Metadata",
            verb: "update",
            uri: format!(
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}?timeout=10s"
            ),
            actor: &lease,
            object_ref: obj! {
                "resource" => "leases", "namespace" => "kube-node-lease", "name" => &node,
                "apiGroup" => "coordination.k8s.io", "apiVersion" => "v1",
            },
            code: 200,
            request: None,
            response: None,
            at,
        };
        self.write(ev);
        let mut t = at;
        for what in 0..7 {
            t += self.rng.gen_range(SEC..8 * SEC);
            if !self.rng.gen_bool(0.4) {
                continue;
            }
            let (verb, uri, object_ref, who) = match what {
                0 => (
                    "list",
                    "/api/v1/pods?limit=500&resourceVersion=0".to_string(),
                    obj! {"resource" => "pods", "apiVersion" => "v1"},
                    &user,
                ),
                1 => (
                    "watch",
                    format!("/api/v1/pods?allowWatchBookmarks=true&fieldSelector=spec.nodeName%3D{node}&resourceVersion={rv}&timeout=7m13s&timeoutSeconds=433&watch=true"),
                    obj! {"resource" => "pods", "apiVersion" => "v1"},
                    &lease,
                ),
                2 => (
                    "get",
                    format!("/api/v1/namespaces/{ns}/pods/{name}"),
                    pod_ref(ns, &name, None),
                    &user,
                ),
                3 => (
                    "get",
                    format!("/api/v1/namespaces/{ns}/pods/{name}/log?container=app&tailLines=100"),
                    pod_ref(ns, &name, Some("log")),
                    &user,
                ),
                4 => (
                    "update",
                    "/api/v1/namespaces/shop/configmaps/web-config".to_string(),
                    obj! {"resource" => "configmaps", "namespace" => "shop", "name" => "web-config", "apiVersion" => "v1"},
                    &user,
                ),
                5 => (
                    "patch",
                    format!("/api/v1/namespaces/{ns}/pods/{name}"),
                    pod_ref(ns, &name, None),
                    &user,
                ),
                _ => {
                    if p.t.host_network || p.end().is_some_and(|e| e <= t + 5 * SEC) {
                        continue;
                    }
                    for (ok, dt) in [(false, 0), (true, self.rng.gen_range(2 * SEC..5 * SEC))] {
                        let c = |kind: &str| {
                            let mut c = obj! {"lastProbeTime" => J::Null, "lastTransitionTime" => rfc3339(t + dt, false)};
                            if !ok {
                                c.push("message", "containers with unready status: [app]");
                                c.push("reason", "ContainersNotReady");
                            }
                            c.push("status", if ok { "True" } else { "False" });
                            c.push("type", kind);
                            c
                        };
                        let s = obj! {
                            "$setElementOrder/conditions" => ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
                                .iter().map(|c| obj! {"type" => *c}).collect::<Vec<_>>(),
                            "conditions" => vec![c("Ready"), c("ContainersReady")],
                        };
                        self.status_patch(i, t + dt, s);
                    }
                    continue;
                }
            };
            // A label patch on the pod itself (not its status) carries labels only.
            let request = (what == 5)
                .then(|| obj! {"metadata" => obj! {"labels" => obj! {"debug" => "true"}}});
            let ev = Ev {
                level: if what == 5 { "Request" } else { "Metadata" },
                verb,
                uri,
                actor: who,
                object_ref,
                code: 200,
                request,
                response: None,
                at: t,
            };
            self.write(ev);
        }
    }
}

fn heartbeat(at: i64) -> (Vec<J>, Vec<J>) {
    let kinds = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];
    (
        kinds.iter().map(|k| obj! {"type" => *k}).collect(),
        kinds
            .iter()
            .map(|k| obj! {"lastHeartbeatTime" => rfc3339(at, false), "type" => *k})
            .collect(),
    )
}

/// The cluster on `node_ips` for the run `[start, start + minutes)` (Unix seconds), sized by
/// `pods`.
pub(crate) fn build(
    cc: &ClusterConfig,
    seed: u64,
    start: i64,
    minutes: usize,
    pods: usize,
    node_ips: &[Ipv4Addr],
) -> Cluster {
    let run_start = start * SEC;
    let run_end = run_start + minutes as i64 * 60 * SEC;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xc1a5_7e12_0000_0001);
    let plans = plan(rng.clone(), node_ips.len(), pods, run_start, run_end);
    rng.set_stream(1);
    let (node_of, ip_of) = place(&plans, node_ips, &mut rng);
    let node_names: Vec<String> = node_ips.iter().map(|&ip| node_name(ip)).collect();

    let tenancies = plans
        .iter()
        .enumerate()
        .filter(|(_, p)| p.claim < run_end)
        .map(|(i, p)| Tenancy {
            ip: ip_of[i],
            node: node_of[i],
            from_us: p.claim,
            until_us: p.end().unwrap_or(i64::MAX),
            weight: p.t.weight,
            ident: p.t.ident.clone(),
            host_network: p.t.host_network,
        })
        .collect();

    // Creates are lost only where the deletes that name the pod are in the log.
    let deleted_in_log = |p: &Plan| match p.ending {
        Ending::Deleted { fin, .. } => fin < run_end,
        Ending::Completes {
            cleanup: Some((_, fin)),
            ..
        } => fin < run_end,
        _ => false,
    };
    let mut eligible: Vec<usize> = (0..plans.len())
        .filter(|&i| deleted_in_log(&plans[i]))
        .collect();
    let share = cc.drop_create_share.clamp(0.0, 1.0);
    let mut n_drop = (share * eligible.len() as f64).round() as usize;
    if share > 0.0 && !eligible.is_empty() {
        n_drop = n_drop.max(1);
    }
    eligible.shuffle(&mut rng);
    let mut dropped = vec![false; plans.len()];
    for &i in &eligible[..n_drop] {
        dropped[i] = true;
    }

    let origin = run_start - 900 * SEC;
    let mut w = Writer {
        rng,
        lines: Vec::new(),
        horizon: run_end,
        origin,
        plans: &plans,
        node_of: &node_of,
        ip_of: &ip_of,
        node_names: &node_names,
        node_ips,
    };
    // Nodes announce their addresses before any pod runs on them; heartbeats follow.
    for k in 0..node_ips.len() {
        let mut at = origin + w.rng.gen_range(0..200 * SEC);
        w.node_status(k, at, true);
        loop {
            at += 300 * SEC + w.rng.gen_range(0..5 * SEC);
            if at >= run_end {
                break;
            }
            w.node_status(k, at, false);
        }
    }
    for (i, &drop) in dropped.iter().enumerate() {
        w.pod(i, drop);
    }
    let mut at = origin + 100 * SEC;
    while at < run_end {
        let jitter = w.rng.gen_range(0..20 * SEC);
        w.chatter(at + jitter);
        at += 60 * SEC;
    }

    let mut rng = w.rng;
    let mut lines = w.lines;
    let streams: Vec<String> = (0..2)
        .map(|_| format!("kube-apiserver-audit-{}", hex(&mut rng, 32)))
        .collect();
    let max_delay = cc.max_audit_delay_secs.max(0) * 1000;
    lines.shuffle(&mut rng);
    let mut audit: Vec<AuditLine> = lines
        .into_iter()
        .map(|(at, json)| {
            let stage_time_ms = at.div_euclid(MS);
            AuditLine {
                stage_time_ms,
                delivered_at_ms: stage_time_ms + rng.gen_range(0..=max_delay),
                log_stream: streams[rng.gen_range(0..streams.len())].clone(),
                json,
            }
        })
        .collect();
    audit.sort_by_key(|l| l.delivered_at_ms);
    Cluster {
        tenancies,
        node_names,
        audit,
        log_group: format!("/aws/eks/{}/cluster", cc.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natmeter_core::inventory::rfc3339_micros;

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        assert_eq!(
            rfc3339(1_762_164_000_123_456, true),
            "2025-11-03T10:00:00.123456Z"
        );
        assert_eq!(
            rfc3339(1_709_164_800_000_000, false),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_007, true),
            "2000-02-29T00:00:00.000007Z"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..2000 {
            let us = rng.gen_range(0..4_102_444_800_000_000i64);
            assert_eq!(rfc3339_micros(&rfc3339(us, true)), Some(us));
        }
    }

    #[test]
    fn uids_are_version_4() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..100 {
            let u = uuid(&mut rng);
            let b = u.as_bytes();
            assert_eq!(u.len(), 36);
            assert_eq!((b[8], b[13], b[18], b[23]), (b'-', b'-', b'-', b'-'));
            assert_eq!(b[14], b'4');
            assert!(matches!(b[19], b'8' | b'9' | b'a' | b'b'), "{u}");
        }
    }
}
