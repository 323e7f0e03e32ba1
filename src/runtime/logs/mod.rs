//! Container logs in the kubelet's CRI format: the runtime writes them, the API reads them.
//!
//! **Layout** (like kubelet's `/var/log/pods`): `<logs_root>/pods/<ns>_<pod>_<uid>/<container>/
//! <restart_count>.log`, one file per container run, both streams in it, so fluent-bit, vector
//! and promtail pick the files up with their stock CRI parsers.
//!
//! **Records**: `<timestamp> <stdout|stderr> <F|P> <text>\n`. Writing ([`CriEncoder`]) follows
//! containerd's `internal/cri/io/logger.go`:
//! - one record per output line, with the line end (`\n` or `\r\n`) stripped, tagged `F`;
//! - a line longer than [`MAX_RECORD_TEXT`] (16 KiB, containerd's default
//!   `max_container_log_line_size`) is cut into 16 KiB `P` records and a final `F` with the
//!   rest (1 to 16 KiB, or empty);
//! - output that ends without a newline when the stream closes is written as `P`, as containerd
//!   does: the reader then shows it without a trailing newline, which is what the program
//!   printed;
//! - timestamps are UTC with always 9 fractional digits (containerd trims trailing zeros, as
//!   Go's RFC3339Nano does; every CRI parser accepts both). One timestamp per read batch: the
//!   time the runtime received those bytes.
//!
//! **Reading** ([`LogReader`]) streams with a fixed-size buffer whatever the length of a line:
//! the text of a `P` record goes out as it is read, and joining it with the rest of its line is
//! just not writing a newline. Records of the other stream written while a line is unfinished
//! are held back (up to 64 KiB) and follow that line, so a split line comes back whole. Lines
//! therefore come out in the order they began. `tail_lines` counts logical lines (kubelet counts
//! raw records, so a split line counts more than once there): the start of the last N is found
//! by scanning backwards, then reading goes forward from there. Timestamps, when asked for,
//! prefix each logical line with the time of its first record, like `kubectl logs
//! --timestamps`. Records that do not parse are skipped, as kubelet does.
//!
//! **Following** (`logs -f`): the sink of a running container wakes followers through
//! [`LogFeeds`] when it wrote and when the log is complete; nobody polls the file.
//!
//! **Rotation** ([`rotation`]): the writer rotates a run's live file at `containerLogMaxSize`
//! into kubelet-named files (`0.log.20261127-101112`, older ones `.gz`), at most
//! `containerLogMaxFiles` per run. A reader goes through a run's rotated files, oldest first,
//! then the live file; `tail_lines` counts back from the live file into the rotated ones. A
//! follower at the end of the live file notices that it was renamed (the path names another
//! file, or none), reads it to its end through its open descriptor, then goes on with the
//! files after it: the rotated file it was renamed to is found by its inode, else (already
//! compressed) as the first rotated after those there were when it was opened. The rotated
//! files are listed again after the live file is opened: one newer than those read was
//! rotated since the reader chose the live file, and is read first. Nothing is read twice or
//! skipped, unless a follower falls so far behind that files it has not read are removed for
//! `containerLogMaxFiles`.
//!
//! Caveats: the reader uses blocking `std::fs` I/O (short reads of local files); call it from
//! `spawn_blocking` in async code.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::Offset;

use rotation::{RotKey, Rotated};

mod feed;
pub mod rotation;
pub(super) mod sink;

pub use feed::{FeedWriter, Follow, LogFeeds, Wake};
pub use rotation::LogLimits;

/// Longest text one record carries; longer lines become `P` records plus a final `F`.
pub const MAX_RECORD_TEXT: usize = 16 * 1024;

/// `<logs_root>/pods/<ns>_<pod>_<uid>/<container>/<restart_count>.log`
pub fn container_log_path(
    logs_root: &Path,
    namespace: &str,
    pod_name: &str,
    pod_uid: &str,
    container: &str,
    restart_count: i32,
) -> PathBuf {
    logs_root
        .join("pods")
        .join(format!("{namespace}_{pod_name}_{pod_uid}"))
        .join(container)
        .join(format!("{restart_count}.log"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// `2026-11-27T10:11:12.123456789Z`: UTC, always 9 fractional digits (kubelet's
/// `RFC3339NanoFixed`), so timestamps sort as strings and line up in columns.
pub fn format_timestamp(ts: Timestamp) -> String {
    let mut out = Vec::with_capacity(30);
    write_timestamp(ts, &mut out);
    // Only ASCII digits and punctuation were written.
    String::from_utf8_lossy(&out).into_owned()
}

fn write_timestamp(ts: Timestamp, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let dt = Offset::UTC.to_datetime(ts);
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond()
    );
}

/// Turns raw output of a container's two streams into CRI records.
///
/// Keeps each stream's unfinished line between calls; the caller writes `out` to the file.
#[derive(Debug, Default)]
pub struct CriEncoder {
    pending: [Vec<u8>; 2],
    /// `now` of the current batch, formatted once per batch rather than once per record
    /// (during `push`, followed by the stream and the `F` tag).
    ts: Vec<u8>,
}

impl CriEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the records for `data`, read from `stream` at `now`, to `out`. A line without
    /// its newline yet waits for the next call (unless it has grown past 16 KiB).
    pub fn push(&mut self, stream: Stream, data: &[u8], now: Timestamp, out: &mut Vec<u8>) {
        self.ts.clear();
        write_timestamp(now, &mut self.ts);
        let ts_len = self.ts.len();
        // `<ts> <stream> F `: the head of every whole line of this batch, after the time.
        self.ts.push(b' ');
        self.ts.extend_from_slice(stream.as_str().as_bytes());
        self.ts.extend_from_slice(b" F ");
        let pending = &mut self.pending[stream.index()];
        let mut rest = data;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let line = &rest[..nl];
            if pending.is_empty() {
                if line.len() <= MAX_RECORD_TEXT && line.last() != Some(&b'\r') {
                    // The common case, kept to three copies.
                    out.extend_from_slice(&self.ts);
                    out.extend_from_slice(line);
                    out.push(b'\n');
                } else {
                    emit_line(&self.ts[..ts_len], stream, line, out);
                }
            } else {
                pending.extend_from_slice(line);
                emit_line(&self.ts[..ts_len], stream, pending, out);
                pending.clear();
            }
            rest = &rest[nl + 1..];
        }
        self.ts.truncate(ts_len);
        pending.extend_from_slice(rest);
        if pending.len() > MAX_RECORD_TEXT {
            // Like containerd: once more than the limit is buffered, the first 16 KiB go out
            // as `P` and at most 16 KiB stay behind for the `F` (or the next `P`).
            let mut off = 0;
            while pending.len() - off > MAX_RECORD_TEXT {
                emit_record(
                    &self.ts,
                    stream,
                    b'P',
                    &pending[off..off + MAX_RECORD_TEXT],
                    out,
                );
                off += MAX_RECORD_TEXT;
            }
            pending.drain(..off);
        }
    }

    /// The stream reached EOF: its unfinished line, if any, goes out as `P` (containerd does
    /// the same; it marks "the program did not end this line").
    pub fn finish(&mut self, stream: Stream, now: Timestamp, out: &mut Vec<u8>) {
        let pending = &mut self.pending[stream.index()];
        if pending.is_empty() {
            return;
        }
        self.ts.clear();
        write_timestamp(now, &mut self.ts);
        emit_record(&self.ts, stream, b'P', pending, out);
        pending.clear();
    }
}

