//! The store: every object's latest JSON, crash-safe on disk, written by group commit.
//!
//! On disk, under the state directory (0700; every file 0600: objects carry `env` values):
//! - `snapshot.json`: `{"version":1,"seq":N,"objects":{key: object},"crc":"xxxxxxxx"}`,
//!   replaced atomically (write temp, fsync, rename, fsync the directory);
//! - `journal.jsonl`: one record per commit, `{"seq":N,"ops":[{"k":key,"v":object|null}],
//!   "crc":"xxxxxxxx"}`, appended and fsynced by a writer thread.
//!
//! `crc` is the CRC-32 (IEEE 802.3 polynomial, zlib's) of the record without it — the bytes up
//! to `,"crc":` followed by `}` — as 8 lowercase hex digits, so a record stays plain JSON for
//! `jq`. Records without `crc` (jobvisor 0.1.0) are still read.
//!
//! Group commit: the writer takes everything queued, merges it into ONE record, writes it and
//! fsyncs once, then reports the record's `seq` as durable. So at most one record is ever
//! unsynced, and a torn tail can only be the last record: cut short, holding zero bytes, or
//! without a verifiable checksum ([`Damage::can_be_torn`]), it was never reported durable, and
//! loading moves it aside to `journal.torn-<offset>`. A last record whose checksum verifies is
//! kept whatever damage follows it. Any other bad record is corruption: loading stops with the
//! file, offset and the way out ([`recover`]), and never rewrites the evidence. Lines at or below the snapshot's `seq` are
//! skipped, so a crash between snapshot and journal truncation is safe. A failed write is cut
//! back, reported, and retried with back-off (its ops stay queued, merged by key) until it
//! succeeds. A lock file keeps a second daemon off the same state.
//!
//! The store keeps no copy of the objects in memory: the daemon's world is built from them at
//! start (one at a time, [`Store::open_each`]), and compaction folds the snapshot and journal
//! files into a new snapshot, checking their checksums again ([`Writer::compact`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::ops::Range;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

const SNAPSHOT: &str = "snapshot.json";
const JOURNAL: &str = "journal.jsonl";
const LOCK: &str = "lock";
/// Test-only power-loss mode: the journal's length after the last completed fsync.
const SYNCED: &str = "journal.synced";
const FORMAT_VERSION: u32 = 1;
/// State is private: objects carry containers' `env` values.
pub const STATE_DIR_MODE: u32 = 0o700;
pub const STATE_FILE_MODE: u32 = 0o600;
/// `,"crc":"` + 8 hex digits + `"}`
const CRC_TRAILER: usize = 18;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state {path} is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "state {path} is corrupt at byte offset {offset}: {message}; {why}. Nothing was \
         changed. Keep a copy of the state directory, then run `jobvisor recover-state` (with \
         the same --root/--config) to keep the {good} good record(s) before the offset and move \
         the damaged journal aside to {aside}; the records from the offset on are then lost"
    )]
    CorruptRecord {
        path: PathBuf,
        offset: u64,
        message: String,
        /// Why this is not a torn tail.
        why: String,
        good: usize,
        later: usize,
        aside: PathBuf,
    },
    #[error("state directory {0} is in use by another jobvisor daemon")]
    Locked(PathBuf),
    #[error("the store's writer thread has stopped")]
    WriterGone,
    #[error("writing state failed: {0}")]
    WriteFailed(String),
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

// `deny_unknown_fields`: a damaged field name (`"crd"`) must not pass as an old record.
/// A snapshot as read: borrowed from the file's bytes, so loading and compaction hold the
/// file once, not a second copy of every object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot<'a> {
    version: u32,
    seq: u64,
    #[serde(borrow)]
    objects: BTreeMap<Cow<'a, str>, &'a RawValue>,
    /// Checked before parsing (see [`decode`]); written after the objects.
    #[serde(rename = "crc", default)]
    _crc: Option<serde::de::IgnoredAny>,
}

/// One commit as the writer writes it.
#[derive(Serialize)]
struct JournalLine {
    seq: u64,
    ops: Vec<Op>,
}

#[derive(Serialize)]
struct Op {
    k: String,
    v: Option<Box<RawValue>>,
}

/// One journal record as read, borrowed from its line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalLineRef<'a> {
    seq: u64,
    #[serde(borrow)]
    ops: Vec<OpRef<'a>>,
    #[serde(rename = "crc", default)]
    _crc: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpRef<'a> {
    #[serde(borrow)]
    k: Cow<'a, str>,
    #[serde(borrow)]
    v: Option<&'a RawValue>,
}

/// A journal record reduced to what loading and compaction need: each op's key, and where
/// its value's bytes are in the journal file (`None`: deleted). Values are read from the file
/// when they are used, so no step holds the whole journal in memory.
struct Record {
    seq: u64,
    ops: Vec<(String, Option<Range<u64>>)>,
}

impl Record {
    /// `line` is the record's text (without the newline) found at byte `offset`.
    fn of(parsed: JournalLineRef<'_>, line: &[u8], offset: u64) -> Record {
        let base = line.as_ptr() as usize;
        let ops = parsed
            .ops
            .into_iter()
            .map(|op| {
                let range = op.v.map(|v| {
                    // `v` borrows from `line`: its place in the line is its place in the file.
                    let start = offset + (v.get().as_ptr() as usize - base) as u64;
                    start..start + v.get().len() as u64
                });
                (op.k.into_owned(), range)
            })
            .collect();
        Record {
            seq: parsed.seq,
            ops,
        }
    }
}

/// Every key's latest value in the journal: where its bytes are (`None`: deleted).
type JournalIndex = BTreeMap<String, Option<Range<u64>>>;

/// What the writer tells its owner after each commit attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    /// Every batch up to this `seq` is on disk (fsynced).
    Durable(u64),
    /// Writing failed (full disk, EIO, EPERM…); the batches stay queued and are retried.
    Failing(String),
}

/// Faults a test can inject through the environment; all off in production.
#[derive(Debug, Clone, Default)]
pub struct TestFaults {
    /// `JOBVISOR_TEST_POWER_LOSS=1`: record the journal's length after each completed fsync in
    /// `journal.synced`, and on open drop every byte past it, as a power loss would (the page
    /// cache survives a SIGKILL, so a killed daemon alone cannot show this).
    pub power_loss: bool,
    /// `JOBVISOR_TEST_FSYNC_DELAY_MS=N`: sleep before each journal fsync, to widen the window
    /// between a write and its durability.
    pub fsync_delay: Duration,
}

impl TestFaults {
    pub fn from_env() -> TestFaults {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty() && v != "0");
        TestFaults {
            power_loss: var("JOBVISOR_TEST_POWER_LOSS").is_some(),
            fsync_delay: var("JOBVISOR_TEST_FSYNC_DELAY_MS")
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis)
                .unwrap_or_default(),
        }
    }
}

pub struct StoreOptions {
    pub compact_bytes: u64,
    pub faults: TestFaults,
    /// Called from the writer thread after every commit attempt.
    pub on_durable: Box<dyn Fn(Durability) + Send>,
}

impl StoreOptions {
    pub fn new(compact_bytes: u64) -> StoreOptions {
        StoreOptions {
            compact_bytes,
            faults: TestFaults::default(),
            on_durable: Box::new(|_| {}),
        }
    }
}

enum Msg {
    Batch(JournalLine),
    Sync(mpsc::Sender<Result<(), String>>),
}

pub struct Store {
    dir: PathBuf,
    dirty: std::collections::BTreeSet<String>,
    /// The `seq` of the last batch handed to the writer.
    seq: u64,
    tx: mpsc::Sender<Msg>,
    writer: Option<std::thread::JoinHandle<()>>,
    _lock: nix::fcntl::Flock<File>,
}

/// What was on disk at start: key → object JSON.
pub type Objects = BTreeMap<String, Box<RawValue>>;

