//! Reading local inputs: files and directories, each detected by content, fed to the engine.
//!
//! One file is one unit of work (and of failure): an unreadable or undecodable file is reported
//! with its path and the reason, and the others are still processed. Files are processed on all
//! cores, each into its own engine, and merged in file order, so the output is identical to a
//! single-threaded run.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use natmeter_core::engine::{Engine, Origin};
use natmeter_core::flowlog::Format;
use natmeter_core::subscription::{Decoder, Payload};
use natmeter_core::topology::Topology;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Expands directories (recursively, sorted) into files. Missing paths are kept, so that reading
/// them reports the error in order.
pub fn expand(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        out.push(dir.to_path_buf());
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            walk(&e, out);
        } else {
            out.push(e);
        }
    }
}

/// The result of one file.
pub struct FileResult<'t> {
    pub engine: Engine<'t>,
    /// Problems to report on stderr; the file still contributed whatever could be read.
    pub errors: Vec<String>,
    /// False when nothing in the file could be read.
    pub readable: bool,
}

/// Which JSON document an object is.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    awslogs: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "messageType")]
    message_type: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "logEvents")]
    log_events: Option<&'a RawValue>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Largest decoded `.gz` input file. S3 flow-log objects are far smaller; the cap keeps a bomb
/// from getting the CLI killed for memory.
const MAX_GZ_DECODED: u64 = 4 << 30;

/// Processes one file into a fresh engine.
pub fn process_file<'t>(
    path: &Path,
    topo: &'t Topology,
    format: &Format,
    now: i64,
) -> FileResult<'t> {
    let mut r = FileResult {
        engine: Engine::new(topo, format.clone()),
        errors: Vec::new(),
        readable: false,
    };
    let name = path.display().to_string();
    let mut bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            r.errors.push(format!("{name}: cannot read: {e}"));
            return r;
        }
    };
    if bytes.starts_with(&GZIP_MAGIC) {
        // S3 delivery writes .log.gz objects.
        let mut out = Vec::new();
        let limit = MAX_GZ_DECODED + 1;
        if let Err(e) = flate2::read::MultiGzDecoder::new(&bytes[..])
            .take(limit)
            .read_to_end(&mut out)
        {
            r.errors.push(format!("{name}: not valid gzip: {e}"));
            return r;
        }
        if out.len() as u64 >= limit {
            r.errors.push(format!(
                "{name}: inflates to more than {} GiB; refused (split the file, or it is a gzip bomb)",
                MAX_GZ_DECODED >> 30
            ));
            return r;
        }
        bytes = out;
    }
    // A UTF-8 byte order mark, with whitespace on either side of it, does not decide the kind.
    let body = bytes.trim_ascii_start();
    let body = body
        .strip_prefix(b"\xef\xbb\xbf")
        .map_or(body, <[u8]>::trim_ascii_start);
    if body.trim_ascii().is_empty() {
        r.errors.push(format!("{name}: empty file: expected Lambda events, a CloudWatch Logs payload or flow-log lines"));
        return r;
    }
    let json_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("jsonl"));
    match body[0] {
        b'{' | b'[' => process_json(&name, body, &mut r),
        // A .json file that does not start like JSON is a broken export, not flow-log text.
        _ if json_name => {
            let e = serde_json::from_slice::<&RawValue>(body)
                .err()
                .map_or_else(String::new, |e| e.to_string());
            r.errors.push(format!("{name}: not valid JSON: {e}"));
        }
        _ => {
            let (header, rest, first_line) = split_header(body);
            match header {
                Some(Ok(f)) => r.engine.ingest_lines(
                    rest,
                    Some(&f),
                    Origin {
                        origin: &name,
                        first_line,
                    },
                    now,
                ),
                Some(Err(e)) => {
                    r.errors.push(format!("{name}:1: bad header line: {e}"));
                    return r;
                }
                None => r.engine.ingest_lines(
                    rest,
                    None,
                    Origin {
                        origin: &name,
                        first_line,
                    },
                    now,
                ),
            }
            r.readable = true;
        }
    }
    r
}

/// An S3-delivered file starts with a header line naming the fields.
fn split_header(body: &[u8]) -> (Option<Result<Format, String>>, &[u8], u64) {
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let first = std::str::from_utf8(&body[..end]).unwrap_or("");
    if Format::looks_like_header(first) {
        let rest = body.get(end + 1..).unwrap_or(&[]);
        (
            Some(Format::from_header(first).map_err(|e| e.to_string())),
            rest,
            2,
        )
    } else {
        (None, body, 1)
    }
}

fn process_json(name: &str, body: &[u8], r: &mut FileResult<'_>) {
    let mut decoder = Decoder::default();
    let mut buf = Vec::new();
    let mut docs: Vec<&RawValue> = Vec::new();
    if body[0] == b'[' {
        match serde_json::from_slice::<Vec<&RawValue>>(body) {
            Ok(v) => docs = v,
            Err(e) => {
                r.errors.push(format!("{name}: not valid JSON: {e}"));
                return;
            }
        }
    } else {
        // One document or JSON lines: a stream of values covers both.
        for (i, v) in serde_json::Deserializer::from_slice(body)
            .into_iter::<&RawValue>()
            .enumerate()
        {
            match v {
                Ok(v) => docs.push(v),
                Err(e) => {
                    r.errors
                        .push(format!("{name}: not valid JSON (document {}): {e}", i + 1));
                    break;
                }
            }
        }
    }
    let many = docs.len() > 1;
    for (i, doc) in docs.iter().enumerate() {
        let origin = if many {
            format!("{name}[{i}]")
        } else {
            name.to_string()
        };
        match ingest_doc(doc, &origin, &mut r.engine, &mut decoder, &mut buf) {
            Ok(()) => r.readable = true,
            Err(e) => r.errors.push(format!("{origin}: {e}")),
        }
    }
}

fn ingest_doc(
    doc: &RawValue,
    origin: &str,
    engine: &mut Engine<'_>,
    decoder: &mut Decoder,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    let probe: Probe<'_> =
        serde_json::from_str(doc.get()).map_err(|e| format!("not a JSON object: {e}"))?;
    if probe.awslogs.is_some() {
        engine
            .ingest_event(doc.get().as_bytes(), decoder, buf, origin)
            .map_err(|e| e.to_string())?;
        Ok(())
    } else if probe.message_type.is_some() || probe.log_events.is_some() {
        let payload = Payload::parse(doc.get().as_bytes()).map_err(|e| e.to_string())?;
        engine.ingest_payload(&payload, origin);
        Ok(())
    } else {
        Err("JSON object is neither a Lambda event {\"awslogs\":{\"data\":...}} nor a CloudWatch Logs payload {\"messageType\":...,\"logEvents\":[...]}".into())
    }
}

/// Processes `files` on up to `threads` threads and merges the results in file order.
/// `on_done` is called after each file (progress).
pub fn process_all<'t>(
    files: &[PathBuf],
    topo: &'t Topology,
    format: &Format,
    now: i64,
    threads: usize,
    on_done: &(dyn Fn() + Sync),
) -> (Engine<'t>, Vec<String>, usize) {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<FileResult<'t>>>> =
        files.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(files.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let res = process_file(path, topo, format, now);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(res);
                }
                on_done();
            });
        }
    });
    let mut total = Engine::new(topo, format.clone());
    let mut errors = Vec::new();
    let mut readable = 0;
    for slot in slots {
        let Some(res) = slot.into_inner().ok().flatten() else {
            continue;
        };
        total.merge(&res.engine);
        errors.extend(res.errors);
        readable += usize::from(res.readable);
    }
    (total, errors, readable)
}
