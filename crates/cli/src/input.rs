//! Reading local inputs: files and directories, each detected by content, fed to the engine.
//!
//! One file is one unit of failure: an unreadable or undecodable file is reported with its path
//! and the reason, and the others are still processed. The output is identical to a
//! single-threaded run, and does not depend on `--threads`:
//!
//! - Each worker thread keeps one engine, decoder and set of buffers for the whole run. The
//!   ledger and the counters are sums, so it does not matter which thread added what; a fresh
//!   engine, decoder and ledger per file (and merging each file's ledger) cost more than the
//!   records of a quiet ENI's 80 KB batch.
//! - What depends on order (error samples, the ENIs seen, error messages) is taken out of the
//!   engine after each piece of work and merged in input order at the end.
//! - A big file (one JSON-lines export, one S3 object) is split into pieces at document or line
//!   boundaries, so that all threads share it. Where it is split depends only on its content,
//!   never on the thread count.
//!
//! Memory: flow-log text bigger than a chunk (4 MiB) is read chunk by chunk, so a big text file
//! costs a few chunks per thread, not its size. Anything else is read whole, as before (JSON,
//! whose documents need not follow line ends; a `.gz` file, inflated whole up to 4 GiB), and the
//! workers start a new file only when no piece of a split one is waiting, so at most about one
//! such file per thread is held at a time. A Parquet file (`.log.parquet`, docs/attribution.md
//! §1.5) is read row group by row group, its rows written as flow-log text in pieces of about a
//! chunk, each numbered by its first row, so that it goes through the engine exactly as a text
//! file with a header line and its errors read `file:row`.
//!
//! A file that is a `natmeter.report/v1` document (a results object, or a saved
//! `--output json`: docs/s3.md §4) is recognised by the worker that reads it, parsed there and
//! handed back in input order, instead of every input being opened once more beforehand to
//! find them: on a directory of 3,000 batches that pass was a serial 3-5% of the run.

use std::collections::VecDeque;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use natmeter_core::engine::{Attributor, Observations, Results};
use natmeter_core::flowlog::bytes::find_newline;
use natmeter_core::flowlog::Format;
use natmeter_core::report::Report;
use natmeter_core::sources::detect::{
    self, count_newlines, split_header, split_json, split_stream, Doc, Shape,
};
use natmeter_core::sources::{gzip, DecodeError, Input, Reader, Text};
use natmeter_parquet::FlowLogParquet;
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
    // Sorted by name: the same order as sorting the paths (they share the parent, and a name
    // has no separator), without `Path`'s component-by-component comparison, which was a tenth
    // of the main thread's time on a directory of 3,000 batches.
    let mut entries: Vec<(std::ffi::OsString, PathBuf, bool)> = rd
        .filter_map(|e| {
            let e = e.ok()?;
            let path = e.path();
            // The entry's type comes with the directory listing; only a symlink needs a stat
            // (`is_dir` follows it).
            let is_dir = match e.file_type() {
                Ok(t) if !t.is_symlink() => t.is_dir(),
                _ => path.is_dir(),
            };
            Some((e.file_name(), path, is_dir))
        })
        .collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (_, e, is_dir) in entries {
        if is_dir {
            walk(&e, out);
        } else {
            out.push(e);
        }
    }
}

/// Largest decoded `.gz` input file. S3 flow-log objects are far smaller; the cap keeps a bomb
/// from getting the CLI killed for memory.
const MAX_GZ_DECODED: usize = 4 << 30;

/// How big the pieces of a split file are (and the chunks a text file is read in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Split {
    /// Documents of a JSON file, counted in file bytes: 1 MiB of Lambda events is ~10 MB of
    /// decoded records, tens of milliseconds of work.
    json_bytes: usize,
    /// Flow-log text: 4 MiB is ~25,000 lines.
    text_bytes: usize,
}

impl Default for Split {
    fn default() -> Self {
        Split {
            json_bytes: 1 << 20,
            text_bytes: 4 << 20,
        }
    }
}

/// What a file turned out to hold, with everything needed to process any run of it.
enum Kind {
    Json {
        docs: Vec<Doc>,
        /// More than one document: origins are then `file[i]`.
        many: bool,
    },
    /// JSON bigger than a run (JSON lines, or an array), split as its runs are processed
    /// ([`json_stream`]): its runs carry their own documents.
    JsonStream,
    Text {
        /// The S3 header's format, when the file has one.
        format: Option<Format>,
        /// Line number of the first line of `body`.
        first_line: u64,
    },
}

/// A file read and classified. `body` indexes `bytes`.
struct Content {
    name: String,
    bytes: Vec<u8>,
    body: Range<usize>,
    kind: Kind,
}

