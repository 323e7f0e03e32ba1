//! The log spool as a whole: finding, measuring and removing pod log directories
//! (`<logs_root>/pods/<ns>_<pod>_<uid>/`), for the retention of deleted pods' logs.
//!
//! Blocking `std::fs` calls that walk directories: run them on the blocking pool, never on the
//! daemon's loop. Nothing here decides what goes (`controller::retention` does).

use std::collections::HashSet;
use std::io;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use jiff::Timestamp;

/// `<logs_root>/pods/<ns>_<pod>_<uid>`, or `None` if those do not make one plain directory
/// name: the path comes from a stored record, and must never climb out of the spool.
pub fn pod_dir(logs_root: &Path, namespace: &str, name: &str, uid: &str) -> Option<PathBuf> {
    let dir = format!("{namespace}_{name}_{uid}");
    let mut parts = Path::new(&dir).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) if parse_dir_name(&dir).is_some() => {
            Some(logs_root.join("pods").join(dir))
        }
        _ => None,
    }
}

/// `(namespace, name, uid)` of a pod log directory's name. Namespaces and pod names are DNS
/// names and uids hex with dashes, so none holds an `_`.
pub fn parse_dir_name(dir: &str) -> Option<(&str, &str, &str)> {
    let mut parts = dir.split('_');
    let (ns, name, uid) = (parts.next()?, parts.next()?, parts.next()?);
    let fine = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains('/');
    (parts.next().is_none() && fine(ns) && fine(name) && fine(uid)).then_some((ns, name, uid))
}

/// The bytes of the files under `dir` (their lengths, as `du --apparent-size`), `None` when
/// `dir` does not exist. Symlinks are counted as themselves, never followed.
pub fn measure(dir: &Path) -> anyhow::Result<Option<u64>> {
    Ok(measure_dated(dir)?.map(|(bytes, _)| bytes))
}

/// [`measure`], with the latest modification time of a file under `dir` (when its logs were
/// last written; the directory's own when it holds no file).
pub fn measure_dated(dir: &Path) -> anyhow::Result<Option<(u64, Timestamp)>> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("measuring {}", dir.display())),
        Ok(_) => {}
    }
    let mut total = 0u64;
    let mut latest: Option<std::time::SystemTime> = None;
    let mut dir_time = None;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            // Gone meanwhile: nothing to count.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("measuring {}", path.display())),
        };
        if !meta.is_dir() {
            total = total.saturating_add(meta.len());
            if let Ok(t) = meta.modified() {
                latest = latest.max(Some(t));
            }
            continue;
        }
        if path == dir {
            dir_time = meta.modified().ok();
        }
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", path.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", path.display()))?;
            todo.push(entry.path());
        }
    }
    let when = latest
        .or(dir_time)
        .and_then(|t| Timestamp::try_from(t).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH);
    Ok(Some((total, when)))
}

/// Removes a pod's log directory and everything in it. Already gone is done.
pub fn remove(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.with_context(|| format!("removing {}", dir.display())),
    }
}

/// A pod log directory whose uid nobody knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The directory's modification time: the last time a container's directory appeared in
    /// it, which is as close as the spool comes to when the pod ended.
    pub modified: Timestamp,
    pub bytes: u64,
    /// When its logs were last written (the latest modification time of a file in it).
    pub written: Timestamp,
}

/// Every pod log directory in the spool, measured: for the spool cap (`logs.spoolMaxSize`).
pub fn survey(logs_root: &Path) -> anyhow::Result<Vec<Found>> {
    pod_dirs(logs_root, &HashSet::new())
}

/// The pod log directories in the spool whose uid is not in `known`, measured. A missing
/// spool has none; names that are not `<ns>_<pod>_<uid>` directories are left alone.
pub fn unknown_dirs(logs_root: &Path, known: &HashSet<String>) -> anyhow::Result<Vec<Found>> {
    pod_dirs(logs_root, known)
}