impl Store {
    /// Opens (creating if needed) the state directory and loads every object.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<(Store, Objects), StoreError> {
        let mut objects = Objects::new();
        let store = Store::open_each(dir, opts, |k, v| {
            objects.insert(k.to_string(), v.to_owned());
        })?;
        Ok((store, objects))
    }

    /// Opens (creating if needed) the state directory and hands every object to `each`, in
    /// key order, one at a time: the caller builds its own state without a copy of the
    /// whole store's JSON ever being held.
    pub fn open_each(
        dir: &Path,
        opts: StoreOptions,
        each: impl FnMut(&str, &RawValue),
    ) -> Result<Store, StoreError> {
        private_dir(dir)?;
        let lock = lock(dir)?;
        if opts.faults.power_loss {
            lose_unsynced(dir)?;
        }
        let (snap_seq, seq) = load(dir, each)?;
        let journal_path = dir.join(JOURNAL);
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(STATE_FILE_MODE)
            .open(&journal_path)
            .map_err(io("opening", &journal_path))?;
        make_private(&journal_path, STATE_FILE_MODE)?;
        // The journal's (and a new state directory's) entries must survive a power loss too.
        sync_dir(dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        let len = journal
            .metadata()
            .map_err(io("reading", &journal_path))?
            .len();
        let (tx, rx) = mpsc::channel();
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            journal,
            len,
            compact_at: opts.compact_bytes,
            snap_seq,
            seq,
            compact_bytes: opts.compact_bytes,
            queued: BTreeMap::new(),
            queued_seq: seq,
            faults: opts.faults,
            on_durable: opts.on_durable,
        };
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io("starting writer for", dir))?;
        let store = Store {
            dir: dir.to_path_buf(),
            dirty: Default::default(),
            seq,
            tx,
            writer: Some(handle),
            _lock: lock,
        };
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Marks a key changed; `flush` will write its then-current value.
    pub fn touch(&mut self, key: impl Into<String>) {
        self.dirty.insert(key.into());
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The `seq` that makes everything changed so far durable: the next batch's if keys are
    /// dirty, else the last batch handed over.
    pub fn covering_seq(&self) -> u64 {
        self.seq + u64::from(self.has_dirty())
    }

    /// The `seq` of the last batch handed to the writer.
    pub fn last_handed(&self) -> u64 {
        self.seq
    }

    /// Hands every dirty key's current JSON (`None`: deleted) to the writer as one batch;
    /// returns its `seq`, which the writer reports through `on_durable` once it is on disk.
    pub fn flush(
        &mut self,
        mut current: impl FnMut(&str) -> Option<Box<RawValue>>,
    ) -> Result<u64, StoreError> {
        if self.dirty.is_empty() {
            return Ok(self.seq);
        }
        let seq = self.seq + 1;
        let ops = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|k| {
                let v = current(&k);
                Op { k, v }
            })
            .collect();
        self.tx
            .send(Msg::Batch(JournalLine { seq, ops }))
            .map_err(|_| StoreError::WriterGone)?;
        self.seq = seq;
        Ok(seq)
    }

    /// Waits until everything handed over so far is on disk.
    pub fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Msg::Sync(tx))
            .map_err(|_| StoreError::WriterGone)?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::WriteFailed(message)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

/// Creates the state directory 0700, and makes an existing one 0700 (an older release made
/// it 0755): the journal holds containers' `env` values.
fn private_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(STATE_DIR_MODE)
        .create(dir)
        .map_err(io("creating", dir))?;
    make_private(dir, STATE_DIR_MODE)
}

/// Takes group and other bits away from what an older release made 0755/0644.
fn make_private(path: &Path, mode: u32) -> Result<(), StoreError> {
    let current = std::fs::metadata(path)
        .map_err(io("reading", path))?
        .permissions()
        .mode();
    if current & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io("making private", path))?;
    }
    Ok(())
}

fn lock(dir: &Path) -> Result<nix::fcntl::Flock<File>, StoreError> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(STATE_FILE_MODE)
        .open(&path)
        .map_err(io("opening", &path))?;
    // A daemon killed while spawning leaves a vfork child that holds the descriptor until its
    // exec closes it: give such a child a moment before calling the state taken.
    let mut file = file;
    for _ in 0..LOCK_ATTEMPTS {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, _)) => file = f,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(StoreError::Locked(dir.to_path_buf()))
}

/// 50 ms apart: up to 3 s for a dying daemon's children to let go of the lock.
const LOCK_ATTEMPTS: u32 = 60;

/// Power-loss mode: what the last completed fsync did not cover is gone.
fn lose_unsynced(dir: &Path) -> Result<(), StoreError> {
    let synced_path = dir.join(SYNCED);
    let Ok(text) = std::fs::read_to_string(&synced_path) else {
        return Ok(());
    };
    let Ok(synced) = text.trim().parse::<u64>() else {
        return Ok(());
    };
    let path = dir.join(JOURNAL);
    if let Ok(f) = OpenOptions::new().write(true).open(&path) {
        let len = f.metadata().map_err(io("reading", &path))?.len();
        if len > synced {
            tracing::warn!(
                lost = len - synced,
                "simulated power loss: dropping unsynced journal bytes"
            );
            f.set_len(synced).map_err(io("truncating", &path))?;
        }
    }
    Ok(())
}

/// The CRC-32 of a record as written: the JSON without its trailing `}`, then `}`.
fn crc_of(body_without_close: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(body_without_close);
    h.update(b"}");
    h.finalize()
}

/// Serializes a value as one checksummed JSON object (no newline).
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = serde_json::to_vec(value)?;
    if out.last() == Some(&b'}') {
        out.pop();
        let crc = crc_of(&out);
        out.extend_from_slice(format!(",\"crc\":\"{crc:08x}\"}}").as_bytes());
    }
    Ok(out)
}

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Damage {
    /// No newline: the write was cut short.
    Incomplete,
    /// Zero bytes, or no well-formed checksum trailer and not JSON: what a cut-short or
    /// half-persisted write leaves.
    Unreadable(String),
    /// Whole (newline, trailer, no zero bytes) but its checksum does not match: changed after
    /// it was written.
    ChecksumMismatch { stored: String, computed: u32 },
    /// No checksum after records that had one: its trailer was damaged.
    MissingChecksum,
}

impl Damage {
    /// Whether a crash or power loss in the middle of writing this record can explain it.
    /// A whole record with a wrong checksum cannot: it was damaged later, and may have been
    /// reported.
    fn can_be_torn(&self) -> bool {
        matches!(self, Damage::Incomplete | Damage::Unreadable(_))
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Incomplete => write!(f, "incomplete record (no newline)"),
            Damage::Unreadable(e) => write!(f, "unreadable record: {e}"),
            Damage::ChecksumMismatch { stored, computed } => {
                write!(
                    f,
                    "checksum mismatch (stored {stored}, computed {computed:08x})"
                )
            }
            Damage::MissingChecksum => {
                write!(f, "record without a checksum after records that have one")
            }
        }
    }
}

/// Parses a record and checks its checksum if it has one; `checksummed` says whether the
/// records before it had one (records of jobvisor 0.1.0 have none).
fn decode<'a, T: Deserialize<'a>>(
    record: &'a [u8],
    checksummed: bool,
) -> Result<(T, bool), Damage> {
    let parsed: Result<T, Damage> =
        serde_json::from_slice(record).map_err(|e| Damage::Unreadable(e.to_string()));
    let n = record.len();
    let trailer = n
        .checked_sub(CRC_TRAILER)
        .map(|at| (at, &record[at..]))
        .filter(|(_, t)| t.starts_with(b",\"crc\":\"") && t.ends_with(b"\"}"));
    let Some((at, t)) = trailer else {
        return match parsed {
            Ok(_) if checksummed => Err(Damage::MissingChecksum),
            other => other.map(|v| (v, false)),
        };
    };
    // Zero bytes are what a power loss leaves of blocks that were never written.
    if record.contains(&0) {
        return Err(Damage::Unreadable("zero bytes in the record".into()));
    }
    // Whole from its first byte to its trailer: a checksum that fails, or a record that does
    // not parse, was damaged after it was written, whatever byte was hit.
    let stored = String::from_utf8_lossy(&t[8..16]).into_owned();
    let computed = crc_of(&record[..at]);
    if u32::from_str_radix(&stored, 16).ok() != Some(computed) {
        return Err(Damage::ChecksumMismatch { stored, computed });
    }
    Ok((
        parsed.map_err(|_| Damage::ChecksumMismatch { stored, computed })?,
        true,
    ))
}

/// One journal record as found on disk.
struct Found {
    offset: u64,
    result: Result<Record, Damage>,
}

/// Reads every record of a journal (its first `limit` bytes, if given): complete ones are
/// checked, an incomplete last line is reported as such.
fn scan_journal(path: &Path, limit: Option<u64>) -> Result<Vec<Found>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("opening", path)(e)),
    };
    let mut reader = BufReader::new(file.take(limit.unwrap_or(u64::MAX)));
    let (mut offset, mut found) = (0u64, Vec::new());
    let mut line = Vec::new();
    let mut checksummed = false;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(io("reading", path))?;
        if n == 0 {
            break;
        }
        let result = match line.strip_suffix(b"\n") {
            Some(record) => decode::<JournalLineRef>(record, checksummed).map(|(batch, crc)| {
                checksummed |= crc;
                Record::of(batch, record, offset)
            }),
            None => Err(Damage::Incomplete),
        };
        found.push(Found { offset, result });
        offset += n as u64;
    }
    Ok(found)
}

