//! Control groups: one per pod and one per container below it, as the kubelet lays them out.
//!
//! **Detection** ([`detect`], pure): from an injectable `/sys/fs/cgroup`-like root and the text
//! of `/proc/self/cgroup`:
//! - pure cgroup v2 (`<root>/cgroup.controllers`): [`CgroupMode::V2`];
//! - hybrid or plain v1 (`<root>/unified` for tracking, v1 `memory`, `cpu`, `cpuacct`, `pids`,
//!   `freezer` hierarchies beside it): [`CgroupMode::Hybrid`], v1 for the controllers;
//! - nothing usable, or `cgroups: none` in the config, or a subtree we may not write (most
//!   unprivileged `--root` runs): [`CgroupMode::None`] with the reason, and the daemon runs
//!   without (see `README.md` for what escapes then).
//!
//! **Layout.** Under systemd (`INVOCATION_ID` set) the daemon's own cgroup is its delegated
//! subtree (`Delegate=yes` in the unit): the daemon moves itself into a `daemon` leaf first
//! (cgroup v2 lets no process live in an inner node that has controllers on) and puts pods
//! beside it. Elsewhere it makes `jobvisor.slice/jobvisor-<hash of the state directory>` (at
//! the v2 root, where controllers can be enabled; below its own cgroup in each v1 hierarchy,
//! so that whatever confines the daemon confines its pods), one per daemon so that two
//! daemons never touch each other's pods. Below the base: `pod<uid>/<container>`.
//!
//! **Placement** happens in the child between clone and exec (`spawn.rs` writes `0` into the
//! pre-opened `cgroup.procs` of each hierarchy), so not one instruction of the container runs
//! outside its cgroup.
//!
//! **Kill**: `cgroup.kill` on v2 (also on the hybrid's unified tree, where it needs no
//! controller); v1 without a unified tree: freeze, SIGKILL every task, thaw. A container's
//! cgroup is killed when its main process ends (as the pid namespace of a container dies with
//! its init), its pod's when the pod has no container left.
//!
//! **Limits** ([`Limits`]) are written as the kubelet maps them (`pkg/kubelet/cm/
//! helpers_linux.go`: `MilliCPUToQuota`, `MilliCPUToShares`, and `CpuSharesToCpuWeight` in
//! `cgroup_manager_linux.go`): CPU quota over a 100 ms period, shares from requests
//! (weight on v2), memory limit on the container, `podPidsLimit` on the pod.
//!
//! **OOM**: the `oom_kill` counter of the container's `memory.events` (v2) or
//! `memory.oom_control` (v1, kernel >= 4.13), read before the run and after its end.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::libc;
use tracing::{debug, warn};

/// The v1 controllers we use, by their hierarchy's directory name.
const V1_CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "freezer"];
/// The v2 controllers we enable in our subtree.
const V2_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
/// The kubelet's CFS period (`QuotaPeriod`, 100 ms).
const CPU_PERIOD_US: u64 = 100_000;
/// The kubelet's smallest quota (`MinQuotaPeriod`, 1 ms).
const MIN_QUOTA_US: u64 = 1_000;

/// How the daemon uses cgroups, decided once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupMode {
    /// Pure cgroup v2; `base` is our subtree in it.
    V2 { base: PathBuf },
    /// v1 controllers (`(controller, our subtree in its hierarchy)`), plus the unified tree
    /// for tracking and `cgroup.kill` when the host has one.
    Hybrid {
        unified: Option<PathBuf>,
        v1: Vec<(&'static str, PathBuf)>,
    },
    /// No cgroups: why.
    None { reason: String },
}

/// Where the daemon stands, for [`detect`].
pub struct Host<'a> {
    /// `/sys/fs/cgroup` or a fake.
    pub root: &'a Path,
    /// The text of `/proc/self/cgroup`.
    pub self_cgroup: &'a str,
    /// Started by systemd (`INVOCATION_ID` is set): our own cgroup is delegated to us.
    pub under_systemd: bool,
    /// Names our subtree outside systemd (`jobvisor-<instance>`).
    pub instance: &'a str,
}

/// Which kind of hierarchy a path is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unified,
    V1(&'static str),
}