fn emit_line(ts: &[u8], stream: Stream, line: &[u8], out: &mut Vec<u8>) {
    // containerd strips `\r\n` as a whole, so CRLF output reads back as plain lines.
    let mut line = line.strip_suffix(b"\r").unwrap_or(line);
    while line.len() > MAX_RECORD_TEXT {
        emit_record(ts, stream, b'P', &line[..MAX_RECORD_TEXT], out);
        line = &line[MAX_RECORD_TEXT..];
    }
    emit_record(ts, stream, b'F', line, out);
}

fn emit_record(ts: &[u8], stream: Stream, tag: u8, text: &[u8], out: &mut Vec<u8>) {
    out.reserve(ts.len() + text.len() + 12);
    out.extend_from_slice(ts);
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.push(b' ');
    out.push(tag);
    out.push(b' ');
    out.extend_from_slice(text);
    out.push(b'\n');
}

/// One parsed CRI record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub timestamp: Timestamp,
    pub stream: Stream,
    /// `P`: continued by the next record of the same stream.
    pub partial: bool,
    pub text: String,
}

/// Parses one record (`<ts> <stream> <tag> <text>`; a trailing `\n` is ignored). `None` when
/// it is not a CRI record.
pub fn parse_line(line: &str) -> Option<LogLine> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let rec = parse_record(line.as_bytes())?;
    Some(LogLine {
        timestamp: rec.ts,
        stream: rec.stream,
        partial: rec.partial,
        text: String::from_utf8_lossy(rec.text).into_owned(),
    })
}

struct Record<'a> {
    ts: Timestamp,
    stream: Stream,
    partial: bool,
    text: &'a [u8],
}

fn parse_record(rec: &[u8]) -> Option<Record<'_>> {
    let (ts, rest) = split_space(rec)?;
    let ts: Timestamp = std::str::from_utf8(ts).ok()?.parse().ok()?;
    let (stream, rest) = split_space(rest)?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let (tags, text) = split_space(rest)?;
    // Tags are `:`-separated for forward compatibility; only the first one means anything.
    let partial = tags.split(|&b| b == b':').next() == Some(b"P");
    Some(Record {
        ts,
        stream,
        partial,
        text,
    })
}

fn split_space(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == b' ')?;
    Some((&s[..i], &s[i + 1..]))
}

/// Bytes a reader reads from the file at a time. What it holds is bounded by this and
/// [`HOLD_MAX`], whatever the length of a line: text goes out as it is read.
pub const READ_BUF: usize = 64 * 1024;

/// Records of one stream held back while the other stream's line is unfinished (so a long
/// line is not cut by what the other stream wrote meanwhile). Past this, the unfinished line
/// is ended where it stands and continues on a line of its own.
const HOLD_MAX: usize = 64 * 1024;

/// How far [`tail_start`] looks back past the lines it wants for the start of the other
/// stream's unfinished line before it stops looking.
const TAIL_LOOKBACK: u64 = 1 << 20;

/// Most bytes one [`LogReader::read_chunk`] produces: the text of one buffer of records (a
/// timestamp prefix is never longer than the record prefix it replaces), plus what was held
/// back, plus a line break per record at most.
pub const MAX_CHUNK: usize = 2 * READ_BUF + 2 * HOLD_MAX;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Only the last N lines (logical lines: a split long line counts once).
    pub tail_lines: Option<usize>,
    /// Prefix each line with `<RFC3339Nano> `, like `kubectl logs --timestamps`.
    pub timestamps: bool,
}

