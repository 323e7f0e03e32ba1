//! Directory watching: turns inotify events into "look at this path again" hints.
//!
//! Level-triggered on purpose: an event kind is never trusted to say what happened. We only
//! react once a file is complete — closed after writing, renamed into or out of the
//! directory, or removed — so there is no polling and no fixed debounce delay; the daemon then
//! re-reads the file and compares it with what it applied. Entries that are complete the moment
//! they appear (a FIFO, directory, socket or symlink named like a manifest) are reported when
//! created, so they can be listed as `Ignored`. Dotfiles (including atomic-save temporaries
//! like `.job.yaml.tmp`) and editor leftovers (`*~`, `*.swp`, `#*#`, vim's `4913`) are ignored.
//! An inotify queue overflow or watcher error asks for a full rescan.
//!
//! The directory's parents are watched too (non-recursively), so that removing, re-creating
//! or re-pointing the directory (or a symlink to it) asks the daemon to check what the path
//! leads to now ([`Hint::Recheck`]): an inotify watch follows an inode, not a path.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// This path may have been created, changed or removed.
    Path(PathBuf),
    /// Events were lost: compare the whole directory.
    Rescan,
    /// The directory itself, or its entry in a parent, changed: check what the path leads to.
    Recheck,
}

/// Files jobvisor reads from the manifests directory.
pub fn is_manifest_name(name: &str) -> bool {
    is_manifest_bytes(name.as_bytes())
}

/// The same, on the name's bytes: a name that is not UTF-8 but ends in `.yaml` is listed too
/// (as `Ignored`, see [`NOT_UTF8_NAME`]), never skipped silently.
fn is_manifest_bytes(name: &[u8]) -> bool {
    let editor_leftover = name.starts_with(b".")
        || name.ends_with(b"~")
        || name.ends_with(b".swp")
        || (name.starts_with(b"#") && name.ends_with(b"#"))
        || name == b"4913";
    !editor_leftover
        && (name.ends_with(b".yaml") || name.ends_with(b".yml") || name.ends_with(b".json"))
}

fn is_manifest_path(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    path.file_name()
        .is_some_and(|n| is_manifest_bytes(n.as_bytes()))
}

/// Why an entry named like a manifest, but not in UTF-8, is not read: its name could not be
/// shown, stored or referred to faithfully.
pub const NOT_UTF8_NAME: &str = "file name is not valid UTF-8";

/// Every entry in `dir` named like a manifest now, whatever it is (a FIFO or dangling symlink
/// is reported as `Ignored`, never skipped silently), sorted so the first-seen file wins a
/// name clash.
pub fn scan(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if is_manifest_path(&entry.path()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// What a manifest-named entry holds now.
#[derive(Debug)]
pub enum Entry {
    /// A regular file (or a symlink to one) and its text.
    Text(String),
    /// Nothing by that name.
    Missing,
    /// Not something jobvisor reads (FIFO, directory, dangling symlink…): why.
    Ignored(String),
    /// It can never be a manifest as it is (invalid UTF-8, permission denied…): the message,
    /// naming the file.
    Invalid(String),
    /// Reading failed for a reason that passes (fds exhausted, EIO…): try again later.
    Transient(std::io::Error),
}

/// How an I/O error while reading a manifest is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The entry (or a directory on its path) is not there.
    Missing,
    /// A symlink loop.
    Loop,
    /// The system, not the file: out of fds or memory, an I/O error, an interrupted call.
    /// Retried; never a verdict on the file.
    Transient,
    /// Anything else (permission denied, name too long…): reported as the file's error.
    Permanent,
}

/// Pure: the class of an I/O error, by errno where there is one.
pub fn classify(e: &std::io::Error) -> ErrorClass {
    use nix::libc;
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => ErrorClass::Missing,
        Some(libc::ELOOP) => ErrorClass::Loop,
        Some(
            libc::EMFILE
            | libc::ENFILE
            | libc::EIO
            | libc::ENOMEM
            | libc::EAGAIN
            | libc::EINTR
            | libc::ENOBUFS,
        ) => ErrorClass::Transient,
        Some(_) => ErrorClass::Permanent,
        None => match e.kind() {
            ErrorKind::NotFound => ErrorClass::Missing,
            ErrorKind::Interrupted | ErrorKind::OutOfMemory | ErrorKind::WouldBlock => {
                ErrorClass::Transient
            }
            _ => ErrorClass::Permanent,
        },
    }
}

