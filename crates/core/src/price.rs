//! NAT gateway data-processing prices, per region, each with where it came from.

/// One list price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub region: &'static str,
    /// USD per GB processed, where GB means 2^30 bytes.
    pub usd_per_gb: f64,
    pub source: &'static str,
}

const VPC_PRICING: &str = "AWS VPC pricing page, NAT gateway 'Price per GB data processed' (AWS Price List usage type <REGION>-NatGateway-Bytes)";

/// The built-in table. Only prices we could source are here: an unknown region must be given a
/// price explicitly rather than silently billed at a guess.
pub const PRICES: &[Price] = &[
    Price {
        region: "us-east-1",
        usd_per_gb: 0.045,
        source: VPC_PRICING,
    },
    Price {
        region: "us-east-2",
        usd_per_gb: 0.045,
        source: VPC_PRICING,
    },
    Price {
        region: "us-west-2",
        usd_per_gb: 0.045,
        source: VPC_PRICING,
    },
    Price {
        region: "eu-west-1",
        usd_per_gb: 0.048,
        source: VPC_PRICING,
    },
    Price {
        region: "ap-southeast-1",
        usd_per_gb: 0.059,
        source: VPC_PRICING,
    },
];

/// Inter-AZ data transfer within a region, USD per GB (2^30 bytes), charged on a byte that
/// crosses between a source and a NAT gateway in different AZs, in either direction.
pub const INTER_AZ_USD_PER_GB: f64 = 0.01;
pub const INTER_AZ_SOURCE: &str = "AWS EC2 On-Demand pricing, 'Data Transfer within the same AWS Region': $0.01/GB in each direction between Availability Zones (us-east-1 list price; natmeter charges the one direction a byte crosses)";

/// Looks up a region's price, unless an override is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceTable;

impl PriceTable {
    /// The price for `region`, or `None` when the table does not know it.
    pub fn lookup(region: &str) -> Option<Price> {
        PRICES.iter().copied().find(|p| p.region == region)
    }

    /// The effective price: the override when given, else the region's list price.
    pub fn resolve(region: Option<&str>, override_usd_per_gb: Option<f64>) -> Result<f64, String> {
        if let Some(p) = override_usd_per_gb {
            if !p.is_finite() || p < 0.0 {
                return Err(format!(
                    "price per GB must be a finite non-negative number, got {p}"
                ));
            }
            return Ok(p);
        }
        let Some(region) = region else {
            return Err("no region and no price per GB given; set the region (AWS_REGION / --region) or the price (NATMETER_PRICE_PER_GB / --price-per-gb)".into());
        };
        Self::lookup(region).map(|p| p.usd_per_gb).ok_or_else(|| {
            let known: Vec<_> = PRICES.iter().map(|p| p.region).collect();
            format!(
                "no built-in NAT price for region {region:?} (known: {}); set NATMETER_PRICE_PER_GB / --price-per-gb",
                known.join(", ")
            )
        })
    }
}

/// Cost of `bytes` at `usd_per_gb`, with GB = 2^30 bytes.
pub fn cost(bytes: u64, usd_per_gb: f64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 * usd_per_gb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_override() {
        assert_eq!(PriceTable::resolve(Some("eu-west-1"), None), Ok(0.048));
        assert_eq!(PriceTable::resolve(Some("mars-1"), Some(0.1)), Ok(0.1));
        assert!(PriceTable::resolve(Some("mars-1"), None)
            .unwrap_err()
            .contains("NATMETER_PRICE_PER_GB"));
        assert!(PriceTable::resolve(None, Some(f64::NAN)).is_err());
        assert_eq!(cost(1 << 30, 0.045), 0.045);
    }
}
