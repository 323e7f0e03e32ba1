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
//!
//! A look that fails for a passing reason (EMFILE, EIO…, see [`crate::watch::classify`]) is no
//! verdict: the source stays as it was, nothing is deleted meanwhile, and the path is looked
//! at again after a back-off (`RETRY_BASE` doubling to `RETRY_MAX`).

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{Daemon, RETRY_BASE, Target};
use crate::watch::{DirWatcher, ErrorClass, Hint};

/// Which directory the manifests path leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DirId {
    dev: u64,
    ino: u64,
    /// `None` where the file system keeps no birth time.
    born: Option<SystemTime>,
}

/// What the manifests path leads to at one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Look {
    Dir(DirId),
    /// Missing, not a directory, unreadable, a symlink loop…: why.
    Gone(String),
    /// The look failed for a passing reason (fds or memory exhausted, EIO…): why.
    Unsure(String),
}

impl Look {
    /// `why` as a look: passing errors are no verdict on the directory.
    fn failed(e: &std::io::Error) -> Look {
        match crate::watch::classify(e) {
            ErrorClass::Transient => Look::Unsure(e.to_string()),
            _ => Look::Gone(e.to_string()),
        }
    }

    /// The directory `path` leads to now, or why there is none.
    pub(super) fn at(path: &Path) -> Look {
        use std::os::unix::fs::MetadataExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return Look::failed(&e),
        };
        if !meta.is_dir() {
            return Look::Gone("not a directory".into());
        }
        // Readable, not just there: a directory we cannot list is no source either.
        if let Err(e) = std::fs::read_dir(path) {
            return Look::failed(&e);
        }
        Look::Dir(DirId {
            dev: meta.dev(),
            ino: meta.ino(),
            born: meta.created().ok(),
        })
    }
}

pub(super) enum Source {
    /// Before the first look (only between `Daemon::open` and `run`, or while the first look
    /// keeps failing for a passing reason).
    NotLooked,
    /// Watching the directory the path led to when the watch was armed.
    Watching { id: DirId, _watch: DirWatcher },
    /// Missing or unreadable: nothing is deleted until it is back. Its parents are watched
    /// when they exist, so its return is noticed at once; else the periodic re-check finds it
    /// (and tries again to watch the parents).
    Unavailable {
        reason: String,
        watch: Option<DirWatcher>,
    },
}

/// What `check_source` found, for whoever is about to delete because a file is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// The directory is there and is the one watched, as before.
    Unchanged,
    /// It is there, but is another directory than before (or was looked at for the first
    /// time, or SIGHUP): the watch was re-armed and the whole directory rescanned, so every
    /// file missing from it is on a fresh `watch.removalGrace`.
    Rearmed,
    /// No verdict now (a passing error, or a rescan that could not list it): kept as it was
    /// and looked at again after a back-off.
    Unsure,
    /// Missing or unreadable: unavailable.
    Lost,
}

/// What to do once a look at the source is back (`reads.rs`), with what `check_source` made
/// of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterLook {
    Nothing,
    /// A rescan: list the directory if it is the one watched (a re-armed one was rescanned).
    Rescan,
    /// The `Target::Recheck` timer's: watch an unavailable directory's parents if none could.
    Recheck,
}

/// What `check_source` does about a look. Pure, so the decision is tested by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The watched directory, unchanged.
    Keep,
    /// Still unavailable for the same reason: nothing is built (no watcher, no thread); the
    /// Recheck timer tries again to watch for its return.
    StillGone,
    /// A passing error: keep the source as it is, look again after a back-off.
    Retry,
    /// Arm a watch on what is there now, then rescan.
    Arm,
    /// It became unavailable, or for another reason than before.
    Lose,
}

