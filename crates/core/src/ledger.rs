//! The ledger: processed bytes summed by (minute, NAT gateway, direction, source, destination),
//! with the interned sources and destinations its keys name.
//!
//! Everything downstream (the report, CloudWatch datums, source detail lines) is a projection of
//! this one table, so they cannot disagree with each other.

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use crate::attribution::{Destination, Direction, Traversal};
use crate::identity::{Identity, SourceId, Sources};
use crate::topology::Topology;

/// The aggregation key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub minute: i64,
    pub gateway: u16,
    pub direction: Direction,
    /// Who, as an index into [`Ledger::source`].
    pub source: SourceId,
    /// Index into [`Ledger::destination`].
    pub destination: u16,
}

/// Some of a ledger's slots ([`Ledger::parts`]); the default is none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Part<'a>(&'a [(Slot, Table)]);

impl<'a> Part<'a> {
    /// Its entries in no particular order.
    pub fn iter(self) -> impl Iterator<Item = (Key, &'a Tally)> {
        self.0
            .iter()
            .flat_map(|(slot, t)| t.iter().map(move |(c, tally)| (c.key(*slot), tally)))
    }
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
const PRIVATE: u16 = 2;

/// Distinct remote prefixes one ledger names; past this, internet bytes are plain INTERNET
/// (counted): a scan of the whole internet must not grow the ledger without bound.
pub const MAX_PREFIXES: usize = 4096;

/// Where a [`Key`]'s minute and gateway go: each (minute, gateway) has its own table.
type Slot = (i64, u16);

/// The rest of a [`Key`], as its (minute, gateway) table stores it: one word, hashed and
/// compared as such (`source << 32 | destination << 1 | direction`). The derived hash of a key
/// holding the address itself fed the hasher three words; the interned source is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Cell(u64);

impl Cell {
    #[inline]
    fn of(source: SourceId, direction: Direction, destination: u16) -> Cell {
        let direction = match direction {
            Direction::Outbound => 0,
            Direction::Inbound => 1,
        };
        Cell((source.index() as u64) << 32 | u64::from(destination) << 1 | direction)
    }

    #[inline]
    fn destination(&self) -> u16 {
        (self.0 >> 1) as u16
    }

    #[inline]
    fn source(&self) -> u32 {
        (self.0 >> 32) as u32
    }

    #[inline]
    fn with(self, source: SourceId, destination: u16) -> Cell {
        Cell((source.index() as u64) << 32 | u64::from(destination) << 1 | self.0 & 1)
    }

    #[inline]
    fn key(&self, (minute, gateway): Slot) -> Key {
        Key {
            minute,
            gateway,
            direction: if self.0 & 1 == 0 {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            source: SourceId::from_raw(self.source()),
            destination: self.destination(),
        }
    }
}

type Table = FxHashMap<Cell, Tally>;

/// The entries, one hash table per (minute, gateway). The records of a batch fall in a minute or
/// two of one gateway, so the table they go to stays in cache; one table over many minutes and
/// 2,000 sources missed the cache on nearly every record (16% of a corpus's time in `add`, for
/// 3% of its instructions).
#[derive(Debug, Clone)]
pub struct Ledger {
    /// Where each slot's table is in `tables`.
    index: FxHashMap<Slot, usize>,
    tables: Vec<(Slot, Table)>,
    /// The table of the previous `add`: most records are in the same slot as the one before.
    last: Option<(Slot, usize)>,
    /// Emptied tables, reused with their allocation (warm Lambda containers).
    spare: Vec<Table>,
    destinations: Vec<Box<str>>,
    /// The region of each interned destination, where AWS's ranges name one (docs/attribution.md
    /// §5.1): `S3` in us-east-1 and `S3` in eu-west-1 are two destinations.
    regions: Vec<Option<Box<str>>>,
    /// The remote network of each interned destination, for internet destinations split by
    /// prefix (docs/attribution.md §5.3), and where each prefix is.
    prefixes: Vec<Option<IpNet>>,
    prefix_index: FxHashMap<IpNet, u16>,
    /// Records whose prefix was past [`MAX_PREFIXES`], counted as plain INTERNET.
    prefixes_folded: u64,
    /// Who the [`Key::source`] ids are.
    sources: Sources,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            index: FxHashMap::default(),
            tables: Vec::new(),
            last: None,
            spare: Vec::new(),
            destinations: vec!["INTERNET".into(), "UNKNOWN".into(), "PRIVATE".into()],
            regions: vec![None, None, None],
            prefixes: vec![None, None, None],
            prefix_index: FxHashMap::default(),
            prefixes_folded: 0,
            sources: Sources::default(),
        }
    }
}