fn torn_path(dir: &Path, offset: u64) -> PathBuf {
    dir.join(format!("journal.torn-{offset}"))
}

fn corrupt_path(dir: &Path, offset: u64) -> PathBuf {
    dir.join(format!("journal.corrupt-{offset}"))
}

/// `path`, or `path.1`, `path.2`… if taken: evidence set aside is never replaced.
fn free_name(path: &Path) -> PathBuf {
    let mut candidate = path.to_path_buf();
    let mut n = 0u32;
    while candidate.symlink_metadata().is_ok() {
        n += 1;
        candidate = PathBuf::from(format!("{}.{n}", path.display()));
    }
    candidate
}

/// The snapshot's bytes, `None` if there is none yet.
fn read_snapshot(dir: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let path = dir.join(SNAPSHOT);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("reading", &path)(e)),
    }
}

/// Checks a snapshot's checksum and version and parses it, borrowing from `bytes`.
fn parse_snapshot<'a>(dir: &Path, bytes: &'a [u8]) -> Result<Snapshot<'a>, StoreError> {
    let snap_path = dir.join(SNAPSHOT);
    let corrupt = |message: String| StoreError::Corrupt {
        path: snap_path.clone(),
        message: format!(
            "{message}; it was written atomically, so this is damage, not a crash: restore the \
             state directory from a backup"
        ),
    };
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let (snap, _): (Snapshot, bool) = decode(trimmed, false).map_err(|d| corrupt(d.to_string()))?;
    if snap.version != FORMAT_VERSION {
        return Err(StoreError::Corrupt {
            path: snap_path,
            message: format!(
                "format version {} (this jobvisor reads {FORMAT_VERSION})",
                snap.version
            ),
        });
    }
    Ok(snap)
}

/// Hands every object to `each` in key order: the snapshot's, unless the journal has a newer
/// value (read from the journal file) or deleted it, then the journal's new keys.
fn merge(
    snapshot: &BTreeMap<Cow<'_, str>, &RawValue>,
    index: &JournalIndex,
    journal: &Path,
    mut each: impl FnMut(&str, &RawValue) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let file = if index.values().any(Option::is_some) {
        Some(File::open(journal).map_err(io("opening", journal))?)
    } else {
        None
    };
    let mut buf = Vec::new();
    let mut value_at = |k: &str, range: &Range<u64>| -> Result<Box<RawValue>, StoreError> {
        let bad = |message: String| StoreError::Corrupt {
            path: journal.to_path_buf(),
            message,
        };
        let len = usize::try_from(range.end - range.start).map_err(|e| bad(e.to_string()))?;
        buf.resize(len, 0);
        let f = file
            .as_ref()
            .ok_or_else(|| bad("the journal was not opened".into()))?;
        f.read_exact_at(&mut buf, range.start)
            .map_err(io("reading", journal))?;
        // The record holding these bytes was checked (checksum and parse) moments ago.
        let v: &RawValue = serde_json::from_slice(&buf)
            .map_err(|e| bad(format!("value of {k} at byte {}: {e}", range.start)))?;
        Ok(v.to_owned())
    };
    let mut snap = snapshot.iter().peekable();
    let mut newer = index.iter().peekable();
    loop {
        match (snap.peek(), newer.peek()) {
            (None, None) => return Ok(()),
            (Some((sk, sv)), None) => {
                each(sk, sv)?;
                snap.next();
            }
            (Some((sk, sv)), Some((jk, _))) if sk.as_ref() < jk.as_str() => {
                each(sk, sv)?;
                snap.next();
            }
            (sk, Some((jk, v))) => {
                if sk.is_some_and(|(sk, _)| sk.as_ref() == jk.as_str()) {
                    snap.next();
                }
                if let Some(range) = v {
                    each(jk, &value_at(jk, range)?)?;
                }
                newer.next();
            }
        }
    }
}

/// Folds records into `index`: the latest op per key wins. Records at or below the
/// snapshot's `seq` are already in it (a crash between a snapshot's rename and the journal's
/// truncation leaves them) and are skipped. Returns the last `seq`.
fn fold(index: &mut JournalIndex, record: Record, snap_seq: u64, seq: u64) -> u64 {
    if record.seq <= snap_seq {
        return seq;
    }
    index.extend(record.ops);
    record.seq
}

/// Snapshot, then journal records newer than it; hands every object to `each`. A bad last
/// record is a torn tail and is moved aside; a bad record before the last stops loading.
/// Returns the snapshot's `seq` and the last one.
fn load(dir: &Path, mut each: impl FnMut(&str, &RawValue)) -> Result<(u64, u64), StoreError> {
    let bytes = read_snapshot(dir)?;
    let snapshot = match &bytes {
        Some(b) => Some(parse_snapshot(dir, b)?),
        None => None,
    };
    let snap_seq = snapshot.as_ref().map_or(0, |s| s.seq);
    let journal_path = dir.join(JOURNAL);
    let found = scan_journal(&journal_path, None)?;
    let mut seq = snap_seq;
    let mut index = JournalIndex::new();
    let count = found.len();
    for (i, f) in found.into_iter().enumerate() {
        let last = i + 1 == count;
        let record = match f.result {
            Ok(record) => record,
            Err(damage) if last && !matches!(damage, Damage::ChecksumMismatch { .. }) => {
                match verified_last_record(dir, f.offset, &damage)? {
                    Some(record) => record,
                    None if damage.can_be_torn() => {
                        move_torn_tail(dir, f.offset, &damage.to_string())?;
                        break;
                    }
                    None => return Err(corrupt_last(dir, f.offset, i, damage)),
                }
            }
            Err(damage) => {
                let later = count - i - 1;
                let why = if later > 0 {
                    format!(
                        "{later} later record(s) follow it, so it is not a torn tail from a crash"
                    )
                } else {
                    "a crash cannot leave a whole record like this, so it was damaged after it \
                     was written (and may have been reported)"
                        .to_string()
                };
                return Err(StoreError::CorruptRecord {
                    path: journal_path,
                    offset: f.offset,
                    message: damage.to_string(),
                    why,
                    good: i,
                    later: count - i - 1,
                    aside: corrupt_path(dir, f.offset),
                });
            }
        };
        seq = fold(&mut index, record, snap_seq, seq);
    }
    let empty = BTreeMap::new();
    let objects = snapshot.as_ref().map_or(&empty, |s| &s.objects);
    merge(objects, &index, &journal_path, |k, v| {
        each(k, v);
        Ok(())
    })?;
    Ok((snap_seq, seq))
}

fn corrupt_last(dir: &Path, offset: u64, good: usize, damage: Damage) -> StoreError {
    StoreError::CorruptRecord {
        path: dir.join(JOURNAL),
        offset,
        message: damage.to_string(),
        why: "a crash cannot leave a whole record like this, so it was damaged after it was \
              written (and may have been reported)"
            .to_string(),
        good,
        later: 0,
        aside: corrupt_path(dir, offset),
    }
}

/// The content of a record whose checksum verifies although its last bytes (the trailer's
/// punctuation, the newline) are damaged or missing: `(content, crc)`. A crash can cut a
/// record short but cannot leave a verified checksum in front of wrong bytes.
fn verified_content(line: &[u8]) -> Option<(&[u8], u32)> {
    (0..=1).find_map(|extra| {
        let end = line.len().checked_sub(extra)?;
        let at = end.checked_sub(CRC_TRAILER)?;
        let hex = std::str::from_utf8(line.get(end - 10..end - 2)?).ok()?;
        let crc = u32::from_str_radix(hex, 16).ok()?;
        let content = &line[..at];
        (crc_of(content) == crc).then_some((content, crc))
    })
}