/// Decides the mode from the file system (pure apart from looking at what exists).
pub fn detect(host: &Host<'_>) -> CgroupMode {
    let own = parse_self_cgroup(host.self_cgroup);
    let base = |mount: &Path, own_path: Option<&str>, v2_root: bool| -> PathBuf {
        let own_path = own_path.unwrap_or("/").trim_start_matches('/');
        if host.under_systemd {
            mount.join(own_path)
        } else if v2_root {
            mount
                .join("jobvisor.slice")
                .join(format!("jobvisor-{}", host.instance))
        } else {
            mount
                .join(own_path)
                .join("jobvisor.slice")
                .join(format!("jobvisor-{}", host.instance))
        }
    };
    if host.root.join("cgroup.controllers").is_file() {
        return CgroupMode::V2 {
            base: base(host.root, own.unified.as_deref(), true),
        };
    }
    let unified_mount = host.root.join("unified");
    let unified = unified_mount
        .join("cgroup.procs")
        .is_file()
        .then(|| base(&unified_mount, own.unified.as_deref(), true));
    let v1: Vec<(&'static str, PathBuf)> = V1_CONTROLLERS
        .iter()
        .filter_map(|&c| {
            let mount = host.root.join(c);
            if !mount.join("cgroup.procs").is_file() {
                return None;
            }
            let own_path = own
                .v1
                .iter()
                .find(|(names, _)| names.split(',').any(|n| n == c));
            Some((c, base(&mount, own_path.map(|(_, p)| p.as_str()), false)))
        })
        .collect();
    if unified.is_none() && v1.is_empty() {
        return CgroupMode::None {
            reason: format!("no cgroup file system at {}", host.root.display()),
        };
    }
    CgroupMode::Hybrid { unified, v1 }
}

/// `/proc/self/cgroup` split into the v2 path and the v1 `(controllers, path)` pairs.
#[derive(Debug, Default, PartialEq)]
struct SelfCgroup {
    unified: Option<String>,
    v1: Vec<(String, String)>,
}

fn parse_self_cgroup(text: &str) -> SelfCgroup {
    let mut out = SelfCgroup::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            out.unified = Some(path.to_owned());
        } else {
            out.v1.push((controllers.to_owned(), path.to_owned()));
        }
    }
    out
}

/// A short stable name for a state directory (FNV-1a: stable across Rust releases, unlike
/// `DefaultHasher`).
pub fn instance_name(state_dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in state_dir.as_os_str().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Resource settings of one container run, already in kernel units.
pub use crate::quantity::ResourceLimits as Limits;

/// The kubelet's `MilliCPUToQuota`: quota over [`CPU_PERIOD_US`], at least [`MIN_QUOTA_US`].
pub fn cpu_quota_us(millis: u64) -> u64 {
    (millis.saturating_mul(CPU_PERIOD_US) / 1000).max(MIN_QUOTA_US)
}

/// The kubelet's `MilliCPUToShares`: 1024 per core, at least 2, at most 262144.
pub fn cpu_shares(millis: u64) -> u64 {
    (millis.saturating_mul(1024) / 1000).clamp(2, 262_144)
}

/// The kubelet's `CpuSharesToCpuWeight` (v2).
pub fn cpu_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// The files (name, value) that carry `limits` in one hierarchy, in the order to write them.
fn limit_files(kind: Kind, l: &Limits) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match kind {
        Kind::Unified => {
            if let Some(m) = l.memory_bytes {
                out.push(("memory.max", m.to_string()));
                // Past its limit the container is killed, not swapped (the kubelet's NoSwap).
                out.push(("memory.swap.max", "0".to_owned()));
                // The whole container dies on OOM, as the kubelet sets it on v2.
                out.push(("memory.oom.group", "1".to_owned()));
            }
            if let Some(c) = l.cpu_limit_millis {
                out.push(("cpu.max", format!("{} {CPU_PERIOD_US}", cpu_quota_us(c))));
            }
            if let Some(r) = l.cpu_request_millis {
                out.push(("cpu.weight", cpu_weight(cpu_shares(r)).to_string()));
            }
        }
        Kind::V1("memory") => {
            if let Some(m) = l.memory_bytes {
                out.push(("memory.limit_in_bytes", m.to_string()));
                out.push(("memory.memsw.limit_in_bytes", m.to_string()));
            }
        }
        Kind::V1("cpu") => {
            if let Some(c) = l.cpu_limit_millis {
                out.push(("cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
                out.push(("cpu.cfs_quota_us", cpu_quota_us(c).to_string()));
            }
            if let Some(r) = l.cpu_request_millis {
                out.push(("cpu.shares", cpu_shares(r).to_string()));
            }
        }
        Kind::V1(_) => {}
    }
    out
}

/// The value of `key` in a flat-keyed file (`memory.events`, `memory.oom_control`).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Errors of the cgroup layer, with the path and what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct CgroupError {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl CgroupError {
    /// Whether it failed for want of file descriptors (EMFILE, ENFILE): worth trying again.
    pub fn out_of_descriptors(&self) -> bool {
        self.source
            .raw_os_error()
            .is_some_and(|n| super::spawn::out_of_descriptors(nix::errno::Errno::from_raw(n)))
    }
}

fn err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError {
        op,
        path: path.to_owned(),
        source,
    }
}