/// The container's output as `kubectl logs` shows it, whole: for tests and small logs. The
/// API streams with [`LogReader`] instead.
pub fn read_log(path: &Path, opts: ReadOptions) -> io::Result<String> {
    let mut reader = LogReader::open(path, opts)?;
    let mut out = Vec::new();
    while reader.read_chunk(&mut out)? {}
    reader.finish(&mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A record longer than the read buffer (never written by [`CriEncoder`], but a log file is
/// just a file): its text is passed on as it is read.
#[derive(Debug, Clone, Copy)]
struct LongRecord {
    partial: bool,
    /// Not shown (unparsable, or before the `tailLines` start).
    skip: bool,
    /// Skipped as one of [`LogReader::skip_lines`].
    counted: bool,
}

/// Streams a log's text with a fixed-size buffer, for `logs`, `logs --tail` and `logs -f`.
///
/// The text of a `P` record goes out as soon as it is read; joining a split line is just not
/// writing a newline after it. The other stream's records that arrive while a line is
/// unfinished are held back (up to [`HOLD_MAX`]) and shown after that line, so a split line
/// comes back whole even when the other stream wrote in between. `tail_lines` counts logical
/// lines from the end: [`LogReader::open`] finds where the last N begin by scanning backwards,
/// then reading goes forward from there. Timestamps, when asked for, prefix the first chunk
/// of each logical line with the time of its first record, like `kubectl logs --timestamps`.
/// Records that do not parse are skipped, as kubelet does.
///
/// Call [`read_chunk`](Self::read_chunk) until it returns false (at the end of the file for
/// now); for `logs -f`, again later for what was appended; once the container has ended and the
/// file is drained, [`finish`](Self::finish). Blocking I/O: call from `spawn_blocking` in async
/// code. A missing file reads as empty until it appears: the runtime creates it with the
/// container's first output.
pub struct LogReader {
    path: PathBuf,
    /// The live file's directory and name (`0.log`): rotated files are `<base>.<stamp>…`.
    dir: PathBuf,
    base: String,
    /// The file being read.
    seg: Segment,
    src: Option<Source>,
    /// Of the live file while it is the one open: its identity, to notice it was rotated
    /// away, and the newest rotated file there was before it was opened.
    live: Option<LiveFile>,
    /// Bound for the live file, not open yet: the newest rotated file read (or passed over)
    /// before it. A rotated file newer than this that is there when the live file is opened
    /// was rotated since the reader chose the live file, and is read first.
    read_through: Option<RotKey>,
    /// File offset of the next byte to read; `buf` holds the bytes just before it.
    pos: u64,
    /// An unfinished record carried over to the next read (at most [`READ_BUF`]).
    buf: Vec<u8>,
    timestamps: bool,
    /// The stream whose line is unfinished: its text went out, its newline not yet.
    open: Option<Stream>,
    long: Option<LongRecord>,
    /// Whole records (with their `\n`) of the other stream, held while `open` is set.
    held: Vec<u8>,
    /// `tail_lines`: a stream's records at or before this offset belong to earlier lines.
    skip_through: [Option<u64>; 2],
    /// `tail_lines` starting in a rotated file: this many line ends of it are not shown.
    skip_lines: usize,
    /// `tail_lines` starting in a rotated file with a line that ends in the live file: the
    /// live file's [`LogReader::skip_through`].
    live_skip: [Option<u64>; 2],
    /// `tail_lines` until [`LogReader::open`] has placed the start.
    pending_tail: Option<usize>,
}

/// Which of a run's files a reader is in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Rotated(RotKey),
    Live,
}

enum Source {
    Plain(File),
    Gz(Box<flate2::read::GzDecoder<File>>),
}

#[derive(Debug, Clone)]
struct LiveFile {
    id: (u64, u64),
    floor: Option<RotKey>,
}

fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

impl LogReader {
    /// Reads the log of the run whose live file is `path`, its rotated files first (oldest
    /// first, `.gz` ones decompressed as they are read).
    pub fn open(path: &Path, opts: ReadOptions) -> io::Result<LogReader> {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let mut reader = LogReader {
            path: path.to_owned(),
            dir,
            base,
            seg: Segment::Live,
            src: None,
            live: None,
            read_through: None,
            pos: 0,
            buf: Vec::new(),
            timestamps: opts.timestamps,
            open: None,
            long: None,
            held: Vec::new(),
            skip_through: [None, None],
            skip_lines: 0,
            live_skip: [None, None],
            pending_tail: opts.tail_lines,
        };
        reader.position()?;
        reader.pending_tail = None;
        Ok(reader)
    }

    /// Byte offset in the current file just past the last whole record read.
    pub fn offset(&self) -> u64 {
        self.pos - self.buf.len() as u64
    }

    /// Reads up to [`READ_BUF`] bytes and appends their text (at most [`MAX_CHUNK`] bytes) to
    /// `out`. `false` when there was nothing more to read: the live file is at its end (or
    /// not there yet). At the end of a rotated file, or of a live file that was rotated away
    /// meanwhile, it goes on with the next file.
    pub fn read_chunk(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        loop {
            if !self.ensure_open()? {
                return Ok(false);
            }
            let pos = self.pos;
            let have = self.buf.len();
            let mut buf = std::mem::take(&mut self.buf);
            buf.resize(READ_BUF, 0);
            let read = match &mut self.src {
                Some(Source::Plain(file)) => file.read_at(&mut buf[have..], pos),
                Some(Source::Gz(gz)) => io::Read::read(gz, &mut buf[have..]),
                None => Ok(0),
            };
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    buf.truncate(have);
                    self.buf = buf;
                    return Err(with_path(e, "read", &self.current_path()));
                }
            };
            buf.truncate(have + n);
            if n == 0 {
                self.buf = buf;
                if self.next_segment()? {
                    continue;
                }
                return Ok(false);
            }
            self.pos += n as u64;
            let used = self.take_records(&buf, out);
            buf.drain(..used);
            self.buf = buf;
            return Ok(true);
        }
    }

    fn current_path(&self) -> PathBuf {
        match &self.seg {
            Segment::Live => self.path.clone(),
            Segment::Rotated(key) => {
                self.dir
                    .join(rotation::name(&self.base, key, rotation::Form::Plain))
            }
        }
    }

    /// The rotated files of this run now, oldest first.
    fn rotated(&self) -> io::Result<Vec<Rotated>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(with_path(e, "list", &self.dir)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| with_path(e, "list", &self.dir))?;
            if let Some(n) = entry.file_name().to_str() {
                names.push(n.to_string());
            }
        }
        Ok(rotation::rotated(
            &self.base,
            names.iter().map(String::as_str),
        ))
    }

    /// Opens the current file if it is not open; `false` while the live file does not exist.
    /// A rotated file removed meanwhile is passed over for the next one.
    fn ensure_open(&mut self) -> io::Result<bool> {
        while self.src.is_none() {
            match self.seg.clone() {
                Segment::Live => {
                    let opened = match File::open(&self.path) {
                        Ok(f) => Some(f),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                        Err(e) => return Err(with_path(e, "open", &self.path)),
                    };
                    // Listed after the open: a rotated file newer than those read is one the
                    // writer renamed since the reader chose the live file (before this one,
                    // or this very file), and a rotated file changes no more: read it first.
                    let all = self.rotated()?;
                    if let Some(next) = rotation::successor(&all, self.read_through.as_ref()) {
                        self.enter(Some(next));
                        continue;
                    }
                    let Some(f) = opened else {
                        return Ok(false);
                    };
                    let id = file_id(&f.metadata().map_err(|e| with_path(e, "stat", &self.path))?);
                    let floor = all.last().map(|r| r.key.clone());
                    self.live = Some(LiveFile { id, floor });
                    self.src = Some(Source::Plain(f));
                }
                Segment::Rotated(key) => {
                    let all = self.rotated()?;
                    let at = all
                        .iter()
                        .find(|r| r.key == key && r.form != rotation::Form::GzTmp);
                    let Some(r) = at else {
                        self.enter_after(&all, Some(&key));
                        continue;
                    };
                    let path = self.dir.join(&r.name);
                    match File::open(&path) {
                        // Compressed or removed between the listing and the open: look again.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(with_path(e, "open", &path)),
                        Ok(f) if r.form == rotation::Form::Gz => {
                            self.src = Some(Source::Gz(Box::new(flate2::read::GzDecoder::new(f))));
                        }
                        Ok(f) => self.src = Some(Source::Plain(f)),
                    }
                }
            }
        }
        Ok(true)
    }

    /// Makes `next` (`None`: the live file) the file to read from its start. What is left of
    /// a torn record at the end of the previous file is dropped; a line left unfinished there
    /// goes on in the next.
    fn enter(&mut self, next: Option<&Rotated>) {
        self.seg = next.map_or(Segment::Live, |r| Segment::Rotated(r.key.clone()));
        self.src = None;
        self.live = None;
        self.pos = 0;
        self.buf.clear();
        self.long = None;
        self.skip_through = match self.seg {
            Segment::Live => std::mem::take(&mut self.live_skip),
            Segment::Rotated(_) => [None, None],
        };
    }

    /// Goes on with the oldest of `all` newer than `after` (`None`: the oldest), else the
    /// live file, bounded by `after`.
    fn enter_after(&mut self, all: &[Rotated], after: Option<&RotKey>) {
        let next = rotation::successor(all, after);
        self.enter(next);
        if next.is_none() {
            self.read_through = after.cloned();
        }
    }

    /// At the end of the current file: `true` when reading goes on in another one.
    fn next_segment(&mut self) -> io::Result<bool> {
        match self.seg.clone() {
            Segment::Rotated(key) => {
                let all = self.rotated()?;
                self.enter_after(&all, Some(&key));
                Ok(true)
            }
            Segment::Live => {
                let Some(live) = self.live.clone() else {
                    return Ok(false);
                };
                match std::fs::metadata(&self.path) {
                    Ok(m) if file_id(&m) == live.id => return Ok(false),
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(with_path(e, "stat", &self.path));
                    }
                    _ => {}
                }
                // Rotated away: the writer renamed it and writes no more to it. Read it to
                // its end once more through the open descriptor, then go on after it. Its
                // name: the plain rotated file that is this very file; else (compressed or
                // removed meanwhile) the first rotated after those there were before it.
                let all = self.rotated()?;
                let mut key = None;
                for r in all.iter().filter(|r| r.form == rotation::Form::Plain) {
                    let path = self.dir.join(&r.name);
                    if std::fs::metadata(&path).is_ok_and(|m| file_id(&m) == live.id) {
                        key = Some(r.key.clone());
                        break;
                    }
                }
                let key = key.or_else(|| {
                    rotation::successor(&all, live.floor.as_ref()).map(|r| r.key.clone())
                });
                self.live = None;
                match key {
                    Some(key) => self.seg = Segment::Rotated(key),
                    // Gone without a trace: read what the descriptor has, then the new file.
                    None => {
                        let floor = all.last().map(|r| r.key.clone()).unwrap_or(RotKey {
                            stamp: String::new(),
                            seq: 0,
                        });
                        self.seg = Segment::Rotated(floor);
                    }
                }
                Ok(true)
            }
        }
    }

    /// The end of the output, once the container has ended and the file was read to its end:
    /// lines held back behind an unfinished one come out after it, on their own lines.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        while self.open.is_some() && !self.held.is_empty() {
            out.push(b'\n');
            self.open = None;
            self.release_held(out);
        }
    }

    /// Places the start: the oldest file, or, for `tail_lines`, where the last N lines begin
    /// (found in the live file, else counted back through the rotated ones).
    fn position(&mut self) -> io::Result<()> {
        let mut all = self.rotated()?;
        let Some(n) = self.pending_tail else {
            self.enter_after(&all, None);
            return Ok(());
        };
        // The live file, bounded by the rotated files listed; rotated again meanwhile (the
        // open found a newer one), the count starts over on a new listing.
        loop {
            self.enter(None);
            self.read_through = all.last().map(|r| r.key.clone());
            let opened = self.ensure_open()?;
            if self.seg == Segment::Live {
                return self.position_tail(&all, n, opened);
            }
            all = self.rotated()?;
        }
    }

    /// [`LogReader::position`] for `tail_lines` `n`, the live file open (if `opened`) after
    /// `all` were listed.
    fn position_tail(&mut self, all: &[Rotated], n: usize, opened: bool) -> io::Result<()> {
        // One file per key, newest first: the plain one when both are there.
        let mut keys: Vec<&Rotated> = Vec::new();
        for r in all.iter().filter(|r| r.form != rotation::Form::GzTmp) {
            if keys.last().is_none_or(|k| k.key != r.key) {
                keys.push(r);
            }
        }
        let mut remaining = n;
        if opened && let Some(Source::Plain(file)) = &self.src {
            let (pos, skip, count) =
                tail_start(file, n).map_err(|e| with_path(e, "read", &self.path))?;
            // A stream with no boundary has its first line shown begin before this file: in
            // the rotated file before it, whose unfinished records then come first.
            let begun_before = count > 0 && pos == 0 && skip.iter().any(Option::is_none);
            let begun_before = begun_before && !keys.is_empty();
            if count >= n && !begun_before {
                self.pos = pos;
                self.skip_through = skip;
                return Ok(());
            }
            if count >= n {
                self.live_skip = skip;
                remaining = 0;
            } else {
                remaining = n - count;
            }
        }
        for r in keys.into_iter().rev() {
            let path = self.dir.join(&r.name);
            let file = match File::open(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                other => other.map_err(|e| with_path(e, "open", &path))?,
            };
            let count = if r.form == rotation::Form::Gz {
                count_line_ends(flate2::read::GzDecoder::new(file))
            } else {
                count_line_ends(file)
            }
            .map_err(|e| with_path(e, "read", &path))?;
            if count >= remaining {
                self.enter(Some(r));
                self.skip_lines = count - remaining;
                return Ok(());
            }
            remaining -= count;
        }
        self.enter_after(all, None);
        Ok(())
    }

    /// Emits the text of the whole records at the start of `buf`; returns the bytes used. An
    /// unfinished record is left for the next read, unless it fills the buffer (then its text
    /// is streamed as a [`LongRecord`]).
    fn take_records(&mut self, buf: &[u8], out: &mut Vec<u8>) -> usize {
        let base = self.pos - buf.len() as u64;
        let mut i = 0;
        while i < buf.len() {
            let nl = buf[i..].iter().position(|&b| b == b'\n');
            if let Some(long) = self.long {
                let end = nl.map_or(buf.len(), |nl| i + nl);
                if !long.skip {
                    out.extend_from_slice(&buf[i..end]);
                }
                if nl.is_none() {
                    return buf.len();
                }
                self.long = None;
                if !long.skip && !long.partial {
                    self.end_line(out);
                }
                if long.counted && !long.partial {
                    self.skip_lines = self.skip_lines.saturating_sub(1);
                }
                i = end + 1;
                continue;
            }
            match nl {
                Some(nl) => {
                    let raw = &buf[i..=i + nl];
                    self.record(Some(base + i as u64), raw, out);
                    i += nl + 1;
                }
                None if i == 0 && buf.len() >= READ_BUF => {
                    self.start_long(base, buf, out);
                    return buf.len();
                }
                None => break,
            }
        }
        i
    }

    /// One whole record (`raw` ends with its `\n`); `offset` is `None` for a held record.
    fn record(&mut self, offset: Option<u64>, raw: &[u8], out: &mut Vec<u8>) {
        let Some(rec) = parse_record(&raw[..raw.len() - 1]) else {
            return;
        };
        let s = rec.stream.index();
        if let (Some(off), Some(skip)) = (offset, self.skip_through[s])
            && off <= skip
        {
            return;
        }
        if offset.is_some() && self.skip_lines > 0 {
            if !rec.partial {
                self.skip_lines -= 1;
            }
            return;
        }
        loop {
            match self.open {
                Some(open) if open != rec.stream => {
                    if self.held.len() + raw.len() <= HOLD_MAX {
                        self.held.extend_from_slice(raw);
                        return;
                    }
                    // Held back too much: the unfinished line ends here and goes on later.
                    out.push(b'\n');
                    self.open = None;
                    self.release_held(out);
                }
                _ => break,
            }
        }
        self.start_text(rec.stream, rec.ts, out);
        out.extend_from_slice(rec.text);
        if !rec.partial {
            self.end_line(out);
        }
    }

    /// The head of a record too long for the buffer is in `buf`: stream its text from here.
    fn start_long(&mut self, base: u64, buf: &[u8], out: &mut Vec<u8>) {
        let Some(rec) = parse_record(buf) else {
            self.long = Some(LongRecord {
                partial: true,
                skip: true,
                counted: false,
            });
            return;
        };
        let counted = self.skip_lines > 0;
        let skip = counted || self.skip_through[rec.stream.index()].is_some_and(|b| base <= b);
        self.long = Some(LongRecord {
            partial: rec.partial,
            skip,
            counted,
        });
        if skip {
            return;
        }
        // It cannot be held back: end the other stream's unfinished line first.
        while self.open.is_some_and(|s| s != rec.stream) {
            out.push(b'\n');
            self.open = None;
            self.release_held(out);
        }
        self.start_text(rec.stream, rec.ts, out);
        out.extend_from_slice(rec.text);
    }

    /// Before text of `stream`: a timestamp if a new line starts; the line is open from now.
    fn start_text(&mut self, stream: Stream, ts: Timestamp, out: &mut Vec<u8>) {
        if self.open.is_none() && self.timestamps {
            write_timestamp(ts, out);
            out.push(b' ');
        }
        self.open = Some(stream);
    }

    /// The open line is complete: its newline, then what was held back behind it.
    fn end_line(&mut self, out: &mut Vec<u8>) {
        out.push(b'\n');
        self.open = None;
        self.release_held(out);
    }

    fn release_held(&mut self, out: &mut Vec<u8>) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let mut rest = &held[..];
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.record(None, &rest[..=nl], out);
            rest = &rest[nl + 1..];
        }
    }

    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.buf.capacity() + self.held.capacity()
    }
}