impl Ledger {
    /// Adds one counted traversal of `source` (an id of [`Ledger::sources_mut`]'s table: the
    /// resolver interns it there first).
    #[inline]
    pub fn add(&mut self, t: &Traversal<'_>, source: SourceId) {
        // Most traversals go to the internet: no string comparison for the fixed names.
        let destination = match (t.destination, t.region, t.prefix) {
            (Destination::Internet, None, None) => INTERNET,
            (Destination::Unknown, None, None) => UNKNOWN,
            (Destination::Private, None, None) => PRIVATE,
            (_, None, Some(p)) => self.intern_prefix(p),
            (d, region, _) => self.intern_in(d.as_str(), region),
        };
        let cell = Cell::of(source, t.direction, destination);
        let table = self.table((t.minute, t.gateway as u16));
        table.entry(cell).or_default().add(t.bytes, t.packets);
    }

    /// The identities the keys' sources are, for a resolver to intern into.
    #[inline]
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// A test of whether an entry's bytes cross AZs (docs/contracts.md §1.1.2), looking each
    /// source's AZ up once: a report walks many entries (minutes, destinations) per source.
    pub fn crosses_az<'a>(&'a self, topo: &'a Topology) -> impl FnMut(&Key) -> bool + 'a {
        let mut az: Vec<Option<Option<&'a str>>> = vec![None; self.sources.len()];
        move |k: &Key| {
            if !topo.has_subnets() {
                return false;
            }
            let at = *az[k.source.index()]
                .get_or_insert_with(|| topo.az_of(self.sources.get(k.source).address()));
            let to = topo
                .gateways()
                .get(usize::from(k.gateway))
                .and_then(|g| g.az_id.as_deref());
            matches!((at, to), (Some(a), Some(b)) if a != b)
        }
    }

    /// How many sources are interned (ids are `0..sources_len()`).
    pub fn sources_len(&self) -> usize {
        self.sources.len()
    }

    pub fn sources_mut(&mut self) -> &mut Sources {
        &mut self.sources
    }

    /// Who source `id` is.
    #[inline]
    pub fn source(&self, id: SourceId) -> &Identity {
        self.sources.get(id)
    }

    /// The table of `slot`, created (or taken from the spares) on first use.
    #[inline]
    fn table(&mut self, slot: Slot) -> &mut Table {
        let i = self.table_index(slot);
        &mut self.tables[i].1
    }

    /// Where the table of `slot` is in `tables`, created on first use.
    #[inline]
    fn table_index(&mut self, slot: Slot) -> usize {
        match self.last {
            Some((s, i)) if s == slot => i,
            _ => {
                let i = *self.index.entry(slot).or_insert_with(|| {
                    self.tables
                        .push((slot, self.spare.pop().unwrap_or_default()));
                    self.tables.len() - 1
                });
                self.last = Some((slot, i));
                i
            }
        }
    }

    #[inline]
    fn intern_in(&mut self, name: &str, region: Option<&str>) -> u16 {
        if region.is_none() {
            match name {
                "INTERNET" => return INTERNET,
                "UNKNOWN" => return UNKNOWN,
                "PRIVATE" => return PRIVATE,
                _ => {}
            }
        }
        let found = self
            .destinations
            .iter()
            .zip(&self.regions)
            .zip(&self.prefixes)
            .position(|((d, r), p)| &**d == name && r.as_deref() == region && p.is_none());
        if let Some(i) = found {
            return i as u16;
        }
        // An open list, but not an unbounded one: past 60k names (hostile input), fold the rest.
        if self.destinations.len() >= u16::MAX as usize {
            return UNKNOWN;
        }
        self.destinations.push(name.into());
        self.regions.push(region.map(Into::into));
        self.prefixes.push(None);
        (self.destinations.len() - 1) as u16
    }

    /// INTERNET in remote network `p` (docs/attribution.md §5.3).
    fn intern_prefix(&mut self, p: IpNet) -> u16 {
        if let Some(&i) = self.prefix_index.get(&p) {
            return i;
        }
        if self.prefix_index.len() >= MAX_PREFIXES || self.destinations.len() >= u16::MAX as usize {
            self.prefixes_folded += 1;
            return INTERNET;
        }
        self.destinations.push("INTERNET".into());
        self.regions.push(None);
        self.prefixes.push(Some(p));
        let i = (self.destinations.len() - 1) as u16;
        self.prefix_index.insert(p, i);
        i
    }

