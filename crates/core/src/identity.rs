//! Who a source is: the seam between "which address the NAT gateway saw" and "which workload
//! that was" (docs/attribution.md §4).
//!
//! Attribution hands each counted traversal to a [`Resolver`] with what identity can depend on
//! (a [`Sighting`]: the address, the record's own time, the gateway, the account and VPC where
//! known) and gets back a [`SourceId`]: an index into the results' [`Sources`], which hold the
//! identities themselves. The ledger keys on the index, so an identity can grow (a pod, with its
//! namespace and workload) without the hot path copying or hashing more than four bytes, and two
//! threads' results merge by re-interning the other's identities once, not once per entry.
//!
//! [`ByAddress`] (the default) makes the address the identity, which is what the reports and the
//! `SourceIp` metric dimension show without an inventory. With one (`inventory::Inventory`), a
//! source is the pod or node that held the address at the record's own time, or `Unresolved`.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

/// What a source is. The order (derived) is the order of reports and detail lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// The address the NAT gateway saw: a pod, or its node under the VPC CNI's default SNAT
    /// (no inventory: nothing says which).
    Address(IpAddr),
    /// A pod that held the address at the record's time.
    Pod(PodSource),
    /// A node: its own address, a hostNetwork pod's, or every pod's under SNAT.
    Node { address: IpAddr, name: Arc<str> },
    /// An inventory was asked and no claim covers the address at that time: shown, never guessed.
    Unresolved(IpAddr),
}

/// A pod as a source: the address it held, and the pod (shared: a warm function rebuilds its
/// sources for every batch, and a pod's names are built once by the inventory, not per batch).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodSource {
    pub address: IpAddr,
    pub name: Arc<PodName>,
}

impl std::ops::Deref for PodSource {
    type Target = PodName;
    fn deref(&self) -> &PodName {
        &self.name
    }
}

/// Who a pod is and what runs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodName {
    pub namespace: String,
    /// The workload's kind and name: `Deployment`/`web`, `CronJob`/`report`, `Pod`/`<pod>`.
    pub kind: String,
    pub workload: String,
    pub pod: String,
    pub node: Option<String>,
    /// Tells apart two pods of one name (a StatefulSet's pod recreated).
    pub uid: String,
}

/// By uid alone, which names one pod (equal pods have equal uids, so this agrees with `Eq`):
/// interning a pod's source hashes a few bytes, not every name.
impl std::hash::Hash for PodName {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.uid.hash(h);
    }
}

/// The workload a source counts under in the by-workload views (docs/contracts.md §1): nodes are
/// `("", "Node", name)`, every unresolved address is the one `("", "Unresolved", "")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadKey<'a> {
    pub namespace: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
}

impl Identity {
    /// The metric dimension a source of this kind is published under (docs/contracts.md §2):
    /// the address, whatever held it; names have dimensions of their own.
    pub const fn dimension(&self) -> &'static str {
        "SourceIp"
    }

    /// The address the NAT gateway saw.
    pub fn address(&self) -> IpAddr {
        match self {
            Identity::Address(a) | Identity::Unresolved(a) | Identity::Node { address: a, .. } => {
                *a
            }
            Identity::Pod(p) => p.address,
        }
    }

    /// The workload this source counts under; `None` without an inventory.
    pub fn workload(&self) -> Option<WorkloadKey<'_>> {
        Some(match self {
            Identity::Address(_) => return None,
            Identity::Pod(p) => WorkloadKey {
                namespace: &p.name.namespace,
                kind: &p.name.kind,
                name: &p.name.workload,
            },
            Identity::Node { name, .. } => WorkloadKey {
                namespace: "",
                kind: "Node",
                name,
            },
            Identity::Unresolved(_) => WorkloadKey {
                namespace: "",
                kind: "Unresolved",
                name: "",
            },
        })
    }
}

/// The address: the `source` of report rows and the `SourceIp` dimension value, whoever held it.
impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.address().fmt(f)
    }
}

/// An interned [`Identity`]: an index into one [`Sources`] table. Meaningless across tables;
/// [`Sources::get`] turns it back into the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(u32);

impl SourceId {
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    #[inline]
    pub(crate) const fn from_raw(i: u32) -> SourceId {
        SourceId(i)
    }
}