/// `not a regular file: a FIFO`, with what a symlink points to.
fn not_regular(path: &Path, kind: std::fs::FileType) -> String {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a file"
    };
    match std::fs::read_link(path) {
        Ok(target) => format!(
            "not a regular file: a symlink to {what} ({})",
            target.display()
        ),
        Err(_) => format!("not a regular file: {what}"),
    }
}

/// An error opening or inspecting `path`, as what it means for the entry.
fn open_error(path: &Path, e: std::io::Error) -> Entry {
    match classify(&e) {
        ErrorClass::Missing => match std::fs::read_link(path) {
            Ok(target) => Entry::Ignored(format!("dangling symlink to {}", target.display())),
            Err(_) => Entry::Missing,
        },
        ErrorClass::Loop => Entry::Ignored("too many levels of symbolic links".into()),
        ErrorClass::Transient => Entry::Transient(e),
        ErrorClass::Permanent => Entry::Invalid(format!("{}: {e}", path.display())),
    }
}

/// Line and column (1-based, the column in characters as the parser counts them) of byte
/// `at`, given that `bytes[..at]` is valid UTF-8.
pub fn line_col(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, col)
}

/// Reads a manifest-named entry, at most one byte past the size limit so an oversized file is
/// reported rather than silently cut.
pub fn read_entry(path: &Path) -> Entry {
    read_entry_as(path, None)
}

/// [`read_entry`] by a daemon whose `trust` policy (`trust.rs`, a root daemon's) refuses a
/// file others could have written: its path judged before anything is opened through it, and
/// the file actually opened judged by its `fstat`.
pub fn read_entry_as(path: &Path, trust: Option<&crate::trust::Policy>) -> Entry {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Look before opening: opening a FIFO, socket or device must never block or have effects.
    // A root daemon also judges the path first: once every link and directory on it is
    // trusted, nobody else can re-point it at a device between this look and the open.
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return Entry::Ignored(not_regular(path, m.file_type())),
        Ok(m) => match trust.map(|t| t.check(path, &m)) {
            None | Some(Ok(Ok(()))) => {}
            Some(Ok(Err(why))) => {
                return Entry::Invalid(format!("{}: refused: {why}", path.display()));
            }
            Some(Err(e)) => return open_error(path, e),
        },
        Err(e) => return open_error(path, e),
    }
    // Non-blocking open and a check on the open file: it may have been replaced meanwhile.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => return open_error(path, e),
    };
    match file.metadata() {
        Ok(m) if !m.is_file() => return Entry::Ignored(not_regular(path, m.file_type())),
        Ok(m) => match trust.map(|t| t.check(path, &m)) {
            None | Some(Ok(Ok(()))) => {}
            Some(Ok(Err(why))) => {
                return Entry::Invalid(format!("{}: refused: {why}", path.display()));
            }
            Some(Err(e)) => return open_error(path, e),
        },
        Err(e) => return open_error(path, e),
    }
    let mut bytes = Vec::new();
    if let Err(e) = file
        .take(crate::manifest::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
    {
        return match classify(&e) {
            ErrorClass::Transient => Entry::Transient(e),
            _ => Entry::Invalid(format!("{}: {e}", path.display())),
        };
    }
    match String::from_utf8(bytes) {
        Ok(text) => Entry::Text(text),
        Err(e) => {
            let (line, col) = line_col(e.as_bytes(), e.utf8_error().valid_up_to());
            Entry::Invalid(format!("{}:{line}:{col}: invalid UTF-8", path.display()))
        }
    }
}

/// Reads and loads a file (the CLI's `validate` and `apply`); a reading problem becomes the
/// report's one error.
pub fn load_path(
    path: &Path,
    images: Option<&crate::images::Images>,
) -> crate::manifest::FileReport {
    let error = match read_entry(path) {
        Entry::Text(text) => return crate::manifest::load(path, &text, images),
        Entry::Missing => format!(
            "{}: {}",
            path.display(),
            std::io::Error::from(ErrorKind::NotFound)
        ),
        Entry::Ignored(why) => format!("{}: {why}", path.display()),
        Entry::Invalid(message) => message,
        Entry::Transient(e) => format!("{}: {e}", path.display()),
    };
    crate::manifest::FileReport {
        errors: vec![error],
        ..Default::default()
    }
}

