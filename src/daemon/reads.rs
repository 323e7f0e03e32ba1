//! Reading manifest files off the loop: a read (up to the 3 MiB a manifest may have, on a disk
//! that may be slow or failing) runs on the blocking pool, and what it found comes back to the
//! loop as a [`ReadDone`], applied like any other input. Only the newest read of a path
//! counts: a file read twice while it changes is applied as the later read found it.
//!
//! In-process tests run without the loop and read inline ([`Reads::inline`]), so their
//! assertions see the file applied at once; the daemon's `run` switches to the pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::Daemon;
use crate::watch::Entry;

/// What a read found, for the loop.
pub(super) struct ReadDone {
    path: PathBuf,
    seq: u64,
    confirmed: bool,
    entry: Entry,
}

pub(super) struct Reads {
    /// `None`: read inline (tests without the loop).
    tx: Option<mpsc::UnboundedSender<ReadDone>>,
    /// The newest read asked for each path still in flight.
    newest: HashMap<PathBuf, u64>,
    next: u64,
}

impl Reads {
    pub(super) fn inline() -> Reads {
        Reads {
            tx: None,
            newest: HashMap::new(),
            next: 0,
        }
    }

    /// The loop itself has just written or removed `path` (`writes.rs`): a read of it still in
    /// flight may have found it as it was before, so it no longer counts.
    pub(super) fn superseded(&mut self, path: &Path) {
        self.newest.remove(path);
    }

    /// Reads go to the blocking pool from now on; their outcomes arrive on the receiver.
    pub(super) fn on_pool(&mut self) -> mpsc::UnboundedReceiver<ReadDone> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.tx = Some(tx);
        rx
    }
}

impl Daemon {
    /// Reads `path` and applies what it found: at once when reading inline, else when the
    /// blocking pool is done.
    pub(super) fn read_file(&mut self, path: &Path, confirmed: bool) {
        let Some(tx) = self.reads.tx.clone() else {
            let entry = crate::watch::read_entry(path);
            return self.apply_entry(path, entry, confirmed);
        };
        self.reads.next += 1;
        let seq = self.reads.next;
        self.reads.newest.insert(path.to_path_buf(), seq);
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let entry = crate::watch::read_entry(&path);
            // The loop is gone only when the daemon stops: nothing left to apply it to.
            let _ = tx.send(ReadDone {
                path,
                seq,
                confirmed,
                entry,
            });
        });
    }

    /// A read came back: applied if it is the newest of its path (an older one is stale).
    pub(super) fn on_read(&mut self, done: ReadDone) {
        if self.reads.newest.get(&done.path) != Some(&done.seq) {
            return;
        }
        self.reads.newest.remove(&done.path);
        self.apply_entry(&done.path, done.entry, done.confirmed);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{daemon_in, job};
    use crate::config::Config;

    fn has_job(d: &super::Daemon, name: &str) -> bool {
        d.world.has_job(&("default".into(), name.into()))
    }

    /// On the pool, a read does not apply the file on the loop: its outcome does, when it
    /// comes back; and of two reads of a file, the older one is stale even if it comes last.
    #[tokio::test]
    async fn reads_come_back_and_only_the_newest_counts() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, _clock, _runtime) = daemon_in(root.path(), Config::default());
        let mut rx = d.reads.on_pool();
        let path = d.layout.manifests.join("j.yaml");
        std::fs::write(&path, job("a", "Never", "true", "")).unwrap();
        d.apply_file(&path);
        assert!(!has_job(&d, "a"), "read on the loop");
        let first = rx.recv().await.unwrap();

        std::fs::write(&path, job("b", "Never", "true", "")).unwrap();
        d.apply_file(&path);
        let second = rx.recv().await.unwrap();
        d.on_read(second);
        assert!(has_job(&d, "b"));
        d.on_read(first);
        assert!(!has_job(&d, "a"), "a stale read was applied");
        assert!(has_job(&d, "b"));
    }
}