/// A run of a file: documents `docs` of a JSON file, or `bytes` of a text body (whole lines)
/// starting at line `first_line`.
#[derive(Debug, Clone)]
enum Run {
    Docs(Range<usize>),
    /// Documents of a [`Kind::JsonStream`], the first being the file's document `first`.
    Listed {
        docs: Vec<Doc>,
        first: usize,
        many: bool,
    },
    Lines {
        bytes: Range<usize>,
        first_line: u64,
    },
}

/// What one run left that depends on input order.
#[derive(Default)]
struct RunOut {
    observed: Observations,
    errors: Vec<String>,
    readable: bool,
}

/// One file's results: errors found before any run (reading, gzip, JSON syntax, header) come
/// first, as they always did, then each run's in order. A report document has neither.
#[derive(Default)]
struct FileOut {
    errors: Vec<String>,
    runs: Vec<Option<RunOut>>,
    document: Option<Document>,
}

/// A `natmeter.report/v1` document among the inputs: its file, and the report or why it could
/// not be read (`file: reason`).
pub struct Document {
    pub name: String,
    pub report: Result<Report, String>,
}

/// What [`process_all`] read: the engine's results over the flow-log inputs, their errors in
/// input order, how many of them had anything readable, and the report documents, in order.
pub struct Processed {
    pub results: Results,
    pub errors: Vec<String>,
    pub readable: usize,
    pub documents: Vec<Document>,
}

/// A piece of a split file, waiting for a worker.
struct Job {
    file: usize,
    index: usize,
    work: Work,
}

enum Work {
    /// A run of a file read whole.
    Run(Arc<Content>, Run),
    /// A chunk of a text file read piece by piece.
    Lines(Lines),
}

/// Whole lines of a flow-log text file too big to read at once: `bytes[start..]`, starting at
/// line `first_line`.
struct Lines {
    name: Arc<str>,
    format: Option<Arc<Format>>,
    bytes: Vec<u8>,
    start: usize,
    first_line: u64,
}

/// The work queue: pieces first (they hold memory), then new files. `preparing` counts files
/// being read and split, whose pieces may still come: a worker with nothing to do waits for
/// them rather than leaving one thread to process a big last file alone.
struct Queue {
    jobs: VecDeque<Job>,
    next_file: usize,
    preparing: usize,
    /// Workers waiting for pieces: waking nobody is a system call per file too.
    waiting: usize,
}

enum Task {
    File(usize),
    Piece(Job),
}

struct Shared<'a> {
    files: &'a [PathBuf],
    split: Split,
    threads: usize,
    /// Chunk buffers of streamed text files, reused: a fresh 4 MiB buffer per chunk was page
    /// faults on every page.
    buffers: Mutex<Vec<Vec<u8>>>,
    queue: Mutex<Queue>,
    ready: Condvar,
    results: Vec<Mutex<FileOut>>,
    /// Runs not yet done per file, for progress (a file is done when its last run is).
    remaining: Vec<AtomicUsize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking worker fails the run anyway (the scope re-raises it); never a second panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared<'_> {
    fn next_task(&self) -> Option<Task> {
        let mut q = lock(&self.queue);
        loop {
            if let Some(job) = q.jobs.pop_front() {
                return Some(Task::Piece(job));
            }
            if q.next_file < self.files.len() {
                let f = q.next_file;
                q.next_file += 1;
                q.preparing += 1;
                return Some(Task::File(f));
            }
            if q.preparing == 0 {
                return None;
            }
            q.waiting += 1;
            q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            q.waiting -= 1;
        }
    }

    /// A file is read: its pieces (if it was split) are queued for any worker.
    fn prepared(&self, jobs: Vec<Job>) {
        let mut q = lock(&self.queue);
        q.preparing -= 1;
        q.jobs.extend(jobs);
        let waiting = q.waiting > 0;
        drop(q);
        if waiting {
            self.ready.notify_all();
        }
    }

    fn store(&self, file: usize, index: usize, out: RunOut, on_done: &(dyn Fn() + Sync)) {
        {
            let mut results = lock(&self.results[file]);
            if results.runs.len() <= index {
                results.runs.resize_with(index + 1, || None);
            }
            results.runs[index] = Some(out);
        }
        self.done(file, on_done);
    }

    fn done(&self, file: usize, on_done: &(dyn Fn() + Sync)) {
        if self.remaining[file].fetch_sub(1, Ordering::AcqRel) == 1 {
            on_done();
        }
    }

    /// Queues a piece of a file still being read.
    fn push(&self, job: Job) {
        self.remaining[job.file].fetch_add(1, Ordering::AcqRel);
        let mut q = lock(&self.queue);
        q.jobs.push_back(job);
        let waiting = q.waiting > 0;
        drop(q);
        if waiting {
            self.ready.notify_one();
        }
    }

    /// A queued piece, when there are at least as many as threads: the reader of a streamed
    /// file processes it rather than reading further ahead (bounding the chunks in memory).
    fn backlog(&self) -> Option<Job> {
        let mut q = lock(&self.queue);
        (q.jobs.len() >= self.threads)
            .then(|| q.jobs.pop_front())
            .flatten()
    }

    fn buffer(&self) -> Vec<u8> {
        lock(&self.buffers).pop().unwrap_or_default()
    }

    fn give(&self, mut b: Vec<u8>) {
        b.clear();
        let mut pool = lock(&self.buffers);
        if pool.len() <= 2 * self.threads {
            pool.push(b);
        }
    }

    fn run_job(&self, w: &mut Worker<'_>, job: Job, on_done: &(dyn Fn() + Sync)) {
        let out = match job.work {
            Work::Run(content, run) => w.run(&content, &run),
            Work::Lines(lines) => {
                let out = w.lines(&lines);
                self.give(lines.bytes);
                out
            }
        };
        self.store(job.file, job.index, out, on_done);
    }
}

