//! `natmeter report --inventory PATH...`: the EKS audit events (or a `kubectl get pods` snapshot)
//! that name sources, read from files in the shapes people have them (docs/contracts.md §4.1):
//!
//! - JSON lines of `audit.k8s.io/v1` Events (what the log group's messages are);
//! - an export of the log group: `aws logs filter-log-events` / `get-log-events` output
//!   (`{"events":[{"message":…}]}`), Logs Insights' `@message`, or an S3 export's lines
//!   (`2025-12-01T00:03:12.351Z {…}`);
//! - CloudWatch Logs subscription events of the cluster log group (`{"awslogs":{"data":…}}`, or
//!   the decoded payload), one per file or one per line;
//! - `kubectl get pods -A -o json`, which has no time: its names hold for the whole report.
//!
//! Files may be gzip-compressed; directories are walked. A line that is none of these is counted
//! and named (file and line), never silently dropped.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use natmeter_core::inventory::{is_audit_batch, Inventory};
use natmeter_core::sources::detect::{body_start, GZIP_MAGIC};
use natmeter_core::sources::{gzip, Decoder, Payload};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Largest inflated inventory file: audit logs are big, but a file that inflates past this is
/// not one a laptop should hold in memory.
const MAX_INFLATED: usize = 8 << 30;

/// Errors printed one by one before only counting.
const SHOWN_ERRORS: usize = 10;

/// The inventory and what reading it found.
pub struct Loaded {
    pub inventory: Inventory,
    /// Files holding a `kubectl get pods` snapshot, with their pod counts.
    pub snapshots: Vec<(PathBuf, usize)>,
    /// Lines (or events) that were not audit events, by file and line.
    pub errors: Vec<String>,
    pub error_count: u64,
    pub files: usize,
}

/// The shapes a JSON document of an inventory file can have, told apart by their keys.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    awslogs: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "messageType")]
    message_type: Option<&'a str>,
    #[serde(borrow, default)]
    events: Option<Vec<Message<'a>>>,
    #[serde(borrow, default, rename = "@message")]
    at_message: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    message: std::borrow::Cow<'a, str>,
}

pub fn load(paths: &[PathBuf]) -> anyhow::Result<Loaded> {
    let mut l = Loaded {
        inventory: Inventory::default(),
        snapshots: Vec::new(),
        errors: Vec::new(),
        error_count: 0,
        files: 0,
    };
    let mut decoder = Decoder::default();
    for file in crate::input::expand(paths) {
        let bytes = read_maybe_gzip(&file, MAX_INFLATED, "--inventory")?;
        l.files += 1;
        let body = &bytes[body_start(&bytes)..];
        read_file(&file, body, &mut l, &mut decoder);
    }
    Ok(l)
}

fn read_file(file: &Path, body: &[u8], l: &mut Loaded, decoder: &mut Decoder) {
    let first_line = body.split(|&b| b == b'\n').next().unwrap_or_default();
    let whole = match body.first() {
        // A JSON array (of events, or of Insights rows), or one pretty-printed document
        // (kubectl's output, a saved subscription event): whatever is not one document per line.
        Some(b'[') => true,
        Some(b'{') => serde_json::from_slice::<&RawValue>(first_line.trim_ascii()).is_err(),
        _ => false,
    };
    if whole {
        if body.first() == Some(&b'[') {
            match serde_json::from_slice::<Vec<&RawValue>>(body) {
                Ok(docs) => {
                    for (i, d) in docs.iter().enumerate() {
                        let at = format!("{} item {}", file.display(), i + 1);
                        doc(&at, file, d.get().as_bytes(), l, decoder);
                    }
                }
                Err(e) => l.error(format!("{}: not a JSON array: {e}", file.display())),
            }
        } else if serde_json::from_slice::<&RawValue>(body).is_ok() {
            doc(&file.display().to_string(), file, body, l, decoder);
        } else {
            // Not one document either: JSON lines whose first line is damaged. Read them line
            // by line, so the damage costs that line only.
            lines(file, body, l, decoder);
        }
        return;
    }
    lines(file, body, l, decoder);
}

fn lines(file: &Path, body: &[u8], l: &mut Loaded, decoder: &mut Decoder) {
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let at = format!("{} line {}", file.display(), n + 1);
        // An S3 export of a log group: each line is the event's time, a space, the message.
        let line = match line.first() {
            Some(b'{') => line,
            _ => match line.iter().position(|&b| b == b' ') {
                Some(sp) if line[..sp].ends_with(b"Z") => line[sp + 1..].trim_ascii_start(),
                _ => line,
            },
        };
        doc(&at, file, line, l, decoder);
    }
}

