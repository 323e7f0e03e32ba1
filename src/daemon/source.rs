//! The manifests directory as a source: watched while it is there, *unavailable* (not empty)
//! while it is not.
//!
//! An inotify watch follows an inode, not a path: once the directory is removed, renamed, or a
//! symlink to it is re-pointed, the old watch sees nothing that is dropped at the path. So the
//! daemon identifies the directory the path leads to (device, inode and birth time of its
//! canonical target: an inode number alone can be reused at once by `rmdir; mkdir`) and re-arms
//! the watch, then rescans, whenever that changes. It checks when the watcher reports a change
//! to the directory or its entry in a parent, on SIGHUP, whenever a file is found missing
//! (before anything is deleted because of that), and every `watch.recheckInterval` as a
//! fallback for changes further up.
//!
//! While the directory is missing or unreadable nothing is deleted: `rm -rf manifests` and a
//! restore minutes later must not delete, and so later re-run, finished Jobs. The daemon never
//! re-creates a directory that went away (only at a first start); it waits for the user.

use std::path::Path;
use std::time::SystemTime;

use super::{Daemon, Target};
use crate::watch::DirWatcher;

/// Which directory the manifests path leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DirId {
    dev: u64,
    ino: u64,
    /// `None` where the file system keeps no birth time.
    born: Option<SystemTime>,
}

impl DirId {
    /// The directory `path` leads to now, or why there is none.
    fn of(path: &Path) -> Result<DirId, String> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if !meta.is_dir() {
            return Err("not a directory".into());
        }
        // Readable, not just there: a directory we cannot list is no source either.
        std::fs::read_dir(path).map_err(|e| e.to_string())?;
        Ok(DirId {
            dev: meta.dev(),
            ino: meta.ino(),
            born: meta.created().ok(),
        })
    }
}

pub(super) enum Source {
    /// Before the first look (only between `Daemon::open` and `run`).
    NotLooked,
    /// Watching the directory the path led to when the watch was armed.
    Watching { id: DirId, _watch: DirWatcher },
    /// Missing or unreadable: nothing is deleted until it is back. Its parents are watched
    /// when they exist, so its return is noticed at once; else the periodic re-check finds it.
    Unavailable {
        reason: String,
        _watch: Option<DirWatcher>,
    },
}

impl Daemon {
    /// Looks at what the manifests path leads to; re-arms the watch and rescans if that is
    /// not the directory being watched (or always, with `force`: SIGHUP). Returns whether the
    /// directory is there and watched.
    pub(super) fn check_source(&mut self, force: bool) -> bool {
        let dir = self.layout.manifests.clone();
        let now = DirId::of(&dir);
        match (&self.source, &now) {
            (Source::Watching { id, .. }, Ok(new)) if id == new && !force => return true,
            // Still gone for the same reason, and its return is watched for (or cannot be).
            (Source::Unavailable { reason, _watch }, Err(why))
                if reason == why && !force && _watch.is_some() =>
            {
                return false;
            }
            _ => {}
        }
        let Some(tx) = self.hint_tx.clone() else {
            return now.is_ok();
        };
        match now {
            Ok(_) => match crate::watch::watch(&dir, tx.clone()) {
                // Identified again after arming: whatever arrives between the two is caught
                // by the rescan below.
                Ok(watch) => match DirId::of(&dir) {
                    Ok(id) => {
                        if !matches!(self.source, Source::Watching { .. }) {
                            tracing::info!(dir = %dir.display(), "manifests directory available; watching it");
                        }
                        self.source = Source::Watching { id, _watch: watch };
                        self.problems.manifests = None;
                        self.rescan_dir();
                        true
                    }
                    Err(why) => self.source_unavailable(&dir, why, tx),
                },
                Err(e) => self.source_unavailable(&dir, format!("cannot watch it: {e}"), tx),
            },
            Err(why) => self.source_unavailable(&dir, why, tx),
        }
    }

    fn source_unavailable(
        &mut self,
        dir: &Path,
        why: String,
        tx: tokio::sync::mpsc::UnboundedSender<crate::watch::Hint>,
    ) -> bool {
        let news = !matches!(&self.source, Source::Unavailable { reason, .. } if *reason == why);
        if news {
            tracing::error!(dir = %dir.display(), reason = %why, "manifests directory unavailable; nothing is deleted while it is missing");
        }
        self.problems.manifests = Some(format!(
            "manifests directory {} is unavailable: {why}; nothing is deleted while it is missing",
            dir.display()
        ));
        self.source = Source::Unavailable {
            reason: why,
            _watch: crate::watch::watch_for_return(dir, tx),
        };
        false
    }

    /// The fallback re-check, every `watch.recheckInterval` (0 turns it off).
    pub(super) fn recheck_source_later(&mut self) {
        let every = self.cfg.watch.recheck_interval;
        if !every.is_zero() {
            self.schedule(every, Target::Recheck);
        }
    }

    /// Whether the directory is there and is the one watched: asked before anything is
    /// deleted because a file is missing.
    pub(super) fn source_present(&mut self) -> bool {
        self.check_source(false)
    }

    /// Reading the directory failed for good (not a passing error): it is unavailable until a
    /// re-check finds it again.
    pub(super) fn lose_source(&mut self, why: String) {
        let dir = self.layout.manifests.clone();
        if let Some(tx) = self.hint_tx.clone() {
            self.source_unavailable(&dir, why, tx);
        }
    }
}