    /// The remote network of interned destination `i`, for internet destinations split by
    /// prefix.
    pub fn destination_prefix(&self, i: u16) -> Option<IpNet> {
        self.prefixes[usize::from(i)]
    }

    /// Records counted as plain INTERNET because [`MAX_PREFIXES`] was reached.
    pub fn prefixes_folded(&self) -> u64 {
        self.prefixes_folded
    }

    /// The name of interned destination `i`.
    pub fn destination(&self, i: u16) -> &str {
        &self.destinations[usize::from(i)]
    }

    /// Per interned destination: whether a gateway endpoint in `home` (the gateways' region)
    /// would take its bytes off the NAT gateways: S3 and DynamoDB there (docs/attribution.md
    /// §5.2). Computed once per report or datum run, not per entry.
    pub fn avoidable_in(&self, home: &str) -> Vec<bool> {
        (0..self.destinations.len())
            .map(|i| {
                let i = i as u16;
                crate::report::GATEWAY_ENDPOINT_SERVICES.contains(&self.destination(i))
                    && self.destination_region(i) == Some(home)
            })
            .collect()
    }

    /// The region of interned destination `i`, where AWS's ranges name one.
    pub fn destination_region(&self, i: u16) -> Option<&str> {
        self.regions[usize::from(i)].as_deref()
    }

    /// Entries in key order (deterministic output).
    pub fn sorted(&self) -> Vec<(Key, Tally)> {
        let mut v: Vec<_> = self.iter().map(|(k, t)| (k, *t)).collect();
        v.sort_unstable_by(|a, b| {
            (
                a.0.minute,
                a.0.gateway,
                a.0.direction,
                self.source(a.0.source),
                self.destination(a.0.destination),
                self.destination_region(a.0.destination),
                self.destination_prefix(a.0.destination),
            )
                .cmp(&(
                    b.0.minute,
                    b.0.gateway,
                    b.0.direction,
                    self.source(b.0.source),
                    self.destination(b.0.destination),
                    self.destination_region(b.0.destination),
                    self.destination_prefix(b.0.destination),
                ))
        });
        v
    }