/// One hierarchy we use and our subtree in it.
#[derive(Debug, Clone)]
struct Tree {
    kind: Kind,
    base: PathBuf,
}

/// The cgroups of a runtime: set up once, then one pod and container cgroups at a time.
#[derive(Debug)]
pub struct Cgroups {
    trees: Vec<Tree>,
    /// Our base is our own (delegated) cgroup, not a subtree we made.
    under_systemd: bool,
    /// The mode's text for logs and `README`'s "what runs where".
    pub mode: CgroupMode,
}

/// A container run's cgroup, ready for its child to join.
pub struct Placement {
    /// `cgroup.procs` of the container's cgroup in each hierarchy, open for writing.
    pub procs: Vec<OwnedFd>,
    /// The OOM kill count before the run.
    pub oom_before: u64,
}

impl Cgroups {
    /// Sets the subtree up for `mode`; on a subtree we may not write, says why (the daemon
    /// then runs without cgroups).
    pub fn setup(mode: CgroupMode, under_systemd: bool) -> Result<Cgroups, String> {
        let trees = Self::trees(&mode)?;
        Self::set_up_trees(trees, mode, under_systemd)
    }

    /// The subtree a crashed daemon on the same state directory left (outside systemd, where
    /// the unit's cgroup is systemd's to clean), without creating anything: for a daemon that
    /// runs without cgroups now (`cgroups: none`) but may follow one that used them.
    pub fn leftovers(mode: CgroupMode, under_systemd: bool) -> Option<Cgroups> {
        let trees = Self::trees(&mode).ok()?;
        (!under_systemd && trees.iter().any(|t| t.base.is_dir())).then_some(Cgroups {
            trees,
            under_systemd,
            mode,
        })
    }

    fn trees(mode: &CgroupMode) -> Result<Vec<Tree>, String> {
        Ok(match mode {
            CgroupMode::None { reason } => return Err(reason.clone()),
            CgroupMode::V2 { base } => vec![Tree {
                kind: Kind::Unified,
                base: base.clone(),
            }],
            CgroupMode::Hybrid { unified, v1 } => unified
                .iter()
                .map(|b| Tree {
                    kind: Kind::Unified,
                    base: b.clone(),
                })
                .chain(v1.iter().map(|(c, b)| Tree {
                    kind: Kind::V1(c),
                    base: b.clone(),
                }))
                .collect(),
        })
    }

    fn set_up_trees(
        trees: Vec<Tree>,
        mode: CgroupMode,
        under_systemd: bool,
    ) -> Result<Cgroups, String> {
        for t in &trees {
            std::fs::create_dir_all(&t.base)
                .map_err(|e| format!("cannot create {}: {e}", t.base.display()))?;
            if under_systemd {
                // Our own cgroup is the base: move into a leaf before anything goes beside us.
                let leaf = t.base.join("daemon");
                std::fs::create_dir_all(&leaf)
                    .and_then(|()| write_file(&leaf.join("cgroup.procs"), "0"))
                    .map_err(|e| format!("cannot move into {}: {e}", leaf.display()))?;
            }
            if t.kind == Kind::Unified {
                // Down from the v2 root: a controller reaches a cgroup only if every ancestor
                // passes it on (`jobvisor.slice` and our instance, or our delegated cgroup).
                if !under_systemd && let Some(slice) = t.base.parent() {
                    if let Some(root) = slice.parent() {
                        enable_controllers(root);
                    }
                    enable_controllers(slice);
                }
                enable_controllers(&t.base);
            }
            // Probe that we may really create below it (EACCES on a read-only delegation).
            let probe = t.base.join("probe");
            match std::fs::create_dir(&probe) {
                Ok(()) => {
                    let _ = std::fs::remove_dir(&probe);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let _ = std::fs::remove_dir(&probe);
                }
                Err(e) => return Err(format!("cannot create in {}: {e}", t.base.display())),
            }
        }
        Ok(Cgroups {
            trees,
            under_systemd,
            mode,
        })
    }

