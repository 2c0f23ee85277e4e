//! The ledger: processed bytes summed by (minute, NAT gateway, direction, source, destination).
//!
//! Everything downstream (the report, CloudWatch datums, source detail lines) is a projection of
//! this one table, so they cannot disagree with each other.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::attribution::{Destination, Direction, Traversal};

/// Who a source is. Today the address the NAT saw (a pod, or its node under default EKS SNAT);
/// the seam where a time-aware IP → workload inventory will plug in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Ip(IpAddr),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Ip(ip) => ip.fmt(f),
        }
    }
}

/// Who a source is, decided from the address and the flow's own time (never the arrival time:
/// pod IPs are reused and records arrive minutes late).
pub trait Resolver: Send + Sync {
    fn resolve(&self, ip: IpAddr, minute: i64) -> Source;
}

/// Today's resolver: the address is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct ByAddress;

impl Resolver for ByAddress {
    #[inline]
    fn resolve(&self, ip: IpAddr, _minute: i64) -> Source {
        Source::Ip(ip)
    }
}

/// The aggregation key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub minute: i64,
    pub gateway: u16,
    pub direction: Direction,
    pub source: Source,
    /// Index into [`Ledger::destination`].
    pub destination: u16,
}

/// Sums for one key.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub bytes: u64,
    pub packets: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64, packets: u64) {
        // Saturate rather than wrap: a hostile record must not make totals small again.
        self.bytes = self.bytes.saturating_add(bytes);
        self.packets = self.packets.saturating_add(packets);
    }
}

/// Destinations are an open list of AWS service names, but a handful per deployment: interning
/// them keeps the key `Copy` and the hot path allocation-free after the first sighting.
const INTERNET: u16 = 0;
const UNKNOWN: u16 = 1;

/// [`Key`] as the table stores it: three words, hashed and compared as such. The derived hash
/// of `Key` fed the hasher field by field (the address byte by byte, with enum tags), which
/// made the ledger a tenth of a NAT batch's time over many minutes and sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Packed {
    minute: i64,
    /// An IPv4 address in the low 32 bits (with [`V6`] clear in `rest`), or an IPv6 one.
    address: u128,
    /// `gateway | direction << 16 | destination << 17 | V6`.
    rest: u64,
}

const V6: u64 = 1 << 33;

impl Packed {
    #[inline]
    fn of(k: &Key) -> Packed {
        let Source::Ip(ip) = k.source;
        let (address, v6) = match ip {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 0),
            IpAddr::V6(a) => (u128::from(a), V6),
        };
        let direction = match k.direction {
            Direction::Outbound => 0,
            Direction::Inbound => 1,
        };
        Packed {
            minute: k.minute,
            address,
            rest: u64::from(k.gateway) | direction << 16 | u64::from(k.destination) << 17 | v6,
        }
    }

    #[inline]
    fn key(&self) -> Key {
        let ip = if self.rest & V6 != 0 {
            IpAddr::V6(self.address.into())
        } else {
            // Only ever built from a u32 above.
            IpAddr::V4((self.address as u32).into())
        };
        Key {
            minute: self.minute,
            gateway: self.rest as u16,
            direction: if self.rest >> 16 & 1 == 0 {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            source: Source::Ip(ip),
            destination: (self.rest >> 17) as u16,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ledger {
    entries: FxHashMap<Packed, Tally>,
    destinations: Vec<Box<str>>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            entries: FxHashMap::default(),
            destinations: vec!["INTERNET".into(), "UNKNOWN".into()],
        }
    }
}

impl Ledger {
    /// Adds one counted traversal.
    #[inline]
    pub fn add(&mut self, t: &Traversal<'_>, resolver: &dyn Resolver) {
        // Most traversals go to the internet: no string comparison for the two fixed names.
        let destination = match t.destination {
            Destination::Internet => INTERNET,
            Destination::Unknown => UNKNOWN,
            Destination::Private => self.intern("PRIVATE"),
            Destination::Service(name) => self.intern(name),
        };
        let key = Key {
            minute: t.minute,
            gateway: t.gateway as u16,
            direction: t.direction,
            source: resolver.resolve(t.source, t.minute),
            destination,
        };
        self.entries
            .entry(Packed::of(&key))
            .or_default()
            .add(t.bytes, t.packets);
    }

    #[inline]
    fn intern(&mut self, name: &str) -> u16 {
        match name {
            "INTERNET" => return INTERNET,
            "UNKNOWN" => return UNKNOWN,
            _ => {}
        }
        if let Some(i) = self.destinations.iter().position(|d| &**d == name) {
            return i as u16;
        }
        // An open list, but not an unbounded one: past 60k names (hostile input), fold the rest.
        if self.destinations.len() >= u16::MAX as usize {
            return UNKNOWN;
        }
        self.destinations.push(name.into());
        (self.destinations.len() - 1) as u16
    }

    /// The name of interned destination `i`.
    pub fn destination(&self, i: u16) -> &str {
        &self.destinations[usize::from(i)]
    }

    /// Entries in key order (deterministic output).
    pub fn sorted(&self) -> Vec<(Key, Tally)> {
        let mut v: Vec<_> = self.entries.iter().map(|(k, t)| (k.key(), *t)).collect();
        v.sort_unstable_by(|a, b| {
            (
                a.0.minute,
                a.0.gateway,
                a.0.direction,
                a.0.source,
                self.destination(a.0.destination),
            )
                .cmp(&(
                    b.0.minute,
                    b.0.gateway,
                    b.0.direction,
                    b.0.source,
                    self.destination(b.0.destination),
                ))
        });
        v
    }

    /// Entries in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &Tally)> {
        self.entries.iter().map(|(k, t)| (k.key(), t))
    }

    /// All bytes in the ledger (saturating: hostile records can claim u64::MAX each).
    pub fn total_bytes(&self) -> u64 {
        self.entries
            .values()
            .fold(0, |a, t| a.saturating_add(t.bytes))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds another ledger's entries (e.g. from another thread).
    pub fn merge(&mut self, other: &Ledger) {
        // Only the destination index can differ between two ledgers: re-intern each of the
        // other's names once, not once per entry.
        let map: Vec<u16> = (0..other.destinations.len())
            .map(|i| self.intern(other.destination(i as u16)))
            .collect();
        for (k, t) in &other.entries {
            let mut k = *k;
            let d = (k.rest >> 17) as u16;
            k.rest = k.rest & !(0xffff << 17) | u64::from(map[usize::from(d)]) << 17;
            self.entries.entry(k).or_default().add(t.bytes, t.packets);
        }
    }

    /// Empties the ledger but keeps its allocation (warm Lambda containers reuse it).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
