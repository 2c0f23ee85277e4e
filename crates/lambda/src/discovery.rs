//! The NAT gateways and subnets described from the EC2 API instead of configured
//! (docs/topology.md §2): once at cold start, and again, rate-limited, when a batch comes from an
//! ENI the function does not know, so that a regional gateway's new AZ (or a gateway added
//! later) is metered without a redeploy.
//!
//! The describer is a function value so that the tests can inject faults; in the function it is
//! the EC2 client of `natmeter-ec2`.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use natmeter_core::config::{Config, Discovery};
use natmeter_ec2::client::Ec2Error;
use natmeter_ec2::{Discovered, Scope};

/// What describes the VPC.
pub type Describe = Box<
    dyn Fn(Scope) -> Pin<Box<dyn Future<Output = Result<Discovered, Ec2Error>> + Send>>
        + Send
        + Sync,
>;

/// ENIs found not to be NAT ENIs, remembered so that each prompts one re-describe at most; past
/// this many the set starts over (a VPC with more ENIs re-describes a little more often).
const MAX_CHECKED_ENIS: usize = 10_000;
/// After a failed describe, the function fails unknown ENIs' batches for this long (or the
/// re-describe interval, when shorter) without calling EC2 again; Lambda's retries come back
/// after it.
const FAILURE_BACKOFF_SECS: i64 = 30;

/// The describer, the settings, and what this container learnt.
pub struct Discoverer {
    settings: Discovery,
    describe: Describe,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Unix seconds of the last describe, successful or not.
    last: Option<i64>,
    failed_at: Option<i64>,
    last_error: String,
    checked: HashSet<String>,
    describes: u64,
}

impl Discoverer {
    pub fn new(settings: Discovery, describe: Describe) -> Discoverer {
        Discoverer {
            settings,
            describe,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    fn scope(&self) -> Scope {
        Scope {
            vpc_ids: self.settings.vpc_ids.clone(),
            nat_gateway_ids: self.settings.nat_gateway_ids.clone(),
        }
    }

    /// `cfg` with what the API describes (the gateways and the subnets that were not given).
    fn apply(&self, cfg: &Config, d: Discovered) -> Result<Config, String> {
        let mut out = cfg.clone();
        if self.settings.gateways {
            out.topology = cfg
                .topology
                .with_gateways(d.gateways)
                .map_err(|e| format!("the described NAT gateways: {e}"))?;
        }
        if self.settings.subnets {
            out.topology = out.topology.with_subnets(d.subnets);
        }
        Ok(out)
    }

    /// The cold start's describe. A failure stops start-up (Lambda retries the events).
    pub async fn initial(&self, cfg: &Config, now: i64) -> Result<Config, String> {
        let scope = self.scope();
        let d = (self.describe)(scope.clone())
            .await
            .map_err(|e| format!("describing {scope:?}: {e}"))?;
        for p in &d.passed_over {
            tracing::info!(gateway = %p, "NAT gateway described but not metered");
        }
        let mut st = self.state.lock().await;
        st.last = Some(now);
        st.describes += 1;
        let out = self.apply(cfg, d)?;
        let t = &out.topology;
        tracing::info!(
            gateways = t.gateways().len(),
            subnets = t.subnets().len(),
            enis = ?t.gateways().iter().map(|g| g.eni.as_str()).collect::<Vec<_>>(),
            "topology discovered from the EC2 API"
        );
        if self.settings.gateways && t.gateways().is_empty() {
            tracing::warn!(scope = ?scope, "no NAT gateway with a network interface is in scope yet; every batch is not NAT until one is (re-described as batches from unknown ENIs arrive)");
        }
        Ok(out)
    }

    /// A batch came from `eni`, which `cfg` does not know as a NAT ENI. Re-describes when the
    /// gateways are discovered, the ENI was not found to be non-NAT before, and the last
    /// describe is `rediscover_seconds` old. A failed describe is an error: the batch may be a
    /// NAT ENI's, and failing lets Lambda retry it instead of dropping its bytes as not NAT.
    ///
    /// Returns the configuration as described now (whether or not it made `eni` a NAT ENI), or
    /// `None` when nothing was described.
    pub async fn on_unknown(
        &self,
        cfg: &Config,
        eni: &str,
        now: i64,
    ) -> Result<Option<Arc<Config>>, String> {
        if !self.settings.gateways {
            return Ok(None);
        }
        let mut st = self.state.lock().await;
        if st.checked.contains(eni) {
            return Ok(None);
        }
        let backoff = FAILURE_BACKOFF_SECS.min(self.settings.rediscover_seconds as i64);
        if let Some(f) = st.failed_at.filter(|f| now - f < backoff) {
            return Err(format!(
                "the batch comes from {eni}, not a known NAT ENI, and the EC2 API failed {}s ago: {}",
                now - f,
                st.last_error
            ));
        }
        let due = match st.last {
            None => true,
            Some(l) => now - l >= self.settings.rediscover_seconds as i64,
        };
        if !due {
            return Ok(None);
        }
        let previous = st.last.replace(now);
        st.describes += 1;
        let d = match (self.describe)(self.scope()).await {
            Ok(d) => d,
            Err(e) => {
                // The next unknown batch after the backoff asks again: a failure does not start a
                // new interval, or a NAT ENI's bytes would be taken for not NAT until it ends.
                st.last = previous;
                st.failed_at = Some(now);
                st.last_error = e.to_string();
                return Err(format!(
                    "re-describing the NAT gateways for {eni}, not a known NAT ENI: {e}"
                ));
            }
        };
        st.failed_at = None;
        let out = self.apply(cfg, d)?;
        if out.topology.gateway_by_eni(eni).is_some() {
            tracing::info!(
                eni,
                gateways = out.topology.gateways().len(),
                "a new NAT ENI was described; metering it from this batch on"
            );
        } else {
            if st.checked.len() >= MAX_CHECKED_ENIS {
                st.checked.clear();
            }
            st.checked.insert(eni.to_string());
        }
        Ok(Some(Arc::new(out)))
    }

    /// Describes made by this container (cold start included).
    pub async fn describes(&self) -> u64 {
        self.state.lock().await.describes
    }
}
