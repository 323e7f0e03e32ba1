//! Which manifest files a daemon running as root may run: cron's and sshd's `StrictModes`.
//!
//! A manifest's commands run as the daemon's user. When that user is root, anybody who can
//! change a manifest (or swap it for another) can run anything as root, so a file is read
//! only if nobody but root (or the daemon's own user) can: the opened file is owned by a
//! trusted user and writable by no group or other user, and so is every directory that could
//! swap it. A file that fails is refused with the reason ([`Untrusted`]); it is listed as an
//! `Invalid` manifest and never run (a version read before it failed keeps running, as for
//! any bad edit).
//!
//! What is checked (by [`Policy::check`]), for an entry `ROOT/x.yaml` of the manifests
//! directory `ROOT`:
//! - the file actually opened, by `fstat` of its descriptor (so the target of a symlink, and
//!   never a second look at a path that may have changed meanwhile);
//! - the manifests directory `ROOT` itself (its ancestors are the administrator's choice);
//! - when the entry is a symlink: the owner of every symlink on the way (the entry, each
//!   further hop of a chain, and a symlink named as a directory: a trusted user made each,
//!   since its owner may re-point it where the kernel follows links in sticky directories,
//!   `fs.protected_symlinks=0`), and every directory from the resolved target's parent up
//!   to `ROOT` when the target lies inside it, else up to `/`, along the resolved path and
//!   along the path each link names.
//!
//! A directory writable by group or others is accepted only with the sticky bit (like
//! `/tmp`): others may add entries there but not rename or remove one they do not own, and
//! what lies below it is owner-checked in turn. Only a daemon whose effective uid is 0 checks
//! anything ([`Policy::for_daemon`]): an unprivileged daemon runs commands with no more
//! rights than whoever may write its files already has.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The owner and mode bits of a file or directory, as `stat` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub mode: u32,
}

impl From<&std::fs::Metadata> for Meta {
    fn from(m: &std::fs::Metadata) -> Meta {
        Meta {
            uid: m.uid(),
            mode: m.mode(),
        }
    }
}

/// Who besides the owner may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writers {
    Group,
    Others,
    GroupAndOthers,
}

impl Writers {
    fn of(mode: u32) -> Option<Writers> {
        match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => Some(Writers::GroupAndOthers),
            (true, false) => Some(Writers::Group),
            (false, true) => Some(Writers::Others),
            (false, false) => None,
        }
    }
}

impl std::fmt::Display for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Writers::Group => "group",
            Writers::Others => "others",
            Writers::GroupAndOthers => "group and others",
        })
    }
}

/// Why a manifest file may not be run by a root daemon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error(
        "file is owned by uid {uid}; files run as root must be owned by root and writable only by their owner (chown root)"
    )]
    FileOwner { uid: u32 },
    #[error(
        "file is writable by {writers} (mode {:04o}); files run as root must be owned by root and writable only by their owner (chmod go-w)",
        mode & 0o7777
    )]
    FileWritable { writers: Writers, mode: u32 },
    #[error(
        "symlink is owned by uid {uid}; a symlink to a file run as root must be made by root (chown -h root)"
    )]
    LinkOwner { uid: u32 },
    #[error(
        "directory {} is owned by uid {uid}; the directories of files run as root must be owned by root (chown root {})",
        dir.display(), dir.display()
    )]
    DirOwner { dir: PathBuf, uid: u32 },
    #[error(
        "directory {} is writable by {writers} (mode {:04o}); the directories of files run as root must be writable only by their owner, or sticky (chmod go-w {})",
        dir.display(), mode & 0o7777, dir.display()
    )]
    DirWritable {
        dir: PathBuf,
        writers: Writers,
        mode: u32,
    },
}

