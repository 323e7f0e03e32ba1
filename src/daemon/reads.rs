//! Reading the manifests directory and its files off the loop. A file's read (up to the
//! 3 MiB a manifest may have, on a disk that may be slow or failing), a listing of the
//! directory for a rescan, and a look at what the manifests path leads to (`source.rs`) each
//! run on the blocking pool, and what they found comes back to the loop as a [`ReadDone`],
//! handled like any other input.
//!
//! Order is kept where it matters. Only the newest read of a path counts: a file read twice
//! while it changes is applied as the later read found it; likewise only the newest listing.
//! Looks run one at a time, and whoever asks for one while another is out gets the next, so
//! each asker's look began after it asked (a directory replaced just before is seen). A read
//! that may delete (a confirmed removal, an entry no longer a regular file) looks at the
//! directory in the same task, right after the read: nothing goes because a file is missing
//! unless the directory it is missing from is the one watched.
//!
//! In-process tests run without the loop and do all of this inline ([`Reads::inline`]), so
//! their assertions see its outcome at once; the daemon's `run` switches to the pool once
//! start-up (the first look, listing and reads) is done.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::Daemon;
use super::source::{AfterLook, Look};
use crate::watch::Entry;

/// What the blocking pool found, for the loop.
pub(super) enum ReadDone {
    /// A manifest file, and for a read that may delete, the directory right after.
    File {
        path: PathBuf,
        seq: u64,
        confirmed: bool,
        entry: Entry,
        look: Option<Look>,
    },
    /// What the manifests path leads to, for everyone who asked since the last look.
    Look {
        look: Look,
        force: bool,
        then: Vec<AfterLook>,
    },
    /// The manifests directory's entries, for a rescan.
    Listing {
        seq: u64,
        listing: std::io::Result<Vec<PathBuf>>,
    },
}

pub(super) struct Reads {
    /// `None`: read inline (tests without the loop, and start-up).
    tx: Option<mpsc::UnboundedSender<ReadDone>>,
    /// The newest read asked for each path still in flight.
    newest: HashMap<PathBuf, u64>,
    next: u64,
    /// The newest listing asked for.
    listing: u64,
    /// A look is out.
    looking: bool,
    /// Asked for while one was out: the next look's askers (whether any forced it).
    waiting: Vec<AfterLook>,
    waiting_force: bool,
    /// The daemon's uid when it runs as root: files are then read only if trusted
    /// (`trust.rs`).
    trust_uid: Option<u32>,
}

impl Reads {
    pub(super) fn inline() -> Reads {
        Reads {
            tx: None,
            newest: HashMap::new(),
            next: 0,
            listing: 0,
            looking: false,
            waiting: Vec::new(),
            waiting_force: false,
            trust_uid: {
                let euid = nix::unistd::geteuid();
                euid.is_root().then_some(euid.as_raw())
            },
        }
    }