/// The identities one set of results has seen, each once.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    all: Vec<Identity>,
    /// Addresses are the common identity: looked up by their bits, not through `Identity`'s
    /// derived hash (which feeds the hasher the enum tag and then the address byte by byte).
    v4: FxHashMap<u32, SourceId>,
    v6: FxHashMap<u128, SourceId>,
    /// Every other identity, by value (merging, and the first sighting of a resolver's key);
    /// brought up to date lazily: entries of `all` from `indexed` on are not in it yet.
    named: FxHashMap<Identity, SourceId>,
    indexed: usize,
    /// A resolver's own key for an identity (see [`Sources::keyed`]): the per-record lookup,
    /// which must neither build nor hash an identity's strings.
    keyed: FxHashMap<(u128, u32), SourceId>,
}

impl Sources {
    /// The id of address `ip` as an identity of its own.
    #[inline]
    pub fn address(&mut self, ip: IpAddr) -> SourceId {
        let next = SourceId(self.all.len() as u32);
        let id = match ip {
            IpAddr::V4(a) => *self.v4.entry(u32::from(a)).or_insert(next),
            IpAddr::V6(a) => *self.v6.entry(u128::from(a)).or_insert(next),
        };
        if id == next {
            self.all.push(Identity::Address(ip));
        }
        id
    }

    /// The id of any identity.
    pub fn intern(&mut self, identity: &Identity) -> SourceId {
        match identity {
            Identity::Address(ip) => self.address(*ip),
            other => {
                self.catch_up();
                match self.named.get(other) {
                    Some(&id) => id,
                    None => self.push_named(other.clone()),
                }
            }
        }
    }

    fn push_named(&mut self, identity: Identity) -> SourceId {
        let id = SourceId(self.all.len() as u32);
        self.named.insert(identity.clone(), id);
        self.all.push(identity);
        self.indexed = self.all.len();
        id
    }

    /// Indexes the identities [`Sources::keyed`] pushed without indexing.
    fn catch_up(&mut self) {
        while self.indexed < self.all.len() {
            let i = self.indexed;
            if !matches!(self.all[i], Identity::Address(_)) {
                self.named.insert(self.all[i].clone(), SourceId(i as u32));
            }
            self.indexed += 1;
        }
    }

    /// The id of the identity a resolver knows by `key` (an address's bits and a holder's
    /// index), built by `make` the first time only. The key must name one identity, and no
    /// other key and no [`Sources::intern`] may make that identity, for as long as this table
    /// lives ([`Sources::clear`] ends it). The identity is pushed without hashing it, which a
    /// warm function does for every source of every batch; it is indexed only if an
    /// [`Sources::intern`] (a merge) needs it.
    #[inline]
    pub fn keyed(&mut self, key: (u128, u32), make: impl FnOnce() -> Identity) -> SourceId {
        if let Some(&id) = self.keyed.get(&key) {
            return id;
        }
        let id = SourceId(self.all.len() as u32);
        self.all.push(make());
        self.keyed.insert(key, id);
        id
    }

    /// The identity behind `id`.
    #[inline]
    pub fn get(&self, id: SourceId) -> &Identity {
        &self.all[id.index()]
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Forgets every identity, keeping the allocations (warm Lambda containers).
    pub fn clear(&mut self) {
        self.all.clear();
        self.v4.clear();
        self.v6.clear();
        self.named.clear();
        self.indexed = 0;
        self.keyed.clear();
    }
}

/// What attribution knows about a counted traversal's source when it asks who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting<'a> {
    /// The VPC-side address: `pkt-srcaddr` outbound, `pkt-dstaddr` inbound (or the fallback's).
    pub address: IpAddr,
    /// The record's own `start`, or the log event's timestamp when the format has no `start`
    /// (Unix seconds). Never the time it arrived: pod addresses are reused, and records arrive
    /// minutes late.
    pub time: i64,
    /// The NAT gateway's index in the topology.
    pub gateway: usize,
    /// The record's `account-id`, else the subscription batch's `owner`, when either is known.
    pub account: Option<&'a str>,
    /// The record's `vpc-id`, when the format has it.
    pub vpc: Option<&'a str>,
}

