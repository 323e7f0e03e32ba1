//! The spawn ledger: one line per process this runtime spawned (`pid start-time`), appended
//! right after the spawn, before anything else can happen.
//!
//! The daemon records a container's pid in its state only when the run's `Started` report
//! reaches the store: a crash between the spawn and that write would leave a process nobody
//! knows about. The ledger closes that window for crashes of the daemon (a SIGKILL, a
//! panic): the kernel keeps what was written, so no fsync is needed; a power loss, the one
//! thing that loses unsynced writes, ends the processes too. At start the next daemon kills
//! what the ledger names that still runs (the start time guards against a reused pid), then
//! starts a new ledger. The file is rewritten with only the running processes once it has
//! grown past [`COMPACT_LINES`].

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Lines after which the ledger is rewritten with only what still runs.
pub const COMPACT_LINES: usize = 4096;

pub struct Ledger {
    path: PathBuf,
    file: File,
    lines: usize,
}

impl Ledger {
    /// What the ledger at `path` names (the previous daemon's spawns), and an empty ledger
    /// in its place.
    pub fn take_over(path: &Path) -> io::Result<(Ledger, Vec<(u32, u64)>)> {
        let previous = match std::fs::read_to_string(path) {
            Ok(text) => parse(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        // Emptied, then opened for appending: every write goes to the end.
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        let file = open_append(path)?;
        let ledger = Ledger {
            path: path.to_path_buf(),
            file,
            lines: 0,
        };
        Ok((ledger, previous))
    }

    /// Appends one spawn. `running` lists what runs now, for a rewrite when the ledger is long.
    pub fn record(
        &mut self,
        pid: u32,
        start: u64,
        running: impl FnOnce() -> Vec<(u32, u64)>,
    ) -> io::Result<()> {
        if self.lines >= COMPACT_LINES {
            let mut keep = running();
            keep.push((pid, start));
            return self.rewrite(&keep);
        }
        // One write of one short line: with O_APPEND it lands whole.
        self.file.write_all(format!("{pid} {start}\n").as_bytes())?;
        self.lines += 1;
        Ok(())
    }

    fn rewrite(&mut self, keep: &[(u32, u64)]) -> io::Result<()> {
        let text: String = keep.iter().map(|(p, s)| format!("{p} {s}\n")).collect();
        let tmp = self.path.with_extension("new");
        std::fs::write(&tmp, &text)?;
        std::fs::rename(&tmp, &self.path)?;
        self.file = open_append(&self.path)?;
        self.lines = keep.len();
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// `pid start` lines; anything else (a line cut by a crash) is skipped.
fn parse(text: &str) -> Vec<(u32, u64)> {
    text.lines()
        .filter_map(|l| {
            let (pid, start) = l.split_once(' ')?;
            Some((pid.parse().ok()?, start.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn spawns_are_taken_over_by_the_next_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spawned");
        let (mut first, none) = Ledger::take_over(&path).unwrap();
        assert!(none.is_empty());
        first.record(10, 100, Vec::new).unwrap();
        first.record(11, 110, Vec::new).unwrap();
        // A crash cut the last line short.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"12 1")
            .unwrap();
        drop(first);
        let (mut second, previous) = Ledger::take_over(&path).unwrap();
        assert_eq!(previous, [(10, 100), (11, 110), (12, 1)]);
        second.record(20, 200, Vec::new).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "20 200\n");
    }

    #[test]
    fn a_long_ledger_keeps_only_what_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spawned");
        let (mut ledger, _) = Ledger::take_over(&path).unwrap();
        for pid in 0..COMPACT_LINES as u32 {
            ledger.record(pid, 1, Vec::new).unwrap();
        }
        ledger.record(99_999, 7, || vec![(5, 1)]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "5 1\n99999 7\n");
        ledger.record(100_000, 8, Vec::new).unwrap();
        assert_eq!(parse(&std::fs::read_to_string(&path).unwrap()).len(), 3);
    }
}