/// One JSON document of an inventory file.
fn doc(at: &str, file: &Path, json: &[u8], l: &mut Loaded, decoder: &mut Decoder) {
    let peek: Peek<'_> = match serde_json::from_slice(json) {
        Ok(p) => p,
        Err(e) => {
            l.inventory.stats.events += 1;
            l.inventory.stats.errors += 1;
            return l.error(format!("{at}: not JSON: {e}"));
        }
    };
    if let Some(env) = peek.awslogs {
        let data = match serde_json::from_str::<AwsLogs<'_>>(env.get()) {
            Ok(d) => d.data,
            Err(e) => return l.error(format!("{at}: awslogs without data: {e}")),
        };
        let mut decoded = Vec::new();
        if let Err(e) = decoder.decode(&data, &mut decoded) {
            return l.error(format!("{at}: {e}"));
        }
        return payload(at, &decoded, l);
    }
    if peek.message_type.is_some() {
        return payload(at, json, l);
    }
    if peek.kind == Some("Event") {
        if let Err(e) = l.inventory.add_line(json) {
            l.error(format!("{at}: {e}"));
        }
        return;
    }
    if matches!(peek.kind, Some("List" | "PodList")) {
        match l.inventory.add_snapshot(json) {
            Ok(n) => l.snapshots.push((file.to_path_buf(), n)),
            Err(e) => l.error(format!("{at}: {e}")),
        }
        return;
    }
    let messages: Vec<std::borrow::Cow<'_, str>> = match (peek.events, peek.at_message) {
        (Some(events), _) => events.into_iter().map(|m| m.message).collect(),
        (None, Some(m)) => vec![m],
        (None, None) => {
            l.inventory.stats.events += 1;
            l.inventory.stats.errors += 1;
            return l.error(format!(
                "{at}: not an audit event, a log group export, a subscription event of an EKS \
                 cluster log group, or kubectl get pods -o json output"
            ));
        }
    };
    for (i, m) in messages.iter().enumerate() {
        if let Err(e) = l.inventory.add_line(m.as_bytes()) {
            l.error(format!("{at} event {}: {e}", i + 1));
        }
    }
}

#[derive(Deserialize)]
struct AwsLogs<'a> {
    #[serde(borrow)]
    data: std::borrow::Cow<'a, str>,
}

fn payload(at: &str, json: &[u8], l: &mut Loaded) {
    let p = match Payload::parse_serde(json) {
        Ok(p) => p,
        Err(e) => return l.error(format!("{at}: {e}")),
    };
    if p.log_events.is_empty() {
        return;
    }
    if !is_audit_batch(&p.log_group, &p.log_stream) {
        return l.error(format!(
            "{at}: a subscription batch of log group {:?}, stream {:?}: not an EKS audit stream \
             (/aws/eks/<cluster>/cluster, kube-apiserver-audit-*); its {} events were not read",
            p.log_group,
            p.log_stream,
            p.log_events.len()
        ));
    }
    for (id, e) in l.inventory.add_payload(&p) {
        l.error(format!("{at} event {id}: {e}"));
    }
}

impl Loaded {
    fn error(&mut self, e: String) {
        self.error_count += 1;
        if self.errors.len() < SHOWN_ERRORS {
            self.errors.push(e);
        }
    }

    /// What was read, for stderr.
    pub fn summary(&self) -> String {
        let s = self.inventory.stats;
        format!(
            "inventory: {} files, {} events read ({} about pods and nodes, {} refused): {} pods, {} addresses",
            self.files,
            s.events,
            s.used,
            self.error_count,
            self.inventory.pods(),
            self.inventory.addresses()
        )
    }
}

/// A file given to a flag (`--inventory`, `--ip-ranges`), inflated when it is gzip; errors name
/// the flag and the file.
pub(crate) fn read_maybe_gzip(
    file: &std::path::Path,
    max_inflated: usize,
    flag: &str,
) -> anyhow::Result<Vec<u8>> {
    let raw = std::fs::read(file).with_context(|| format!("{flag}: reading {}", file.display()))?;
    if raw.starts_with(&GZIP_MAGIC) {
        gzip::gunzip(&raw, max_inflated)
            .map_err(|e| anyhow::anyhow!("{flag}: {}: {e}", file.display()))
    } else {
        Ok(raw)
    }
}