/// Decides who a source is. Shared by every thread of a run: implementations are immutable
/// while attributing (an inventory is loaded before, or swapped between runs).
pub trait Resolver: Send + Sync {
    /// The source of `seen`, interned in `into`. Called once per counted record: must not
    /// allocate for an identity already in `into` (tests/no_alloc_per_record.rs holds the
    /// default to it).
    fn resolve(&self, seen: &Sighting<'_>, into: &mut Sources) -> SourceId;

    /// [`Resolver::resolve`], and the times `[from, until)` (Unix seconds) over which the same
    /// address gets the same answer whatever else a sighting says: the engine then answers
    /// those sightings itself, without asking. The default is an empty span: ask every time
    /// (a resolver reading the account or VPC, say).
    fn resolve_span(&self, seen: &Sighting<'_>, into: &mut Sources) -> (SourceId, i64, i64) {
        (self.resolve(seen, into), seen.time, seen.time)
    }
}

/// The answer in `map` for `key` at `time` when its span covers it, else `ask`'s (which
/// overwrites the slot: one answer per address, the latest).
#[inline]
fn remembered<K: std::hash::Hash + Eq>(
    map: &mut FxHashMap<K, (i64, i64, SourceId)>,
    key: K,
    time: i64,
    ask: impl FnOnce(&mut (i64, i64, SourceId)) -> SourceId,
) -> SourceId {
    // An empty span never matches: a new slot is always asked.
    let slot = map.entry(key).or_insert((0, 0, SourceId(0)));
    let (from, until, id) = *slot;
    if from <= time && time < until {
        return id;
    }
    ask(slot)
}

/// The engine's memory of [`Resolver::resolve_span`]'s answers: per address, the last answer
/// and its span. A batch's records of one source come in runs with close times, so most
/// sightings are answered here with one lookup, as the default resolver answers all of them.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    v4: FxHashMap<u32, (i64, i64, SourceId)>,
    v6: FxHashMap<u128, (i64, i64, SourceId)>,
}

impl Answers {
    /// The id of the source at `address` and `time`: remembered, or asked of `resolver` with
    /// the sighting `seen` builds (only then: reading the account and VPC fields costs).
    #[inline]
    pub fn resolve<'s>(
        &mut self,
        resolver: &dyn Resolver,
        address: IpAddr,
        time: i64,
        seen: impl FnOnce() -> Sighting<'s>,
        into: &mut Sources,
    ) -> SourceId {
        let ask = |slot: &mut (i64, i64, SourceId), into: &mut Sources| {
            let (id, from, until) = resolver.resolve_span(&seen(), into);
            *slot = (from, until, id);
            id
        };
        match address {
            IpAddr::V4(a) => remembered(&mut self.v4, u32::from(a), time, |s| ask(s, into)),
            IpAddr::V6(a) => remembered(&mut self.v6, u128::from(a), time, |s| ask(s, into)),
        }
    }

    /// Forgets every answer (their ids name entries of a [`Sources`] being cleared).
    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }
}

/// Today's resolver: the address is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct ByAddress;

impl ByAddress {
    /// [`Resolver::resolve`] from the address alone, which is all this resolver reads.
    #[inline]
    pub fn resolve_address(self, address: IpAddr, into: &mut Sources) -> SourceId {
        into.address(address)
    }
}

impl Resolver for ByAddress {
    #[inline]
    fn resolve(&self, seen: &Sighting<'_>, into: &mut Sources) -> SourceId {
        self.resolve_address(seen.address, into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_intern_once_and_come_back() {
        let mut s = Sources::default();
        let a: IpAddr = "10.0.1.5".parse().unwrap();
        let b: IpAddr = "2600:1f18::5".parse().unwrap();
        let (ia, ib) = (s.address(a), s.address(b));
        assert_ne!(ia, ib);
        assert_eq!(s.address(a), ia);
        assert_eq!(s.intern(&Identity::Address(b)), ib);
        assert_eq!(s.get(ia), &Identity::Address(a));
        assert_eq!(s.get(ib).to_string(), "2600:1f18::5");
        assert_eq!(s.len(), 2);
        // An IPv4 address and the IPv6 address with the same low bits are different sources.
        let mapped: IpAddr = "::a00:105".parse().unwrap();
        assert_ne!(s.address(mapped), ia);
        s.clear();
        assert!(s.is_empty());
        assert_eq!(s.address(b).index(), 0);
    }

    #[test]
    fn identities_order_as_their_addresses() {
        let ips = ["10.0.0.9", "10.0.0.10", "::1", "9.9.9.9"];
        let mut ids: Vec<Identity> = ips
            .iter()
            .map(|i| Identity::Address(i.parse().unwrap()))
            .collect();
        ids.sort();
        let mut want: Vec<IpAddr> = ips.iter().map(|i| i.parse().unwrap()).collect();
        want.sort();
        assert_eq!(
            ids,
            want.into_iter().map(Identity::Address).collect::<Vec<_>>()
        );
        assert_eq!(ids[0].dimension(), "SourceIp");
    }
}
