//! The two S3 calls the function makes, signed with SigV4 on the same HTTP stack as the EC2
//! calls: `GetObject`, streamed (a 75 MB flow-log object is read piece by piece, never held
//! whole), and `PutObject` for the small result objects (docs/s3.md §4).
//!
//! Not aws-sdk-s3, for the reason `aws-sdk-ec2` is not used (docs/topology.md §2.4): it is one
//! of the SDK's largest crates to compile, for two calls.
//!
//! The endpoint is the one the SDKs would use: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`
//! (both path-style: `{endpoint}/{bucket}/{key}`, as LocalStack and other emulators serve it),
//! else the virtual-hosted `https://{bucket}.s3.{region}.amazonaws.com/{key}` (path-style for a
//! bucket name with dots, which a wildcard certificate cannot cover).

use std::time::Duration;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SigningSettings,
    UriPathNormalizationMode,
};
use aws_smithy_runtime_api::client::identity::Identity;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};

use crate::client::{http_client, sdk_identity, sign_request, Http};

/// Attempts per request before its body starts: throttling, 5xx and connection failures.
const ATTEMPTS: u32 = 3;
/// Time to the response's head; the body then has the invocation's deadline.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for one piece of a body to arrive: a stalled connection fails instead of hanging.
const PIECE_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed call, naming the object.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("s3://{bucket}/{key}: {action}: HTTP {status} {code}: {message}")]
    Status {
        action: &'static str,
        bucket: String,
        key: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("s3://{bucket}/{key}: {action}: {endpoint}: {problem}")]
    Transport {
        action: &'static str,
        bucket: String,
        key: String,
        endpoint: String,
        problem: String,
    },
    #[error("S3 client: {0}")]
    Setup(String),
}

impl S3Error {
    /// Worth another attempt (and, for a queue message, a later retry): throttling, S3's own
    /// 5xx, a connection or a timeout. A missing object or a denied read is not.
    pub fn retryable(&self) -> bool {
        match self {
            S3Error::Status { status, code, .. } => {
                *status >= 500 || *status == 429 || code == "SlowDown"
            }
            S3Error::Transport { .. } => true,
            S3Error::Setup(_) => false,
        }
    }
}

/// A signed S3 client.
#[derive(Clone)]
pub struct S3 {
    http: Http,
    /// An endpoint override (path-style); `None` for AWS's own endpoints.
    endpoint: Option<String>,
    region: String,
    credentials: SharedCredentialsProvider,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// An object's body as it arrives.
pub struct Body {
    inner: Incoming,
    pub etag: Option<String>,
    pub content_length: Option<u64>,
    bucket: String,
    key: String,
    endpoint: String,
}

impl Body {
    /// The next piece of the body; `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, S3Error> {
        loop {
            let frame = tokio::time::timeout(PIECE_TIMEOUT, self.inner.frame())
                .await
                .map_err(|_| self.transport(format!("no data for {PIECE_TIMEOUT:?}")))?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(self.transport(format!("reading the body: {e}"))),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }

    fn transport(&self, problem: String) -> S3Error {
        S3Error::Transport {
            action: "GetObject",
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            endpoint: self.endpoint.clone(),
            problem,
        }
    }
}

/// S3's URI encoding of a key: every byte but the unreserved ones and `/` percent-encoded
/// (the canonical request then uses the path as is: S3 signs it single-encoded).
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() * 3 / 2);
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The endpoint override in the environment, as the SDKs read it.
pub fn endpoint_override(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    set("AWS_ENDPOINT_URL_S3")
        .or_else(|| set("AWS_ENDPOINT_URL"))
        .map(|u| u.trim().trim_end_matches('/').to_string())
}

impl S3 {
    pub async fn from_env(region: Option<&str>) -> Result<S3, S3Error> {
        let (region, credentials) = sdk_identity(region).await.map_err(S3Error::Setup)?;
        let endpoint = endpoint_override(|k| std::env::var(k).ok());
        S3::new(endpoint, region, credentials)
    }

    pub fn new(
        endpoint: Option<String>,
        region: String,
        credentials: SharedCredentialsProvider,
    ) -> Result<S3, S3Error> {
        let http = http_client().map_err(|e| S3Error::Setup(e.to_string()))?;
        Ok(S3 {
            http,
            endpoint,
            region,
            credentials,
        })
    }

    /// The URL of an object.
    pub fn url(&self, bucket: &str, key: &str) -> String {
        let key = encode_key(key);
        match &self.endpoint {
            Some(e) => format!("{e}/{bucket}/{key}"),
            None => {
                let suffix = if self.region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                if bucket.contains('.') {
                    format!("https://s3.{}.{suffix}/{bucket}/{key}", self.region)
                } else {
                    format!("https://{bucket}.s3.{}.{suffix}/{key}", self.region)
                }
            }
        }
    }