/// One worker's state, kept for the whole run.
struct Worker<'a> {
    attributor: &'a Attributor<'a>,
    engine: Results,
    reader: Reader,
    /// File contents, reused while files are small enough to be processed in one run.
    read: Vec<u8>,
    now: i64,
}

impl<'t> Worker<'t> {
    fn run(&mut self, c: &Content, run: &Run) -> RunOut {
        let mut out = RunOut::default();
        match (&c.kind, run) {
            (Kind::Json { docs, many }, Run::Docs(range)) => {
                self.docs(c, &docs[range.clone()], range.start, *many, &mut out);
            }
            (Kind::JsonStream, Run::Listed { docs, first, many }) => {
                self.docs(c, docs, *first, *many, &mut out);
            }
            (Kind::Text { format, .. }, Run::Lines { bytes, first_line }) => {
                self.text(Text {
                    bytes: &c.bytes[bytes.clone()],
                    format: format.as_ref(),
                    origin: &c.name,
                    first_line: *first_line,
                    fallback_time: self.now,
                });
                out.readable = true;
            }
            _ => unreachable!("runs are made from their file's kind"),
        }
        // What depends on order leaves with the run; the sums stay in the engine.
        out.observed = self.engine.take_observations();
        out
    }

    /// Documents of `c`, the first being its document `first`.
    fn docs(&mut self, c: &Content, docs: &[Doc], first: usize, many: bool, out: &mut RunOut) {
        for (i, doc) in docs.iter().enumerate() {
            let i = first + i;
            let origin = if many {
                format!("{}[{i}]", c.name)
            } else {
                c.name.clone()
            };
            match self.doc(&c.bytes, doc, &origin) {
                Ok(()) => out.readable = true,
                Err(e) => out.errors.push(format!("{origin}: {e}")),
            }
        }
    }

    fn text(&mut self, text: Text<'_>) {
        // Text is never refused whole: its bad lines are counted, one by one.
        let _ = self
            .attributor
            .ingest(Input::Text(text), &mut self.reader, &mut self.engine);
    }

    fn lines(&mut self, l: &Lines) -> RunOut {
        self.text(Text {
            bytes: &l.bytes[l.start..],
            format: l.format.as_deref(),
            origin: &l.name,
            first_line: l.first_line,
            fallback_time: self.now,
        });
        RunOut {
            observed: self.engine.take_observations(),
            errors: Vec::new(),
            readable: true,
        }
    }

