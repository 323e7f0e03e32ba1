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
//! **Reading** ([`read_log`], [`LogFollower`]) joins `P` records with the following records of
//! the *same stream* up to its `F`, so a split line comes back whole even when the other stream
//! wrote in between. `tail_lines` counts these logical lines (kubelet counts raw records, so a
//! split line counts more than once there) and reads only the end of the file. Timestamps, when
//! asked for, prefix each logical line with the time of its first record, like
//! `kubectl logs --timestamps`. Records that do not parse are skipped, as kubelet does.
//!
//! Caveats: the reader uses blocking `std::fs` I/O (short reads of local files); call it from
//! `spawn_blocking` in async code. There is no rotation: a file grows until its pod is deleted.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::Offset;

/// Longest text one record carries; longer lines become `P` records plus a final `F`.
pub const MAX_RECORD_TEXT: usize = 16 * 1024;

/// The first window `tail_lines` reads from the end of a file; it grows 4x until it holds
/// enough lines.
const TAIL_WINDOW: u64 = 64 * 1024;

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
    /// `now` of the current batch, formatted once per batch rather than once per record.
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
        let pending = &mut self.pending[stream.index()];
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..nl];
            if pending.is_empty() {
                emit_line(&self.ts, stream, line, out);
            } else {
                pending.extend_from_slice(line);
                emit_line(&self.ts, stream, pending, out);
                pending.clear();
            }
            rest = &rest[nl + 1..];
        }
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

/// A line as the user wrote it: `P` records joined with the rest of their line.
struct Logical {
    ts: Timestamp,
    text: Vec<u8>,
    /// false for a line whose stream ended (or has not yet continued) without a newline.
    complete: bool,
}

struct Pending {
    ts: Timestamp,
    text: Vec<u8>,
    /// Order of the first record, so unfinished lines of both streams come out in file order.
    seq: u64,
}

/// Joins `P` records per stream.
#[derive(Default)]
struct Joiner {
    pending: [Option<Pending>; 2],
    seq: u64,
}

impl Joiner {
    fn feed(&mut self, rec: Record<'_>, out: &mut Vec<(Stream, Logical)>) {
        let slot = &mut self.pending[rec.stream.index()];
        if rec.partial {
            match slot {
                Some(p) => p.text.extend_from_slice(rec.text),
                None => {
                    *slot = Some(Pending {
                        ts: rec.ts,
                        text: rec.text.to_vec(),
                        seq: self.seq,
                    });
                    self.seq += 1;
                }
            }
            return;
        }
        let line = match slot.take() {
            Some(mut p) => {
                p.text.extend_from_slice(rec.text);
                Logical {
                    ts: p.ts,
                    text: p.text,
                    complete: true,
                }
            }
            None => Logical {
                ts: rec.ts,
                text: rec.text.to_vec(),
                complete: true,
            },
        };
        out.push((rec.stream, line));
    }

    fn pending_count(&self) -> usize {
        self.pending.iter().flatten().count()
    }

    /// Forgets the oldest unfinished lines until at most `keep` remain.
    fn keep_newest_pending(&mut self, keep: usize) {
        while self.pending_count() > keep {
            let oldest = (0..2)
                .filter_map(|i| self.pending[i].as_ref().map(|p| (p.seq, i)))
                .min();
            match oldest {
                Some((_, i)) => self.pending[i] = None,
                None => break,
            }
        }
    }

    fn take_pending(&mut self) -> Vec<Logical> {
        let mut lines: Vec<Pending> = self.pending.iter_mut().filter_map(Option::take).collect();
        lines.sort_by_key(|p| p.seq);
        lines
            .into_iter()
            .map(|p| Logical {
                ts: p.ts,
                text: p.text,
                complete: false,
            })
            .collect()
    }
}