    /// The entries cut into at most `n` parts of about equal size (whole slots each), for
    /// threads to walk; none when the ledger is empty.
    pub fn parts(&self, n: usize) -> Vec<Part<'_>> {
        runs(&self.tables, n, |(_, t)| t.len())
            .into_iter()
            .map(Part)
            .collect()
    }

    /// Entries in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &Tally)> {
        Part(&self.tables).iter()
    }

    /// All bytes in the ledger (saturating: hostile records can claim u64::MAX each).
    pub fn total_bytes(&self) -> u64 {
        self.iter().fold(0, |a, (_, t)| a.saturating_add(t.bytes))
    }

    pub fn len(&self) -> usize {
        self.tables.iter().map(|(_, t)| t.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(|(_, t)| t.is_empty())
    }

    /// Adds another ledger's entries (e.g. from another thread).
    pub fn merge(&mut self, other: &Ledger) {
        self.merge_on(other, 1);
    }

    /// [`Ledger::merge`] on up to `threads` threads. Each slot's table is filled by one thread
    /// (the slots are cut into runs of about equal entries), so the sums are `merge`'s. The
    /// merge of two workers' ledgers was 7 ms of a 110 ms `natmeter report --threads 2`, run
    /// on one thread after both had finished, and it grows with minutes x sources, not bytes.
    pub fn merge_on(&mut self, other: &Ledger, threads: usize) {
        let (destinations, sources) = self.ids_of(other);
        self.prefixes_folded += other.prefixes_folded;
        // Every slot of `other` has its table here first: the threads only fill tables.
        let mut pairs: Vec<(usize, &Table)> = other
            .tables
            .iter()
            .map(|(slot, t)| (self.table_index(*slot), t))
            .collect();
        let fill = |ours: &mut [(Slot, Table)], base: usize, run: &[(usize, &Table)]| {
            for &(i, theirs) in run {
                let ours = &mut ours[i - base].1;
                for (c, t) in theirs {
                    let c = c.with(
                        sources[c.source() as usize],
                        destinations[usize::from(c.destination())],
                    );
                    ours.entry(c).or_default().add(t.bytes, t.packets);
                }
            }
        };
        let entries: usize = pairs.iter().map(|p| p.1.len()).sum();
        if threads <= 1 || pairs.len() < 2 || entries < 4096 {
            return fill(&mut self.tables, 0, &pairs);
        }
        // In table order, so that each run's tables are one range of ours.
        pairs.sort_unstable_by_key(|p| p.0);
        std::thread::scope(|s| {
            let mut rest: &mut [(Slot, Table)] = &mut self.tables;
            let mut base = 0;
            for run in runs(&pairs, threads, |p| p.1.len()) {
                // The runs' tables are disjoint and in order: each thread gets its own range.
                let end = run.last().map_or(base, |p| p.0 + 1);
                let (mine, after) = std::mem::take(&mut rest).split_at_mut(end - base);
                rest = after;
                let fill = &fill;
                s.spawn(move || fill(mine, base, run));
                base = end;
            }
        });
    }

    /// What `other`'s destination and source ids are here, interning the ones that are new.
    fn ids_of(&mut self, other: &Ledger) -> (Vec<u16>, Vec<SourceId>) {
        // Only the destination index can differ between two ledgers: re-intern each of the
        // other's names once, not once per entry.
        let map: Vec<u16> = (0..other.destinations.len())
            .map(|i| {
                let i = i as u16;
                match other.destination_prefix(i) {
                    Some(p) => self.intern_prefix(p),
                    None => self.intern_in(other.destination(i), other.destination_region(i)),
                }
            })
            .collect();
        let sources: Vec<SourceId> = (0..other.sources.len())
            .map(|i| {
                self.sources
                    .intern(other.sources.get(SourceId::from_raw(i as u32)))
            })
            .collect();
        (map, sources)
    }

    /// Moves the entries of the slots `part` names out, one ledger per part (ordered by part);
    /// the slots it answers `None` for stay. Each part keeps the whole destination and source
    /// tables, so the ids of its keys mean what they meant here.
    pub fn split_off<P: Ord>(
        &mut self,
        mut part: impl FnMut(i64, u16) -> Option<P>,
    ) -> std::collections::BTreeMap<P, Ledger> {
        let mut parts: std::collections::BTreeMap<P, Ledger> = std::collections::BTreeMap::new();
        let tables = std::mem::take(&mut self.tables);
        self.index.clear();
        self.last = None;
        for (slot, table) in tables {
            match part(slot.0, slot.1) {
                Some(p) => {
                    let l = parts.entry(p).or_insert_with(|| Ledger {
                        index: FxHashMap::default(),
                        tables: Vec::new(),
                        last: None,
                        spare: Vec::new(),
                        destinations: self.destinations.clone(),
                        regions: self.regions.clone(),
                        prefixes: self.prefixes.clone(),
                        prefix_index: self.prefix_index.clone(),
                        prefixes_folded: 0,
                        sources: self.sources.clone(),
                    });
                    l.index.insert(slot, l.tables.len());
                    l.tables.push((slot, table));
                }
                None => {
                    self.index.insert(slot, self.tables.len());
                    self.tables.push((slot, table));
                }
            }
        }
        parts
    }

    /// Empties the ledger but keeps its allocations (warm Lambda containers reuse them).
    pub fn clear(&mut self) {
        for (_, mut t) in self.tables.drain(..) {
            t.clear();
            self.spare.push(t);
        }
        self.index.clear();
        self.last = None;
        self.sources.clear();
        // Service names stay interned (a handful); remote prefixes go, or a warm container
        // would reach MAX_PREFIXES over its life and fold every later one. No key refers to a
        // destination index any more, so the names may move.
        if !self.prefix_index.is_empty() {
            let keep: Vec<usize> = (0..self.destinations.len())
                .filter(|&i| self.prefixes[i].is_none())
                .collect();
            self.destinations = keep.iter().map(|&i| self.destinations[i].clone()).collect();
            self.regions = keep.iter().map(|&i| self.regions[i].clone()).collect();
            self.prefixes = vec![None; keep.len()];
            self.prefix_index.clear();
        }
        self.prefixes_folded = 0;
    }
}