/// Keeps the inotify watches alive; dropping it stops watching.
pub struct DirWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// What one watcher looks at: the manifests directory (when it is there) and the entries that
/// lead to it in its parents.
#[derive(Debug, Clone)]
struct Scope {
    dir: PathBuf,
    /// (parent, name of the entry in it that leads to the directory): the configured path's
    /// and, when a symlink is involved, its canonical target's.
    parents: Vec<(PathBuf, std::ffi::OsString)>,
}

impl Scope {
    fn new(dir: &Path) -> Scope {
        let mut parents = Vec::new();
        let canonical = std::fs::canonicalize(dir).ok();
        for path in std::iter::once(dir).chain(canonical.as_deref()) {
            if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
                let entry = (parent.to_path_buf(), name.to_os_string());
                if !parent.as_os_str().is_empty() && !parents.contains(&entry) {
                    parents.push(entry);
                }
            }
        }
        Scope {
            dir: dir.to_path_buf(),
            parents,
        }
    }

    fn hints(&self, event: &notify::Event) -> Vec<Hint> {
        if event.need_rescan() {
            return vec![Hint::Rescan];
        }
        let mut hints = Vec::new();
        for p in &event.paths {
            let leads_to_dir = p == &self.dir
                || self.parents.iter().any(|(parent, name)| {
                    p == parent || (p.parent() == Some(parent) && p.file_name() == Some(name))
                });
            if leads_to_dir {
                if p == &self.dir
                    && matches!(event.kind, EventKind::Modify(ModifyKind::Metadata(_)))
                {
                    // chmod/chown of the directory itself: a root daemon's trust in every file
                    // in it may have changed (`trust.rs`), so `chmod go-w` on the directory has
                    // the files it refused read again; a rescan also checks where it leads.
                    if !hints.contains(&Hint::Rescan) {
                        hints.push(Hint::Rescan);
                    }
                // Opening the directory (every rescan does) is no news about where it is.
                } else if !matches!(event.kind, EventKind::Access(_))
                    && !hints.contains(&Hint::Recheck)
                {
                    hints.push(Hint::Recheck);
                }
            } else if p.parent() == Some(self.dir.as_path())
                && is_manifest_path(p)
                && complete(&event.kind, p)
            {
                hints.push(Hint::Path(p.clone()));
            }
        }
        hints
    }
}

/// Whether an event means the entry is ready to be looked at.
fn complete(kind: &EventKind, path: &Path) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Modify(ModifyKind::Name(_))
        | EventKind::Remove(_) => true,
        // chmod/chown (inotify's IN_ATTRIB): whether a root daemon trusts the file may have
        // changed (`trust.rs`), so `chmod go-w` is enough to have a refused file read again.
        EventKind::Modify(ModifyKind::Metadata(_)) => true,
        // A regular file is complete only when closed after writing (reading it now could
        // apply half of it); anything else is complete the moment it exists, and so is a
        // hard link to a file that exists elsewhere (`ln`, `cp -l`: a second name, no write,
        // so no close-after-write ever comes). One lstat, in the watcher's thread, and only
        // for creations.
        EventKind::Create(CreateKind::Folder) => true,
        EventKind::Create(_) => {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file() || m.nlink() > 1)
        }
        _ => false,
    }
}

/// Watches `dir` (not recursively) and the entries leading to it in its parents, and sends
/// hints to `tx`. Fails when `dir` cannot be watched; a parent that cannot be watched only
/// leaves the daemon's periodic re-check to notice changes there. Parents first: a path
/// replaced after the directory's watch is armed is then reported by a parent's.
pub fn watch(dir: &Path, tx: UnboundedSender<Hint>) -> notify::Result<DirWatcher> {
    let (mut watcher, scope) = watcher_for(dir, tx)?;
    watch_parents(&mut watcher, &scope);
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(DirWatcher { _watcher: watcher })
}

/// While the directory is missing: watches only its parents, so its return is noticed at
/// once. `None` when no parent can be watched either.
pub fn watch_for_return(dir: &Path, tx: UnboundedSender<Hint>) -> Option<DirWatcher> {
    let (mut watcher, scope) = watcher_for(dir, tx).ok()?;
    (watch_parents(&mut watcher, &scope) > 0).then_some(DirWatcher { _watcher: watcher })
}

fn watcher_for(
    dir: &Path,
    tx: UnboundedSender<Hint>,
) -> notify::Result<(notify::RecommendedWatcher, Scope)> {
    let scope = Scope::new(dir);
    let in_callback = scope.clone();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let hints = match res {
            Ok(event) => in_callback.hints(&event),
            Err(e) => {
                tracing::warn!(error = %e, "manifest watcher error; rescanning");
                vec![Hint::Rescan]
            }
        };
        for h in hints {
            let _ = tx.send(h);
        }
    })?;
    Ok((watcher, scope))
}