/// Where to start reading for the last `n` logical lines, and per stream the offset of the
/// last record before them that is not part of them.
///
/// Lines are ordered by where they end (their `F` record, or the last record of a stream that
/// ended without a newline), which is the order the reader shows them in. Scans backwards
/// record by record, keeping only a block of the file: it counts line ends until the `n`-th,
/// then goes on until each stream's included line has its beginning (the previous `F` of that
/// stream). A stream with no record after the `n`-th line end contributes nothing before it;
/// one with no record for [`TAIL_LOOKBACK`] bytes is taken to begin its line there (else one
/// stderr line at the end of a big stdout log would make `--tail` read all of it).
fn tail_start(file: &File, n: usize) -> io::Result<(u64, [Option<u64>; 2], usize)> {
    let len = file.metadata()?.len();
    let mut back = Backwards::new(file);
    // Past the last newline is a record still being written: not a line yet.
    let end = back.prev_newline(len)?.map_or(0, |p| p + 1);
    if n == 0 {
        return Ok((end, [None, None], 0));
    }
    let mut seen = [false; 2];
    let mut count = 0;
    let mut found = false;
    let mut boundary: [Option<u64>; 2] = [None, None];
    let mut done = [false; 2];
    // Per stream, the offset of its last record seen below the n-th line end.
    let mut last_at = [0u64; 2];
    let mut rec_end = end;
    while rec_end > 0 {
        let start = back.prev_newline(rec_end - 1)?.map_or(0, |p| p + 1);
        let head = back.head(start, rec_end - 1)?;
        rec_end = start;
        let Some((stream, partial)) = head else {
            continue;
        };
        let s = stream.index();
        let ends_line = !partial || !seen[s];
        if !found {
            seen[s] = true;
            if ends_line {
                count += 1;
                if count == n {
                    found = true;
                    last_at = [start; 2];
                    for t in 0..2 {
                        if !seen[t] {
                            // Its lines all end before this one.
                            boundary[t] = Some(start);
                            done[t] = true;
                        }
                    }
                }
            }
        } else if !done[s] && !partial {
            boundary[s] = Some(start);
            done[s] = true;
        } else {
            last_at[s] = start;
        }
        if found {
            for t in 0..2 {
                if !done[t] && last_at[t].saturating_sub(start) > TAIL_LOOKBACK {
                    // This stream wrote nothing for a long way back: take its line as
                    // beginning after here rather than read the file to its start to be sure.
                    boundary[t] = Some(start);
                    done[t] = true;
                }
            }
        }
        if done[0] && done[1] {
            break;
        }
    }
    let from = if !found || boundary.iter().any(Option::is_none) {
        0
    } else {
        boundary.iter().flatten().copied().min().unwrap_or(0)
    };
    Ok((from, if found { boundary } else { [None, None] }, count))
}