    /// The trust policy for a file of `manifests`, when the daemon runs as root.
    fn policy(&self, manifests: &Path) -> Option<crate::trust::Policy> {
        self.trust_uid.map(|daemon_uid| crate::trust::Policy {
            daemon_uid,
            root: manifests.to_path_buf(),
        })
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

    fn next_seq(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

impl Daemon {
    /// Reads `path` and applies what it found: at once when reading inline, else when the
    /// blocking pool is done.
    pub(super) fn read_file(&mut self, path: &Path, confirmed: bool) {
        // Only these reads may delete, after a look at the directory (`removal_may_proceed`).
        let may_delete = confirmed || self.cfg.watch.removal_grace.is_zero();
        let policy = self.reads.policy(&self.layout.manifests);
        let Some(tx) = self.reads.tx.clone() else {
            let entry = crate::watch::read_entry_as(path, policy.as_ref());
            return self.apply_entry(path, entry, confirmed, None);
        };
        let seq = self.reads.next_seq();
        self.reads.newest.insert(path.to_path_buf(), seq);
        let path = path.to_path_buf();
        let dir = self.layout.manifests.clone();
        tokio::task::spawn_blocking(move || {
            let entry = crate::watch::read_entry_as(&path, policy.as_ref());
            let look = (may_delete && matches!(entry, Entry::Missing | Entry::Ignored(_)))
                .then(|| Look::at(&dir));
            // The loop is gone only when the daemon stops: nothing left to apply it to.
            let _ = tx.send(ReadDone::File {
                path,
                seq,
                confirmed,
                entry,
                look,
            });
        });
    }

    /// Looks at what the manifests path leads to, then does `then` with what `check_source`
    /// made of it: at once when inline, else when the look is back (after the one already
    /// out, if any).
    pub(super) fn look_at_source(&mut self, force: bool, then: AfterLook) {
        if self.reads.tx.is_none() {
            let check = self.check_source(force);
            return self.after_look(check, then);
        }
        self.reads.waiting.push(then);
        self.reads.waiting_force |= force;
        if !self.reads.looking {
            self.start_look();
        }
    }

    fn start_look(&mut self) {
        let Some(tx) = self.reads.tx.clone() else {
            return;
        };
        self.reads.looking = true;
        let then = std::mem::take(&mut self.reads.waiting);
        let force = std::mem::take(&mut self.reads.waiting_force);
        let dir = self.layout.manifests.clone();
        tokio::task::spawn_blocking(move || {
            let look = Look::at(&dir);
            let _ = tx.send(ReadDone::Look { look, force, then });
        });
    }

    /// Lists the manifests directory for a rescan: what it found goes to `rescan_listed`.
    /// False when it was listed inline and could not be.
    pub(super) fn list_manifests(&mut self) -> bool {
        let dir = self.layout.manifests.clone();
        let Some(tx) = self.reads.tx.clone() else {
            let listing = crate::watch::scan(&dir);
            return self.rescan_listed(listing);
        };
        let seq = self.reads.next_seq();
        self.reads.listing = seq;
        tokio::task::spawn_blocking(move || {
            let listing = crate::watch::scan(&dir);
            let _ = tx.send(ReadDone::Listing { seq, listing });
        });
        true
    }

    /// Something came back from the pool.
    pub(super) fn on_read(&mut self, done: ReadDone) {
        match done {
            // Applied if it is the newest read of its path (an older one is stale).
            ReadDone::File {
                path,
                seq,
                confirmed,
                entry,
                look,
            } => {
                if self.reads.newest.get(&path) != Some(&seq) {
                    return;
                }
                self.reads.newest.remove(&path);
                self.apply_entry(&path, entry, confirmed, look);
            }
            ReadDone::Look { look, force, then } => {
                self.reads.looking = false;
                let check = self.check_source_with(look, force);
                for then in then {
                    self.after_look(check, then);
                }
                if !self.reads.waiting.is_empty() {
                    self.start_look();
                }
            }
            // A newer listing is coming: this one is stale.
            ReadDone::Listing { seq, listing } => {
                if seq == self.reads.listing {
                    self.rescan_listed(listing);
                }
            }
        }
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

    /// A daemon watching `root/manifests` (armed inline, as at start-up), then reading on the
    /// pool as the running loop does.
    fn watching_on_the_pool(
        root: &std::path::Path,
    ) -> (
        super::Daemon,
        tokio::sync::mpsc::UnboundedReceiver<super::ReadDone>,
        tokio::sync::mpsc::UnboundedReceiver<crate::watch::Hint>,
    ) {
        let (mut d, _clock, _runtime) = daemon_in(root, Config::default());
        let (tx, hints) = tokio::sync::mpsc::unbounded_channel();
        d.hint_tx = Some(tx);
        assert_eq!(d.check_source(true), super::super::source::Check::Rearmed);
        let rx = d.reads.on_pool();
        (d, rx, hints)
    }

    fn kind(done: &super::ReadDone) -> &'static str {
        match done {
            super::ReadDone::File { .. } => "file",
            super::ReadDone::Look { .. } => "look",
            super::ReadDone::Listing { .. } => "listing",
        }
    }

    /// A rescan neither looks at the directory nor lists it on the loop: the look comes back,
    /// then the listing, then the read of the file the listing found, which applies it.
    #[tokio::test]
    async fn a_rescan_looks_and_lists_on_the_pool() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, mut rx, _hints) = watching_on_the_pool(root.path());
        let path = d.layout.manifests.join("j.yaml");
        std::fs::write(&path, job("a", "Never", "true", "")).unwrap();
        d.rescan();
        for step in ["look", "listing", "file"] {
            assert!(!has_job(&d, "a"), "applied before the {step} was back");
            let done = rx.recv().await.unwrap();
            assert_eq!(kind(&done), step);
            d.on_read(done);
        }
        assert!(has_job(&d, "a"));
    }

    /// A directory replaced under the watch is found by a look on the pool, not on the loop;
    /// a look asked for while one is out is the next one, so its asker sees what happened
    /// after it asked.
    #[tokio::test]
    async fn looks_come_back_one_after_another() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, mut rx, _hints) = watching_on_the_pool(root.path());
        let watched = |d: &super::Daemon| match &d.source {
            super::super::source::Source::Watching { id, .. } => Some(id.clone()),
            _ => None,
        };
        let before = watched(&d).unwrap();
        std::fs::rename(&d.layout.manifests, root.path().join("old")).unwrap();
        std::fs::create_dir(&d.layout.manifests).unwrap();
        d.on_hint(crate::watch::Hint::Recheck);
        d.look_at_source(true, super::AfterLook::Nothing);
        assert_eq!(watched(&d), Some(before.clone()), "looked at on the loop");
        let first = rx.recv().await.unwrap();
        let super::ReadDone::Look { ref then, .. } = first else {
            panic!("not a look");
        };
        assert_eq!(
            then.len(),
            1,
            "the second asker shared a look begun before it asked"
        );
        d.on_read(first);
        let after = watched(&d).unwrap();
        assert_ne!(after, before, "the replaced directory was not re-armed");
        // The second asker's look, begun after it asked (the rescan of the re-armed
        // directory's listing is out too, in either order).
        assert!(d.reads.looking);
        while d.reads.looking {
            let done = rx.recv().await.unwrap();
            d.on_read(done);
        }
    }

    /// A read that may delete brings a look at the directory with it, taken right after the
    /// read: a confirmed removal in a directory just replaced waits for a fresh grace.
    #[tokio::test]
    async fn a_confirmed_removal_brings_its_look() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, mut rx, _hints) = watching_on_the_pool(root.path());
        let path = d.layout.manifests.join("j.yaml");
        d.apply_text(&path, job("j", "Never", "true", ""), true);
        std::fs::rename(&d.layout.manifests, root.path().join("old")).unwrap();
        std::fs::create_dir(&d.layout.manifests).unwrap();
        d.confirm_removal(&path);
        let done = rx.recv().await.unwrap();
        let super::ReadDone::File { ref look, .. } = done else {
            panic!("not a read");
        };
        assert!(
            matches!(look, Some(super::Look::Dir(_))),
            "no look with the read"
        );
        d.on_read(done);
        assert!(
            has_job(&d, "j"),
            "deleted at once in a directory just replaced"
        );
    }
}