/// The last record, damaged only after its verified checksum: it is what was written, so it
/// is kept (whether or not it was reported) and rewritten well-formed, its original bytes
/// set aside in `journal.torn-<offset>`. `None` if its checksum does not verify.
fn verified_last_record(
    dir: &Path,
    offset: u64,
    damage: &Damage,
) -> Result<Option<Record>, StoreError> {
    let path = dir.join(JOURNAL);
    let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
    let tail = bytes.get(offset as usize..).unwrap_or_default();
    let line = tail.strip_suffix(b"\n").unwrap_or(tail);
    let Some((content, crc)) = verified_content(line) else {
        return Ok(None);
    };
    let mut whole = content.to_vec();
    whole.extend_from_slice(format!(",\"crc\":\"{crc:08x}\"}}").as_bytes());
    let Ok(batch) = serde_json::from_slice::<JournalLineRef>(&whole) else {
        return Ok(None);
    };
    // Rewritten at `offset` with its content unchanged: its values stay where they are.
    let record = Record::of(batch, &whole, offset);
    let aside = free_name(&torn_path(dir, offset));
    write_atomic(&aside, tail, STATE_FILE_MODE)?;
    whole.push(b'\n');
    let mut f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io("opening", &path))?;
    f.set_len(offset).map_err(io("truncating", &path))?;
    f.seek(std::io::SeekFrom::Start(offset))
        .and_then(|_| f.write_all(&whole))
        .and_then(|()| f.sync_all())
        .map_err(io("repairing", &path))?;
    tracing::warn!(
        path = %path.display(), offset, original = %aside.display(),
        "the journal's last record had damaged final bytes ({damage}) but its checksum verifies: kept it, rewritten well-formed"
    );
    Ok(Some(record))
}

/// Keeps the bytes of a torn last record in `journal.torn-<offset>` and cuts them off the
/// journal. Nothing in them was ever reported: they were never fsynced.
fn move_torn_tail(dir: &Path, offset: u64, why: &str) -> Result<(), StoreError> {
    let path = dir.join(JOURNAL);
    let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
    let tail = bytes.get(offset as usize..).unwrap_or_default();
    let aside = free_name(&torn_path(dir, offset));
    write_atomic(&aside, tail, STATE_FILE_MODE)?;
    let f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io("opening", &path))?;
    f.set_len(offset).map_err(io("truncating", &path))?;
    f.sync_all().map_err(io("syncing", &path))?;
    sync_dir(dir)?;
    tracing::warn!(
        path = %path.display(), offset, bytes = tail.len(), moved_to = %aside.display(),
        "the journal's last record was torn by a crash ({why}); it was never reported, moved it aside"
    );
    Ok(())
}

/// What `recover` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The state loads as it is (a torn tail, if any, is handled at start).
    Clean,
    /// The journal was cut at `offset`: `kept` records stay, the damaged file is at `aside`.
    Cut {
        offset: u64,
        kept: usize,
        dropped: usize,
        aside: PathBuf,
    },
}

/// The explicit way out of a corrupt journal: moves the damaged journal aside (never
/// rewriting it) and writes a new one holding the good records before the first bad one.
/// Takes the lock: the daemon must not be running.
pub fn recover(dir: &Path) -> Result<Recovered, StoreError> {
    let _lock = lock(dir)?;
    if let Some(bytes) = read_snapshot(dir)? {
        parse_snapshot(dir, &bytes)?;
    }
    let path = dir.join(JOURNAL);
    let found = scan_journal(&path, None)?;
    let count = found.len();
    let torn_tail =
        |i: usize, f: &Found| i + 1 == count && f.result.as_ref().is_err_and(Damage::can_be_torn);
    let Some(bad) = found
        .iter()
        .enumerate()
        .position(|(i, f)| f.result.is_err() && !torn_tail(i, f))
    else {
        return Ok(Recovered::Clean);
    };
    let offset = found[bad].offset;
    let aside = free_name(&corrupt_path(dir, offset));
    let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
    let good = bytes.get(..offset as usize).unwrap_or_default();
    // A second name for the damaged file first (never replacing one), then the good prefix
    // renamed over the journal: at no instant is there no journal, whatever fails.
    std::fs::hard_link(&path, &aside).map_err(io("keeping a copy as", &aside))?;
    write_atomic(&path, good, STATE_FILE_MODE)?;
    Ok(Recovered::Cut {
        offset,
        kept: bad,
        dropped: count - bad,
        aside,
    })
}

struct Writer {
    dir: PathBuf,
    journal: File,
    /// The journal's length after the last good record: where the next one must begin.
    len: u64,
    /// Compact once the journal passes this (pushed out after a failed compaction).
    compact_at: u64,
    /// The `seq` of the snapshot on disk (0: none). There is no copy of the objects in
    /// memory: compaction folds the files themselves (see [`Writer::compact`]).
    snap_seq: u64,
    /// The last durable `seq`.
    seq: u64,
    compact_bytes: u64,
    /// Ops handed over but not yet durable, merged by key (the latest value wins).
    queued: BTreeMap<String, Option<Box<RawValue>>>,
    queued_seq: u64,
    faults: TestFaults,
    on_durable: Box<dyn Fn(Durability) + Send>,
}

/// Retrying a failed write: first after this, doubling up to `RETRY_MAX`.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        let mut retry = RETRY_MIN;
        loop {
            let first = if self.queued.is_empty() {
                match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => return,
                }
            } else {
                // A failed write is retried on its own, new batches or not.
                match rx.recv_timeout(retry) {
                    Ok(m) => Some(m),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        let _ = self.commit();
                        return;
                    }
                }
            };
            // Take everything queued: one record and one fsync for all of it.
            let mut waiters = Vec::new();
            for m in first.into_iter().chain(rx.try_iter()) {
                match m {
                    Msg::Batch(line) => {
                        self.queued_seq = line.seq;
                        self.queued
                            .extend(line.ops.into_iter().map(|op| (op.k, op.v)));
                    }
                    Msg::Sync(w) => waiters.push(w),
                }
            }
            let result = self.commit();
            match &result {
                Ok(()) => {
                    retry = RETRY_MIN;
                    (self.on_durable)(Durability::Durable(self.seq));
                    // After the report: nothing waits for a snapshot to be written.
                    self.maybe_compact();
                }
                Err(e) => {
                    tracing::error!(error = %e, "writing state failed; retrying");
                    retry = (retry * 2).min(RETRY_MAX);
                    (self.on_durable)(Durability::Failing(e.to_string()));
                }
            }
            let result = result.map_err(|e| e.to_string());
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }

    /// Writes everything queued as one record and fsyncs it.
    fn commit(&mut self) -> Result<(), StoreError> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(JOURNAL);
        let line = JournalLine {
            seq: self.queued_seq,
            ops: self
                .queued
                .iter()
                .map(|(k, v)| Op {
                    k: k.clone(),
                    v: v.clone(),
                })
                .collect(),
        };
        let mut record = encode(&line).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        record.push(b'\n');
        let good_len = self.len;
        // A failed write may have left bytes that could not be cut off then: cut them now, or
        // the next record would be glued to them.
        let on_disk = self.journal.metadata().map_err(io("reading", &path))?.len();
        if on_disk > good_len {
            self.journal
                .set_len(good_len)
                .map_err(io("cutting back", &path))?;
        } else if on_disk < good_len {
            // Shorter than what was written and fsynced: someone else cut it. Extending it
            // would put zeros before the next record; refuse, loudly.
            return Err(StoreError::Corrupt {
                path,
                message: format!(
                    "the journal is {on_disk} bytes, shorter than the {good_len} written and \
                     fsynced: it was cut by something else"
                ),
            });
        }
        let written = self.journal.write_all(&record).and_then(|()| {
            if !self.faults.fsync_delay.is_zero() {
                std::thread::sleep(self.faults.fsync_delay);
            }
            self.journal.sync_data()
        });
        if let Err(e) = written {
            // Cut a partly written record off again, so a later record never follows a torn
            // one; the ops stay queued and are retried.
            let _ = self.journal.set_len(good_len);
            return Err(io("appending to", &path)(e));
        }
        let len = good_len + record.len() as u64;
        self.len = len;
        self.note_synced(len);
        self.seq = self.queued_seq;
        self.queued.clear();
        Ok(())
    }

    /// Folds the journal into a snapshot once it is big enough. A failure is not a failed
    /// write (every record is durable already): it is logged, and tried again only after the
    /// journal has grown by another `compact_bytes`, so a full disk does not make every
    /// commit serialize the whole state.
    fn maybe_compact(&mut self) {
        if self.len <= self.compact_at {
            return;
        }
        match self.compact() {
            Ok(()) => self.compact_at = self.compact_bytes,
            Err(e) => {
                self.compact_at = self.len.saturating_add(self.compact_bytes);
                tracing::error!(error = %e, "folding the journal into a snapshot failed");
            }
        }
    }

    fn note_synced(&self, len: u64) {
        if self.faults.power_loss {
            // Renamed into place: a SIGKILL mid-write must not leave a torn number behind.
            // (No fsync: this mode simulates the power loss itself.)
            let tmp = self.dir.join(".journal.synced.tmp");
            let _ = std::fs::write(&tmp, len.to_string())
                .and_then(|()| std::fs::rename(&tmp, self.dir.join(SYNCED)));
        }
    }

    /// Folds the journal into a new snapshot, then empties the journal.
    ///
    /// It reads the files, not a copy in memory: the snapshot once (parsed in place), the
    /// journal's records as keys and byte ranges, each value read back when it is written
    /// out. Keeping every object's JSON in memory for this alone cost as much as the state
    /// on disk (52 MB with 10,000 finished Jobs).
    ///
    /// Nothing is laundered: the old snapshot's checksum and every record's are checked
    /// again, and damage fails the compaction (logged; the journal keeps growing and the
    /// next start reports the damage) instead of being rewritten under a fresh checksum.
    ///
    /// A crash at any instant leaves a state that loads as the same objects:
    /// - before the rename: the old snapshot and the whole journal are untouched (a leftover
    ///   temp file is never read);
    /// - after the rename, before the journal is truncated: the new snapshot holds every
    ///   journal record, and loading skips records at or below its `seq`;
    /// - after the truncation: the new snapshot alone.
    ///
    /// `compaction_interrupted_at_any_step_loads_the_same_objects` checks each of these.
    fn compact(&mut self) -> Result<(), StoreError> {
        let journal_path = self.dir.join(JOURNAL);
        let bytes = read_snapshot(&self.dir)?;
        let snapshot = match &bytes {
            Some(b) => Some(parse_snapshot(&self.dir, b)?),
            None => None,
        };
        let corrupt = |path: &Path, message: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        let snap_seq = snapshot.as_ref().map_or(0, |s| s.seq);
        if snap_seq != self.snap_seq {
            return Err(corrupt(
                &self.dir.join(SNAPSHOT),
                format!(
                    "its seq is {snap_seq}, not {} as written: it was replaced by something else",
                    self.snap_seq
                ),
            ));
        }
        // Only what was written and fsynced: bytes past `len` belong to no record.
        let mut index = JournalIndex::new();
        let mut seq = snap_seq;
        for f in scan_journal(&journal_path, Some(self.len))? {
            let record = f.result.map_err(|damage| {
                corrupt(
                    &journal_path,
                    format!("record at byte offset {}: {damage}", f.offset),
                )
            })?;
            seq = fold(&mut index, record, snap_seq, seq);
        }
        if seq != self.seq {
            return Err(corrupt(
                &journal_path,
                format!("its last record is seq {seq}, not {} as written", self.seq),
            ));
        }
        let empty = BTreeMap::new();
        let objects = snapshot.as_ref().map_or(&empty, |s| &s.objects);
        write_atomic_with(&self.dir.join(SNAPSHOT), STATE_FILE_MODE, |file| {
            let mut out = Checksummed::new(file);
            write!(
                out,
                "{{\"version\":{FORMAT_VERSION},\"seq\":{seq},\"objects\":{{"
            )
            .map_err(io("writing", &self.dir))?;
            let mut first = true;
            merge(objects, &index, &journal_path, |k, v| {
                let sep: &[u8] = if first { b"" } else { b"," };
                first = false;
                out.write_all(sep)
                    .and_then(|()| serde_json::to_writer(&mut out, k).map_err(Into::into))
                    .and_then(|()| out.write_all(b":"))
                    .and_then(|()| out.write_all(v.get().as_bytes()))
                    .map_err(io("writing", &self.dir))
            })?;
            out.write_all(b"}")
                .and_then(|()| out.finish())
                .map_err(io("writing", &self.dir))
        })?;
        drop(snapshot);
        drop(bytes);
        self.snap_seq = seq;
        self.journal
            .set_len(0)
            .map_err(io("truncating", &journal_path))?;
        // Its records are in the snapshot now, whatever the fsync below does.
        self.len = 0;
        self.journal
            .sync_all()
            .map_err(io("syncing", &journal_path))?;
        self.note_synced(0);
        Ok(())
    }
}

