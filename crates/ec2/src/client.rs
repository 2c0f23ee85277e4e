//! The two EC2 Query calls, signed with SigV4 and sent over the SDK's own HTTP stack
//! (hyper + rustls): `DescribeNatGateways` and `DescribeSubnets`, paginated.
//!
//! The endpoint is the one the AWS SDKs would use: `AWS_ENDPOINT_URL_EC2`, else
//! `AWS_ENDPOINT_URL`, else `https://ec2.<region>.amazonaws.com` (`.com.cn` in China). The
//! credentials and the region come from the SDK's default chain (the function's role in Lambda).

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::parse::{self, Gateway, ParseError, Subnet};
use crate::{discovered, Discovered, Scope};

/// The EC2 API version every Query request names.
const API_VERSION: &str = "2016-11-15";
/// Pages are requested this large; the API caps them at 1000.
const MAX_RESULTS: &str = "1000";
/// Attempts per request: throttling and 5xx answers are retried with backoff.
const ATTEMPTS: u32 = 3;
/// Time for one attempt, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// A describe of a VPC never needs this many pages; past it the answer is refused as looping.
const MAX_PAGES: usize = 100;

/// A failed call, phrased for the person who reads the function's log.
#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    #[error("{action}: {source}")]
    Answer {
        action: &'static str,
        #[source]
        source: ParseError,
    },
    #[error("{action}: HTTP {status} from {endpoint}: {body}")]
    Status {
        action: &'static str,
        status: u16,
        endpoint: String,
        body: String,
    },
    #[error("{action}: {endpoint}: {problem}")]
    Transport {
        action: &'static str,
        endpoint: String,
        problem: String,
    },
    #[error("EC2 client: {0}")]
    Setup(String),
}

impl Ec2Error {
    /// Worth another attempt: throttling, EC2's own 5xx, a connection or a timeout.
    fn retryable(&self) -> bool {
        match self {
            Ec2Error::Answer {
                source: ParseError::Api { code, .. },
                ..
            } => matches!(
                code.as_str(),
                "RequestLimitExceeded" | "Throttling" | "InternalError" | "Unavailable"
            ),
            Ec2Error::Status { status, .. } => *status >= 500 || *status == 429,
            Ec2Error::Transport { .. } => true,
            _ => false,
        }
    }
}

pub(crate) type Http =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A signed EC2 Query client.
#[derive(Clone)]
pub struct Client {
    http: Http,
    endpoint: String,
    region: String,
    credentials: SharedCredentialsProvider,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The endpoint an SDK would call for EC2 in `region`, given the environment's lookup.
pub fn endpoint(region: &str, get: impl Fn(&str) -> Option<String>) -> String {
    let set = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    if let Some(url) = set("AWS_ENDPOINT_URL_EC2").or_else(|| set("AWS_ENDPOINT_URL")) {
        return url.trim().trim_end_matches('/').to_string();
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://ec2.{region}.{suffix}")
}

/// Signs `req` in place (SigV4) for `service` in `region`: the host header, the date and the
/// authorization, as the SDKs send them. Shared by the EC2 and S3 calls.
pub(crate) fn sign_request(
    req: &mut http::Request<Full<Bytes>>,
    body: SignableBody<'_>,
    service: &str,
    region: &str,
    identity: &Identity,
    settings: SigningSettings,
) -> Result<(), String> {
    let uri = req.uri().to_string();
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .ok_or_else(|| format!("endpoint {uri:?} has no host"))?;
    req.headers_mut().insert(
        "host",
        http::HeaderValue::from_str(&host).map_err(|e| e.to_string())?,
    );
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| format!("signing: {e}"))?
        .into();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(req.method().as_str(), &uri, headers.into_iter(), body)
        .map_err(|e| format!("signing: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("signing: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

/// The region and credentials of the SDK's default chain (or `region`).
pub(crate) async fn sdk_identity(
    region: Option<&str>,
) -> Result<(String, SharedCredentialsProvider), String> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    let conf = loader.load().await;
    let region = conf
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| "no region (set AWS_REGION)".to_string())?;
    let credentials = conf
        .credentials_provider()
        .ok_or_else(|| "no credentials provider".to_string())?;
    Ok((region, credentials))
}

/// An HTTP(S) client on the SDK's TLS stack (aws-lc-rs, the system's roots).
pub(crate) fn http_client() -> Result<Http, Ec2Error> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| Ec2Error::Setup(format!("TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https),
    )
}

/// GETs `url` (AWS's ip-ranges.json: public, unsigned), at most `limit` bytes, within
/// `timeout`; anything but a 200 is an error naming the URL.
pub async fn fetch(url: &str, limit: usize, timeout: Duration) -> Result<Vec<u8>, String> {
    let http = http_client().map_err(|e| e.to_string())?;
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let work = async {
        let req = http::Request::get(uri)
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("{url}: {e}"))?;
        let resp = http
            .request(req)
            .await
            .map_err(|e| format!("{url}: {e:#}"))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(format!("{url}: HTTP {status}"));
        }
        let body = http_body_util::Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| format!("{url}: reading the answer: {e}"))?
            .to_bytes();
        Ok(body.to_vec())
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("{url}: no answer within {timeout:?}")))
}