/// The line ends (`F` records) in a rotated file, reading it forwards with a fixed buffer.
fn count_line_ends(r: impl io::Read) -> io::Result<usize> {
    use io::BufRead as _;
    const HEAD: usize = 64;
    let mut r = io::BufReader::with_capacity(READ_BUF, r);
    let mut head: Vec<u8> = Vec::with_capacity(HEAD);
    let mut count = 0;
    loop {
        let buf = r.fill_buf()?;
        let len = buf.len();
        if len == 0 {
            return Ok(count);
        }
        let mut i = 0;
        while i < len {
            let nl = buf[i..].iter().position(|&b| b == b'\n');
            let end = nl.map_or(len, |nl| i + nl);
            let take = (end - i).min(HEAD - head.len());
            head.extend_from_slice(&buf[i..i + take]);
            if nl.is_some() {
                if record_tag(&head) == Some(false) {
                    count += 1;
                }
                head.clear();
                i = end + 1;
            } else {
                i = len;
            }
        }
        r.consume(len);
    }
}

/// Whether the record starting with `head` is a `P` (`Some(true)`) or an `F`, without
/// parsing its timestamp; `None` when it is not a record.
fn record_tag(head: &[u8]) -> Option<bool> {
    let (_, rest) = split_space(head)?;
    let (stream, rest) = split_space(rest)?;
    if stream != b"stdout" && stream != b"stderr" {
        return None;
    }
    Some(rest.first()? == &b'P')
}

/// Reads a file backwards one block at a time, for [`tail_start`].
struct Backwards<'a> {
    file: &'a File,
    block: Vec<u8>,
    /// File offset of `block[0]`.
    start: u64,
}

impl<'a> Backwards<'a> {
    fn new(file: &'a File) -> Backwards<'a> {
        Backwards {
            file,
            block: Vec::new(),
            start: 0,
        }
    }

    /// Makes the block hold the bytes just before `end` (up to [`READ_BUF`] of them).
    fn load_before(&mut self, end: u64) -> io::Result<()> {
        let start = end.saturating_sub(READ_BUF as u64);
        self.block.resize((end - start) as usize, 0);
        self.file.read_exact_at(&mut self.block, start)?;
        self.start = start;
        Ok(())
    }

    fn covers(&self, from: u64, to: u64) -> bool {
        from >= self.start && to <= self.start + self.block.len() as u64
    }

    /// Offset of the last `\n` before `before`.
    fn prev_newline(&mut self, mut before: u64) -> io::Result<Option<u64>> {
        while before > 0 {
            if !self.covers(before - 1, before) {
                self.load_before(before)?;
            }
            let upto = (before - self.start) as usize;
            if let Some(i) = self.block[..upto].iter().rposition(|&b| b == b'\n') {
                return Ok(Some(self.start + i as u64));
            }
            before = self.start;
        }
        Ok(None)
    }

    /// Stream and `P` tag of the record at `[start, end)` (without its `\n`); `None` when it
    /// does not parse.
    fn head(&mut self, start: u64, end: u64) -> io::Result<Option<(Stream, bool)>> {
        // The longest prefix: a timestamp (~35), "stderr", a tag, three spaces.
        const HEAD: u64 = 64;
        let to = end.min(start + HEAD);
        let mut own = [0u8; HEAD as usize];
        let bytes: &[u8] = if self.covers(start, to) {
            let from = (start - self.start) as usize;
            &self.block[from..from + (to - start) as usize]
        } else {
            let slice = &mut own[..(to - start) as usize];
            self.file.read_exact_at(slice, start)?;
            slice
        };
        Ok(parse_record(bytes).map(|r| (r.stream, r.partial)))
    }
}

fn with_path(e: io::Error, op: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn ts(n: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000)
            .unwrap()
            .checked_add(SignedDuration::from_nanos(n))
            .unwrap()
    }

    fn encode(chunks: &[(Stream, &[u8])], eof: bool) -> Vec<u8> {
        let mut enc = CriEncoder::new();
        let mut out = Vec::new();
        for (i, (s, data)) in chunks.iter().enumerate() {
            enc.push(*s, data, ts(i as i64), &mut out);
        }
        if eof {
            enc.finish(Stream::Stdout, ts(100), &mut out);
            enc.finish(Stream::Stderr, ts(100), &mut out);
        }
        out
    }

