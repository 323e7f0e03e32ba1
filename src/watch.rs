//! Directory watching: turns inotify events into "look at this path again" hints.
//!
//! Level-triggered on purpose: an event kind is never trusted to say what happened. We only
//! react once a file is complete — closed after writing, renamed into or out of the
//! directory, or removed — so there is no polling and no fixed debounce delay; the daemon then
//! re-reads the file and compares it with what it applied. Dotfiles (including atomic-save
//! temporaries like `.job.yaml.tmp`) and editor leftovers (`*~`, `*.swp`, `#*#`, vim's
//! `4913`) are ignored. An inotify queue overflow or watcher error asks for a full rescan.

use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// This path may have been created, changed or removed.
    Path(PathBuf),
    /// Events were lost: compare the whole directory.
    Rescan,
}

/// Files jobvisor reads from the manifests directory.
pub fn is_manifest_name(name: &str) -> bool {
    let editor_leftover = name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || (name.starts_with('#') && name.ends_with('#'))
        || name == "4913";
    !editor_leftover
        && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
}

fn is_manifest_path(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(is_manifest_name)
}

/// The manifest files in `dir` now, sorted (so the first-seen file wins a name clash).
pub fn scan(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // Regular files only (symlinks followed): a FIFO or device would block the reader.
        let regular = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file());
        if is_manifest_path(&entry.path()) && regular {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Reads a manifest file, at most one byte past the size limit so an oversized file is
/// reported rather than silently cut.
pub fn read_manifest(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking open and a check on the open file: a FIFO named `x.yaml` must not hang us.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    file.take(crate::manifest::MAX_FILE_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Reads and loads a file (the CLI's `validate` and `apply`); an I/O error becomes the
/// report's one error.
pub fn load_path(path: &Path) -> crate::manifest::FileReport {
    match read_manifest(path) {
        Ok(text) => crate::manifest::load(path, &text),
        Err(e) => crate::manifest::FileReport {
            errors: vec![format!("{}: {e}", path.display())],
            ..Default::default()
        },
    }
}

/// Keeps the inotify watch alive; dropping it stops watching.
pub struct DirWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `dir` (not recursively) and sends hints to `tx`.
pub fn watch(dir: &Path, tx: UnboundedSender<Hint>) -> notify::Result<DirWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let hints = match res {
            Ok(event) => hints_for(&event),
            Err(e) => {
                tracing::warn!(error = %e, "manifest watcher error; rescanning");
                vec![Hint::Rescan]
            }
        };
        for h in hints {
            let _ = tx.send(h);
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(DirWatcher { _watcher: watcher })
}

fn hints_for(event: &notify::Event) -> Vec<Hint> {
    if event.need_rescan() {
        return vec![Hint::Rescan];
    }
    let complete = matches!(
        event.kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_)
    );
    if !complete {
        return Vec::new();
    }
    event
        .paths
        .iter()
        .filter(|p| is_manifest_path(p))
        .map(|p| Hint::Path(p.clone()))
        .collect()
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
}