/// Writes a record through a buffer while computing its checksum, then appends the
/// `"crc"` trailer: the same bytes [`encode`] makes, without the record in memory.
struct Checksummed<'f> {
    out: BufWriter<&'f mut File>,
    crc: crc32fast::Hasher,
}

impl<'f> Checksummed<'f> {
    fn new(file: &'f mut File) -> Checksummed<'f> {
        Checksummed {
            out: BufWriter::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
        }
    }

    /// What was written is the record without its closing `}`: adds the trailer, flushes.
    fn finish(mut self) -> std::io::Result<()> {
        self.crc.update(b"}");
        let crc = self.crc.finalize();
        write!(self.out, ",\"crc\":\"{crc:08x}\"}}")?;
        self.out.flush()
    }
}

impl Write for Checksummed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Write temp, fsync, rename over, fsync the directory: readers see the old or the new file.
/// The temp file has an unpredictable name and is opened `O_CREAT|O_EXCL|O_NOFOLLOW`, so a
/// file or symlink planted in the directory can never redirect the write.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    write_atomic_with(path, mode, |f| {
        f.write_all(bytes).map_err(io("writing", path))
    })
}

/// [`write_atomic`] with the content written by `fill`.
fn write_atomic_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut f) = create_temp(dir, &name, mode)?;
    let written = fill(&mut f).and_then(|()| f.sync_all().map_err(io("syncing", &tmp)));
    drop(f);
    let renamed =
        written.and_then(|()| std::fs::rename(&tmp, path).map_err(io("renaming into", path)));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Why [`write_atomic_guarded`] wrote nothing.
#[derive(Debug)]
pub enum GuardedWriteError {
    /// Something is at the path that may not be replaced: a file its check refused, or no
    /// regular file at all (a symlink, a FIFO…).
    Refused,
    Failed(StoreError),
}

/// [`write_atomic`] that never replaces a file `may_replace` refuses (given its bytes). A free
/// name is taken with a hard link of the temp file, which fails if anything is there, so a
/// file made meanwhile is never overwritten; an existing regular file is read (without
/// following a symlink) and replaced only if `may_replace` accepts what it holds right then.
/// A writer slipping in between that read and the rename is not excluded: the read is as
/// late as it can be.
pub fn write_atomic_guarded(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    may_replace: impl Fn(&[u8]) -> bool,
) -> Result<(), GuardedWriteError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut f) = create_temp(dir, &name, mode).map_err(GuardedWriteError::Failed)?;
    let written = f
        .write_all(bytes)
        .map_err(io("writing", &tmp))
        .and_then(|()| f.sync_all().map_err(io("syncing", &tmp)));
    drop(f);
    let placed = written
        .map_err(GuardedWriteError::Failed)
        .and_then(|()| place_guarded(&tmp, path, &may_replace));
    // Linked or refused, the temp name goes; renamed, it is gone already.
    let _ = std::fs::remove_file(&tmp);
    placed?;
    sync_dir(dir).map_err(GuardedWriteError::Failed)
}

fn place_guarded(
    tmp: &Path,
    path: &Path,
    may_replace: &dyn Fn(&[u8]) -> bool,
) -> Result<(), GuardedWriteError> {
    use GuardedWriteError::{Failed, Refused};
    // A file removed between the failed link and the read frees the name: try once more.
    for _ in 0..2 {
        match std::fs::hard_link(tmp, path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Failed(io("linking into", path)(e))),
        }
        match read_regular_file(path) {
            Ok(Some(existing)) if may_replace(&existing) => {
                return std::fs::rename(tmp, path)
                    .map_err(|e| Failed(io("renaming into", path)(e)));
            }
            Ok(_) => return Err(Refused),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // ELOOP: a symlink is there.
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => return Err(Refused),
            Err(e) => return Err(Failed(io("reading", path)(e))),
        }
    }
    Err(Refused)
}

/// The bytes of a regular file, never through a symlink and never blocking on a FIFO;
/// `None` for anything else.
fn read_regular_file(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Removes a file and syncs its directory, so the removal outlives a crash; a file already
/// gone is fine.
pub fn remove_durably(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("removing", path)(e)),
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing", dir))
}

/// `.NAME.<random>.tmp` beside the target, created exclusively, never through a symlink.
fn create_temp(dir: &Path, name: &str, mode: u32) -> Result<(PathBuf, File), StoreError> {
    let mut last = None;
    for _ in 0..8 {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", unpredictable()));
        match open_exclusive(&tmp, mode) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(e) => return Err(io("creating", &tmp)(e)),
        }
    }
    let (tmp, e) = last.unwrap_or_else(|| (dir.to_path_buf(), std::io::Error::other("no name")));
    Err(io("creating", &tmp)(e))
}

/// `O_CREAT|O_EXCL|O_NOFOLLOW`: a new file, or an error; never an existing file or symlink.
fn open_exclusive(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(mode)
        .open(path)
}