/// The source as the decision sees it.
#[derive(Debug, Clone, Copy)]
enum Was<'a> {
    NotLooked,
    Watching(&'a DirId),
    Unavailable(&'a str),
}

fn step(was: Was<'_>, look: &Look, force: bool) -> Step {
    match (was, look) {
        // Never a verdict, SIGHUP or not.
        (_, Look::Unsure(_)) => Step::Retry,
        (Was::Watching(id), Look::Dir(now)) if id == now && !force => Step::Keep,
        (Was::Unavailable(reason), Look::Gone(why)) if reason == why && !force => Step::StillGone,
        (_, Look::Dir(_)) => Step::Arm,
        (_, Look::Gone(_)) => Step::Lose,
    }
}

/// How many times arming is tried while the path keeps being replaced under it.
const ARM_TRIES: usize = 3;

/// How arming ended.
#[derive(Debug)]
enum Armed<W, E> {
    /// The path led to `DirId` both before and after `W` was armed.
    Stable(DirId, W),
    /// Arming failed.
    Failed(E),
    /// Looking again after arming found no directory (or failed).
    Then(Look),
    /// Replaced under every try.
    Unstable,
}

/// Arms with `arm` until the path leads to the same directory before and after: one replaced
/// in between would leave the watch on the old directory while the id says the new one, and
/// no later look would ever see a difference to re-arm for.
fn arm_stable<W, E>(
    mut id: DirId,
    mut look: impl FnMut() -> Look,
    mut arm: impl FnMut() -> Result<W, E>,
) -> Armed<W, E> {
    for _ in 0..ARM_TRIES {
        let watch = match arm() {
            Ok(w) => w,
            Err(e) => return Armed::Failed(e),
        };
        match look() {
            Look::Dir(after) if after == id => return Armed::Stable(id, watch),
            Look::Dir(after) => id = after,
            other => return Armed::Then(other),
        }
    }
    Armed::Unstable
}

/// Whether a watcher that could not be built failed for a passing reason (out of fds or
/// inotify instances/watches): the directory is fine, our resources are not.
fn watch_error_passes(e: &notify::Error) -> bool {
    match &e.kind {
        notify::ErrorKind::Io(io) => crate::watch::classify(io) == ErrorClass::Transient,
        notify::ErrorKind::MaxFilesWatch => true,
        _ => false,
    }
}

impl Daemon {
    /// Looks at what the manifests path leads to (here, on the loop: at start-up, and in
    /// tests; the running loop asks `look_at_source`) and acts on it.
    pub(super) fn check_source(&mut self, force: bool) -> Check {
        let look = Look::at(&self.layout.manifests);
        self.check_source_with(look, force)
    }

    /// Re-arms the watch and rescans if `look` is not the directory being watched (or always,
    /// with `force`: SIGHUP).
    pub(super) fn check_source_with(&mut self, look: Look, force: bool) -> Check {
        let dir = self.layout.manifests.clone();
        let was = match &self.source {
            Source::NotLooked => Was::NotLooked,
            Source::Watching { id, .. } => Was::Watching(id),
            Source::Unavailable { reason, .. } => Was::Unavailable(reason),
        };
        let step = step(was, &look, force);
        let Some(tx) = self.hint_tx.clone() else {
            // Not running (tests of other parts): nothing to arm.
            return match look {
                Look::Dir(_) => Check::Unchanged,
                Look::Gone(_) => Check::Lost,
                Look::Unsure(_) => Check::Unsure,
            };
        };
        match (step, look) {
            (Step::Keep, _) => {
                // Back-off ends with a look that worked, not before a try that may fail.
                self.source_retry = None;
                Check::Unchanged
            }
            (Step::StillGone, _) => Check::Lost,
            (Step::Retry, Look::Unsure(why)) => self.source_later(&dir, &why),
            (Step::Arm, Look::Dir(id)) => self.arm(&dir, id, tx),
            (_, Look::Gone(why)) => self.source_unavailable(&dir, why, tx),
            // `step` never pairs these otherwise.
            (_, Look::Unsure(why)) => self.source_later(&dir, &why),
            (_, Look::Dir(id)) => self.arm(&dir, id, tx),
        }
    }

    /// Watches what the path leads to (`id`, as just seen) and rescans it.
    fn arm(
        &mut self,
        dir: &Path,
        id: DirId,
        tx: tokio::sync::mpsc::UnboundedSender<Hint>,
    ) -> Check {
        let armed = arm_stable(
            id,
            || Look::at(dir),
            || crate::watch::watch(dir, tx.clone()),
        );
        match armed {
            Armed::Stable(id, watch) => {
                self.source_retry = None;
                if !matches!(self.source, Source::Watching { .. }) {
                    tracing::info!(dir = %dir.display(), "manifests directory available; watching it");
                }
                self.source = Source::Watching { id, _watch: watch };
                self.problems.manifests = None;
                if !self.rescan_dir() {
                    Check::Unsure
                } else if matches!(self.source, Source::Watching { .. }) {
                    Check::Rearmed
                } else {
                    Check::Lost
                }
            }
            Armed::Failed(e) if watch_error_passes(&e) => {
                self.source_later(dir, &format!("cannot watch it: {e}"))
            }
            Armed::Failed(e) => self.source_unavailable(dir, format!("cannot watch it: {e}"), tx),
            Armed::Then(Look::Unsure(why)) => self.source_later(dir, &why),
            Armed::Then(Look::Gone(why)) => self.source_unavailable(dir, why, tx),
            Armed::Then(Look::Dir(_)) | Armed::Unstable => {
                self.source_later(dir, "replaced again while its watch was being armed")
            }
        }
    }

    /// No verdict now: the source stays as it is (so does what `/readyz` says), nothing is
    /// deleted meanwhile, and the path is looked at again after a back-off.
    fn source_later(&mut self, dir: &Path, why: &str) -> Check {
        let delay = super::back_off(self.source_retry);
        self.source_retry = Some(delay);
        self.schedule(delay, Target::Recheck);
        tracing::warn!(dir = %dir.display(), reason = %why, "cannot look at the manifests directory now; looking again in {delay:?} (nothing is deleted meanwhile)");
        Check::Unsure
    }

    /// The delay before the source is looked at again after a passing error (or the first).
    pub(super) fn source_retry_delay(&self) -> Duration {
        self.source_retry.unwrap_or(RETRY_BASE)
    }

    fn source_unavailable(
        &mut self,
        dir: &Path,
        why: String,
        tx: tokio::sync::mpsc::UnboundedSender<Hint>,
    ) -> Check {
        let news = !matches!(&self.source, Source::Unavailable { reason, .. } if *reason == why);
        if news {
            tracing::error!(dir = %dir.display(), reason = %why, "manifests directory unavailable; nothing is deleted while it is missing");
        }
        self.source_retry = None;
        self.problems.manifests = Some(format!(
            "manifests directory {} is unavailable: {why}; nothing is deleted while it is missing",
            dir.display()
        ));
        // Drop the old watcher first: at most one inotify instance is held at a time.
        self.source = Source::NotLooked;
        self.source = Source::Unavailable {
            reason: why,
            watch: crate::watch::watch_for_return(dir, tx),
        };
        Check::Lost
    }

    /// The `Target::Recheck` timer: the fallback re-check, and where watching an unavailable
    /// directory's parents is tried again when none could be watched (never on every
    /// `check_source`, which runs for every missing file).
    pub(super) fn recheck_source(&mut self) {
        self.look_at_source(false, AfterLook::Recheck);
    }

    /// What a look was asked for, now that `check_source` found `check`.
    pub(super) fn after_look(&mut self, check: Check, then: AfterLook) {
        match then {
            AfterLook::Nothing => {}
            AfterLook::Rescan => match check {
                Check::Unchanged => {
                    self.rescan_dir();
                }
                // A listing still owed must not be forgotten because the look failed too.
                Check::Unsure => {
                    let delay = super::back_off(self.rescan_retry);
                    self.rescan_retry = Some(delay);
                    self.schedule(delay, Target::Rescan);
                }
                // Re-armed: rescanned already; lost: rescanned when it is back.
                Check::Rearmed | Check::Lost => {}
            },
            AfterLook::Recheck => {
                if let (Source::Unavailable { watch, .. }, Some(tx)) =
                    (&mut self.source, &self.hint_tx)
                    && watch.is_none()
                {
                    *watch = crate::watch::watch_for_return(&self.layout.manifests, tx.clone());
                }
            }
        }
    }

    /// The fallback re-check, every `watch.recheckInterval` (0 turns it off).
    pub(super) fn recheck_source_later(&mut self) {
        let every = self.cfg.watch.recheck_interval;
        if !every.is_zero() {
            self.schedule(every, Target::Recheck);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use crate::config::Config;
    use crate::daemon::testing::{daemon_in, job};

    fn id(ino: u64) -> DirId {
        DirId {
            dev: 1,
            ino,
            born: None,
        }
    }

    #[test]
    fn the_decision_table() {
        let (a, b) = (id(1), id(2));
        let dir = |i: &DirId| Look::Dir(i.clone());
        let gone = |why: &str| Look::Gone(why.into());
        let unsure = Look::Unsure("Too many open files (os error 24)".into());
        let cases = [
            // A passing error is never a verdict: not on a watched directory, not at the first
            // look, not while unavailable, not on SIGHUP.
            (Was::Watching(&a), &unsure, false, Step::Retry),
            (Was::Watching(&a), &unsure, true, Step::Retry),
            (Was::NotLooked, &unsure, true, Step::Retry),
            (Was::Unavailable("gone"), &unsure, false, Step::Retry),
            (Was::Watching(&a), &dir(&a), false, Step::Keep),
            (Was::Watching(&a), &dir(&a), true, Step::Arm),
            (Was::Watching(&a), &dir(&b), false, Step::Arm),
            (Was::NotLooked, &dir(&a), false, Step::Arm),
            (Was::Unavailable("gone"), &dir(&a), false, Step::Arm),
            (Was::Watching(&a), &gone("gone"), false, Step::Lose),
            (Was::NotLooked, &gone("gone"), false, Step::Lose),
            // The same reason builds nothing, whether or not its return could be watched.
            (
                Was::Unavailable("gone"),
                &gone("gone"),
                false,
                Step::StillGone,
            ),
            (Was::Unavailable("gone"), &gone("other"), false, Step::Lose),
            (Was::Unavailable("gone"), &gone("gone"), true, Step::Lose),
        ];
        for (was, look, force, want) in cases {
            assert_eq!(
                step(was, look, force),
                want,
                "{was:?} {look:?} force={force}"
            );
        }
    }

    #[test]
    fn looks_classify_errors() {
        let root = tempfile::tempdir().unwrap();
        let p = |n: &str| root.path().join(n);
        assert!(matches!(Look::at(root.path()), Look::Dir(_)));
        assert!(matches!(Look::at(&p("none")), Look::Gone(_)));
        std::fs::write(p("file"), "").unwrap();
        assert_eq!(Look::at(&p("file")), Look::Gone("not a directory".into()));
        std::os::unix::fs::symlink("loop", p("loop")).unwrap();
        assert!(matches!(Look::at(&p("loop")), Look::Gone(_)));
        let emfile = std::io::Error::from_raw_os_error(nix::libc::EMFILE);
        assert!(matches!(Look::failed(&emfile), Look::Unsure(_)));
        let eacces = std::io::Error::from_raw_os_error(nix::libc::EACCES);
        assert!(matches!(Look::failed(&eacces), Look::Gone(_)));
    }

    /// The path is replaced between arming the watch (on A) and looking again (B): arming is
    /// tried again, so the watch and the id are both B's.
    #[tokio::test]
    async fn a_path_replaced_while_arming_is_armed_again() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        let Look::Dir(first) = Look::at(&dir) else {
            panic!("no directory")
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut arms = 0;
        let armed = arm_stable(
            first.clone(),
            || Look::at(&dir),
            || {
                arms += 1;
                let w = crate::watch::watch(&dir, tx.clone());
                if arms == 1 {
                    let b = root.path().join("b");
                    std::fs::create_dir(&b).unwrap();
                    std::fs::rename(&dir, root.path().join("a.old")).unwrap();
                    std::fs::rename(&b, &dir).unwrap();
                }
                w
            },
        );
        let Armed::Stable(got, _watch) = armed else {
            panic!("not armed")
        };
        assert_eq!(arms, 2);
        assert_ne!(got, first);
        assert_eq!(Look::at(&dir), Look::Dir(got));
        while rx.try_recv().is_ok() {}
        // The watch is on the directory the path leads to now.
        let file = dir.join("x.yaml");
        std::fs::write(&file, "x").unwrap();
        let hint = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match rx.recv().await {
                    Some(Hint::Path(p)) => return Some(p),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        assert_eq!(hint, Some(file));
    }

    #[test]
    fn arming_gives_up_on_a_path_replaced_every_time() {
        let mut n = 0;
        let armed = arm_stable(
            id(0),
            || {
                n += 1;
                Look::Dir(id(n))
            },
            || Ok::<(), ()>(()),
        );
        assert!(matches!(armed, Armed::Unstable), "{armed:?}");
        assert_eq!(n, ARM_TRIES as u64);
    }

    #[test]
    fn back_off_doubles_to_the_cap() {
        let mut d = None;
        let mut seen = Vec::new();
        for _ in 0..9 {
            let next = super::super::back_off(d);
            seen.push(next.as_millis());
            d = Some(next);
        }
        assert_eq!(seen, [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000]);
    }

    /// A running daemon (without its loop) over `root/manifests`, watching it, with `j.yaml`
    /// applied and then removed from the disk.
    fn daemon_with_a_job(
        root: &Path,
    ) -> (Daemon, PathBuf, tokio::sync::mpsc::UnboundedReceiver<Hint>) {
        let (mut d, _, _) = daemon_in(root, Config::default());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        d.hint_tx = Some(tx);
        assert_eq!(d.check_source(true), Check::Rearmed);
        let path = d.layout.manifests.join("j.yaml");
        d.apply_text(&path, job("j", "Never", "true", ""), true);
        assert!(d.world.has_job(&("default".into(), "j".into())));
        (d, path, rx)
    }

    fn has_job(d: &Daemon) -> bool {
        d.world.has_job(&("default".into(), "j".into()))
    }

    fn removal_pending(d: &Daemon, path: &Path) -> bool {
        d.timer_index
            .contains_key(&Target::Removal(path.to_path_buf()))
    }

    #[tokio::test]
    async fn a_confirmed_removal_waits_again_when_the_directory_was_just_replaced() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, path, _rx) = daemon_with_a_job(root.path());
        // Replaced by an empty directory; the watch has not told the daemon yet.
        std::fs::rename(&d.layout.manifests, root.path().join("old")).unwrap();
        std::fs::create_dir(&d.layout.manifests).unwrap();
        d.confirm_removal(&path);
        assert!(has_job(&d), "deleted at once in a directory just replaced");
        assert!(removal_pending(&d, &path), "on a fresh grace timer");
        assert!(matches!(d.source, Source::Watching { .. }));
        // The grace passes with the file still missing: now it goes.
        d.confirm_removal(&path);
        assert!(!has_job(&d));
    }

    /// ELOOP on the directory part of the path reads as an `Ignored` entry: its Jobs stay.
    #[tokio::test]
    async fn a_confirmed_ignored_entry_deletes_nothing_while_the_directory_is_unavailable() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, path, _rx) = daemon_with_a_job(root.path());
        std::fs::rename(&d.layout.manifests, root.path().join("old")).unwrap();
        std::os::unix::fs::symlink("manifests", &d.layout.manifests).unwrap();
        assert!(matches!(
            crate::watch::read_entry(&path),
            crate::watch::Entry::Ignored(_)
        ));
        d.confirm_removal(&path);
        assert!(has_job(&d), "deleted through an unavailable directory");
        assert!(matches!(d.source, Source::Unavailable { .. }));
    }

    #[tokio::test]
    async fn still_unavailable_for_the_same_reason_builds_no_watcher() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, _path, _rx) = daemon_with_a_job(root.path());
        // The directory and its parent go: no parent to watch for its return.
        let parent = root.path().join("p");
        std::fs::create_dir(&parent).unwrap();
        d.layout.manifests = parent.join("manifests");
        std::fs::remove_dir(&parent).unwrap();
        assert_eq!(d.check_source(false), Check::Lost);
        assert!(matches!(d.source, Source::Unavailable { watch: None, .. }));
        // Once the parent is back, only the Recheck timer watches it again.
        std::fs::create_dir(&parent).unwrap();
        assert_eq!(d.check_source(false), Check::Lost);
        assert!(matches!(d.source, Source::Unavailable { watch: None, .. }));
        d.recheck_source();
        assert!(matches!(
            d.source,
            Source::Unavailable { watch: Some(_), .. }
        ));
    }

    #[tokio::test]
    async fn a_name_that_is_not_utf8_is_listed_as_ignored() {
        use std::os::unix::ffi::OsStrExt;
        let root = tempfile::tempdir().unwrap();
        let (mut d, _path, _rx) = daemon_with_a_job(root.path());
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.yaml");
        let odd = d.layout.manifests.join(name);
        std::fs::write(&odd, job("j", "Never", "true", "")).unwrap();
        assert_eq!(
            crate::watch::scan(&d.layout.manifests).unwrap(),
            std::slice::from_ref(&odd)
        );
        d.rescan();
        let m = d.world.manifests.get(&odd).expect("listed");
        assert_eq!(m.file.state, crate::api::ManifestState::Ignored);
        assert_eq!(m.file.message.as_deref(), Some(crate::watch::NOT_UTF8_NAME));
        assert!(m.defined(crate::api::Kind::Job).is_empty());
    }
}