    fn doc(&mut self, bytes: &[u8], doc: &Doc, origin: &str) -> Result<(), String> {
        let input = match doc.data.clone().map(|d| std::str::from_utf8(&bytes[d])) {
            // A canonical event: the splitter already read its envelope (all ASCII, no escapes).
            Some(Ok(data)) => Input::Data { data, origin },
            _ => {
                let text = std::str::from_utf8(&bytes[doc.span.clone()])
                    .map_err(|e| format!("not a JSON object: {e}"))?;
                let doc: &RawValue =
                    serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
                let bytes = doc.get().as_bytes();
                match detect::doc_kind(doc.get())? {
                    detect::DocKind::Event => Input::Event { bytes, origin },
                    detect::DocKind::Payload => Input::Payload {
                        json: bytes,
                        origin,
                    },
                }
            }
        };
        self.attributor
            .ingest(input, &mut self.reader, &mut self.engine)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// A file opened: read whole, a text file to read chunk by chunk, a Parquet file, or a report
/// document (parsed).
enum Opened {
    Whole(Box<Content>, Vec<String>),
    Stream(Stream),
    Parquet(Box<ParquetFile>),
    Document(Box<Document>),
}

/// A Parquet flow-log file, its footer read: rows are read piece by piece.
struct ParquetFile {
    name: Arc<str>,
    reader: FlowLogParquet,
}

/// Bytes a flow-log line takes, about: a Parquet file's pieces are `text_bytes` of lines.
const LINE_BYTES: usize = 200;

/// A name (a path or an S3 key) that promises Parquet: `.parquet`, any case (`.log.parquet` as
/// S3 delivery names it). Such a file that is not Parquet is a broken export, not text.
fn parquet_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// True when the file is Parquet: PAR1 at its start and at its end (the last four bytes are
/// read from the file when the first chunk is not all of it), or a Parquet name whatever its
/// content, so that a broken one is refused with the reason. Anything else is read as before:
/// text can start with any bytes, but not with PAR1 and end with it too.
fn is_parquet(
    name: &str,
    file: &mut std::fs::File,
    head: &[u8],
    whole: bool,
) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    if parquet_name(name) {
        return Ok(true);
    }
    if !head.starts_with(natmeter_parquet::MAGIC) {
        return Ok(false);
    }
    if whole {
        return Ok(head.len() >= 8 && head.ends_with(natmeter_parquet::MAGIC));
    }
    let mut tail = [0u8; 4];
    file.seek(SeekFrom::End(-4))?;
    file.read_exact(&mut tail)?;
    // Back to where the first chunk ended: a text file goes on being read from there.
    file.seek(SeekFrom::Start(head.len() as u64))?;
    Ok(&tail == natmeter_parquet::MAGIC)
}

/// A flow-log text file bigger than a chunk: its first chunk, read, and the rest to come.
struct Stream {
    file: std::fs::File,
    name: Arc<str>,
    format: Option<Arc<Format>>,
    /// The first chunk; the lines start at `start` (after whitespace and the header).
    bytes: Vec<u8>,
    start: usize,
    first_line: u64,
}

/// Reads until `bytes` holds `want` more bytes or the file ends; true at the end. Through
/// `Take`, not `File::read_to_end`: that one asks for the size and position first (two more
/// system calls per file, on a directory of thousands of small batches).
fn read_more(file: &mut std::fs::File, bytes: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let target = bytes.len().saturating_add(want);
    Read::take(&mut *file, want as u64).read_to_end(bytes)?;
    Ok(bytes.len() < target)
}

/// Reads and classifies one file. `Err` carries the errors of a file with nothing to process.
/// Flow-log text bigger than `chunk` is read chunk by chunk ([`Opened::Stream`]): reading a
/// text file whole was a third of its time (copying into fresh pages, and faulting them in),
/// and its memory was the file's size.
fn read_file(path: &Path, mut bytes: Vec<u8>, split: Split) -> Result<Opened, Vec<String>> {
    let chunk = split.text_bytes;
    let name = path.display().to_string();
    bytes.clear();
    let cannot = |e: std::io::Error| vec![format!("{name}: cannot read: {e}")];
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    let whole = read_more(&mut file, &mut bytes, chunk).map_err(cannot)?;
    if is_parquet(&name, &mut file, &bytes, whole).map_err(cannot)? {
        // A small file is parsed from the bytes already read; a big one streamed from disk.
        let reader = if whole {
            FlowLogParquet::from_bytes(bytes)
        } else {
            FlowLogParquet::open(file)
        }
        .map_err(|e| vec![format!("{name}: {e}")])?;
        return Ok(Opened::Parquet(Box::new(ParquetFile {
            name: name.into(),
            reader,
        })));
    }
    if !whole {
        if let Some(s) = stream_start(&name, &bytes) {
            let (format, start, first_line) = s?;
            return Ok(Opened::Stream(Stream {
                file,
                name: name.into(),
                format: format.map(Arc::new),
                bytes,
                start,
                first_line,
            }));
        }
        // JSON, gzip, or no line end in the first chunk: the whole file, as always. `File`'s
        // own `read_to_end` asks for the size (two system calls, once per big file) and
        // reserves the rest at once, rather than growing the buffer step by step.
        file.read_to_end(&mut bytes).map_err(cannot)?;
    }
    // Recognised by its first bytes as written (a gzip file is never one): what `natmeter
    // report` decides before reading settings, when it has none (docs/s3.md §4).
    if natmeter_core::merge::looks_like_report(&bytes) {
        let report = natmeter_core::merge::parse(&bytes).map_err(|e| format!("{name}: {e}"));
        return Ok(Opened::Document(Box::new(Document { name, report })));
    }
    if bytes.starts_with(&detect::GZIP_MAGIC) {
        // S3 delivery writes .log.gz objects.
        bytes = match gzip::gunzip(&bytes, MAX_GZ_DECODED) {
            Ok(out) => out,
            Err(DecodeError::TooLarge { .. }) => {
                return Err(vec![format!(
                    "{name}: inflates to more than {} GiB; refused (split the file, or it is a gzip bomb)",
                    MAX_GZ_DECODED >> 30
                )])
            }
            Err(DecodeError::Gzip(e)) => return Err(vec![format!("{name}: not valid gzip: {e}")]),
            Err(e) => return Err(vec![format!("{name}: not valid gzip: {e}")]),
        };
    }
    let start = detect::body_start(&bytes);
    let body = &bytes[start..];
    let mut errors = Vec::new();
    let (kind, body) = match detect::shape(body, &name) {
        Shape::Empty => {
            return Err(vec![format!("{name}: empty file: expected Lambda events, a CloudWatch Logs payload or flow-log lines")]);
        }
        // Split as its runs are processed, so that the other threads start on its first runs.
        Shape::Json if body.len() > split.json_bytes => (Kind::JsonStream, start..bytes.len()),
        Shape::Json => {
            let (docs, error) = split_json(body, start);
            if let Some(e) = error {
                errors.push(format!("{name}: {e}"));
            }
            let many = docs.len() > 1;
            (Kind::Json { docs, many }, start..bytes.len())
        }
        // A .json file that does not start like JSON is a broken export, not flow-log text.
        Shape::BrokenJson => {
            let e = serde_json::from_slice::<&RawValue>(body)
                .err()
                .map_or_else(String::new, |e| e.to_string());
            return Err(vec![format!("{name}: not valid JSON: {e}")]);
        }
        Shape::Text => {
            let (header, rest, first_line) = split_header(body);
            let format = match header {
                Some(Ok(f)) => Some(f),
                Some(Err(e)) => return Err(vec![format!("{name}:1: bad header line: {e}")]),
                None => None,
            };
            let rest_start = bytes.len() - rest.len();
            (Kind::Text { format, first_line }, rest_start..bytes.len())
        }
    };
    Ok(Opened::Whole(
        Box::new(Content {
            name,
            bytes,
            body,
            kind,
        }),
        errors,
    ))
}

/// When the first chunk of a file shows flow-log text with a line end in it, the text's
/// format (the header's), where its lines start and the number of the first; the header's
/// error if it has a bad one. `None` for anything read whole (gzip, JSON, a first line longer
/// than a chunk), classified then exactly as before.
#[allow(clippy::type_complexity)]
fn stream_start(
    name: &str,
    bytes: &[u8],
) -> Option<Result<(Option<Format>, usize, u64), Vec<String>>> {
    if bytes.starts_with(&detect::GZIP_MAGIC) {
        return None;
    }
    let body = &bytes[detect::body_start(bytes)..];
    if detect::shape(body, name) != Shape::Text {
        return None;
    }
    find_newline(body)?;
    let (header, rest, first_line) = split_header(body);
    Some(match header {
        Some(Err(e)) => Err(vec![format!("{name}:1: bad header line: {e}")]),
        header => Ok((
            header.and_then(Result::ok),
            bytes.len() - rest.len(),
            first_line,
        )),
    })
}

/// Splits a file's work into runs of about `split`'s size; one run when it is small.
fn runs(c: &Content, split: Split) -> Vec<Run> {
    match &c.kind {
        Kind::JsonStream => unreachable!("JSON bigger than a run is split by json_stream"),
        // At most a run's bytes: one run (json_stream cuts the bigger ones).
        Kind::Json { docs, .. } => vec![Run::Docs(0..docs.len())],
        Kind::Text { first_line, .. } => {
            let mut out = Vec::new();
            let (mut from, mut line) = (c.body.start, *first_line);
            let end = c.body.end;
            while end - from > split.text_bytes {
                // Whole lines: cut after the first newline past the target size.
                let target = from + split.text_bytes;
                let Some(n) = find_newline(&c.bytes[target..end]) else {
                    break;
                };
                let to = target + n + 1;
                out.push(Run::Lines {
                    bytes: from..to,
                    first_line: line,
                });
                line += count_newlines(&c.bytes[from..to]);
                from = to;
            }
            out.push(Run::Lines {
                bytes: from..end,
                first_line: line,
            });
            out
        }
    }
}

/// Processes `files` on up to `threads` threads and merges the results in file order.
/// `on_done` is called after each file (progress).
pub fn process_all(
    files: &[PathBuf],
    attributor: &Attributor<'_>,
    now: i64,
    threads: usize,
    on_done: &(dyn Fn() + Sync),
) -> Processed {
    process_all_split(files, attributor, now, threads, Split::default(), on_done)
}

fn process_all_split(
    files: &[PathBuf],
    attributor: &Attributor<'_>,
    now: i64,
    threads: usize,
    split: Split,
    on_done: &(dyn Fn() + Sync),
) -> Processed {
    let shared = Shared {
        files,
        split,
        threads: threads.max(1),
        buffers: Mutex::default(),
        queue: Mutex::new(Queue {
            jobs: VecDeque::new(),
            next_file: 0,
            preparing: 0,
            waiting: 0,
        }),
        ready: Condvar::new(),
        results: files.iter().map(|_| Mutex::default()).collect(),
        remaining: files.iter().map(|_| AtomicUsize::new(0)).collect(),
    };
    let mut engines: Vec<Results> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let shared = &shared;
                s.spawn(move || {
                    let mut w = Worker {
                        attributor,
                        engine: attributor.results(),
                        reader: Reader::default(),
                        read: Vec::new(),
                        now,
                    };
                    while let Some(task) = shared.next_task() {
                        match task {
                            Task::Piece(job) => shared.run_job(&mut w, job, on_done),
                            Task::File(f) => work_file(&mut w, shared, f, on_done),
                        }
                    }
                    w.engine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    // Sums first (any order), then everything that depends on order, file by file.
    let mut total = engines.pop().unwrap_or_else(|| attributor.results());
    for e in &engines {
        total.merge_on(e, threads);
    }
    // The workers' observations left with their runs: start from a fresh run's (the format's
    // unknown fields), then each run's in input order.
    let _ = total.take_observations();
    total.merge_observations(attributor.results().observed());
    let mut errors = Vec::new();
    let mut readable = 0;
    let mut documents = Vec::new();
    for slot in shared.results {
        let file = slot.into_inner().unwrap_or_else(|e| e.into_inner());
        documents.extend(file.document);
        errors.extend(file.errors);
        let mut any = false;
        for run in file.runs.into_iter().flatten() {
            errors.extend(run.errors);
            any |= run.readable;
            total.merge_observations(&run.observed);
        }
        readable += usize::from(any);
    }
    Processed {
        results: total,
        errors,
        readable,
        documents,
    }
}

/// Reads file `f`; processes it here when it is one run, queues its pieces otherwise.
fn work_file(w: &mut Worker<'_>, shared: &Shared<'_>, f: usize, on_done: &(dyn Fn() + Sync)) {
    let read = std::mem::take(&mut w.read);
    let (content, errors) = match read_file(&shared.files[f], read, shared.split) {
        Ok(Opened::Whole(c, errors)) => (*c, errors),
        Ok(Opened::Stream(s)) => return stream_file(w, shared, f, s, on_done),
        Ok(Opened::Parquet(p)) => return parquet_file(w, shared, f, *p, on_done),
        Ok(Opened::Document(d)) => {
            lock(&shared.results[f]).document = Some(*d);
            shared.prepared(Vec::new());
            on_done();
            return;
        }
        Err(errors) => {
            lock(&shared.results[f]).errors = errors;
            shared.prepared(Vec::new());
            on_done();
            return;
        }
    };
    if let Kind::JsonStream = content.kind {
        return json_stream(shared, f, content, on_done);
    }
    let runs = runs(&content, shared.split);
    {
        let mut out = lock(&shared.results[f]);
        out.errors = errors;
        out.runs = runs.iter().map(|_| None).collect();
    }
    shared.remaining[f].store(runs.len(), Ordering::Release);
    if let [run] = &runs[..] {
        shared.prepared(Vec::new());
        let out = w.run(&content, run);
        // Keep the allocation for the next small file (not a big one's: it would stay pinned).
        if content.bytes.capacity() <= 16 << 20 {
            w.read = content.bytes;
        }
        shared.store(f, 0, out, on_done);
        return;
    }
    let content = Arc::new(content);
    let jobs = runs
        .into_iter()
        .enumerate()
        .map(|(index, run)| Job {
            file: f,
            index,
            work: Work::Run(Arc::clone(&content), run),
        })
        .collect();
    shared.prepared(jobs);
}

/// Cuts a JSON file bigger than a run into runs of about `json_bytes` of its documents (a run
/// ends at the document that takes it to the size), queueing each run as soon as it is cut, so
/// that the other workers start on a big JSON-lines file while this one is still splitting it
/// (split whole first, the bench's 19 MB file kept one thread busy for about 40 ms while the
/// other waited). An array is parsed whole by serde_json first; its documents are then cut the
/// same way. Only the first run waits: whether origins read `file[i]` depends on the file having
/// more than one document, known at the second.
fn json_stream(shared: &Shared<'_>, f: usize, content: Content, on_done: &(dyn Fn() + Sync)) {
    let content = Arc::new(content);
    let json_bytes = shared.split.json_bytes;
    // The reader's own count: the file is done when it and every run are.
    shared.remaining[f].store(1, Ordering::Release);
    let queue = |index: usize, docs: Vec<Doc>, first: usize, many: bool| {
        shared.push(Job {
            file: f,
            index,
            work: Work::Run(Arc::clone(&content), Run::Listed { docs, first, many }),
        });
    };
    let (mut run, mut first, mut size, mut seen, mut index) = (Vec::new(), 0, 0, 0, 0);
    // The first run, cut while it was the file's only document.
    let mut held: Option<Vec<Doc>> = None;
    let body = &content.bytes[content.body.clone()];
    let mut each = |doc: Doc| {
        seen += 1;
        if seen == 2 {
            if let Some(docs) = held.take() {
                queue(0, docs, 0, true);
            }
        }
        size += doc.span.len();
        run.push(doc);
        if size >= json_bytes {
            let docs = std::mem::take(&mut run);
            let n = docs.len();
            if seen == 1 {
                held = Some(docs);
            } else {
                queue(index, docs, first, true);
            }
            (index, first, size) = (index + 1, first + n, 0);
        }
    };
    let error = if body[0] == b'[' {
        let (docs, error) = split_json(body, content.body.start);
        docs.into_iter().for_each(&mut each);
        error
    } else {
        split_stream(body, content.body.start, &mut each)
    };
    let many = seen > 1;
    if let Some(docs) = held {
        queue(0, docs, 0, many);
    }
    // The last run, or the only one: a file without documents is one empty run, as a small
    // file's is.
    if !run.is_empty() || index == 0 {
        queue(index, run, first, many);
    }
    if let Some(e) = error {
        lock(&shared.results[f])
            .errors
            .push(format!("{}: {e}", content.name));
    }
    shared.prepared(Vec::new());
    shared.done(f, on_done);
}

/// Reads a text file chunk by chunk, each cut after its last line end and queued as a piece
/// (the reader processes queued pieces itself while there are as many as threads, so no more
/// than about a chunk per thread is in memory). An error reading the rest is reported after
/// the pieces read before it.
fn stream_file(
    w: &mut Worker<'_>,
    shared: &Shared<'_>,
    f: usize,
    s: Stream,
    on_done: &(dyn Fn() + Sync),
) {
    let Stream {
        mut file,
        name,
        format,
        mut bytes,
        mut start,
        mut first_line,
    } = s;
    let chunk = shared.split.text_bytes;
    // The reader's own count: the file is done when it and every piece are.
    shared.remaining[f].store(1, Ordering::Release);
    let mut index = 0;
    let mut eof = false;
    loop {
        let cut = if eof {
            Some(bytes.len())
        } else {
            bytes[start..]
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|n| start + n + 1)
        };
        if let Some(cut) = cut.filter(|&c| c > start) {
            let mut next = shared.buffer();
            next.extend_from_slice(&bytes[cut..]);
            bytes.truncate(cut);
            let lines = count_newlines(&bytes[start..]);
            while let Some(job) = shared.backlog() {
                shared.run_job(w, job, on_done);
            }
            shared.push(Job {
                file: f,
                index,
                work: Work::Lines(Lines {
                    name: Arc::clone(&name),
                    format: format.clone(),
                    bytes: std::mem::replace(&mut bytes, next),
                    start,
                    first_line,
                }),
            });
            (index, start, first_line) = (index + 1, 0, first_line + lines);
        }
        if eof {
            break;
        }
        match read_more(&mut file, &mut bytes, chunk) {
            Ok(end) => eof = end,
            Err(e) => {
                lock(&shared.results[f])
                    .errors
                    .push(format!("{name}: cannot read: {e}"));
                break;
            }
        }
    }
    shared.give(bytes);
    shared.prepared(Vec::new());
    shared.done(f, on_done);
}

/// Reads a Parquet file's rows as flow-log lines in pieces of `text_bytes / LINE_BYTES` rows,
/// each queued as a piece of text with the file's format, numbered by its first row (from 1),
/// so that it is attributed exactly as a text file with a header line (docs/attribution.md
/// §1.5). Like [`stream_file`], the reader processes queued pieces itself while there are as
/// many as threads. An error in a row group is reported after the rows read before it; a file
/// without rows is one empty piece (it was read, and its format is noted, as a header-only text
/// file's is), and a file that fails before its first row is not read.
fn parquet_file(
    w: &mut Worker<'_>,
    shared: &Shared<'_>,
    f: usize,
    p: ParquetFile,
    on_done: &(dyn Fn() + Sync),
) {
    let ParquetFile { name, mut reader } = p;
    let format = Arc::new(reader.format().clone());
    let rows = (shared.split.text_bytes / LINE_BYTES).max(1);
    shared.remaining[f].store(1, Ordering::Release);
    let (mut index, mut first_row) = (0, 1u64);
    loop {
        let mut bytes = shared.buffer();
        let (mut got, mut end, mut failed) = (0, false, false);
        while got < rows {
            match reader.next_lines(&mut bytes, rows - got) {
                Ok(0) => {
                    end = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) => {
                    lock(&shared.results[f]).errors.push(format!("{name}: {e}"));
                    (end, failed) = (true, true);
                    break;
                }
            }
        }
        // Nothing more to attribute; a file that failed before its first row was not read.
        if got == 0 && (index > 0 || failed) {
            shared.give(bytes);
            break;
        }
        while let Some(job) = shared.backlog() {
            shared.run_job(w, job, on_done);
        }
        shared.push(Job {
            file: f,
            index,
            work: Work::Lines(Lines {
                name: Arc::clone(&name),
                format: Some(Arc::clone(&format)),
                bytes,
                start: 0,
                first_line: first_row,
            }),
        });
        (index, first_row) = (index + 1, first_row + got as u64);
        if end {
            break;
        }
    }
    shared.prepared(Vec::new());
    shared.done(f, on_done);
}

#[cfg(test)]
mod tests {
    use super::*;
    use natmeter_core::report::Report;
    use natmeter_core::sources::subscription::Decoder;
    use natmeter_core::sources::Payload;
    use natmeter_core::topology::Topology;
    use natmeter_sim::{simulate, Scope, SimConfig};

    fn report_json(engine: &Results, topo: &Topology) -> String {
        serde_json::to_string(&Report::build(engine, topo, 0.045)).unwrap()
    }

    /// A JSON-lines file and a text file split into many small pieces give exactly what one
    /// thread reading them whole gives, errors and their order included.
    #[test]
    fn split_files_match_whole_files() {
        let sim = simulate(&SimConfig {
            pods: 120,
            minutes: 6,
            scope: Scope::Vpc,
            max_batch_bytes: 20_000,
            ..SimConfig::default()
        });
        let topo = sim.topology();
        let format = sim.format();
        let dir = tempfile::tempdir().unwrap();
        // JSON lines, with a pretty-printed event, a payload and a bad document in the stream.
        let mut jsonl = String::new();
        for (i, e) in sim.events.iter().enumerate() {
            jsonl.push_str(&e.json);
            jsonl.push('\n');
            if i == 3 {
                let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
                jsonl.push_str(&serde_json::to_string_pretty(&v).unwrap());
                jsonl.push_str(" {\"hello\":1}\n");
            }
        }
        let jl = dir.path().join("events.jsonl");
        std::fs::write(&jl, &jsonl).unwrap();
        let broken = dir.path().join("broken.jsonl");
        std::fs::write(&broken, format!("{jsonl}{{\"awslogs\": oops\n")).unwrap();
        // Text lines: every message of every batch, with a blank line and a bad one.
        let (mut decoder, mut buf) = (Decoder::default(), Vec::new());
        let mut text = String::new();
        for e in &sim.events {
            let data = natmeter_core::sources::subscription::event_data(e.json.as_bytes()).unwrap();
            decoder.decode(&data, &mut buf).unwrap();
            let p = Payload::parse(&buf).unwrap();
            for ev in &p.log_events {
                text.push_str(&ev.message);
                text.push('\n');
            }
            text.push_str("\nnot a flow log line\r\n");
        }
        let tl = dir.path().join("flows.log");
        std::fs::write(&tl, &text).unwrap();
        // As S3 delivers it: a header line naming the fields.
        let header: Vec<&str> = sim
            .log_format
            .split_whitespace()
            .map(|f| f.trim_start_matches("${").trim_end_matches('}'))
            .collect();
        let s3 = dir.path().join("s3.log");
        std::fs::write(&s3, format!("\n{}\n{text}", header.join(" "))).unwrap();
        // One document bigger than a run (its origin is the file, no index), and the same
        // document followed by another (the first run waits for the second: then `file[i]`).
        let big = format!("{{\"awslogs\":{{\"data\":\"{}\"}}}}", "QUJD".repeat(2000));
        let one = dir.path().join("one.json");
        std::fs::write(&one, &big).unwrap();
        let two = dir.path().join("two.jsonl");
        std::fs::write(&two, format!("{big}\n{big}\n")).unwrap();
        // The events as one JSON array: parsed whole, then cut into runs as a stream's are.
        let events: Vec<&str> = sim.events.iter().map(|e| e.json.as_str()).collect();
        let array = dir.path().join("array.json");
        std::fs::write(&array, format!("[{}]", events.join(",\n"))).unwrap();
        let files = vec![tl, jl, broken, s3, one.clone(), two.clone(), array];
        let whole = Split {
            json_bytes: usize::MAX,
            text_bytes: usize::MAX,
        };
        let tiny = Split {
            json_bytes: 3000,
            text_bytes: 2000,
        };
        let attributor = Attributor::new(&topo, format);
        let run = |threads, split| {
            let p = process_all_split(&files, &attributor, 1_700_000_000, threads, split, &|| {});
            (report_json(&p.results, &topo), p.errors, p.readable)
        };
        let reference = run(1, whole);
        assert!(reference.1.iter().any(|e| e.contains("document")));
        assert!(reference
            .1
            .iter()
            .any(|e| e.contains("neither a Lambda event")));
        assert!(reference.0.contains("flows.log:"), "line locations sampled");
        let named = |origin: &str| reference.1.iter().any(|e| e.starts_with(origin));
        assert!(named(&format!("{}: ", one.display())), "{:?}", reference.1);
        assert!(named(&format!("{}[0]: ", two.display())));
        assert!(named(&format!("{}[1]: ", two.display())));
        for threads in [1, 2, 3] {
            assert_eq!(run(threads, tiny), reference, "{threads} threads");
        }
    }
}
