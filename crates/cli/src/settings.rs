//! The engine settings as flags, mapped onto the same `NATMETER_*` names the Lambda reads so
//! that both validate through `Config::from_lookup`.

use std::collections::HashMap;

use anyhow::Context as _;
use natmeter_core::config::Config;
use natmeter_core::topology::{NatGateway, Topology};

#[derive(clap::Args, Clone)]
pub struct EngineArgs {
    /// The flow log's format, AWS syntax (`${version} ${srcaddr} ...`). Default: the AWS default
    /// format. S3 files with a header line use their header instead.
    #[arg(long, env = "NATMETER_LOG_FORMAT", value_name = "FMT")]
    pub log_format: Option<String>,
    /// A NAT gateway ENI and its private IPs (repeatable).
    #[arg(long = "nat", value_name = "ENI=IP[,IP...]")]
    pub nat: Vec<String>,
    /// NAT gateways as the JSON list of NATMETER_NAT_GATEWAYS, or @FILE holding it.
    #[arg(long, env = "NATMETER_NAT_GATEWAYS", value_name = "JSON|@FILE")]
    pub nat_gateways: Option<String>,
    /// Comma list of private CIDRs.
    #[arg(long, env = "NATMETER_PRIVATE_CIDRS", value_name = "LIST")]
    pub private_cidrs: Option<String>,
    /// Region whose NAT price applies.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// NAT processing price, USD per GB (2^30 bytes); overrides the region's list price.
    #[arg(long, env = "NATMETER_PRICE_PER_GB", value_name = "USD")]
    pub price_per_gb: Option<String>,
    /// The VPC's subnets with their AZ ids, as the JSON list of NATMETER_SUBNETS
    /// (`[{"cidr":"10.0.32.0/19","az_id":"use1-az1"}]`) or @FILE holding it: prices the
    /// cross-AZ surcharge of sources using a NAT gateway in another AZ (gateways need `az_id`).
    #[arg(long, env = "NATMETER_SUBNETS", value_name = "JSON|@FILE")]
    pub subnets: Option<String>,
}

pub type Settings = Config;

impl EngineArgs {
    /// Variables as the Lambda would see them.
    pub fn variables(&self) -> anyhow::Result<HashMap<&'static str, String>> {
        let mut vars = HashMap::new();
        let mut gateways: Vec<NatGateway> = Vec::new();
        if let Some(spec) = &self.nat_gateways {
            let json = match spec.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("--nat-gateways: cannot read {path}"))?,
                None => spec.clone(),
            };
            gateways = Topology::gateways_from_json(&json)
                .map_err(|e| anyhow::anyhow!("--nat-gateways: {e}"))?;
        }
        for flag in &self.nat {
            gateways.push(Topology::gateway_from_flag(flag)?);
        }
        if gateways.is_empty() {
            anyhow::bail!("no NAT gateway configured: give --nat ENI=IP[,IP...] or --nat-gateways JSON|@FILE (NATMETER_NAT_GATEWAYS)");
        }
        vars.insert("NATMETER_NAT_GATEWAYS", serde_json::to_string(&gateways)?);
        if let Some(f) = &self.log_format {
            vars.insert("NATMETER_LOG_FORMAT", f.clone());
        }
        if let Some(c) = &self.private_cidrs {
            vars.insert("NATMETER_PRIVATE_CIDRS", c.clone());
        }
        vars.insert("AWS_REGION", self.region.clone());
        if let Some(p) = &self.price_per_gb {
            vars.insert("NATMETER_PRICE_PER_GB", p.clone());
        }
        if let Some(spec) = &self.subnets {
            let json = match spec.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("--subnets: cannot read {path}"))?,
                None => spec.clone(),
            };
            vars.insert("NATMETER_SUBNETS", json);
        }
        Ok(vars)
    }

    pub fn settings(&self) -> anyhow::Result<Settings> {
        self.settings_with(&HashMap::new())
    }

    /// Settings with extra variables (e.g. the sink options of `emit`).
    pub fn settings_with(&self, extra: &HashMap<&'static str, String>) -> anyhow::Result<Settings> {
        let mut vars = self.variables()?;
        vars.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        Ok(Config::from_lookup(|k| vars.get(k).cloned())?)
    }
}
