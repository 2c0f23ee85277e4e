//! Splitting datums into PutMetricData requests within CloudWatch's limits (docs/contracts.md §2.6):
//! at most 1000 datums and 1 MB per request, 30 dimensions per datum, and never NaN or
//! ±Infinity. Each datum carries one value: the metric model sums per minute before it gets here.

use natmeter_core::metrics::{Datum, Unit};

pub const MAX_DATUMS_PER_REQUEST: usize = 1000;
/// The documented limit is 1 MB of request payload; keep a margin for envelope and encoding.
pub const MAX_REQUEST_BYTES: usize = 1_000_000;
pub const MAX_DIMENSIONS: usize = 30;

/// CloudWatch accepts datapoints from 14 days in the past to 2 hours in the future; a single
/// datum outside that window makes it refuse the whole request (InvalidParameterValue).
pub const MAX_AGE_SECONDS: i64 = 14 * 24 * 3600;
pub const MAX_FUTURE_SECONDS: i64 = 2 * 3600;
/// Margin for clock skew and the time the request takes.
const WINDOW_MARGIN_SECONDS: i64 = 300;

/// The oldest timestamp [`within_window`] keeps at clock `now`: what is older goes to results
/// objects on the S3 path instead (docs/s3.md §4).
pub fn oldest_sendable(now: i64) -> i64 {
    now - MAX_AGE_SECONDS + WINDOW_MARGIN_SECONDS
}

/// Splits off the datums CloudWatch would refuse for their timestamp (records dated in 1970 or
/// 2100, or replays older than two weeks), returning the sendable ones and how many were dropped.
pub fn within_window(datums: Vec<Datum>, now: i64) -> (Vec<Datum>, usize) {
    let oldest = oldest_sendable(now);
    let newest = now + MAX_FUTURE_SECONDS - WINDOW_MARGIN_SECONDS;
    let before = datums.len();
    let kept: Vec<Datum> = datums
        .into_iter()
        .filter(|d| (oldest..=newest).contains(&d.timestamp))
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

/// A datum as it goes on the wire: one value for one metric, dimension set and timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct WireDatum {
    pub metric: String,
    pub unit: Unit,
    pub dimensions: Vec<(String, String)>,
    pub timestamp: i64,
    pub value: f64,
}

impl WireDatum {
    /// A conservative estimate of the encoded size (CBOR or query encoding, whichever is larger).
    pub fn encoded_size(&self) -> usize {
        let dims: usize = self
            .dimensions
            .iter()
            .map(|(k, v)| 48 + k.len() + v.len())
            .sum();
        96 + self.metric.len() + dims + 24
    }
}

/// Datums that cannot be sent, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejected {
    pub non_finite: usize,
    pub too_many_dimensions: usize,
}

impl Rejected {
    pub fn total(&self) -> usize {
        self.non_finite + self.too_many_dimensions
    }
}

/// Why CloudWatch would refuse a datum (and with it, for PutMetricData, the whole request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    NonFinite,
    TooManyDimensions,
}

/// The one admissibility rule both sinks apply (PutMetricData and EMF share the limits).
pub fn rejection(d: &Datum) -> Option<Rejection> {
    if !d.value.is_finite() {
        Some(Rejection::NonFinite)
    } else if d.dimensions.len() > MAX_DIMENSIONS {
        Some(Rejection::TooManyDimensions)
    } else {
        None
    }
}

/// Applies [`rejection`] once for every sink: the datums CloudWatch would take, and a count of
/// the others by reason (a non-finite value or too many dimensions would make PutMetricData
/// refuse the whole request, and EMF extraction drop the line).
pub fn admissible(datums: Vec<Datum>) -> (Vec<Datum>, Rejected) {
    let mut rej = Rejected::default();
    let kept = datums
        .into_iter()
        .filter(|d| match rejection(d) {
            Some(Rejection::NonFinite) => {
                rej.non_finite += 1;
                false
            }
            Some(Rejection::TooManyDimensions) => {
                rej.too_many_dimensions += 1;
                false
            }
            None => true,
        })
        .collect();
    (kept, rej)
}

/// Converts admissible model datums (see [`admissible`]) to wire datums.
pub fn to_wire(datums: &[Datum]) -> Vec<WireDatum> {
    datums
        .iter()
        .map(|d| WireDatum {
            metric: d.metric.to_string(),
            unit: d.unit,
            dimensions: d
                .dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            timestamp: d.timestamp,
            value: d.value,
        })
        .collect()
}