    /// Whether memory and CPU limits can be applied (a v2 tree with its controllers, or the
    /// v1 `memory` hierarchy).
    pub fn enforces_limits(&self) -> bool {
        self.trees.iter().any(|t| match t.kind {
            Kind::V1(c) => c == "memory",
            Kind::Unified => t.base.join("memory.max").exists() || self.is_v2(),
        })
    }

    fn is_v2(&self) -> bool {
        matches!(self.mode, CgroupMode::V2 { .. })
    }

    fn pod_dir(t: &Tree, pod_uid: &str) -> PathBuf {
        t.base.join(format!("pod{pod_uid}"))
    }

    /// Makes the pod's and the container's cgroups, writes the limits, opens `cgroup.procs`.
    pub fn prepare(
        &self,
        pod_uid: &str,
        container: &str,
        limits: &Limits,
        pids_limit: Option<i64>,
    ) -> Result<Placement, CgroupError> {
        let mut procs = Vec::with_capacity(self.trees.len());
        let mut oom_before = 0;
        let has_unified = self.trees.iter().any(|t| t.kind == Kind::Unified);
        // Each cgroup costs a mkdir and an rmdir per run: only the v1 hierarchies this run
        // needs (memory and cpuacct always, for OOM and `top pods`; the freezer only to
        // kill where there is no unified tree).
        let needed = |t: &&Tree| match t.kind {
            Kind::V1("cpu") => {
                limits.cpu_limit_millis.is_some() || limits.cpu_request_millis.is_some()
            }
            Kind::V1("pids") => pids_limit.is_some(),
            Kind::V1("freezer") => !has_unified,
            _ => true,
        };
        for t in self.trees.iter().filter(needed) {
            let pod = Self::pod_dir(t, pod_uid);
            let fresh_pod = !pod.exists();
            std::fs::create_dir_all(&pod).map_err(err("creating", &pod))?;
            if t.kind == Kind::Unified {
                if fresh_pod && self.is_v2() {
                    enable_controllers(&pod);
                }
                if let Some(n) = pids_limit.filter(|_| self.is_v2()) {
                    write_limit(&pod.join("pids.max"), &pids_max(n))?;
                }
            }
            if t.kind == Kind::V1("pids")
                && let Some(n) = pids_limit
            {
                write_limit(&pod.join("pids.max"), &pids_max(n))?;
            }
            let dir = pod.join(container);
            let mut tries = 0;
            loop {
                match std::fs::create_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => break,
                    // The pod's cgroup was removed by its last container's end meanwhile.
                    Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => {
                        tries += 1;
                        std::fs::create_dir_all(&pod).map_err(err("creating", &pod))?;
                        if t.kind == Kind::Unified && self.is_v2() {
                            enable_controllers(&pod);
                        }
                        if let Some(n) = pids_limit.filter(|_| {
                            t.kind == Kind::V1("pids") || (t.kind == Kind::Unified && self.is_v2())
                        }) {
                            write_limit(&pod.join("pids.max"), &pids_max(n))?;
                        }
                    }
                    Err(e) => return Err(err("creating", &dir)(e)),
                }
            }
            // Controllers a unified tree lacks (hybrid): their files are not there.
            if t.kind != Kind::Unified || self.is_v2() {
                for (file, value) in limit_files(t.kind, limits) {
                    write_limit(&dir.join(file), &value)?;
                }
            }
            if let Some(n) = self.oom_count_in(t, &dir) {
                oom_before = n;
            }
            let path = dir.join("cgroup.procs");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .map_err(err("opening", &path))?;
            procs.push(OwnedFd::from(f));
        }
        Ok(Placement { procs, oom_before })
    }

    fn oom_count_in(&self, t: &Tree, dir: &Path) -> Option<u64> {
        match t.kind {
            Kind::Unified if self.is_v2() => keyed_value(
                &std::fs::read_to_string(dir.join("memory.events")).ok()?,
                "oom_kill",
            ),
            Kind::V1("memory") => keyed_value(
                &std::fs::read_to_string(dir.join("memory.oom_control")).ok()?,
                "oom_kill",
            ),
            _ => None,
        }
    }

    /// Did the OOM killer kill a process of this container run?
    pub fn oom_killed(&self, pod_uid: &str, container: &str, before: u64) -> bool {
        self.trees.iter().any(|t| {
            let dir = Self::pod_dir(t, pod_uid).join(container);
            self.oom_count_in(t, &dir).is_some_and(|n| n > before)
        })
    }

    fn dirs(&self, pod_uid: &str, container: Option<&str>) -> Vec<PathBuf> {
        self.trees
            .iter()
            .map(|t| {
                let pod = Self::pod_dir(t, pod_uid);
                container.map_or_else(|| pod.clone(), |c| pod.join(c))
            })
            .collect()
    }

    /// Kills every process of the container's cgroup (or the pod's, without `container`).
    pub fn kill(&self, pod_uid: &str, container: Option<&str>) {
        self.kill_dirs(&self.dirs(pod_uid, container));
    }

    /// Kills every process of the container's cgroup, removes it, and the pod's when it was
    /// the last.
    pub fn kill_container(&self, pod_uid: &str, container: &str) {
        let dirs = self.dirs(pod_uid, Some(container));
        self.kill_dirs(&dirs);
        for d in &dirs {
            remove_tree(d);
        }
        // Fails (busy, not empty) while another container of the pod has its cgroup; a
        // container being prepared meanwhile makes the pod's again (see `prepare`).
        for d in self.dirs(pod_uid, None) {
            let _ = std::fs::remove_dir(d);
        }
    }

    /// Kills every process of the pod's cgroup and removes it with its containers'.
    pub fn kill_pod(&self, pod_uid: &str) {
        let dirs = self.dirs(pod_uid, None);
        self.kill_dirs(&dirs);
        for d in &dirs {
            remove_tree(d);
        }
    }

    /// Kills whatever runs in every pod cgroup of our subtree (a previous daemon's leftovers
    /// at start, everything at stop) and removes them. Returns how many pods there were.
    pub fn kill_all_pods(&self) -> usize {
        // Every hierarchy, not one: a pod is made and removed one hierarchy after another, so
        // a daemon killed in between leaves it in some of them only.
        let uids: std::collections::BTreeSet<String> = self
            .trees
            .iter()
            .flat_map(|t| std::fs::read_dir(&t.base).into_iter().flatten().flatten())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix("pod")
                    .map(str::to_owned)
            })
            .collect();
        for uid in &uids {
            self.kill_pod(uid);
        }
        uids.len()
    }

    /// Kills the processes below `dirs` (the same cgroup in each hierarchy).
    fn kill_dirs(&self, dirs: &[PathBuf]) {
        let existing: Vec<(&Tree, &PathBuf)> = self
            .trees
            .iter()
            .zip(dirs)
            .filter(|(_, d)| d.exists())
            .collect();
        let Some(first) = existing.first() else {
            return;
        };
        let killed_by_v2 = existing.iter().any(|(t, d)| {
            t.kind == Kind::Unified && write_file(&d.join("cgroup.kill"), "1").is_ok()
        });
        if !killed_by_v2 {
            let freezer = existing
                .iter()
                .find(|(t, _)| t.kind == Kind::V1("freezer"))
                .map(|(_, d)| d.as_path());
            // Any hierarchy lists the same processes; kill from the first.
            kill_listed(first.1, freezer);
        }
    }

    /// `(cpu nanoseconds since it started, memory working set in bytes)` of a container,
    /// for `top pods`.
    pub fn usage(&self, pod_uid: &str, container: &str) -> (Option<u64>, Option<u64>) {
        let mut cpu = None;
        let mut mem = None;
        for t in &self.trees {
            let d = Self::pod_dir(t, pod_uid).join(container);
            match t.kind {
                Kind::Unified if self.is_v2() => {
                    cpu = cpu.or_else(|| {
                        let s = std::fs::read_to_string(d.join("cpu.stat")).ok()?;
                        keyed_value(&s, "usage_usec").map(|u| u * 1000)
                    });
                    // The kubelet's working set: usage less inactive file pages.
                    mem = mem.or_else(|| {
                        let usage = read_u64(&d.join("memory.current"))?;
                        let stat = std::fs::read_to_string(d.join("memory.stat")).ok()?;
                        let inactive = keyed_value(&stat, "inactive_file").unwrap_or(0);
                        Some(usage.saturating_sub(inactive))
                    });
                }
                Kind::V1("cpuacct") => cpu = cpu.or_else(|| read_u64(&d.join("cpuacct.usage"))),
                Kind::V1("memory") => {
                    mem = mem.or_else(|| {
                        let usage = read_u64(&d.join("memory.usage_in_bytes"))?;
                        let stat = std::fs::read_to_string(d.join("memory.stat")).ok()?;
                        let inactive = keyed_value(&stat, "total_inactive_file").unwrap_or(0);
                        Some(usage.saturating_sub(inactive))
                    });
                }
                _ => {}
            }
        }
        (cpu, mem)
    }

    /// Removes our (empty) subtree at daemon stop, when it is ours to remove.
    pub fn remove_base(&self) {
        if self.under_systemd {
            return;
        }
        for t in &self.trees {
            let _ = std::fs::remove_dir(&t.base);
        }
    }
}