/// 64 random bits from std's per-process random hash keys: no crate for a temp-file name.
fn unpredictable() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    fn keys(o: &Objects) -> Vec<(String, String)> {
        o.iter()
            .map(|(k, v)| (k.clone(), v.get().to_string()))
            .collect()
    }

    #[test]
    fn batches_survive_reopen_and_deletes_apply() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
            assert!(objs.is_empty());
            s.touch("jobs/a");
            s.touch("pods/b");
            s.flush(|k| Some(raw(&format!("{{\"k\":\"{k}\"}}"))))
                .unwrap();
            s.touch("pods/b");
            s.flush(|_| None).unwrap();
            s.sync().unwrap();
        }
        let (_s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
        assert_eq!(
            keys(&objs),
            vec![("jobs/a".into(), "{\"k\":\"jobs/a\"}".into())]
        );
    }

    /// Opens, writes `n` batches of one key each (`k0`..), waits for the disk, closes.
    fn write_batches(dir: &Path, n: usize) {
        let (mut s, _) = Store::open(dir, StoreOptions::new(1 << 20)).unwrap();
        for i in 0..n {
            s.touch(format!("k{i}"));
            s.flush(|_| Some(raw(&i.to_string()))).unwrap();
            s.sync().unwrap();
        }
    }

    fn journal_lines(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(JOURNAL))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn set_journal_lines(dir: &Path, lines: &[String], newline_at_end: bool) {
        let mut text = lines.join("\n");
        if newline_at_end {
            text.push('\n');
        }
        std::fs::write(dir.join(JOURNAL), text).unwrap();
    }

    #[test]
    fn records_carry_a_checksum_and_stay_plain_json() {
        let dir = tempfile::tempdir().unwrap();
        write_batches(dir.path(), 2);
        for line in journal_lines(dir.path()) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let crc = v["crc"].as_str().unwrap();
            assert_eq!(crc.len(), 8, "{line}");
            let at = line.len() - CRC_TRAILER;
            assert_eq!(format!("{:08x}", crc_of(&line.as_bytes()[..at])), crc);
        }
    }

    #[test]
    fn torn_tail_is_moved_aside_never_half_applied() {
        let dir = tempfile::tempdir().unwrap();
        write_batches(dir.path(), 1);
        let good_len = std::fs::metadata(dir.path().join(JOURNAL)).unwrap().len();
        let torn = b"{\"seq\":2,\"ops\":[{\"k\":\"a\",\"v\":2},{\"k\":\"b\"";
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL))
            .unwrap();
        f.write_all(torn).unwrap();
        drop(f);
        let (mut s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
        assert_eq!(keys(&objs), vec![("k0".into(), "0".into())]);
        let aside = dir.path().join(format!("journal.torn-{good_len}"));
        assert_eq!(
            std::fs::read(&aside).unwrap(),
            torn,
            "the torn bytes are kept"
        );
        s.touch("c");
        s.flush(|_| Some(raw("3"))).unwrap();
        s.sync().unwrap();
        drop(s);
        let (_s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
        assert_eq!(
            keys(&objs),
            vec![("c".into(), "3".into()), ("k0".into(), "0".into())]
        );
    }

    #[test]
    fn a_last_record_cut_short_or_unreadable_is_a_torn_tail() {
        for tail in ["cut", "zeros"] {
            let dir = tempfile::tempdir().unwrap();
            write_batches(dir.path(), 3);
            let mut lines = journal_lines(dir.path());
            // What a power loss can leave of the last write: part of it, or unwritten blocks.
            lines[2] = match tail {
                "cut" => lines[2][..lines[2].len() / 2].to_string(),
                _ => "\0".repeat(lines[2].len()),
            };
            set_journal_lines(dir.path(), &lines, tail == "zeros");
            let (_s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
            assert_eq!(
                keys(&objs).len(),
                2,
                "{tail}: the torn record is not applied"
            );
            assert!(
                std::fs::read_dir(dir.path()).unwrap().any(|e| e
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("journal.torn-")),
                "{tail}"
            );
        }
    }

    /// A whole last record (newline, trailer, no zero bytes) whose checksum fails was changed
    /// after it was written (it may have been reported): corruption, not a torn tail.
    #[test]
    fn a_whole_last_record_failing_its_checksum_is_corruption() {
        // A changed value, and a changed structural byte that makes it unparseable.
        for (from, to) in [("\"v\":2", "\"v\":7"), ("\"ops\":", "\"ops\";")] {
            let dir = tempfile::tempdir().unwrap();
            write_batches(dir.path(), 3);
            let mut lines = journal_lines(dir.path());
            lines[2] = lines[2].replace(from, to);
            set_journal_lines(dir.path(), &lines, true);
            let err = Store::open(dir.path(), StoreOptions::new(1 << 20))
                .err()
                .unwrap_or_else(|| panic!("{to}: loaded a damaged record"));
            let msg = err.to_string();
            assert!(msg.contains("checksum mismatch"), "{msg}");
            assert!(msg.contains("damaged after it was written"), "{msg}");
            let cut = recover(dir.path()).unwrap();
            assert!(matches!(cut, Recovered::Cut { kept: 2, .. }), "{cut:?}");
        }
    }

    /// Damage after a verified checksum (the trailer's punctuation, the newline) cannot come
    /// from a crash, and the record is known good: it is kept, rewritten well-formed, and its
    /// original bytes set aside. A record cut before its checksum ends is torn.
    #[test]
    fn a_last_record_whose_checksum_verifies_is_kept_whatever_follows_it() {
        type Spoil = fn(&mut Vec<u8>);
        let damages: [(&str, Spoil); 5] = [
            ("closing brace", |b| {
                let n = b.len();
                b[n - 2] = b'|';
            }),
            ("newline replaced", |b| {
                let n = b.len();
                b[n - 1] = b'x';
            }),
            ("newline missing", |b| {
                b.pop();
            }),
            ("crc key", |b| {
                let n = b.len();
                b[n - 17] ^= 1;
            }),
            ("quote", |b| {
                let n = b.len();
                b[n - 3] = b'\'';
            }),
        ];
        for (what, damage) in damages {
            let dir = tempfile::tempdir().unwrap();
            write_batches(dir.path(), 3);
            let path = dir.path().join(JOURNAL);
            let mut bytes = std::fs::read(&path).unwrap();
            damage(&mut bytes);
            std::fs::write(&path, &bytes).unwrap();
            let (s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
            assert_eq!(keys(&objs).len(), 3, "{what}: the verified record is kept");
            drop(s);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.ends_with("\"}\n"),
                "{what}: rewritten well-formed: {text}"
            );
            let (_s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
            assert_eq!(keys(&objs).len(), 3, "{what}");
        }
        // Cut before its checksum ends: torn, not kept.
        let dir = tempfile::tempdir().unwrap();
        write_batches(dir.path(), 3);
        let path = dir.path().join(JOURNAL);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let (_s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
        assert_eq!(keys(&objs).len(), 2);
    }

    /// A journal cut shorter under the writer is never padded back with zeros (which would
    /// glue the next record to them): the write fails, loudly.
    #[test]
    fn a_journal_cut_under_the_writer_is_never_extended() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let mut opts = StoreOptions::new(1 << 20);
        opts.on_durable = Box::new(move |d| {
            let _ = tx.send(d);
        });
        let (mut s, _) = Store::open(dir.path(), opts).unwrap();
        s.touch("a");
        s.flush(|_| Some(raw("1"))).unwrap();
        s.sync().unwrap();
        OpenOptions::new()
            .write(true)
            .open(dir.path().join(JOURNAL))
            .unwrap()
            .set_len(0)
            .unwrap();
        s.touch("b");
        s.flush(|_| Some(raw("2"))).unwrap();
        assert!(s.sync().is_err());
        let failing = rx
            .try_iter()
            .any(|d| matches!(d, Durability::Failing(why) if why.contains("shorter")));
        assert!(failing);
        assert_eq!(std::fs::read(dir.path().join(JOURNAL)).unwrap(), b"");
    }

    #[test]
    fn corruption_before_the_last_record_stops_loading_and_changes_nothing() {
        for damage in ["garble", "checksum", "rename-field"] {
            let dir = tempfile::tempdir().unwrap();
            write_batches(dir.path(), 19);
            let mut lines = journal_lines(dir.path());
            lines[9] = match damage {
                "garble" => lines[9].replace("\"ops\"", "\"o#s\""),
                "checksum" => lines[9].replace("\"v\":9", "\"v\":8"),
                _ => lines[9].replace("\"crc\"", "\"crd\""),
            };
            set_journal_lines(dir.path(), &lines, true);
            let before = std::fs::read(dir.path().join(JOURNAL)).unwrap();
            let offset: usize = lines[..9].iter().map(|l| l.len() + 1).sum();
            let err = Store::open(dir.path(), StoreOptions::new(1 << 20))
                .err()
                .unwrap_or_else(|| panic!("{damage}: loaded a corrupt journal"));
            let msg = err.to_string();
            assert!(
                matches!(err, StoreError::CorruptRecord { offset: o, good: 9, later: 9, .. } if o == offset as u64),
                "{damage}: {msg}"
            );
            assert!(msg.contains(&format!("offset {offset}")), "{msg}");
            assert!(msg.contains("jobvisor recover-state"), "{msg}");
            assert_eq!(
                std::fs::read(dir.path().join(JOURNAL)).unwrap(),
                before,
                "{damage}: the evidence is never rewritten"
            );
            // The explicit way out keeps the good prefix and moves the file aside whole.
            let r = recover(dir.path()).unwrap();
            let aside = dir.path().join(format!("journal.corrupt-{offset}"));
            assert_eq!(
                r,
                Recovered::Cut {
                    offset: offset as u64,
                    kept: 9,
                    dropped: 10,
                    aside: aside.clone()
                }
            );
            assert_eq!(std::fs::read(&aside).unwrap(), before);
            let (s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
            assert_eq!(objs.len(), 9, "{damage}");
            drop(s);
            assert_eq!(recover(dir.path()).unwrap(), Recovered::Clean);
        }
    }

    #[test]
    fn records_without_checksums_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let lines = vec![
            "{\"seq\":1,\"ops\":[{\"k\":\"a\",\"v\":1}]}".to_string(),
            "{\"seq\":2,\"ops\":[{\"k\":\"b\",\"v\":2}]}".to_string(),
        ];
        set_journal_lines(dir.path(), &lines, true);
        let (_s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
        assert_eq!(keys(&objs).len(), 2);
    }

    #[test]
    fn state_is_private_even_when_an_older_release_made_it_public() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        write_batches(&dir, 40);
        {
            let mut opts = StoreOptions::new(64);
            opts.compact_bytes = 64;
            let (mut s, _) = Store::open(&dir, opts).unwrap();
            s.touch("x");
            s.flush(|_| Some(raw("1"))).unwrap();
            s.sync().unwrap();
        }
        assert_eq!(mode(&dir), 0o700);
        for f in [JOURNAL, SNAPSHOT, LOCK] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join(JOURNAL), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        drop(Store::open(&dir, StoreOptions::new(1 << 20)).unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(JOURNAL)), 0o600);
    }

    #[test]
    fn atomic_write_never_follows_a_planted_file_or_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // Where the previous release put its temp file, and whatever else one may guess.
        for planted in [".t2.yaml.tmp", ".t2.yaml.0000000000000000.tmp"] {
            std::os::unix::fs::symlink(&victim, dir.path().join(planted)).unwrap();
        }
        let target = dir.path().join("t2.yaml");
        write_atomic(&target, b"new", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // And the open itself refuses an existing name, symlink or not.
        let err = open_exclusive(&dir.path().join(".t2.yaml.tmp"), 0o600).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && !n.starts_with(".t2.yaml.0") && n != ".t2.yaml.tmp")
            .collect();
        assert!(names.is_empty(), "no temp file is left behind: {names:?}");
    }

    /// Apply's write: a free name is taken, a file the check accepts is replaced, and
    /// anything else (a file the check refuses, a symlink, a FIFO) is left as it was, with
    /// no temp file behind.
    #[test]
    fn guarded_write_replaces_only_what_its_check_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let ours = |b: &[u8]| b.starts_with(b"# ours");
        let files = |dir: &Path| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let new = dir.path().join("new.yaml");
        write_atomic_guarded(&new, b"# ours 1", 0o644, ours).unwrap();
        assert_eq!(std::fs::read_to_string(&new).unwrap(), "# ours 1");
        write_atomic_guarded(&new, b"# ours 2", 0o644, ours).unwrap();
        assert_eq!(std::fs::read_to_string(&new).unwrap(), "# ours 2");

        let theirs = dir.path().join("theirs.yaml");
        std::fs::write(&theirs, "kind: Job\n").unwrap();
        let err = write_atomic_guarded(&theirs, b"# ours", 0o644, ours).unwrap_err();
        assert!(matches!(err, GuardedWriteError::Refused), "{err:?}");
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "kind: Job\n");

        let victim = dir.path().join("victim");
        std::fs::write(&victim, "# ours, but behind a symlink").unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = write_atomic_guarded(&link, b"# ours", 0o644, ours).unwrap_err();
        assert!(matches!(err, GuardedWriteError::Refused), "{err:?}");
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "# ours, but behind a symlink"
        );

        let fifo = dir.path().join("fifo.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = write_atomic_guarded(&fifo, b"# ours", 0o644, ours).unwrap_err();
        assert!(matches!(err, GuardedWriteError::Refused), "{err:?}");

        assert_eq!(
            files(dir.path()),
            [
                "fifo.yaml",
                "link.yaml",
                "new.yaml",
                "theirs.yaml",
                "victim"
            ],
            "no temp file is left behind"
        );
        remove_durably(&new).unwrap();
        remove_durably(&new).unwrap();
        assert!(!new.exists());
    }

    #[test]
    fn group_commit_writes_one_record_per_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let mut opts = StoreOptions::new(1 << 20);
        // Slow fsyncs: batches handed over meanwhile must share the next record.
        opts.faults.fsync_delay = Duration::from_millis(30);
        opts.on_durable = Box::new(move |d| {
            let _ = tx.send(d);
        });
        let (mut s, _) = Store::open(dir.path(), opts).unwrap();
        for i in 0..10 {
            s.touch(format!("k{i}"));
            s.flush(|_| Some(raw(&i.to_string()))).unwrap();
        }
        s.sync().unwrap();
        let reports: Vec<Durability> = rx.try_iter().collect();
        assert_eq!(reports.last(), Some(&Durability::Durable(10)));
        let lines = journal_lines(dir.path());
        assert!(lines.len() < 10, "{} records for 10 batches", lines.len());
        assert_eq!(lines.len(), reports.len(), "one record per reported commit");
        drop(s);
        let (_s, objs) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
        assert_eq!(objs.len(), 10);
    }

    #[test]
    fn power_loss_mode_drops_what_no_fsync_covered() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = StoreOptions::new(1 << 20);
        opts.faults.power_loss = true;
        {
            let (mut s, _) = Store::open(dir.path(), opts).unwrap();
            s.touch("a");
            s.flush(|_| Some(raw("1"))).unwrap();
            s.sync().unwrap();
        }
        let synced: u64 = std::fs::read_to_string(dir.path().join(SYNCED))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            synced,
            std::fs::metadata(dir.path().join(JOURNAL)).unwrap().len()
        );
        // Bytes written after the last fsync, as if the writer had been cut off.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL))
            .unwrap();
        f.write_all(b"{\"seq\":2,\"ops\":[{\"k\":\"b\",\"v\":2}]}\n")
            .unwrap();
        drop(f);
        let mut opts = StoreOptions::new(1 << 20);
        opts.faults.power_loss = true;
        let (_s, objs) = Store::open(dir.path(), opts).unwrap();
        assert_eq!(keys(&objs), vec![("a".into(), "1".into())]);
    }

    /// A full disk: writes fail, are reported, retried, and succeed once there is room.
    /// Needs root for a small tmpfs; skipped (and says so) otherwise.
    #[test]
    fn failed_writes_are_reported_and_retried_until_they_succeed() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root to mount a small tmpfs");
            return;
        }
        let mnt = tempfile::tempdir().unwrap();
        let status = crate::runtime::testing::command_status(
            std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
                .arg(mnt.path()),
        )
        .unwrap();
        assert!(status.success());
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                // By system call and detached: umount(8)'s exit status can be reaped by
                // another test's runtime, and a file still open would keep a plain unmount
                // busy; each run left its 64k tmpfs mounted under /tmp.
                let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _unmount = Unmount(mnt.path().to_path_buf());
        let dir = mnt.path().join("state");
        let (tx, rx) = mpsc::channel();
        let mut opts = StoreOptions::new(1 << 30);
        opts.on_durable = Box::new(move |d| {
            let _ = tx.send(d);
        });
        let (mut s, _) = Store::open(&dir, opts).unwrap();
        let filler = mnt.path().join("filler");
        let _ = std::fs::write(&filler, vec![0u8; 64 << 10]);
        s.touch("a");
        let big = format!("\"{}\"", "x".repeat(8 << 10));
        s.flush(|_| Some(raw(&big))).unwrap();
        let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            matches!(&first, Durability::Failing(why) if why.contains("No space left")),
            "{first:?}"
        );
        std::fs::remove_file(&filler).unwrap();
        // Retried on its own: no new batch needed.
        let recovered = (0..100)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .find(|d| matches!(d, Durability::Durable(_)));
        assert_eq!(recovered, Some(Durability::Durable(1)));
        drop(s);
        let (_s, objs) = Store::open(&dir, StoreOptions::new(1 << 30)).unwrap();
        assert_eq!(objs.len(), 1);
    }

    /// Writes `ops` (key, value or deletion) as one batch each and waits for the disk.
    fn apply_ops(s: &mut Store, ops: &[(&str, Option<&str>)]) {
        for (k, v) in ops {
            s.touch(*k);
            s.flush(|_| v.map(raw)).unwrap();
        }
        s.sync().unwrap();
    }

    fn copy_dir(from: &Path) -> tempfile::TempDir {
        let to = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
        }
        to
    }

    fn loaded(dir: &Path) -> Vec<(String, String)> {
        keys(&Store::open(dir, StoreOptions::new(1 << 30)).unwrap().1)
    }

    /// A snapshot and a journal that updates, deletes and adds keys, some needing escapes.
    fn snapshot_and_journal(dir: &Path) {
        {
            let (mut s, _) = Store::open(dir, StoreOptions::new(1)).unwrap();
            apply_ops(
                &mut s,
                &[
                    ("a", Some("1")),
                    ("b\"q", Some("{\"x\":\"\\u00e9\"}")),
                    ("c", Some("3")),
                ],
            );
        }
        assert!(dir.join(SNAPSHOT).exists());
        let (mut s, _) = Store::open(dir, StoreOptions::new(1 << 30)).unwrap();
        apply_ops(
            &mut s,
            &[
                ("a", Some("[1,2]")),
                ("c", None),
                ("ü/new", Some("\"é\"")),
                ("never", None),
                ("0first", Some("0")),
            ],
        );
    }

    /// Compaction folds the files on disk, not a copy in memory: what loads after it is what
    /// loaded before, keys with escapes and deletions included.
    #[test]
    fn compaction_from_the_files_keeps_every_object() {
        let dir = tempfile::tempdir().unwrap();
        snapshot_and_journal(dir.path());
        let want = loaded(dir.path());
        assert_eq!(
            want,
            [
                ("0first", "0"),
                ("a", "[1,2]"),
                ("b\"q", "{\"x\":\"\\u00e9\"}"),
                ("ü/new", "\"é\""),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let (mut s, _) = Store::open(dir.path(), StoreOptions::new(1)).unwrap();
        apply_ops(&mut s, &[("a", Some("[1,2]"))]);
        drop(s);
        assert_eq!(
            std::fs::metadata(dir.path().join(JOURNAL)).unwrap().len(),
            0
        );
        assert_eq!(loaded(dir.path()), want);
        // Still plain JSON with a checksum, as `encode` writes it.
        let text = std::fs::read_to_string(dir.path().join(SNAPSHOT)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["objects"]["ü/new"], "é");
        let at = text.len() - CRC_TRAILER;
        assert_eq!(
            format!("{:08x}", crc_of(&text.as_bytes()[..at])),
            v["crc"].as_str().unwrap()
        );
    }

    /// Each instant a compaction can be interrupted at leaves a state that loads as the same
    /// objects: (1) the new snapshot half written to its temp file, (2) renamed into place but
    /// the journal not yet truncated, (3) done.
    #[test]
    fn compaction_interrupted_at_any_step_loads_the_same_objects() {
        let base = tempfile::tempdir().unwrap();
        snapshot_and_journal(base.path());
        let want = loaded(base.path());
        // The same batch with compaction off (its journal is the compaction's input) and on.
        let batch = [("b\"q", Some("{\"x\":\"\\u00e9\"}"))];
        let before = copy_dir(base.path());
        let (mut s, _) = Store::open(before.path(), StoreOptions::new(1 << 30)).unwrap();
        apply_ops(&mut s, &batch);
        drop(s);
        let after = copy_dir(base.path());
        let (mut s, _) = Store::open(after.path(), StoreOptions::new(1)).unwrap();
        apply_ops(&mut s, &batch);
        drop(s);
        let new_snapshot = std::fs::read(after.path().join(SNAPSHOT)).unwrap();
        assert_ne!(
            new_snapshot,
            std::fs::read(before.path().join(SNAPSHOT)).unwrap()
        );

        // (1) Killed while writing the temp file: the old files are untouched.
        let one = copy_dir(before.path());
        let tmp = one.path().join(".snapshot.json.0123456789abcdef.tmp");
        std::fs::write(&tmp, &new_snapshot[..new_snapshot.len() / 2]).unwrap();
        assert_eq!(loaded(one.path()), want, "temp file written, not renamed");
        // (2) Killed after the rename, before the truncation: old records are skipped.
        let two = copy_dir(before.path());
        std::fs::write(two.path().join(SNAPSHOT), &new_snapshot).unwrap();
        assert_eq!(loaded(two.path()), want, "renamed, journal not truncated");
        // ... and the next commit and compaction go on from there.
        let (mut s, _) = Store::open(two.path(), StoreOptions::new(1)).unwrap();
        apply_ops(&mut s, &[("late", Some("9"))]);
        drop(s);
        let mut more = want.clone();
        more.push(("late".into(), "9".into()));
        more.sort();
        assert_eq!(loaded(two.path()), more);
        // (3) Done.
        assert_eq!(loaded(after.path()), want, "compacted");
    }

    /// Compaction reads the files back, so it checks them again: a snapshot or a record
    /// damaged on disk after it was written fails the compaction (the journal is kept) rather
    /// than being rewritten under a fresh checksum, and the next start reports it.
    #[test]
    fn compaction_never_launders_damage() {
        // The snapshot damaged while the daemon runs.
        let dir = tempfile::tempdir().unwrap();
        snapshot_and_journal(dir.path());
        let (mut s, _) = Store::open(dir.path(), StoreOptions::new(1)).unwrap();
        let snap = dir.path().join(SNAPSHOT);
        let text = std::fs::read_to_string(&snap).unwrap();
        std::fs::write(&snap, text.replace("\"c\":3", "\"c\":4")).unwrap();
        apply_ops(&mut s, &[("x", Some("1"))]);
        drop(s);
        assert!(std::fs::metadata(dir.path().join(JOURNAL)).unwrap().len() > 0);
        let err = Store::open(dir.path(), StoreOptions::new(1 << 30))
            .err()
            .unwrap();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");

        // A journal record damaged while the daemon runs.
        let dir = tempfile::tempdir().unwrap();
        write_batches(dir.path(), 2);
        let two = std::fs::metadata(dir.path().join(JOURNAL)).unwrap().len();
        let (mut s, _) = Store::open(dir.path(), StoreOptions::new(two)).unwrap();
        let mut lines = journal_lines(dir.path());
        lines[0] = lines[0].replace("\"v\":0", "\"v\":5");
        set_journal_lines(dir.path(), &lines, true);
        apply_ops(&mut s, &[("k2", Some("2"))]);
        drop(s);
        assert!(
            !dir.path().join(SNAPSHOT).exists(),
            "no snapshot from damage"
        );
        assert_eq!(journal_lines(dir.path()).len(), 3, "the journal is kept");
        let err = Store::open(dir.path(), StoreOptions::new(1 << 30))
            .err()
            .unwrap();
        assert!(
            matches!(err, StoreError::CorruptRecord { offset: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn compaction_keeps_everything_and_skips_old_lines() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Store::open(dir.path(), StoreOptions::new(64)).unwrap();
            for i in 0..20 {
                s.touch(format!("k{}", i % 5));
                s.flush(|_| Some(raw(&i.to_string()))).unwrap();
            }
            s.sync().unwrap();
        }
        assert!(dir.path().join(SNAPSHOT).exists());
        // Simulate a crash between snapshot rename and journal truncation: old lines remain.
        let stale = "{\"seq\":1,\"ops\":[{\"k\":\"k0\",\"v\":999}]}\n";
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL))
            .unwrap();
        f.write_all(stale.as_bytes()).unwrap();
        drop(f);
        let (_s, objs) = Store::open(dir.path(), StoreOptions::new(64)).unwrap();
        let want: Vec<(String, String)> = (15..20)
            .map(|i| (format!("k{}", i % 5), i.to_string()))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        assert_eq!(keys(&objs), want);
    }

    #[test]
    fn second_daemon_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let (_s, _) = Store::open(dir.path(), StoreOptions::new(1 << 20)).unwrap();
        assert!(matches!(
            Store::open(dir.path(), StoreOptions::new(1 << 20)),
            Err(StoreError::Locked(_))
        ));
    }
}