/// Pure: may a daemon running as `daemon_uid` run `file`, found through `links` (each
/// symlink's own metadata, when the entry is one: the entry, every further hop of a chain,
/// and every symlink named as a directory on the way) in the directories `dirs`? The first
/// failure, file before links before directories (in the order given).
pub fn trust_verdict(
    daemon_uid: u32,
    file: Meta,
    links: &[Meta],
    dirs: &[(PathBuf, Meta)],
) -> Result<(), Untrusted> {
    let trusted = |uid: u32| uid == 0 || uid == daemon_uid;
    if !trusted(file.uid) {
        return Err(Untrusted::FileOwner { uid: file.uid });
    }
    if let Some(writers) = Writers::of(file.mode) {
        return Err(Untrusted::FileWritable {
            writers,
            mode: file.mode,
        });
    }
    if let Some(link) = links.iter().find(|l| !trusted(l.uid)) {
        return Err(Untrusted::LinkOwner { uid: link.uid });
    }
    for (dir, meta) in dirs {
        if !trusted(meta.uid) {
            return Err(Untrusted::DirOwner {
                dir: dir.clone(),
                uid: meta.uid,
            });
        }
        let sticky = meta.mode & 0o1000 != 0;
        if let Some(writers) = Writers::of(meta.mode)
            && !sticky
        {
            return Err(Untrusted::DirWritable {
                dir: dir.clone(),
                writers,
                mode: meta.mode,
            });
        }
    }
    Ok(())
}

/// The most symlinks one path may pass through (the kernel's `MAXSYMLINKS`): the file was
/// opened through them a moment ago, so a chain is never longer.
const MAX_HOPS: usize = 40;

/// The check a root daemon applies to every manifest it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub daemon_uid: u32,
    /// The manifests directory, as configured (the entries' parent).
    pub root: PathBuf,
}

impl Policy {
    /// The policy of a daemon reading `manifests`: none unless it runs as root.
    pub fn for_daemon(manifests: &Path) -> Option<Policy> {
        let euid = nix::unistd::geteuid();
        euid.is_root().then(|| Policy {
            daemon_uid: euid.as_raw(),
            root: manifests.to_path_buf(),
        })
    }