    fn transport(&self, action: &'static str, bucket: &str, key: &str, problem: String) -> S3Error {
        S3Error::Transport {
            action,
            bucket: bucket.to_string(),
            key: key.to_string(),
            endpoint: self.url(bucket, ""),
            problem,
        }
    }

    /// `GetObject`: the body as it streams in.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Body, S3Error> {
        let resp = self.send("GetObject", "GET", bucket, key, None).await?;
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("etag").map(|e| e.trim_matches('"').to_string());
        let content_length = header("content-length").and_then(|v| v.parse().ok());
        Ok(Body {
            etag,
            content_length,
            bucket: bucket.to_string(),
            key: key.to_string(),
            endpoint: self.url(bucket, ""),
            inner: resp.into_body(),
        })
    }

    /// `PutObject` of a small body.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), S3Error> {
        let resp = self
            .send(
                "PutObject",
                "PUT",
                bucket,
                key,
                Some((Bytes::from(body), content_type)),
            )
            .await?;
        // The answer's body is empty; read it so the connection goes back to the pool.
        let _ = resp.into_body().collect().await;
        Ok(())
    }

    /// One request, retried with backoff until its head arrives with a 2xx.
    async fn send(
        &self,
        action: &'static str,
        method: &'static str,
        bucket: &str,
        key: &str,
        body: Option<(Bytes, &str)>,
    ) -> Result<http::Response<Incoming>, S3Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = tokio::time::timeout(
                HEAD_TIMEOUT,
                self.attempt(action, method, bucket, key, body.clone()),
            )
            .await
            .unwrap_or_else(|_| {
                Err(self.transport(
                    action,
                    bucket,
                    key,
                    format!("no answer within {HEAD_TIMEOUT:?}"),
                ))
            });
            match res {
                Err(e) if attempt < ATTEMPTS && e.retryable() => {
                    tracing::warn!(action, attempt, error = %e, "S3 call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn attempt(
        &self,
        action: &'static str,
        method: &'static str,
        bucket: &str,
        key: &str,
        body: Option<(Bytes, &str)>,
    ) -> Result<http::Response<Incoming>, S3Error> {
        let url = self.url(bucket, key);
        let creds = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| S3Error::Setup(format!("credentials: {e}")))?;
        let identity = Identity::from(creds);
        let mut b = http::Request::builder().method(method).uri(&url);
        if let Some((_, ct)) = &body {
            b = b.header("content-type", *ct);
        }
        let payload = body.as_ref().map(|(b, _)| b.clone()).unwrap_or_default();
        let mut req = b
            .body(Full::new(payload.clone()))
            .map_err(|e| S3Error::Setup(format!("request to {url}: {e}")))?;
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let signable = if body.is_some() {
            SignableBody::Bytes(&payload)
        } else {
            SignableBody::UnsignedPayload
        };
        sign_request(&mut req, signable, "s3", &self.region, &identity, settings)
            .map_err(S3Error::Setup)?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| self.transport(action, bucket, key, format!("{e:#}")))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let text = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        let (code, message) = error_code(&text);
        Err(S3Error::Status {
            action,
            bucket: bucket.to_string(),
            key: key.to_string(),
            status,
            code: code.unwrap_or_else(|| status_code_name(status).to_string()),
            message: message.unwrap_or_else(|| text.chars().take(200).collect()),
        })
    }
}

/// `<Code>` and `<Message>` of S3's XML error answer.
fn error_code(xml: &str) -> (Option<String>, Option<String>) {
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let start = xml.find(&open)? + open.len();
        let end = xml[start..].find(&format!("</{t}>"))? + start;
        Some(xml[start..end].to_string())
    };
    (tag("Code"), tag("Message"))
}

/// A HEAD-style answer has no body: name the usual statuses.
fn status_code_name(status: u16) -> &'static str {
    match status {
        403 => "AccessDenied",
        404 => "NoSuchKey",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_once_with_slashes_kept() {
        assert_eq!(
            encode_key("AWSLogs/1/vpcflowlogs/a b+c%/x.log.gz"),
            "AWSLogs/1/vpcflowlogs/a%20b%2Bc%25/x.log.gz"
        );
        assert_eq!(encode_key("k=v/é"), "k%3Dv/%C3%A9");
    }

    #[test]
    fn errors_read_code_and_message() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
        assert_eq!(
            error_code(xml),
            (
                Some("NoSuchKey".into()),
                Some("The specified key does not exist.".into())
            )
        );
        assert_eq!(error_code("garbage"), (None, None));
    }

    #[test]
    fn the_endpoint_is_the_sdks() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string())
        };
        assert_eq!(
            endpoint_override(env(&[("AWS_ENDPOINT_URL", "http://a:1/")])),
            Some("http://a:1".into())
        );
        assert_eq!(
            endpoint_override(env(&[
                ("AWS_ENDPOINT_URL", "http://a:1"),
                ("AWS_ENDPOINT_URL_S3", "http://s3:2")
            ])),
            Some("http://s3:2".into())
        );
        assert_eq!(endpoint_override(env(&[])), None);
    }
}