fn watch_parents(watcher: &mut notify::RecommendedWatcher, scope: &Scope) -> usize {
    let mut watched = 0;
    for (parent, _) in &scope.parents {
        match watcher.watch(parent, RecursiveMode::NonRecursive) {
            Ok(()) => watched += 1,
            Err(e) => {
                tracing::debug!(dir = %parent.display(), error = %e, "cannot watch a parent of the manifests directory")
            }
        }
    }
    watched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        let cases = [
            ("job.yaml", true),
            ("job.yml", true),
            ("job.json", true),
            ("job.txt", false),
            (".job.yaml", false),
            (".job.yaml.tmp", false),
            ("job.yaml~", false),
            ("job.yaml.swp", false),
            ("#job.yaml#", false),
            ("4913", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_manifest_name(name), want, "{name}");
        }
    }

    #[test]
    fn error_classes_table() {
        use nix::libc;
        let os = std::io::Error::from_raw_os_error;
        let cases = [
            (os(libc::ENOENT), ErrorClass::Missing),
            (os(libc::ENOTDIR), ErrorClass::Missing),
            (os(libc::ELOOP), ErrorClass::Loop),
            (os(libc::EMFILE), ErrorClass::Transient),
            (os(libc::ENFILE), ErrorClass::Transient),
            (os(libc::EIO), ErrorClass::Transient),
            (os(libc::ENOMEM), ErrorClass::Transient),
            (os(libc::EAGAIN), ErrorClass::Transient),
            (os(libc::EINTR), ErrorClass::Transient),
            (os(libc::ENOBUFS), ErrorClass::Transient),
            (os(libc::EACCES), ErrorClass::Permanent),
            (os(libc::ENAMETOOLONG), ErrorClass::Permanent),
            (ErrorKind::Interrupted.into(), ErrorClass::Transient),
            (ErrorKind::OutOfMemory.into(), ErrorClass::Transient),
            (ErrorKind::NotFound.into(), ErrorClass::Missing),
            (ErrorKind::InvalidData.into(), ErrorClass::Permanent),
        ];
        for (e, want) in cases {
            assert_eq!(classify(&e), want, "{e}");
        }
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col(b"", 0), (1, 1));
        assert_eq!(line_col(b"ab\ncd\n  x", 8), (3, 3));
        // Columns count characters, as the parser's do: "é" is two bytes, one column.
        assert_eq!(line_col("a: é".as_bytes(), 5), (1, 5));
    }

    #[test]
    fn entries_that_are_not_regular_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        nix::unistd::mkfifo(&p("fifo.yaml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::create_dir(p("dir.yaml")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", p("dangling.yaml")).unwrap();
        std::os::unix::fs::symlink("loop.yaml", p("loop.yaml")).unwrap();
        std::os::unix::fs::symlink(dir.path(), p("todir.yaml")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(p("sock.yaml")).unwrap();
        std::fs::write(p("utf8.yaml"), b"a: 1\nb: \xc3\xa9\xff\n").unwrap();
        std::fs::write(p("ok.yaml"), "a: 1\n").unwrap();
        let got = |n: &str| match read_entry(&p(n)) {
            Entry::Text(t) => format!("text {t:?}"),
            Entry::Missing => "missing".into(),
            Entry::Ignored(why) => format!("ignored: {why}"),
            Entry::Invalid(m) => format!("invalid: {m}"),
            Entry::Transient(e) => format!("transient: {e}"),
        };
        assert_eq!(got("fifo.yaml"), "ignored: not a regular file: a FIFO");
        assert_eq!(got("dir.yaml"), "ignored: not a regular file: a directory");
        assert_eq!(got("sock.yaml"), "ignored: not a regular file: a socket");
        assert_eq!(
            got("dangling.yaml"),
            "ignored: dangling symlink to /nonexistent/x"
        );
        assert_eq!(
            got("loop.yaml"),
            "ignored: too many levels of symbolic links"
        );
        assert_eq!(
            got("todir.yaml"),
            format!(
                "ignored: not a regular file: a symlink to a directory ({})",
                dir.path().display()
            )
        );
        assert_eq!(
            got("utf8.yaml"),
            format!("invalid: {}:2:5: invalid UTF-8", p("utf8.yaml").display())
        );
        assert_eq!(got("ok.yaml"), "text \"a: 1\\n\"");
        assert_eq!(got("none.yaml"), "missing");
        // Every one of them is listed, so none is skipped silently.
        assert_eq!(scan(dir.path()).unwrap().len(), 8);
    }

    #[tokio::test]
    async fn removing_and_recreating_the_directory_asks_for_a_recheck() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _w = watch(&dir, tx).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(next(&mut rx).await, Some(Hint::Recheck));
        while rx.try_recv().is_ok() {}
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(next(&mut rx).await, Some(Hint::Recheck));
        // A FIFO is complete when created: hinted without a close-after-write.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _w = watch(&dir, tx).unwrap();
        nix::unistd::mkfifo(&dir.join("p.yaml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(next(&mut rx).await, Some(Hint::Path(dir.join("p.yaml"))));
    }

    #[tokio::test]
    async fn chmod_of_the_directory_asks_for_a_rescan() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _w = watch(&dir, tx).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(next(&mut rx).await, Some(Hint::Rescan));
    }

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Hint>) -> Option<Hint> {
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn close_write_rename_and_remove_give_hints() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _w = watch(dir.path(), tx).unwrap();
        let job = dir.path().join("a.yaml");
        std::fs::write(&job, "x").unwrap();
        assert_eq!(next(&mut rx).await, Some(Hint::Path(job.clone())));
        // A hard link made into the directory is complete at once: no write follows it.
        let outside = tempfile::tempdir().unwrap();
        let original = outside.path().join("l.yaml");
        std::fs::write(&original, "z").unwrap();
        let linked = dir.path().join("l.yaml");
        std::fs::hard_link(&original, &linked).unwrap();
        assert_eq!(next(&mut rx).await, Some(Hint::Path(linked.clone())));
        std::fs::remove_file(&linked).unwrap();
        assert_eq!(next(&mut rx).await, Some(Hint::Path(linked)));
        let tmp = dir.path().join(".b.yaml.tmp");
        std::fs::write(&tmp, "y").unwrap();
        let b = dir.path().join("b.yaml");
        std::fs::rename(&tmp, &b).unwrap();
        assert_eq!(next(&mut rx).await, Some(Hint::Path(b.clone())));
        std::fs::remove_file(&job).unwrap();
        // The rename may report `b.yaml` more than once; skip to the removal.
        loop {
            match next(&mut rx).await {
                Some(Hint::Path(p)) if p == b => continue,
                other => {
                    assert_eq!(other, Some(Hint::Path(job.clone())));
                    break;
                }
            }
        }
        assert_eq!(scan(dir.path()).unwrap(), vec![b]);
    }

    /// A root daemon judges the path before it opens anything through it: a chain with a
    /// link another user could re-point (at a device, whose open may have effects) is
    /// refused without the target ever being opened.
    #[test]
    fn nothing_is_opened_through_an_untrusted_chain() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (lchown)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (root, sub) = (tmp.path().join("m"), tmp.path().join("sub"));
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&sub).unwrap();
        let target = sub.join("t.yaml");
        std::fs::write(&target, "").unwrap();
        let perm = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        for (p, mode) in [(&root, 0o755), (&sub, 0o755), (&target, 0o644)] {
            perm(p, mode);
        }
        // root's link -> uid 1000's link -> a trusted file.
        let hop = sub.join("hop");
        std::os::unix::fs::symlink(&target, &hop).unwrap();
        std::os::unix::fs::lchown(&hop, Some(1000), None).unwrap();
        let entry = root.join("x.yaml");
        std::os::unix::fs::symlink(&hop, &entry).unwrap();

        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx).unwrap();
        watcher.watch(&sub, RecursiveMode::NonRecursive).unwrap();
        let policy = crate::trust::Policy {
            daemon_uid: 0,
            root: root.clone(),
        };
        let read = read_entry_as(&entry, Some(&policy));
        assert!(
            matches!(&read, Entry::Invalid(m) if m.contains("symlink is owned by uid 1000")),
            "{read:?}"
        );
        // A marker after the read: every event before it is the read's.
        perm(&target, 0o640);
        let mut opened = false;
        loop {
            let event = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("the marker's event")
                .unwrap();
            if !event.paths.contains(&target) {
                continue;
            }
            match event.kind {
                EventKind::Access(AccessKind::Open(_)) => opened = true,
                EventKind::Modify(ModifyKind::Metadata(_)) => break,
                _ => {}
            }
        }
        assert!(!opened, "the target was opened before the chain was judged");
    }
}