fn pids_max(n: i64) -> String {
    if n < 0 {
        "max".to_owned()
    } else {
        n.to_string()
    }
}

fn write_limit(path: &Path, value: &str) -> Result<(), CgroupError> {
    match write_file(path, value) {
        // memsw/swap files are absent without swap accounting: nothing to limit there.
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                && (path.ends_with("memory.swap.max")
                    || path.ends_with("memory.memsw.limit_in_bytes")) =>
        {
            Ok(())
        }
        other => other.map_err(err("writing", path)),
    }
}

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    // One write: cgroup files take a value per write call.
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Turns on the controllers we use for the children of `dir` (v2), each on its own: a host
/// without one of them still gets the others.
fn enable_controllers(dir: &Path) {
    let control = dir.join("cgroup.subtree_control");
    for c in V2_CONTROLLERS {
        if let Err(e) = write_file(&control, &format!("+{c}")) {
            debug!(path = %control.display(), controller = c, error = %e, "cannot enable controller");
        }
    }
}

/// v1 without a unified tree: freeze (so nothing forks meanwhile), SIGKILL every task of
/// every cgroup below `dir`, thaw so that the kills are acted on.
fn kill_listed(dir: &Path, freezer: Option<&Path>) {
    let set_state = |state: &str| {
        if let Some(f) = freezer {
            for d in walk(f) {
                let _ = write_file(&d.join("freezer.state"), state);
            }
        }
    };
    set_state("FROZEN");
    for _round in 0..10 {
        let mut any = false;
        for d in walk(dir) {
            let Ok(text) = std::fs::read_to_string(d.join("cgroup.procs")) else {
                continue;
            };
            for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                any = true;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        set_state("THAWED");
        if !any {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
        set_state("FROZEN");
    }
    set_state("THAWED");
}

/// `dir` and every cgroup below it, deepest first.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        out.push(d);
    }
    out.reverse();
    out
}

/// Removes a cgroup and its children, deepest first. A cgroup is busy until its killed
/// processes are gone: try for up to a second (killed processes die within milliseconds,
/// unless stuck in the kernel), then leave it for the next daemon's start.
fn remove_tree(dir: &Path) {
    // The common case: a container's cgroup, empty and without children.
    match std::fs::remove_dir(dir) {
        Ok(()) => return,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(_) => {}
    }
    for attempt in 0..200 {
        let mut busy = false;
        for d in walk(dir) {
            match std::fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => busy = true,
                Err(e) => {
                    warn!(path = %d.display(), error = %e, "cannot remove cgroup");
                    return;
                }
            }
        }
        if !busy {
            return;
        }
        if attempt == 199 {
            warn!(path = %dir.display(), "cgroup still busy after its kill; left in place");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