    fn records(bytes: &[u8]) -> Vec<LogLine> {
        std::str::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| parse_line(l).unwrap())
            .collect()
    }

    fn write_file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn path_layout() {
        assert_eq!(
            container_log_path(
                Path::new("/var/lib/jv/logs"),
                "default",
                "pi-abc",
                "u-1",
                "main",
                2
            ),
            PathBuf::from("/var/lib/jv/logs/pods/default_pi-abc_u-1/main/2.log")
        );
    }

    #[test]
    fn timestamp_has_nine_digits_and_z() {
        assert_eq!(
            format_timestamp("2026-11-27T10:11:12.1Z".parse().unwrap()),
            "2026-11-27T10:11:12.100000000Z"
        );
        assert_eq!(
            format_timestamp("2026-11-27T10:11:12Z".parse().unwrap()),
            "2026-11-27T10:11:12.000000000Z"
        );
    }

    #[test]
    fn record_format_matches_cri() {
        let out = encode(
            &[
                (Stream::Stdout, b"hello world\n"),
                (Stream::Stderr, b"oops\r\n\n"),
            ],
            false,
        );
        let text = std::str::from_utf8(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for l in &lines {
            // ^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] .*$
            let b = l.as_bytes();
            assert!(b.len() >= 30 + 10, "{l}");
            for (i, c) in b[..30].iter().enumerate() {
                match i {
                    4 | 7 => assert_eq!(*c, b'-', "{l}"),
                    10 => assert_eq!(*c, b'T', "{l}"),
                    13 | 16 => assert_eq!(*c, b':', "{l}"),
                    19 => assert_eq!(*c, b'.', "{l}"),
                    29 => assert_eq!(*c, b'Z', "{l}"),
                    _ => assert!(c.is_ascii_digit(), "{l}"),
                }
            }
            let rest = &l[30..];
            assert!(
                rest.starts_with(" stdout F ") || rest.starts_with(" stderr F "),
                "{l}"
            );
        }
        assert!(lines[0].ends_with(" stdout F hello world"));
        assert!(lines[1].ends_with(" stderr F oops"), "CRLF stripped");
        assert!(lines[2].ends_with(" stderr F "), "empty line kept");
    }

    #[test]
    fn lines_split_across_reads_are_joined_before_writing() {
        let out = encode(
            &[
                (Stream::Stdout, b"hel"),
                (Stream::Stderr, b"e1\ne"),
                (Stream::Stdout, b"lo\nwor"),
                (Stream::Stdout, b"ld\n"),
                (Stream::Stderr, b"2\n"),
            ],
            false,
        );
        let got: Vec<(Stream, bool, String)> = records(&out)
            .into_iter()
            .map(|l| (l.stream, l.partial, l.text))
            .collect();
        assert_eq!(
            got,
            vec![
                (Stream::Stderr, false, "e1".into()),
                (Stream::Stdout, false, "hello".into()),
                (Stream::Stdout, false, "world".into()),
                (Stream::Stderr, false, "e2".into()),
            ]
        );
    }

    #[test]
    fn long_line_splits_into_p_and_f_and_reads_back_whole() {
        let long: Vec<u8> = (0..40_000).map(|i| b'a' + (i % 26) as u8).collect();
        let mut data = long.clone();
        data.push(b'\n');
        // Delivered in uneven reads, with the other stream writing in between.
        let out = encode(
            &[
                (Stream::Stdout, &data[..5000]),
                (Stream::Stdout, &data[5000..20000]),
                (Stream::Stderr, b"between\n"),
                (Stream::Stdout, &data[20000..]),
            ],
            true,
        );
        let recs = records(&out);
        let stdout: Vec<&LogLine> = recs.iter().filter(|l| l.stream == Stream::Stdout).collect();
        assert_eq!(stdout.len(), 3);
        assert!(stdout[0].partial && stdout[1].partial && !stdout[2].partial);
        assert_eq!(stdout[0].text.len(), MAX_RECORD_TEXT);
        assert_eq!(stdout[1].text.len(), MAX_RECORD_TEXT);
        assert_eq!(stdout[2].text.len(), 40_000 - 2 * MAX_RECORD_TEXT);

        let (_d, path) = write_file(&out);
        let text = read_log(&path, ReadOptions::default()).unwrap();
        // The split line goes out as it is read; the other stream's line, written while it
        // was unfinished, follows it.
        let expect = format!("{}\nbetween\n", String::from_utf8(long).unwrap());
        assert!(text == expect, "{} bytes: {:?}…", text.len(), &text[..40]);
    }

    #[test]
    fn exactly_max_length_line_is_one_f_record() {
        let mut data = vec![b'x'; MAX_RECORD_TEXT];
        data.push(b'\n');
        let recs = records(&encode(&[(Stream::Stdout, &data)], true));
        assert_eq!(recs.len(), 1);
        assert!(!recs[0].partial);
        let mut data = vec![b'x'; MAX_RECORD_TEXT + 1];
        data.push(b'\n');
        let recs = records(&encode(&[(Stream::Stdout, &data)], true));
        assert_eq!(recs.len(), 2);
        assert!(recs[0].partial && !recs[1].partial);
        assert_eq!(recs[1].text, "x");
    }

    #[test]
    fn unterminated_output_is_p_at_eof_and_reads_without_newline() {
        let out = encode(&[(Stream::Stdout, b"a\nno newline")], true);
        let recs = records(&out);
        assert_eq!(recs.len(), 2);
        assert!(recs[1].partial);
        assert_eq!(recs[1].text, "no newline");
        let (_d, path) = write_file(&out);
        assert_eq!(
            read_log(&path, ReadOptions::default()).unwrap(),
            "a\nno newline"
        );
    }

    #[test]
    fn timestamps_prefix_each_logical_line() {
        let out = encode(
            &[(Stream::Stdout, b"one\n"), (Stream::Stdout, b"two\n")],
            false,
        );
        let (_d, path) = write_file(&out);
        let text = read_log(
            &path,
            ReadOptions {
                tail_lines: None,
                timestamps: true,
            },
        )
        .unwrap();
        assert_eq!(
            text,
            format!(
                "{} one\n{} two\n",
                format_timestamp(ts(0)),
                format_timestamp(ts(1))
            )
        );
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let mut out = b"not a cri line\n".to_vec();
        out.extend(encode(&[(Stream::Stdout, b"ok\n")], false));
        out.extend(b"2026-01-01T00:00:00Z stdin F x\n");
        let (_d, path) = write_file(&out);
        assert_eq!(read_log(&path, ReadOptions::default()).unwrap(), "ok\n");
    }

    fn tail(path: &Path, n: usize) -> String {
        read_log(
            path,
            ReadOptions {
                tail_lines: Some(n),
                timestamps: false,
            },
        )
        .unwrap()
    }

    #[test]
    fn tail_lines_small_file() {
        let out = encode(
            &[(Stream::Stdout, b"1\n2\n3\n"), (Stream::Stderr, b"4\n")],
            false,
        );
        let (_d, path) = write_file(&out);
        assert_eq!(tail(&path, 0), "");
        assert_eq!(tail(&path, 2), "3\n4\n");
        assert_eq!(tail(&path, 10), "1\n2\n3\n4\n");
    }

    #[test]
    fn tail_lines_big_file_reads_from_the_end() {
        let mut data = Vec::new();
        for i in 0..200_000 {
            data.extend(format!("line {i}\n").bytes());
        }
        let out = encode(&[(Stream::Stdout, &data)], true);
        assert!(out.len() > 8 << 20);
        let (_d, path) = write_file(&out);
        assert_eq!(tail(&path, 3), "line 199997\nline 199998\nline 199999\n");
        let many = tail(&path, 5000);
        assert_eq!(many.lines().count(), 5000);
        assert!(many.starts_with("line 195000\n"));
    }

    #[test]
    fn tail_counts_a_split_line_once_even_across_windows() {
        // A 300 KiB line (19 records) then two short ones: tail 3 must return it whole.
        let long = vec![b'z'; 300 * 1024];
        let mut data = b"first\n".to_vec();
        data.extend(&long);
        data.extend(b"\nsecond\nthird\n");
        let out = encode(&[(Stream::Stdout, &data)], true);
        let (_d, path) = write_file(&out);
        let got = tail(&path, 3);
        let expect = format!("{}\nsecond\nthird\n", String::from_utf8(long).unwrap());
        assert_eq!(got.len(), expect.len());
        assert!(got == expect);
        assert_eq!(tail(&path, 1), "third\n");
    }

    #[test]
    fn tail_counts_unfinished_last_line() {
        let out = encode(&[(Stream::Stdout, b"a\nb\nc")], true);
        let (_d, path) = write_file(&out);
        assert_eq!(tail(&path, 2), "b\nc");
        assert_eq!(tail(&path, 1), "c");
    }

    /// Everything `read_chunk` gives until it reports the end of the file for now.
    fn drain(r: &mut LogReader) -> String {
        let mut out = Vec::new();
        while r.read_chunk(&mut out).unwrap() {}
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn follower_sees_appended_complete_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut enc = CriEncoder::new();
        let mut out = Vec::new();
        enc.push(Stream::Stdout, b"one\n", ts(0), &mut out);
        std::fs::write(&path, &out).unwrap();

        let mut f = LogReader::open(
            &path,
            ReadOptions {
                tail_lines: Some(10),
                timestamps: false,
            },
        )
        .unwrap();
        assert_eq!(drain(&mut f), "one\n");
        assert_eq!(drain(&mut f), "");

        // A record written halfway is not read until its newline is there.
        out.clear();
        enc.push(Stream::Stdout, b"two\n", ts(1), &mut out);
        let (head, tail) = out.split_at(10);
        let append = |bytes: &[u8]| {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
                .write_all(bytes)
                .unwrap();
        };
        append(head);
        assert_eq!(drain(&mut f), "");
        append(tail);
        assert_eq!(drain(&mut f), "two\n");

        out.clear();
        enc.push(Stream::Stderr, b"end", ts(2), &mut out);
        enc.finish(Stream::Stderr, ts(3), &mut out);
        append(&out);
        assert_eq!(
            drain(&mut f),
            "end",
            "an unfinished line goes out as it is read"
        );
        let mut rest = Vec::new();
        f.finish(&mut rest);
        assert!(rest.is_empty());
        assert_eq!(f.offset(), std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn missing_file_reads_as_empty_until_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/0.log");
        assert_eq!(read_log(&path, ReadOptions::default()).unwrap(), "");
        let tail = ReadOptions {
            tail_lines: Some(1),
            ..Default::default()
        };
        let mut f = LogReader::open(&path, tail).unwrap();
        assert_eq!(drain(&mut f), "");
        let mut out = Vec::new();
        let mut enc = CriEncoder::new();
        enc.push(Stream::Stdout, b"late\nlater\n", ts(1), &mut out);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &out).unwrap();
        assert_eq!(
            drain(&mut f),
            "late\nlater\n",
            "all of it is new to a reader opened before the file existed"
        );
    }

    /// A 20 MB line goes out in chunks no bigger than the bound, and the reader's own buffers
    /// stay small, with and without `tail_lines` and timestamps; the chunks join to the line.
    #[test]
    fn a_huge_line_streams_through_a_fixed_buffer() {
        let long: Vec<u8> = (0..20_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut data = b"before\n".to_vec();
        data.extend_from_slice(&long);
        data.extend_from_slice(b"\nafter\n");
        let out = encode(
            &[
                (Stream::Stdout, &data[..7_000_000]),
                (Stream::Stderr, b"meanwhile\n"),
                (Stream::Stdout, &data[7_000_000..]),
            ],
            true,
        );
        let (_d, path) = write_file(&out);
        let long = String::from_utf8(long).unwrap();
        for (opts, want) in [
            (
                ReadOptions::default(),
                format!("before\n{long}\nmeanwhile\nafter\n"),
            ),
            (
                ReadOptions {
                    tail_lines: Some(3),
                    timestamps: false,
                },
                format!("{long}\nmeanwhile\nafter\n"),
            ),
            (
                ReadOptions {
                    tail_lines: Some(3),
                    timestamps: true,
                },
                format!(
                    "{} {long}\n{} meanwhile\n{} after\n",
                    format_timestamp(ts(0)),
                    format_timestamp(ts(1)),
                    format_timestamp(ts(2))
                ),
            ),
        ] {
            let mut r = LogReader::open(&path, opts).unwrap();
            let mut all = Vec::new();
            let mut chunks = 0;
            let mut most = 0;
            loop {
                let mut chunk = Vec::new();
                let more = r.read_chunk(&mut chunk).unwrap();
                assert!(chunk.len() <= MAX_CHUNK, "chunk of {} bytes", chunk.len());
                assert!(r.held_bytes() <= 4 * READ_BUF, "holds {}", r.held_bytes());
                most = most.max(chunk.len());
                all.extend_from_slice(&chunk);
                chunks += 1;
                if !more {
                    break;
                }
            }
            r.finish(&mut all);
            assert!(chunks > 100, "{chunks} chunks, the largest {most} bytes");
            assert!(all == want.as_bytes(), "{opts:?}: {} bytes", all.len());
        }
    }

    #[test]
    fn lines_of_the_other_stream_wait_for_an_unfinished_line_up_to_a_bound() {
        // stderr writes more than the hold bound while a stdout line is unfinished: the
        // stdout line is ended there and goes on, on a line of its own, after them.
        let mut chunks: Vec<(Stream, Vec<u8>)> = vec![(Stream::Stdout, vec![b'x'; 20_000])];
        let stderr_lines: Vec<String> = (0..3000).map(|i| format!("err {i}\n")).collect();
        chunks.push((Stream::Stderr, stderr_lines.concat().into_bytes()));
        chunks.push((Stream::Stdout, b"yy\n".to_vec()));
        let refs: Vec<(Stream, &[u8])> = chunks.iter().map(|(s, d)| (*s, &d[..])).collect();
        let (_d, path) = write_file(&encode(&refs, true));
        let text = read_log(&path, ReadOptions::default()).unwrap();
        let x16 = "x".repeat(MAX_RECORD_TEXT);
        assert!(
            text.starts_with(&format!("{x16}\nerr 0\n")),
            "{}",
            &text[..100]
        );
        let err_count = text.lines().filter(|l| l.starts_with("err ")).count();
        assert_eq!(err_count, 3000, "nothing lost");
        assert!(text.ends_with(&format!("{}yy\n", "x".repeat(20_000 - MAX_RECORD_TEXT))));
    }

    /// One stderr line after 20 MB of stdout: `tail` reads a bounded stretch of the file, not
    /// all of it, and still finds both streams' last lines.
    #[test]
    fn tail_does_not_read_the_whole_file_for_the_other_streams_line() {
        let mut data = Vec::new();
        for i in 0..1_000_000 {
            data.extend(format!("stdout line {i}\n").bytes());
        }
        let out = encode(
            &[
                (Stream::Stdout, &data),
                (Stream::Stderr, b"the one error\n"),
            ],
            true,
        );
        assert!(out.len() > 20 << 20);
        let (_d, path) = write_file(&out);
        let file = File::open(&path).unwrap();
        let (from, _, _) = tail_start(&file, 2).unwrap();
        assert!(
            out.len() as u64 - from <= 4 << 20,
            "reads from {from} of {}",
            out.len()
        );
        assert_eq!(tail(&path, 2), "stdout line 999999\nthe one error\n");
    }

    #[test]
    fn tail_includes_the_other_streams_lines_that_end_within_it() {
        let out = encode(
            &[
                (Stream::Stdout, b"1\n2\n"),
                (Stream::Stderr, b"e1\n"),
                (Stream::Stdout, b"3\n"),
            ],
            true,
        );
        let (_d, path) = write_file(&out);
        assert_eq!(tail(&path, 1), "3\n");
        assert_eq!(tail(&path, 2), "e1\n3\n");
        assert_eq!(tail(&path, 3), "2\ne1\n3\n");
        assert_eq!(tail(&path, 9), "1\n2\ne1\n3\n");
    }

    #[test]
    fn unreadable_file_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: open works, reading does not.
        let err = read_log(dir.path(), ReadOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    /// `count` numbered stdout lines from `from`, as records (one batch each).
    fn numbered(from: usize, count: usize) -> Vec<u8> {
        let mut enc = CriEncoder::new();
        let mut out = Vec::new();
        for i in from..from + count {
            enc.push(
                Stream::Stdout,
                format!("line {i}\n").as_bytes(),
                ts(i as i64),
                &mut out,
            );
        }
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn lines(from: usize, to: usize) -> String {
        (from..to).map(|i| format!("line {i}\n")).collect()
    }

    /// A run rotated three times (the older two compressed, as the writer leaves them) plus a
    /// file of another run: reading goes through them in order, `.gz` ones decompressed.
    fn rotated_run() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("0.log.20261127-101112.gz"), gzip(&numbered(0, 100))).unwrap();
        std::fs::write(
            d.join("0.log.20261127-101112.1.gz"),
            gzip(&numbered(100, 100)),
        )
        .unwrap();
        std::fs::write(d.join("0.log.20261127-101113"), numbered(200, 100)).unwrap();
        std::fs::write(d.join("0.log"), numbered(300, 5)).unwrap();
        std::fs::write(d.join("1.log.20261127-101110"), numbered(900, 3)).unwrap();
        let path = d.join("0.log");
        (dir, path)
    }

    #[test]
    fn a_read_goes_through_the_rotated_files_in_order() {
        let (_d, path) = rotated_run();
        assert_eq!(
            read_log(&path, ReadOptions::default()).unwrap(),
            lines(0, 305)
        );
    }

    #[test]
    fn tail_reaches_back_into_rotated_and_compressed_files() {
        let (_d, path) = rotated_run();
        for n in [0, 1, 5, 6, 100, 105, 106, 250, 305, 1000] {
            let from = 305usize.saturating_sub(n);
            assert_eq!(tail(&path, n), lines(from, 305), "tail {n}");
        }
        // No live file (just rotated): the rotated ones still count.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(tail(&path, 3), lines(297, 300));
    }

    #[test]
    fn a_line_split_across_a_rotation_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut enc = CriEncoder::new();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        enc.push(Stream::Stdout, &vec![b'x'; 20_000], ts(0), &mut a);
        enc.push(Stream::Stdout, b"yy\nlast\n", ts(1), &mut b);
        std::fs::write(d.join("0.log.20261127-101112"), &a).unwrap();
        std::fs::write(d.join("0.log"), &b).unwrap();
        let path = d.join("0.log");
        let whole = format!("{}yy\nlast\n", "x".repeat(20_000));
        assert!(read_log(&path, ReadOptions::default()).unwrap() == whole);
        assert!(
            tail(&path, 2) == whole,
            "the line begun in the rotated file, whole"
        );
        assert_eq!(tail(&path, 1), "last\n");
    }

    /// Appends to a log file as the writer does (created with its first bytes).
    fn append(p: &Path, bytes: &[u8]) {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    /// The writer rotates while a follower reads: the follower reads the renamed file to its
    /// end through its descriptor, then the files after it, each line once, in order, also
    /// when it falls two rotations behind and the one it missed was compressed meanwhile.
    #[test]
    fn a_follower_goes_across_rotations_without_losing_or_repeating_lines() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let path = d.join("0.log");
        append(&path, &numbered(0, 10));
        let mut f = LogReader::open(&path, ReadOptions::default()).unwrap();
        assert_eq!(drain(&mut f), lines(0, 10));

        // Written, then rotated, then the new live file: before the follower looks again.
        append(&path, &numbered(10, 5));
        let r1 = d.join("0.log.20261127-101112");
        std::fs::rename(&path, &r1).unwrap();
        assert_eq!(drain(&mut f), lines(10, 15), "the rest of the renamed file");
        append(&path, &numbered(15, 5));
        assert_eq!(drain(&mut f), lines(15, 20), "then the new live file");

        // Two rotations before it looks again; the first of them compressed meanwhile.
        append(&path, &numbered(20, 5));
        let r2 = d.join("0.log.20261127-101112.1");
        std::fs::rename(&path, &r2).unwrap();
        append(&path, &numbered(25, 5));
        std::fs::rename(&path, d.join("0.log.20261127-101113")).unwrap();
        std::fs::write(
            d.join("0.log.20261127-101112.1.gz"),
            gzip(&std::fs::read(&r2).unwrap()),
        )
        .unwrap();
        std::fs::remove_file(&r2).unwrap();
        append(&path, &numbered(30, 5));
        assert_eq!(drain(&mut f), lines(20, 35));
        assert_eq!(drain(&mut f), "");
    }

    /// A reader placed at the live file (no rotated file yet) that opens it only after the
    /// writer rotated it and started a new one (`logs -f` attached during a burst: placed by
    /// one blocking call, the first read in the next): it reads the rotated file first, then
    /// the new live file, each line once.
    #[test]
    fn a_rotation_between_placing_a_reader_and_its_first_read_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let path = d.join("0.log");
        // No file at all yet (the container has not written): the reader waits at the live
        // file, which is then written, rotated and written again.
        let mut early = LogReader::open(&path, ReadOptions::default()).unwrap();
        append(&path, &numbered(0, 10));
        let mut placed = LogReader::open(&path, ReadOptions::default()).unwrap();
        std::fs::rename(&path, d.join("0.log.20261127-101112")).unwrap();
        append(&path, &numbered(10, 5));
        assert_eq!(drain(&mut placed), lines(0, 15));
        assert_eq!(drain(&mut early), lines(0, 15));

        // Placed after the first rotated file: two more rotations before the first read, the
        // older of them compressed meanwhile.
        let mut after_one = LogReader::open(&path, ReadOptions::default()).unwrap();
        assert_eq!(drain(&mut after_one), lines(0, 15));
        let mut placed = LogReader::open(&path, ReadOptions::default()).unwrap();
        let r2 = d.join("0.log.20261127-101113");
        std::fs::rename(&path, &r2).unwrap();
        append(&path, &numbered(15, 5));
        std::fs::rename(&path, d.join("0.log.20261127-101114")).unwrap();
        std::fs::write(
            d.join("0.log.20261127-101113.gz"),
            gzip(&std::fs::read(&r2).unwrap()),
        )
        .unwrap();
        std::fs::remove_file(&r2).unwrap();
        append(&path, &numbered(20, 5));
        assert_eq!(drain(&mut placed), lines(0, 25));
        assert_eq!(drain(&mut after_one), lines(15, 25));
    }
}