    /// Checks the entry `path`, whose opened file `fstat` gave `opened`. `Ok(Err(..))`: the
    /// file is refused; `Err`: looking at a directory or the link failed (the caller treats
    /// it as any error reading the file).
    pub fn check(
        &self,
        path: &Path,
        opened: &std::fs::Metadata,
    ) -> std::io::Result<Result<(), Untrusted>> {
        let entry = std::fs::symlink_metadata(path)?;
        let parent = path.parent().unwrap_or(Path::new("/"));
        let mut dirs = vec![(
            parent.to_path_buf(),
            Meta::from(&std::fs::metadata(parent)?),
        )];
        let mut links = Vec::new();
        if entry.file_type().is_symlink() {
            let root = std::fs::canonicalize(&self.root)?;
            let resolved = std::fs::canonicalize(path)?;
            links.push(Meta::from(&entry));
            // Every hop of a chain of links, by the path each names (made absolute against
            // its link's directory): a link made by another user anywhere in the chain could
            // be re-pointed by them.
            let mut chains = vec![resolved];
            let mut hop = path.to_path_buf();
            for _ in 0..MAX_HOPS {
                let dir = hop.parent().unwrap_or(Path::new("/"));
                let named = dir.join(std::fs::read_link(&hop)?);
                chains.push(named.clone());
                let next = std::fs::symlink_metadata(&named)?;
                if !next.file_type().is_symlink() {
                    break;
                }
                links.push(Meta::from(&next));
                hop = named;
            }
            for chain in chains {
                for dir in chain.ancestors().skip(1) {
                    if dir.as_os_str().is_empty() {
                        break;
                    }
                    if !dirs.iter().any(|(d, _)| d == dir) {
                        dirs.push((dir.to_path_buf(), Meta::from(&std::fs::metadata(dir)?)));
                    }
                    if dir == root || dir == self.root {
                        break;
                    }
                    // A directory the path names through a symlink: who made that link.
                    let own = std::fs::symlink_metadata(dir)?;
                    if own.file_type().is_symlink() {
                        links.push(Meta::from(&own));
                    }
                }
            }
        }
        Ok(trust_verdict(
            self.daemon_uid,
            Meta::from(opened),
            &links,
            &dirs,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAEMON: u32 = 0;

    fn m(uid: u32, mode: u32) -> Meta {
        Meta { uid, mode }
    }

    fn dir(path: &str, uid: u32, mode: u32) -> (PathBuf, Meta) {
        (PathBuf::from(path), m(uid, mode))
    }

    #[test]
    fn verdicts() {
        let root_dir = dir("/etc/jobvisor/manifests", 0, 0o40755);
        type Case = (
            &'static str,
            Meta,
            Option<Meta>,
            Vec<(PathBuf, Meta)>,
            Result<(), Untrusted>,
        );
        let cases: Vec<Case> = vec![
            (
                "root 0644 in a root 0755 dir",
                m(0, 0o100644),
                None,
                vec![root_dir.clone()],
                Ok(()),
            ),
            (
                "root 0600",
                m(0, 0o100600),
                None,
                vec![root_dir.clone()],
                Ok(()),
            ),
            (
                "root 0444",
                m(0, 0o100444),
                None,
                vec![root_dir.clone()],
                Ok(()),
            ),
            (
                "setuid bits do not matter",
                m(0, 0o104755),
                None,
                vec![root_dir.clone()],
                Ok(()),
            ),
            (
                "owned by a user",
                m(1000, 0o100644),
                None,
                vec![root_dir.clone()],
                Err(Untrusted::FileOwner { uid: 1000 }),
            ),
            (
                "writable by others",
                m(0, 0o100666),
                None,
                vec![root_dir.clone()],
                Err(Untrusted::FileWritable {
                    writers: Writers::GroupAndOthers,
                    mode: 0o100666,
                }),
            ),
            (
                "writable by group",
                m(0, 0o100664),
                None,
                vec![root_dir.clone()],
                Err(Untrusted::FileWritable {
                    writers: Writers::Group,
                    mode: 0o100664,
                }),
            ),
            (
                "writable by others only",
                m(0, 0o100646),
                None,
                vec![root_dir.clone()],
                Err(Untrusted::FileWritable {
                    writers: Writers::Others,
                    mode: 0o100646,
                }),
            ),
            (
                "a symlink made by a user",
                m(0, 0o100644),
                Some(m(1000, 0o120777)),
                vec![root_dir.clone()],
                Err(Untrusted::LinkOwner { uid: 1000 }),
            ),
            (
                "a symlink made by root (its 0777 mode means nothing)",
                m(0, 0o100644),
                Some(m(0, 0o120777)),
                vec![root_dir.clone()],
                Ok(()),
            ),
            (
                "a directory writable by group",
                m(0, 0o100644),
                None,
                vec![dir("/srv/m", 0, 0o40775)],
                Err(Untrusted::DirWritable {
                    dir: "/srv/m".into(),
                    writers: Writers::Group,
                    mode: 0o40775,
                }),
            ),
            (
                "a directory owned by a user",
                m(0, 0o100644),
                None,
                vec![root_dir.clone(), dir("/home/alice", 1000, 0o40700)],
                Err(Untrusted::DirOwner {
                    dir: "/home/alice".into(),
                    uid: 1000,
                }),
            ),
            (
                "a sticky world-writable directory (/tmp)",
                m(0, 0o100644),
                None,
                vec![root_dir.clone(), dir("/tmp", 0, 0o41777)],
                Ok(()),
            ),
        ];
        for (name, file, link, dirs, want) in cases {
            assert_eq!(
                trust_verdict(DAEMON, file, link.as_slice(), &dirs),
                want,
                "{name}"
            );
        }
    }

    /// The daemon's own user counts as root does; a daemon of uid 998 trusts 998 and 0.
    #[test]
    fn the_daemons_own_user_is_trusted() {
        let d = [dir("/m", 998, 0o40755)];
        assert_eq!(trust_verdict(998, m(998, 0o100644), &[], &d), Ok(()));
        assert_eq!(trust_verdict(998, m(0, 0o100644), &[], &d), Ok(()));
        assert_eq!(
            trust_verdict(998, m(1000, 0o100644), &[], &d),
            Err(Untrusted::FileOwner { uid: 1000 })
        );
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = Untrusted::FileWritable {
            writers: Writers::Others,
            mode: 0o100666,
        };
        assert_eq!(
            e.to_string(),
            "file is writable by others (mode 0666); files run as root must be owned by root and writable only by their owner (chmod go-w)"
        );
        let e = Untrusted::DirWritable {
            dir: "/srv/m".into(),
            writers: Writers::GroupAndOthers,
            mode: 0o40777,
        };
        assert_eq!(
            e.to_string(),
            "directory /srv/m is writable by group and others (mode 0777); the directories of files run as root must be writable only by their owner, or sticky (chmod go-w /srv/m)"
        );
    }

    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn check(policy: &Policy, path: &Path) -> Result<(), Untrusted> {
        let opened = std::fs::File::open(path).unwrap().metadata().unwrap();
        policy.check(path, &opened).unwrap()
    }

    /// A chain of links is judged link by link: a link made by another user further along
    /// the chain (it could re-point it), or named as a directory on the way, is refused.
    #[test]
    fn every_link_of_a_chain_is_owner_checked() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (lchown)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("manifests");
        let elsewhere = tmp.path().join("elsewhere");
        let sub = elsewhere.join("sub");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&sub).unwrap();
        for d in [&root, &elsewhere, &sub] {
            chmod(d, 0o755);
        }
        let policy = Policy {
            daemon_uid: 0,
            root: root.clone(),
        };
        let target = sub.join("t.yaml");
        std::fs::write(&target, "").unwrap();
        chmod(&target, 0o644);
        let user_link = |link: &Path, to: &Path| {
            std::os::unix::fs::symlink(to, link).unwrap();
            std::os::unix::fs::lchown(link, Some(1000), None).unwrap();
        };
        // root's link -> uid 1000's link -> a trusted file.
        let hop = elsewhere.join("hop.yaml");
        user_link(&hop, &target);
        let entry = root.join("x.yaml");
        std::os::unix::fs::symlink(&hop, &entry).unwrap();
        assert_eq!(
            check(&policy, &entry),
            Err(Untrusted::LinkOwner { uid: 1000 })
        );
        // root's link through a directory that is uid 1000's link.
        let dir_link = elsewhere.join("d");
        user_link(&dir_link, &sub);
        let entry = root.join("y.yaml");
        std::os::unix::fs::symlink(dir_link.join("t.yaml"), &entry).unwrap();
        assert_eq!(
            check(&policy, &entry),
            Err(Untrusted::LinkOwner { uid: 1000 })
        );
        // The same chains made by root are fine.
        for l in [&hop, &dir_link] {
            std::os::unix::fs::lchown(l, Some(0), None).unwrap();
        }
        assert_eq!(check(&policy, &root.join("x.yaml")), Ok(()));
        assert_eq!(check(&policy, &entry), Ok(()));
    }

    /// On real files: the opened file, the directory, a symlink's target and its directories.
    /// Ownership is not changed (that needs root), so the modes tell.
    #[test]
    fn checks_the_opened_file_and_the_directories_that_could_swap_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("manifests");
        std::fs::create_dir(&root).unwrap();
        chmod(&root, 0o755);
        let me = nix::unistd::geteuid().as_raw();
        let policy = Policy {
            daemon_uid: me,
            root: root.clone(),
        };
        let file = root.join("x.yaml");
        std::fs::write(&file, "").unwrap();
        chmod(&file, 0o644);
        assert_eq!(check(&policy, &file), Ok(()));
        chmod(&file, 0o666);
        assert!(matches!(
            check(&policy, &file),
            Err(Untrusted::FileWritable { .. })
        ));
        chmod(&file, 0o644);
        chmod(&root, 0o777);
        assert!(matches!(
            check(&policy, &file),
            Err(Untrusted::DirWritable { dir, .. }) if dir == root
        ));
        chmod(&root, 0o755);

        // A symlink to a file elsewhere: the target's mode (fstat), and its directories.
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        chmod(&elsewhere, 0o755);
        let target = elsewhere.join("t.yaml");
        std::fs::write(&target, "").unwrap();
        chmod(&target, 0o644);
        let link = root.join("l.yaml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(check(&policy, &link), Ok(()));
        chmod(&target, 0o646);
        assert!(matches!(
            check(&policy, &link),
            Err(Untrusted::FileWritable {
                writers: Writers::Others,
                ..
            })
        ));
        chmod(&target, 0o644);
        chmod(&elsewhere, 0o757);
        assert!(matches!(
            check(&policy, &link),
            Err(Untrusted::DirWritable { dir, .. }) if dir == elsewhere
        ));
    }
}