/// `items` cut into at most `n` runs of consecutive items, of about equal `size` each.
fn runs<T>(items: &[T], n: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let total: usize = items.iter().map(&size).sum();
    let per = total.div_ceil(n.max(1)).max(1);
    let mut runs = Vec::with_capacity(n);
    let (mut start, mut sum) = (0, 0);
    for (i, x) in items.iter().enumerate() {
        sum += size(x);
        if sum >= per && runs.len() + 1 < n {
            runs.push(&items[start..=i]);
            (start, sum) = (i + 1, 0);
        }
    }
    if start < items.len() {
        runs.push(&items[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ByAddress;

    fn traversal(prefix: Option<IpNet>, bytes: u64) -> Traversal<'static> {
        Traversal {
            gateway: 0,
            direction: Direction::Outbound,
            source: "10.0.1.5".parse().unwrap(),
            remote: None,
            destination: Destination::Internet,
            region: None,
            prefix,
            bytes,
            packets: 1,
            minute: 0,
            time: 0,
            end: None,
        }
    }

    fn add(l: &mut Ledger, t: &Traversal<'_>) {
        let s = ByAddress.resolve_address(t.source, l.sources_mut());
        l.add(t, s);
    }

    /// A merge on several threads sums what the merge on one does: many slots (minutes) and
    /// sources, the other ledger's sources interned in another order, some new.
    #[test]
    fn a_merge_on_threads_is_the_merge_on_one() {
        let at = |minute: i64, s: u32, bytes: u64| Traversal {
            minute,
            source: std::net::IpAddr::from([10, 0, (s >> 8) as u8, s as u8]),
            gateway: (s % 3) as usize,
            direction: if s.is_multiple_of(2) {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            ..traversal(None, bytes)
        };
        let (mut a, mut b) = (Ledger::default(), Ledger::default());
        let mut want = 0u64;
        for minute in 0..40 {
            for s in 0..150u32 {
                let bytes = (minute as u64 + 1) * u64::from(s + 7);
                add(&mut a, &at(minute, s, bytes));
                add(&mut b, &at(minute + 20, 300 - s, bytes + 1));
                want += 2 * bytes + 1;
            }
        }
        let mut one = a.clone();
        one.merge(&b);
        assert_eq!(one.total_bytes(), want);
        for threads in [2, 3, 4, 7] {
            let mut many = a.clone();
            many.merge_on(&b, threads);
            assert_eq!(many.len(), one.len(), "{threads} threads");
            assert!(many.sorted() == one.sorted(), "{threads} threads");
        }
    }

    /// Remote prefixes are bounded (past MAX_PREFIXES, plain INTERNET, counted), survive a
    /// merge, and a cleared ledger (a warm container's next invocation) starts over.
    #[test]
    fn remote_prefixes_are_bounded_and_cleared() {
        let mut l = Ledger::default();
        add(&mut l, &traversal(None, 5));
        let net =
            |i: usize| -> IpNet { format!("198.{}.{}.0/24", i / 256, i % 256).parse().unwrap() };
        for i in 0..MAX_PREFIXES + 10 {
            add(&mut l, &traversal(Some(net(i)), 1));
        }
        assert_eq!(l.prefixes_folded(), 10);
        assert_eq!(l.total_bytes(), 5 + MAX_PREFIXES as u64 + 10);
        let plain: u64 = l
            .iter()
            .filter(|(k, _)| l.destination_prefix(k.destination).is_none())
            .map(|(_, t)| t.bytes)
            .sum();
        assert_eq!(plain, 15, "the folded ones are plain INTERNET");
        let mut other = Ledger::default();
        add(&mut other, &traversal(Some(net(0)), 100));
        add(
            &mut other,
            &traversal(Some("203.0.113.0/24".parse().unwrap()), 7),
        );
        l.merge(&other);
        let of = |l: &Ledger, p: &str| -> u64 {
            let p: IpNet = p.parse().unwrap();
            l.iter()
                .filter(|(k, _)| l.destination_prefix(k.destination) == Some(p))
                .map(|(_, t)| t.bytes)
                .sum()
        };
        assert_eq!(of(&l, "198.0.0.0/24"), 101);
        assert_eq!(
            of(&l, "203.0.113.0/24"),
            0,
            "past the bound: plain INTERNET"
        );
        assert_eq!(l.prefixes_folded(), 11);
        l.clear();
        assert_eq!(l.prefixes_folded(), 0);
        add(
            &mut l,
            &traversal(Some("203.0.113.0/24".parse().unwrap()), 7),
        );
        assert_eq!(
            of(&l, "203.0.113.0/24"),
            7,
            "a cleared ledger names prefixes again"
        );
        assert_eq!(l.destination(INTERNET), "INTERNET");
        assert_eq!(l.destination(PRIVATE), "PRIVATE");
    }
}
