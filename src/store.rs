//! The store: every object's latest JSON, crash-safe on disk, written in batches.
//!
//! On disk, under the state directory:
//! - `snapshot.json`: `{"version":1,"seq":N,"objects":{key: object}}`, replaced atomically
//!   (write temp, fsync, rename, fsync the directory);
//! - `journal.jsonl`: one line per batch, `{"seq":N,"ops":[{"k":key,"v":object|null}]}`,
//!   appended and fsynced once per batch by a writer thread.
//!
//! A batch is one line, so it is all-or-nothing: a `kill -9` mid-write leaves a torn last
//! line, which loading drops (and truncates away). That also makes the Job controller's
//! "count the pod, release its finalizer, write the status" atomic. Lines at or below the
//! snapshot's `seq` are skipped, so a crash between snapshot and journal truncation is safe.
//! The caller marks keys dirty as it changes objects and calls `flush` at most every
//! `store.flushInterval`: no fsync per object, and the event loop never waits on the disk.
//! Both files stay readable with `jq`. A lock file keeps a second daemon off the same state.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

const SNAPSHOT: &str = "snapshot.json";
const JOURNAL: &str = "journal.jsonl";
const LOCK: &str = "lock";
const FORMAT_VERSION: u32 = 1;

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
    #[error("state directory {0} is in use by another jobvisor daemon")]
    Locked(PathBuf),
    #[error("the store's writer thread has stopped")]
    WriterGone,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    seq: u64,
    objects: BTreeMap<String, Box<RawValue>>,
}

#[derive(Serialize, Deserialize)]
struct JournalLine {
    seq: u64,
    ops: Vec<Op>,
}

#[derive(Serialize, Deserialize)]
struct Op {
    k: String,
    v: Option<Box<RawValue>>,
}

enum Msg {
    Batch(JournalLine),
    Sync(std::sync::mpsc::Sender<Result<(), String>>),
}

pub struct Store {
    dir: PathBuf,
    dirty: BTreeSet<String>,
    seq: u64,
    tx: mpsc::Sender<Msg>,
    writer: Option<std::thread::JoinHandle<()>>,
    _lock: nix::fcntl::Flock<File>,
}

/// What was on disk at start: key → object JSON.
pub type Objects = BTreeMap<String, Box<RawValue>>;

impl Store {
    /// Opens (creating if needed) the state directory and loads every object.
    pub fn open(dir: &Path, compact_bytes: u64) -> Result<(Store, Objects), StoreError> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let lock = lock(dir)?;
        let (objects, seq) = load(dir)?;
        let journal_path = dir.join(JOURNAL);
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(io("opening", &journal_path))?;
        let (tx, rx) = mpsc::channel();
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            journal,
            objects: objects
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            seq,
            compact_bytes,
            unwritten: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io("starting writer for", dir))?;
        let store = Store {
            dir: dir.to_path_buf(),
            dirty: BTreeSet::new(),
            seq,
            tx,
            writer: Some(handle),
            _lock: lock,
        };
        Ok((store, objects))
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

    /// Hands every dirty key's current JSON (`None`: deleted) to the writer as one batch.
    pub fn flush(
        &mut self,
        mut current: impl FnMut(&str) -> Option<Box<RawValue>>,
    ) -> Result<(), StoreError> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        self.seq += 1;
        let ops = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|k| {
                let v = current(&k);
                Op { k, v }
            })
            .collect();
        self.tx
            .send(Msg::Batch(JournalLine { seq: self.seq, ops }))
            .map_err(|_| StoreError::WriterGone)
    }

    /// Waits until everything handed over so far is on disk.
    pub fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Msg::Sync(tx))
            .map_err(|_| StoreError::WriterGone)?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Corrupt {
                path: self.dir.clone(),
                message,
            }),
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

fn lock(dir: &Path) -> Result<nix::fcntl::Flock<File>, StoreError> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
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
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(StoreError::Locked(dir.to_path_buf()))
}

/// 50 ms apart: up to 3 s for a dying daemon's children to let go of the lock.
const LOCK_ATTEMPTS: u32 = 60;

/// Snapshot, then journal lines newer than it; a torn tail is cut off.
fn load(dir: &Path) -> Result<(Objects, u64), StoreError> {
    let snap_path = dir.join(SNAPSHOT);
    let (mut objects, snap_seq) = match std::fs::read(&snap_path) {
        Ok(bytes) => {
            let snap: Snapshot =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: snap_path.clone(),
                    message: e.to_string(),
                })?;
            if snap.version != FORMAT_VERSION {
                return Err(StoreError::Corrupt {
                    path: snap_path,
                    message: format!(
                        "format version {} (this jobvisor reads {FORMAT_VERSION})",
                        snap.version
                    ),
                });
            }
            (snap.objects, snap.seq)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (BTreeMap::new(), 0),
        Err(e) => return Err(io("reading", &snap_path)(e)),
    };
    let journal_path = dir.join(JOURNAL);
    let file = match File::open(&journal_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((objects, snap_seq)),
        Err(e) => return Err(io("opening", &journal_path)(e)),
    };
    let mut reader = BufReader::new(file);
    let (mut good_end, mut seq) = (0u64, snap_seq);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(io("reading", &journal_path))?;
        if n == 0 {
            break;
        }
        let parsed = match line.last() {
            Some(b'\n') => serde_json::from_slice::<JournalLine>(&line).ok(),
            _ => None,
        };
        let Some(batch) = parsed else {
            tracing::warn!(path = %journal_path.display(), offset = good_end, "dropping a torn journal tail");
            break;
        };
        good_end += n as u64;
        if batch.seq <= snap_seq {
            continue;
        }
        seq = batch.seq;
        for op in batch.ops {
            match op.v {
                Some(v) => objects.insert(op.k, v),
                None => objects.remove(&op.k),
            };
        }
    }
    let len = std::fs::metadata(&journal_path)
        .map_err(io("reading", &journal_path))?
        .len();
    if len > good_end {
        let f = OpenOptions::new()
            .write(true)
            .open(&journal_path)
            .map_err(io("opening", &journal_path))?;
        f.set_len(good_end)
            .map_err(io("truncating", &journal_path))?;
        f.sync_all().map_err(io("syncing", &journal_path))?;
    }
    Ok((objects, seq))
}

