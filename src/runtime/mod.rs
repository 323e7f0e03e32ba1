//! The pod runtime: runs containers as host processes and reports what happened.
//!
//! The daemon talks to it through the [`Runtime`] trait only: `start` a container, `stop` a
//! pod. Everything that happens afterwards comes back as [`RuntimeEvent`]s on the channel
//! given at construction, so the daemon's loop stays the single owner of state.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

use crate::api::TerminatedReason;

pub mod cgroup;
mod ledger;
pub mod logs;
pub mod process;
mod procs;
mod reaper;
mod spawn;
pub mod spool;
mod supervise;
#[cfg(test)]
pub(crate) mod testing;

/// Everything needed to run one container once. Built by the daemon from the pod spec.
#[derive(Clone)]
pub struct ContainerLaunch {
    pub pod_uid: String,
    pub namespace: String,
    pub pod_name: String,
    pub container: String,
    /// Which run of this container this is (0 for the first); names the log file.
    pub restart_count: i32,
    /// The container's process (its image alias and `command`/`args`, the container's own
    /// words `$(VAR)`-expanded); `argv[0]` is looked up in the env's PATH.
    pub argv: Vec<String>,
    /// Set when the daemon found nothing it could run (see `images::Unrunnable`): the run
    /// ends `StartError` with this message and no process.
    pub refused: Option<String>,
    /// The complete environment (the child gets nothing else).
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    /// `logs/pods/<ns>_<pod>_<uid>/<container>/<restart_count>.log`
    pub log_path: PathBuf,
    /// When the log is rotated and how many files of it are kept.
    pub log_limits: logs::LogLimits,
    /// `resources` of the container, applied to its cgroup (when there are cgroups).
    pub limits: cgroup::Limits,
    /// The config's `podPidsLimit`, applied to the pod's cgroup (`None`: no limit).
    pub pids_limit: Option<i64>,
    /// The user the process runs as (`securityContext`); `None`: the daemon's own.
    pub user: Option<RunAs>,
}

/// A container's resource use, as metrics-server reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// CPU over `window`, in billionths of a core.
    pub cpu_nanocores: Option<u64>,
    /// The window the CPU figure covers.
    pub window: Option<Duration>,
    /// The working set (usage less inactive file pages), in bytes.
    pub memory_bytes: Option<u64>,
}

/// Credentials of a container's process, set in the child before exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (`supplementalGroups`, then `fsGroup`).
    pub groups: Vec<u32>,
}

impl std::fmt::Debug for ContainerLaunch {
    // env values may be secrets
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerLaunch")
            .field("pod", &format_args!("{}/{}", self.namespace, self.pod_name))
            .field("container", &self.container)
            .field("restart_count", &self.restart_count)
            .field("argv", &self.argv)
            .finish_non_exhaustive()
    }
}

/// How a container run ended, in the words Kubernetes uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ExitInfo {
    /// 128+signal when killed by a signal, 128 for a failed exec.
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// `Completed` (exit 0), `Error` (non-zero or signal), `StartError` (exec failed).
    pub reason: TerminatedReason,
    /// For StartError: the OS error worded like runc's, e.g.
    /// `exec: "nope": executable file not found in $PATH`. For OOMKilled: set by the kernel's
    /// count, never guessed from the exit code.
    pub message: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeEvent {
    Started {
        pod_uid: String,
        container: String,
        restart_count: i32,
        pid: u32,
        /// `/proc/<pid>/stat` start time (clock ticks since boot): record it with the pid and
        /// pass it to [`Runtime::kill_leftover`] so a reused pid is never killed.
        proc_start: Option<u64>,
        started_at: Timestamp,
    },
    /// A run's log cannot be written (a full disk): from now on its output is dropped and
    /// counted, until a write works again ([`RuntimeEvent::LogLost`] then says how much). Sent
    /// at the first failed write of an episode, so a disk that stays full is seen at once.
    LogWriteFailing {
        pod_uid: String,
        container: String,
        restart_count: i32,
        error: String,
    },
    /// Output of a run was lost because its log could not be written (a full disk): sent
    /// once per episode, when writing works again or the run's log is closed (before its
    /// `Exited`). The container went on running and its pipes were drained meanwhile.
    LogLost {
        pod_uid: String,
        container: String,
        restart_count: i32,
        bytes: u64,
        lines: u64,
        /// The first write error of the episode.
        error: String,
    },
    /// Sent once per `start`, after the container's output is fully in its log file.
    Exited {
        pod_uid: String,
        container: String,
        restart_count: i32,
        exit: ExitInfo,
    },
}

pub trait Runtime: Send + Sync + 'static {
    /// Starts one container run. Never blocks on the process; the outcome (including a failed
    /// exec) arrives as `Started`/`Exited` events.
    fn start(&self, launch: ContainerLaunch);
    /// Stops every running container of the pod: SIGTERM to each process group, SIGKILL to
    /// whatever is left after `grace`. Their `Exited` events follow as usual.
    fn stop_pod(&self, pod_uid: &str, grace: Duration);
    /// Kills the process group of a container a previous daemon started and lost (crash
    /// recovery), if `pid` still names that same process (`proc_start` guards against reuse).
    fn kill_leftover(&self, pid: u32, proc_start: Option<u64>);
    /// Number of containers currently running.
    fn running(&self) -> usize;
    /// Bytes written to container logs since the runtime started (a counter): what the log
    /// spool may have grown by.
    fn log_bytes_written(&self) -> u64 {
        0
    }
    /// Whether `resources` limits are enforced (cgroups are in use); when not, the daemon
    /// warns on pods that set them.
    fn enforces_limits(&self) -> bool {
        true
    }
    /// What a running container uses now, from its cgroup (`top pods`); `None` without
    /// cgroups.
    fn usage(&self, _pod_uid: &str, _container: &str) -> Option<Usage> {
        None
    }
    /// The daemon is stopping and its containers are done: kill whatever they left behind
    /// (every pod cgroup; without cgroups, every process below the daemon).
    fn shutdown(&self) {}
}
