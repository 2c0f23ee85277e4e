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
//! Today's only resolver is [`ByAddress`]: the address is the identity, which is what the
//! reports and the `SourceIp` metric dimension have always shown.

use std::fmt;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

/// What a source is. The order (derived) is the order of reports and detail lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// The address the NAT gateway saw: a pod, or its node under the VPC CNI's default SNAT.
    Address(IpAddr),
}

impl Identity {
    /// The metric dimension a source of this kind is published under (docs/contracts.md §2).
    pub const fn dimension(&self) -> &'static str {
        match self {
            Identity::Address(_) => "SourceIp",
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Address(ip) => ip.fmt(f),
        }
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
        }
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