struct Writer {
    dir: PathBuf,
    journal: File,
    objects: Objects,
    seq: u64,
    compact_bytes: u64,
    /// Batches a failed write (a full disk, say) could not store: written first next time.
    unwritten: Vec<u8>,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        while let Ok(first) = rx.recv() {
            // Take everything queued: one write and one fsync for all of it.
            let mut msgs = vec![first];
            msgs.extend(rx.try_iter());
            let mut waiters = Vec::new();
            let mut buf = Vec::new();
            for m in msgs {
                match m {
                    Msg::Batch(line) => self.append(&mut buf, line),
                    Msg::Sync(w) => waiters.push(w),
                }
            }
            let result = self.commit(&buf).map_err(|e| e.to_string());
            if let Err(e) = &result {
                tracing::error!(error = %e, "writing state failed");
            }
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }

    fn append(&mut self, buf: &mut Vec<u8>, line: JournalLine) {
        if serde_json::to_writer(&mut *buf, &line).is_err() {
            return;
        }
        buf.push(b'\n');
        self.seq = line.seq;
        for op in line.ops {
            match op.v {
                Some(v) => self.objects.insert(op.k, v),
                None => self.objects.remove(&op.k),
            };
        }
    }

    fn commit(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        let path = self.dir.join(JOURNAL);
        self.unwritten.extend_from_slice(buf);
        if !self.unwritten.is_empty() {
            let good_len = self
                .journal
                .seek(SeekFrom::End(0))
                .map_err(io("reading", &path))?;
            let written = self
                .journal
                .write_all(&self.unwritten)
                .and_then(|()| self.journal.sync_data());
            if let Err(e) = written {
                // Cut a partly written line off again, so later batches never follow a torn
                // one; the batches stay queued and are retried with the next write.
                let _ = self.journal.set_len(good_len);
                return Err(io("appending to", &path)(e));
            }
            self.unwritten.clear();
        }
        let size = self
            .journal
            .seek(SeekFrom::End(0))
            .map_err(io("reading", &path))?;
        if size > self.compact_bytes {
            self.compact()?;
        }
        Ok(())
    }

    /// Folds the journal into a new snapshot, then empties the journal.
    fn compact(&mut self) -> Result<(), StoreError> {
        let snap = Snapshot {
            version: FORMAT_VERSION,
            seq: self.seq,
            objects: std::mem::take(&mut self.objects),
        };
        let bytes = serde_json::to_vec(&snap);
        self.objects = snap.objects;
        let bytes = bytes.map_err(|e| StoreError::Corrupt {
            path: self.dir.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&self.dir.join(SNAPSHOT), &bytes)?;
        let path = self.dir.join(JOURNAL);
        self.journal.set_len(0).map_err(io("truncating", &path))?;
        self.journal.sync_all().map_err(io("syncing", &path))?;
        Ok(())
    }
}

/// Write temp, fsync, rename over, fsync the directory: readers see the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp).map_err(io("creating", &tmp))?;
    f.write_all(bytes).map_err(io("writing", &tmp))?;
    f.sync_all().map_err(io("syncing", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("renaming into", path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing", dir))?;
    Ok(())
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
            let (mut s, objs) = Store::open(dir.path(), 1 << 20).unwrap();
            assert!(objs.is_empty());
            s.touch("jobs/a");
            s.touch("pods/b");
            s.flush(|k| Some(raw(&format!("{{\"k\":\"{k}\"}}"))))
                .unwrap();
            s.touch("pods/b");
            s.flush(|_| None).unwrap();
            s.sync().unwrap();
        }
        let (_s, objs) = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            keys(&objs),
            vec![("jobs/a".into(), "{\"k\":\"jobs/a\"}".into())]
        );
    }

    #[test]
    fn torn_tail_is_dropped_whole_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Store::open(dir.path(), 1 << 20).unwrap();
            s.touch("a");
            s.flush(|_| Some(raw("1"))).unwrap();
            s.sync().unwrap();
        }
        let journal = dir.path().join(JOURNAL);
        let mut f = OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(b"{\"seq\":2,\"ops\":[{\"k\":\"a\",\"v\":2},{\"k\":\"b\"")
            .unwrap();
        drop(f);
        let (mut s, objs) = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            keys(&objs),
            vec![("a".into(), "1".into())],
            "the torn batch is not half-applied"
        );
        s.touch("c");
        s.flush(|_| Some(raw("3"))).unwrap();
        s.sync().unwrap();
        drop(s);
        let (_s, objs) = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            keys(&objs),
            vec![("a".into(), "1".into()), ("c".into(), "3".into())]
        );
    }

    #[test]
    fn compaction_keeps_everything_and_skips_old_lines() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Store::open(dir.path(), 64).unwrap();
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
        let (_s, objs) = Store::open(dir.path(), 64).unwrap();
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
        let (_s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(
            Store::open(dir.path(), 1 << 20),
            Err(StoreError::Locked(_))
        ));
    }
}