/// The Query request's form body. (The serializer is not `Send`: it must not live across an
/// await.)
fn form(action: &str, params: &[(String, String)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", action);
    form.append_pair("Version", API_VERSION);
    for (k, v) in params {
        form.append_pair(k, v);
    }
    form.finish()
}

impl Client {
    /// A client with the SDK's default credentials chain and region (or `region`), and the
    /// endpoint of [`endpoint`] from the process environment.
    pub async fn from_env(region: Option<&str>) -> Result<Client, Ec2Error> {
        let (region, credentials) = sdk_identity(region).await.map_err(Ec2Error::Setup)?;
        let endpoint = endpoint(&region, |k| std::env::var(k).ok());
        Client::new(endpoint, region, credentials)
    }

    pub fn new(
        endpoint: String,
        region: String,
        credentials: SharedCredentialsProvider,
    ) -> Result<Client, Ec2Error> {
        let http = http_client()?;
        Ok(Client {
            http,
            endpoint,
            region,
            credentials,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Describes the scope's NAT gateways and the subnets of their VPCs (or of the scope's VPCs),
    /// and turns them into topology parts.
    pub async fn discover(&self, scope: &Scope) -> Result<Discovered, Ec2Error> {
        let gateways = self.describe_nat_gateways(scope).await?;
        let mut vpcs = scope.vpc_ids.clone();
        for v in crate::gateway_vpcs(&gateways) {
            if !vpcs.contains(&v) {
                vpcs.push(v);
            }
        }
        let subnets = if vpcs.is_empty() {
            Vec::new()
        } else {
            self.describe_subnets(&vpcs).await?
        };
        Ok(discovered(&gateways, &subnets))
    }

    /// `DescribeNatGateways`, every page.
    pub async fn describe_nat_gateways(&self, scope: &Scope) -> Result<Vec<Gateway>, Ec2Error> {
        let mut params = Vec::new();
        for (i, id) in scope.nat_gateway_ids.iter().enumerate() {
            params.push((format!("NatGatewayId.{}", i + 1), id.clone()));
        }
        if !scope.vpc_ids.is_empty() {
            params.push(("Filter.1.Name".into(), "vpc-id".into()));
            for (i, id) in scope.vpc_ids.iter().enumerate() {
                params.push((format!("Filter.1.Value.{}", i + 1), id.clone()));
            }
        }
        self.pages("DescribeNatGateways", params, parse::nat_gateways)
            .await
    }

    /// `DescribeSubnets` of `vpc_ids`, every page.
    pub async fn describe_subnets(&self, vpc_ids: &[String]) -> Result<Vec<Subnet>, Ec2Error> {
        let mut params = vec![("Filter.1.Name".to_string(), "vpc-id".to_string())];
        for (i, id) in vpc_ids.iter().enumerate() {
            params.push((format!("Filter.1.Value.{}", i + 1), id.clone()));
        }
        self.pages("DescribeSubnets", params, parse::subnets).await
    }

    async fn pages<T>(
        &self,
        action: &'static str,
        params: Vec<(String, String)>,
        parse: fn(&str) -> Result<parse::Page<T>, ParseError>,
    ) -> Result<Vec<T>, Ec2Error> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut p = params.clone();
            p.push(("MaxResults".into(), MAX_RESULTS.into()));
            if let Some(t) = &token {
                p.push(("NextToken".into(), t.clone()));
            }
            let body = self.call(action, &p).await?;
            let page = parse(&body).map_err(|source| Ec2Error::Answer { action, source })?;
            items.extend(page.items);
            match page.next_token {
                Some(t) if token.as_ref() != Some(&t) => token = Some(t),
                Some(_) => break,
                None => return Ok(items),
            }
        }
        Err(Ec2Error::Answer {
            action,
            source: ParseError::Shape {
                expected: action,
                problem: format!(
                    "still paginating after {MAX_PAGES} pages (or a repeated nextToken)"
                ),
            },
        })
    }

    /// One call, retried with backoff when EC2 throttles or fails.
    async fn call(
        &self,
        action: &'static str,
        params: &[(String, String)],
    ) -> Result<String, Ec2Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = tokio::time::timeout(ATTEMPT_TIMEOUT, self.attempt(action, params))
                .await
                .unwrap_or_else(|_| {
                    Err(Ec2Error::Transport {
                        action,
                        endpoint: self.endpoint.clone(),
                        problem: format!("no answer within {ATTEMPT_TIMEOUT:?}"),
                    })
                });
            match res {
                Err(e) if attempt < ATTEMPTS && e.retryable() => {
                    tracing::warn!(action, attempt, error = %e, "EC2 call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn attempt(
        &self,
        action: &'static str,
        params: &[(String, String)],
    ) -> Result<String, Ec2Error> {
        let transport = |problem: String| Ec2Error::Transport {
            action,
            endpoint: self.endpoint.clone(),
            problem,
        };
        let body = form(action, params);
        let uri = format!("{}/", self.endpoint);
        let creds = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| Ec2Error::Setup(format!("credentials: {e}")))?;
        let identity = Identity::from(creds);
        let mut req = http::Request::builder()
            .method("POST")
            .uri(&uri)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| Ec2Error::Setup(format!("request to {uri}: {e}")))?;
        sign_request(
            &mut req,
            SignableBody::Bytes(body.as_bytes()),
            "ec2",
            &self.region,
            &identity,
            SigningSettings::default(),
        )
        .map_err(Ec2Error::Setup)?;

        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| transport(format!("{e:#}")))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(format!("reading the answer: {e}")))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if (200..300).contains(&status) {
            return Ok(text);
        }
        // EC2's error answers are XML with a code worth showing (and retrying on).
        match parse::nat_gateways(&text) {
            Err(source @ ParseError::Api { .. }) => Err(Ec2Error::Answer { action, source }),
            _ => Err(Ec2Error::Status {
                action,
                status,
                endpoint: self.endpoint.clone(),
                body: text.chars().take(300).collect(),
            }),
        }
    }
}
