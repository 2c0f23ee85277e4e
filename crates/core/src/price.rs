//! NAT gateway prices, per region, each with where it came from (docs/operations.md §3.1).

/// One region's list prices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub region: &'static str,
    /// The AWS Price List usage-type prefix of the region (`EU` in `EU-NatGateway-Bytes`); empty
    /// for us-east-1, whose usage types carry none.
    pub usage_prefix: &'static str,
    /// USD per GB processed, where GB means 2^30 bytes (`<PREFIX>-NatGateway-Bytes`, and the
    /// same rate for `<PREFIX>-RegionalNatGateway-Bytes`).
    pub usd_per_gb: f64,
    /// USD per gateway-hour (`<PREFIX>-NatGateway-Hours`; regional gateways bill
    /// `RegionalNatGateway-Hours` at the same rate).
    pub usd_per_hour: f64,
    /// Inter-AZ data transfer within the region, USD per GB in each direction.
    pub inter_az_usd_per_gb: f64,
    pub source: &'static str,
}

/// Where the NAT rates come from. They were transcribed from the page by hand (this build has
/// no network access to the Price List API), so each row says so, and the usage types name the
/// exact Price List entries to check them against.
const VPC_PRICING: &str = "AWS VPC pricing page (aws.amazon.com/vpc/pricing), 'NAT Gateway pricing': price per NAT gateway-hour and per GB data processed, transcribed for the region; Price List usage types <PREFIX>-NatGateway-Hours and <PREFIX>-NatGateway-Bytes (regional NAT gateways: <PREFIX>-RegionalNatGateway-Hours/-Bytes, same rates)";

/// Where the inter-AZ rate comes from.
pub const INTER_AZ_SOURCE: &str = "AWS EC2 On-Demand pricing page, 'Data Transfer within the same AWS Region': $0.01/GB in each direction between Availability Zones (Price List usage type <PREFIX>-DataTransfer-Regional-Bytes); natmeter charges the one direction a byte crosses";

/// Inter-AZ data transfer within a region, USD per GB (2^30 bytes), charged on a byte that
/// crosses between a source and a NAT gateway in different AZs, in either direction. Every row of
/// [`PRICES`] has this rate (a test holds them to it), which is why the report and the metrics
/// can use one constant instead of threading a per-region rate.
pub const INTER_AZ_USD_PER_GB: f64 = 0.01;

const fn row(region: &'static str, usage_prefix: &'static str, usd: f64) -> Price {
    // On the VPC pricing page the hourly and the per-GB NAT rates are the same number in every
    // region listed here.
    Price {
        region,
        usage_prefix,
        usd_per_gb: usd,
        usd_per_hour: usd,
        inter_az_usd_per_gb: INTER_AZ_USD_PER_GB,
        source: VPC_PRICING,
    }
}

/// The built-in table. Only prices we could source are here: an unknown region must be given a
/// price explicitly rather than silently billed at a guess.
pub const PRICES: &[Price] = &[
    row("us-east-1", "", 0.045),
    row("us-east-2", "USE2", 0.045),
    row("us-west-1", "USW1", 0.048),
    row("us-west-2", "USW2", 0.045),
    row("ca-central-1", "CAN1", 0.05),
    row("eu-west-1", "EU", 0.048),
    row("eu-west-2", "EUW2", 0.05),
    row("eu-west-3", "EUW3", 0.05),
    row("eu-central-1", "EUC1", 0.052),
    row("eu-north-1", "EUN1", 0.046),
    row("ap-south-1", "APS3", 0.056),
    row("ap-southeast-1", "APS1", 0.059),
    row("ap-southeast-2", "APS2", 0.059),
    row("ap-northeast-1", "APN1", 0.062),
    row("ap-northeast-2", "APN2", 0.059),
    row("sa-east-1", "SAE1", 0.093),
];

impl Price {
    /// The Price List usage type of `item` (`NatGateway-Bytes`, `RegionalNatGateway-Hours`...)
    /// in this region: `EU-NatGateway-Bytes`, or `NatGateway-Bytes` in us-east-1.
    pub fn usage_type(&self, item: &str) -> String {
        if self.usage_prefix.is_empty() {
            item.to_string()
        } else {
            format!("{}-{item}", self.usage_prefix)
        }
    }
}

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

    #[test]
    fn every_row_is_sourced_and_unique() {
        for (i, p) in PRICES.iter().enumerate() {
            assert!(
                PRICES[..i].iter().all(|q| q.region != p.region),
                "{} twice",
                p.region
            );
            assert!(p.usd_per_gb > 0.0 && p.usd_per_gb < 1.0, "{}", p.region);
            assert!(p.usd_per_hour > 0.0 && p.usd_per_hour < 1.0, "{}", p.region);
            assert!(!p.source.is_empty());
            // The report and the metrics price cross-AZ bytes with the one constant.
            assert_eq!(p.inter_az_usd_per_gb, INTER_AZ_USD_PER_GB, "{}", p.region);
            assert_eq!(
                p.usage_prefix.is_empty(),
                p.region == "us-east-1",
                "{}",
                p.region
            );
        }
    }

    #[test]
    fn usage_types_as_the_price_list_spells_them() {
        let ut = |r: &str, item: &str| PriceTable::lookup(r).unwrap().usage_type(item);
        assert_eq!(ut("us-east-1", "NatGateway-Bytes"), "NatGateway-Bytes");
        assert_eq!(ut("us-east-2", "NatGateway-Bytes"), "USE2-NatGateway-Bytes");
        assert_eq!(ut("eu-west-1", "NatGateway-Hours"), "EU-NatGateway-Hours");
        assert_eq!(ut("eu-west-2", "NatGateway-Bytes"), "EUW2-NatGateway-Bytes");
        assert_eq!(
            ut("ap-northeast-1", "NatGateway-Bytes"),
            "APN1-NatGateway-Bytes"
        );
        assert_eq!(
            ut("ap-southeast-1", "NatGateway-Bytes"),
            "APS1-NatGateway-Bytes"
        );
        assert_eq!(
            ut("ap-south-1", "RegionalNatGateway-Bytes"),
            "APS3-RegionalNatGateway-Bytes"
        );
    }

    /// docs/operations.md §3.1 shows the table: it must say what the code charges.
    #[test]
    fn the_operations_guide_lists_the_table() {
        let doc = include_str!("../../../docs/operations.md");
        for p in PRICES {
            let row = format!(
                "| {} | `{}` | {} | {} | {} |",
                p.region,
                p.usage_type("NatGateway-Bytes"),
                p.usd_per_gb,
                p.usd_per_hour,
                p.inter_az_usd_per_gb
            );
            assert!(doc.contains(&row), "docs/operations.md lacks the row {row}");
        }
    }
}