/// Feeds the complete records of `buf` (each ending in `\n`) to `joiner`; returns how many
/// bytes that consumed. An unfinished record at the end is left for the next read.
fn feed_records(buf: &[u8], joiner: &mut Joiner, out: &mut Vec<(Stream, Logical)>) -> usize {
    let mut consumed = 0;
    while let Some(nl) = buf[consumed..].iter().position(|&b| b == b'\n') {
        if let Some(rec) = parse_record(&buf[consumed..consumed + nl]) {
            joiner.feed(rec, out);
        }
        consumed += nl + 1;
    }
    consumed
}

fn render(lines: &[Logical], timestamps: bool, out: &mut String) {
    for (i, line) in lines.iter().enumerate() {
        if timestamps {
            out.push_str(&format_timestamp(line.ts));
            out.push(' ');
        }
        out.push_str(&String::from_utf8_lossy(&line.text));
        // Two unfinished lines (one per stream) still need a break between them.
        if line.complete || i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Only the last N lines (logical lines: a split long line counts once).
    pub tail_lines: Option<usize>,
    /// Prefix each line with `<RFC3339Nano> `, like `kubectl logs --timestamps`.
    pub timestamps: bool,
}

/// The container's output as `kubectl logs` shows it: text only, split lines joined, an
/// unfinished last line without its newline. A missing file reads as empty: the runtime
/// creates it with the container's first output.
pub fn read_log(path: &Path, opts: ReadOptions) -> io::Result<String> {
    let (mut follower, mut text) = LogFollower::open(path, opts)?;
    text.push_str(&follower.finish());
    Ok(text)
}

/// Reads a log file and then what gets appended to it, for `logs -f`.
///
/// `open` returns what [`read_log`] would (minus an unfinished last line, which may still be
/// continued); then call `poll` every 50-100 ms for the text of records appended since, and once
/// the container has terminated and `poll` returned nothing, `finish` for an unfinished last
/// line. Blocking I/O: call from `spawn_blocking` in async code. Until the file exists (the
/// container has not written yet) there is nothing to read; each `poll` looks for it again.
pub struct LogFollower {
    path: PathBuf,
    file: Option<File>,
    /// Just past the last complete record read; an unfinished record is read again next time.
    offset: u64,
    timestamps: bool,
    joiner: Joiner,
}

impl LogFollower {
    pub fn open(path: &Path, opts: ReadOptions) -> io::Result<(LogFollower, String)> {
        let mut follower = LogFollower {
            path: path.to_owned(),
            file: None,
            offset: 0,
            timestamps: opts.timestamps,
            joiner: Joiner::default(),
        };
        let Some(file) = follower.file()? else {
            return Ok((follower, String::new()));
        };
        let len = file
            .metadata()
            .map_err(|e| with_path(e, "stat", path))?
            .len();
        let lines = match opts.tail_lines {
            None => follower
                .read_new()
                .map_err(|e| with_path(e, "read", path))?,
            Some(n) => follower
                .read_tail(len, n)
                .map_err(|e| with_path(e, "read", path))?,
        };
        let mut text = String::new();
        render(&lines, follower.timestamps, &mut text);
        Ok((follower, text))
    }

    /// Text of the lines completed by records appended since the last call (may be empty).
    pub fn poll(&mut self) -> io::Result<String> {
        let lines = self.read_new()?;
        let mut text = String::new();
        render(&lines, self.timestamps, &mut text);
        Ok(text)
    }

    /// The unfinished lines (a stream that ended without a newline); call once the container
    /// has terminated and `poll` has drained the file.
    pub fn finish(&mut self) -> String {
        let mut text = String::new();
        render(&self.joiner.take_pending(), self.timestamps, &mut text);
        text
    }

    /// Byte offset just past the last complete record read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The open file, opened now if it has appeared; `None` while it does not exist.
    fn file(&mut self) -> io::Result<Option<&File>> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_path(e, "open", &self.path)),
            }
        }
        Ok(self.file.as_ref())
    }

    fn read_new(&mut self) -> io::Result<Vec<Logical>> {
        let offset = self.offset;
        let Some(mut file) = self.file()? else {
            return Ok(Vec::new());
        };
        let mut buf = Vec::new();
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_end(&mut buf)?;
        let mut out = Vec::new();
        let consumed = feed_records(&buf, &mut self.joiner, &mut out);
        self.offset += consumed as u64;
        Ok(out.into_iter().map(|(_, l)| l).collect())
    }

    /// Reads windows of growing size from the end until one holds `n` lines that surely
    /// started inside it, then keeps the last `n` (unfinished lines count, and stay pending).
    fn read_tail(&mut self, len: u64, n: usize) -> io::Result<Vec<Logical>> {
        let mut window = TAIL_WINDOW.max((n as u64).saturating_mul(256));
        loop {
            let start = len.saturating_sub(window);
            let mut buf = vec![0; (len - start) as usize];
            let Some(file) = self.file()? else {
                return Ok(Vec::new());
            };
            file.read_exact_at(&mut buf, start)?;
            // Mid-file, the window starts inside some record: skip to the next one.
            let skip = if start == 0 {
                0
            } else {
                match buf.iter().position(|&b| b == b'\n') {
                    Some(nl) => nl + 1,
                    None => {
                        window = window.saturating_mul(4);
                        continue;
                    }
                }
            };
            let mut joiner = Joiner::default();
            let mut lines = Vec::new();
            let consumed = feed_records(&buf[skip..], &mut joiner, &mut lines);
            let mut truncated_pending = false;
            if start > 0 {
                // Each stream's first line may have begun with `P` records before the window:
                // drop it. If that first line is still unfinished, the window is too small.
                for stream in [Stream::Stdout, Stream::Stderr] {
                    match lines.iter().position(|(s, _)| *s == stream) {
                        Some(i) => {
                            lines.remove(i);
                        }
                        None => truncated_pending |= joiner.pending[stream.index()].is_some(),
                    }
                }
            }
            let have = lines.len() + joiner.pending_count();
            if start == 0 || (have >= n && !truncated_pending) {
                joiner.keep_newest_pending(n);
                let complete = n - joiner.pending_count().min(n);
                let drop = lines.len().saturating_sub(complete);
                self.joiner = joiner;
                self.offset = start + (skip + consumed) as u64;
                return Ok(lines.into_iter().skip(drop).map(|(_, l)| l).collect());
            }
            window = window.saturating_mul(4);
        }
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
        let expect = format!("between\n{}\n", String::from_utf8(long).unwrap());
        assert_eq!(text, expect);
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

    #[test]
    fn follower_sees_appended_complete_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut enc = CriEncoder::new();
        let mut out = Vec::new();
        enc.push(Stream::Stdout, b"one\n", ts(0), &mut out);
        std::fs::write(&path, &out).unwrap();

        let (mut f, text) = LogFollower::open(
            &path,
            ReadOptions {
                tail_lines: Some(10),
                timestamps: false,
            },
        )
        .unwrap();
        assert_eq!(text, "one\n");
        assert_eq!(f.poll().unwrap(), "");

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
        assert_eq!(f.poll().unwrap(), "");
        append(tail);
        assert_eq!(f.poll().unwrap(), "two\n");

        out.clear();
        enc.push(Stream::Stderr, b"end", ts(2), &mut out);
        enc.finish(Stream::Stderr, ts(3), &mut out);
        append(&out);
        assert_eq!(f.poll().unwrap(), "", "unfinished line waits");
        assert_eq!(f.finish(), "end");
        assert_eq!(f.offset(), std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn missing_file_reads_as_empty_until_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/0.log");
        assert_eq!(read_log(&path, ReadOptions::default()).unwrap(), "");
        let tail = ReadOptions {
            tail_lines: Some(3),
            ..Default::default()
        };
        let (mut f, first) = LogFollower::open(&path, tail).unwrap();
        assert_eq!(first, "");
        assert_eq!(f.poll().unwrap(), "");
        let mut out = Vec::new();
        let mut enc = CriEncoder::new();
        enc.push(Stream::Stdout, b"late\n", ts(1), &mut out);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &out).unwrap();
        assert_eq!(f.poll().unwrap(), "late\n");
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
}