fn pod_dirs(logs_root: &Path, known: &HashSet<String>) -> anyhow::Result<Vec<Found>> {
    let pods = logs_root.join("pods");
    let entries = match std::fs::read_dir(&pods) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.with_context(|| format!("listing {}", pods.display()))?,
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", pods.display()))?;
        let file_name = entry.file_name();
        let Some((namespace, name, uid)) = file_name.to_str().and_then(parse_dir_name) else {
            continue;
        };
        if known.contains(uid) {
            continue;
        }
        let path = entry.path();
        let meta = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            other => other.with_context(|| format!("looking at {}", path.display()))?,
        };
        if !meta.is_dir() {
            continue;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| Timestamp::try_from(t).ok())
            .with_context(|| format!("reading the modification time of {}", path.display()))?;
        let Some((bytes, written)) = measure_dated(&path)? else {
            continue;
        };
        found.push(Found {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            modified,
            bytes,
            written,
        });
    }
    found.sort_by(|a, b| a.uid.cmp(&b.uid));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: usize) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![b'x'; bytes]).unwrap();
    }

    #[test]
    fn pod_dirs_stay_inside_the_spool() {
        let root = Path::new("/logs");
        assert_eq!(
            pod_dir(root, "default", "pi-abcde", "u-1"),
            Some(PathBuf::from("/logs/pods/default_pi-abcde_u-1"))
        );
        for (ns, name, uid) in [
            ("..", "x", "u"),
            ("a/b", "x", "u"),
            ("ns", "", "u"),
            ("ns", "x", "u_v"),
            ("ns", "..", "u"),
        ] {
            assert_eq!(pod_dir(root, ns, name, uid), None, "{ns} {name} {uid}");
        }
        assert_eq!(
            parse_dir_name("kube-system_web-1.a_0f-3"),
            Some(("kube-system", "web-1.a", "0f-3"))
        );
        assert_eq!(parse_dir_name("no-uid_here"), None);
        assert_eq!(parse_dir_name("a_b_c_d"), None);
    }

    #[test]
    fn measures_files_without_following_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pods/default_p_u1");
        write(&dir.join("main/0.log"), 100);
        write(&dir.join("main/1.log"), 50);
        write(&dir.join("side/0.log"), 7);
        let outside = tmp.path().join("big");
        write(&outside, 10_000);
        std::os::unix::fs::symlink(&outside, dir.join("side/link")).unwrap();
        let link_len = std::fs::symlink_metadata(dir.join("side/link"))
            .unwrap()
            .len();
        assert_eq!(measure(&dir).unwrap(), Some(157 + link_len));
        assert_eq!(measure(&tmp.path().join("pods/none")).unwrap(), None);
    }

    #[test]
    fn finds_unknown_pod_dirs_and_removes_them_whole() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            unknown_dirs(tmp.path(), &HashSet::new())
                .unwrap()
                .is_empty(),
            "no spool yet"
        );
        let pods = tmp.path().join("pods");
        write(&pods.join("default_live_u-live/main/0.log"), 10);
        write(&pods.join("default_gone_u-gone/main/0.log"), 20);
        write(&pods.join("not-a-pod-dir/x.log"), 30);
        write(&pods.join("default_file_u-file"), 40);
        let known = HashSet::from(["u-live".to_string()]);
        let found = unknown_dirs(tmp.path(), &known).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let gone = &found[0];
        assert_eq!(
            (
                gone.namespace.as_str(),
                gone.name.as_str(),
                gone.uid.as_str()
            ),
            ("default", "gone", "u-gone")
        );
        assert_eq!(gone.bytes, 20);
        let mtime = std::fs::metadata(pods.join("default_gone_u-gone"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(gone.modified, Timestamp::try_from(mtime).unwrap());

        let dir = pod_dir(tmp.path(), "default", "gone", "u-gone").unwrap();
        remove(&dir).unwrap();
        assert!(!dir.exists());
        remove(&dir).unwrap();
        assert!(pods.join("default_live_u-live/main/0.log").exists());
    }
}