/// Packs datums into requests of at most 1000 datums and [`MAX_REQUEST_BYTES`]. Order is kept,
/// so the split is deterministic.
pub fn requests(datums: Vec<WireDatum>) -> Vec<Vec<WireDatum>> {
    let mut out: Vec<Vec<WireDatum>> = Vec::new();
    let mut cur: Vec<WireDatum> = Vec::new();
    let mut size = 0usize;
    for d in datums {
        let s = d.encoded_size();
        if !cur.is_empty() && (cur.len() == MAX_DATUMS_PER_REQUEST || size + s > MAX_REQUEST_BYTES)
        {
            out.push(std::mem::take(&mut cur));
            size = 0;
        }
        size += s;
        cur.push(d);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Identifies a request by its content. A retried invocation rebuilds exactly the same requests
/// from the same batch and clock, so a warm container can tell which of them it already
/// delivered before the failure (std's `DefaultHasher::new` has fixed keys: stable in a process).
pub fn digest(request: &[WireDatum]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    for d in request {
        d.metric.hash(&mut h);
        (d.unit as u8).hash(&mut h);
        d.dimensions.hash(&mut h);
        d.timestamp.hash(&mut h);
        d.value.to_bits().hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datum(i: usize, dims: usize, value: f64) -> Datum {
        Datum {
            metric: "NatBytes",
            unit: Unit::Bytes,
            dimensions: (0..dims)
                .map(|d| {
                    (
                        if d == 0 { "SourceIp" } else { "X" },
                        format!("10.0.{}.{}", i / 250, d),
                    )
                })
                .collect(),
            timestamp: 1_764_547_200,
            value,
        }
    }

    #[test]
    fn request_digests_are_stable_and_tell_requests_apart() {
        let datums: Vec<Datum> = (0..2500).map(|i| datum(i, 1, i as f64)).collect();
        let digests = |d: &[Datum]| {
            requests(to_wire(d))
                .iter()
                .map(|r| digest(r))
                .collect::<Vec<u64>>()
        };
        let a = digests(&datums);
        assert!(a.len() >= 3);
        assert_eq!(a, digests(&datums), "rebuilt from the same datums");
        let mut uniq = a.clone();
        uniq.dedup();
        assert_eq!(uniq.len(), a.len(), "each request its own digest");
        let mut changed = datums.clone();
        changed[0].value += 1.0;
        let b = digests(&changed);
        assert_ne!(a[0], b[0]);
        assert_eq!(a[1..], b[1..]);
    }

    #[test]
    fn thousand_datums_per_request() {
        let ds: Vec<_> = (0..2500).map(|i| datum(i, 1, i as f64)).collect();
        let (ds, rej) = admissible(ds);
        assert_eq!(rej, Rejected::default());
        let reqs = requests(to_wire(&ds));
        assert_eq!(
            reqs.iter().map(Vec::len).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
        let sum: f64 = reqs.iter().flatten().map(|d| d.value).sum();
        assert_eq!(sum, (0..2500).sum::<usize>() as f64);
    }

    #[test]
    fn one_megabyte_per_request() {
        // Datums with 30 long dimension values: ~8 KB each, so the byte limit binds first.
        let ds: Vec<_> = (0..400)
            .map(|i| {
                let mut d = datum(i, 0, 1.0);
                d.dimensions = (0..30)
                    .map(|k| ("X", format!("{k}-{}", "v".repeat(200))))
                    .collect();
                d
            })
            .collect();
        let reqs = requests(to_wire(&ds));
        assert!(reqs.len() > 1);
        for r in &reqs {
            assert!(r.len() < MAX_DATUMS_PER_REQUEST);
            assert!(r.iter().map(WireDatum::encoded_size).sum::<usize>() <= MAX_REQUEST_BYTES);
        }
        assert_eq!(reqs.iter().map(Vec::len).sum::<usize>(), 400);
    }

    #[test]
    fn thirty_dimensions_at_most() {
        let ds = vec![datum(0, 30, 1.0), datum(1, 31, 1.0)];
        let (kept, rej) = admissible(ds);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].dimensions.len(), 30);
        assert_eq!(rej.too_many_dimensions, 1);
    }

    #[test]
    fn timestamps_outside_cloudwatch_window_are_dropped() {
        let now = 2_000_000_000;
        let mut ds = vec![
            datum(0, 1, 1.0),
            datum(1, 1, 1.0),
            datum(2, 1, 1.0),
            datum(3, 1, 1.0),
        ];
        ds[0].timestamp = now - 600;
        ds[1].timestamp = 0;
        ds[2].timestamp = now + 3 * 3600;
        ds[3].timestamp = now - 15 * 24 * 3600;
        let (kept, dropped) = within_window(ds, now);
        assert_eq!(dropped, 3);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].timestamp, now - 600);
    }

    #[test]
    fn nan_and_infinity_are_never_sent() {
        let ds = vec![
            datum(0, 1, f64::NAN),
            datum(1, 1, f64::INFINITY),
            datum(2, 1, f64::NEG_INFINITY),
            datum(3, 1, 2.0),
        ];
        let (kept, rej) = admissible(ds);
        assert_eq!(rej.non_finite, 3);
        assert_eq!(rej.total(), 3);
        let reqs = requests(to_wire(&kept));
        let values: Vec<f64> = reqs.iter().flatten().map(|d| d.value).collect();
        assert_eq!(values, [2.0]);
    }
}
