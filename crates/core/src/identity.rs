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

use rustc_hash::FxHashMap;

/// What a source is. The order (derived) is the order of reports and detail lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// The address the NAT gateway saw: a pod, or its node under the VPC CNI's default SNAT
    /// (no inventory: nothing says which).
    Address(IpAddr),
    /// A pod that held the address at the record's time (boxed: rare to build, and it keeps the
    /// common variant small).
    Pod(Box<PodSource>),
    /// A node: its own address, a hostNetwork pod's, or every pod's under SNAT.
    Node { address: IpAddr, name: String },
    /// An inventory was asked and no claim covers the address at that time: shown, never guessed.
    Unresolved(IpAddr),
}

/// A pod as a source: the address it held, who it is and what runs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodSource {
    pub address: IpAddr,
    pub namespace: String,
    /// The workload's kind and name: `Deployment`/`web`, `CronJob`/`report`, `Pod`/`<pod>`.
    pub kind: String,
    pub workload: String,
    pub pod: String,
    pub node: Option<String>,
    /// Tells apart two pods of one name (a StatefulSet's pod recreated).
    pub uid: String,
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
                namespace: &p.namespace,
                kind: &p.kind,
                name: &p.workload,
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
    /// Every other identity, by value (merging, and the first sighting of a resolver's key).
    named: FxHashMap<Identity, SourceId>,
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
            other => match self.named.get(other) {
                Some(&id) => id,
                None => self.push_named(other.clone()),
            },
        }
    }

    fn push_named(&mut self, identity: Identity) -> SourceId {
        let id = SourceId(self.all.len() as u32);
        self.named.insert(identity.clone(), id);
        self.all.push(identity);
        id
    }

    /// The id of the identity a resolver knows by `key`, built by `make` the first time only.
    /// The key is the resolver's (an address's bits and a holder's index): it must name one
    /// identity for as long as this table lives, which [`Sources::clear`] ends.
    #[inline]
    pub fn keyed(&mut self, key: (u128, u32), make: impl FnOnce() -> Identity) -> SourceId {
        if let Some(&id) = self.keyed.get(&key) {
            return id;
        }
        let identity = make();
        let id = match identity {
            Identity::Address(ip) => self.address(ip),
            other => match self.named.get(&other) {
                Some(&id) => id,
                None => self.push_named(other),
            },
        };
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
