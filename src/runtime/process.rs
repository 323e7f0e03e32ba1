//! Containers as host processes: [`ProcessRuntime`], the [`Runtime`] the daemon uses.
//!
//! A thin façade; the work is done by one module of `src/runtime/` per job:
//! - `spawn.rs`: program lookup (`PATH`), `posix_spawn` in a new session, exec errors
//!   worded like runc's. Anything that must happen to a container before it runs goes there.
//! - `supervise.rs`: the task of each run (`Started`, wait, kill the group, reap,
//!   `Exited`) and every signal we send: `stop_pod`'s SIGTERM → grace → SIGKILL, leftovers.
//! - `reaper.rs`: the subreaper that reaps what containers leave behind, and the gate
//!   that keeps it off children still being spawned.
//! - `logs/sink.rs`: the output pipes into the CRI log file, waking `logs -f` followers
//!   through `logs/feed.rs` ([`ProcessRuntime::log_feeds`]).
//!
//! Caveat: nothing else in this process may spawn children while a `ProcessRuntime` exists
//! (see `reaper.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::cgroup::Cgroups;
use super::logs::LogFeeds;
use super::supervise::{self, Shared};
use super::{ContainerLaunch, Runtime, RuntimeEvent, Usage};

/// The shortest CPU window `top pods` reports over.
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// `ns` nanoseconds of CPU over `window`, in nanocores.
fn per_second(ns: u64, window: Duration) -> u64 {
    let w = window.as_nanos().max(1);
    u64::try_from(u128::from(ns) * 1_000_000_000 / w).unwrap_or(u64::MAX)
}
use crate::clock::Clock;

pub use super::spawn::{DEFAULT_PATH, proc_start_time};
pub use super::supervise::STOPPED_BEFORE_START;

/// Runs containers as process groups of this host. See the module docs.
pub struct ProcessRuntime {
    shared: Arc<Shared>,
    /// The last CPU reading of each container (`top pods`): `(pod uid, container)` →
    /// `(when, cpu ns)`.
    samples: std::sync::Mutex<std::collections::HashMap<(String, String), (Instant, u64)>>,
}

impl ProcessRuntime {
    /// Makes this process a child subreaper and starts the orphan reaper.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn new(clock: Arc<dyn Clock>, events: UnboundedSender<RuntimeEvent>) -> ProcessRuntime {
        Self::with_cgroups(clock, events, None)
    }

    /// Like [`ProcessRuntime::new`], putting each pod and container in its cgroup when
    /// `cgroups` is set up (`cgroup.rs`).
    pub fn with_cgroups(
        clock: Arc<dyn Clock>,
        events: UnboundedSender<RuntimeEvent>,
        cgroups: Option<Arc<Cgroups>>,
    ) -> ProcessRuntime {
        ProcessRuntime {
            shared: Shared::new(clock, events, cgroups),
            samples: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Takes over the spawn ledger at `path` (see `ledger.rs`): kills what the previous
    /// daemon spawned that still runs, and records this runtime's spawns there from now on.
    /// Call it only while holding the state's lock, so that a second daemon started by
    /// mistake never touches the first one's processes. Returns how many were killed.
    pub fn take_over_spawns(&self, path: &std::path::Path) -> std::io::Result<usize> {
        let (ledger, previous) = super::ledger::Ledger::take_over(path)?;
        // Leftovers by cgroup first: that finds every process of every pod, escapees too.
        let mut killed = self
            .shared
            .cgroups
            .as_ref()
            .map_or(0, |cg| cg.kill_all_pods());
        for (pid, start) in previous {
            if proc_start_time(pid) == Some(start) {
                supervise::kill_leftover(pid, Some(start));
                killed += 1;
            }
        }
        *self.shared.ledger.lock().unwrap_or_else(|e| e.into_inner()) = Some(ledger);
        Ok(killed)
    }

    /// Wake-ups for `logs -f` from this runtime's log sinks (for the API server).
    pub fn log_feeds(&self) -> LogFeeds {
        self.shared.feeds.clone()
    }
}

impl Runtime for ProcessRuntime {
    fn start(&self, launch: ContainerLaunch) {
        self.shared.start(launch);
    }

    fn stop_pod(&self, pod_uid: &str, grace: Duration) {
        self.shared.stop_pod(pod_uid, grace);
    }

    fn kill_leftover(&self, pid: u32, proc_start: Option<u64>) {
        supervise::kill_leftover(pid, proc_start);
    }

    fn running(&self) -> usize {
        self.shared.running()
    }

    fn log_bytes_written(&self) -> u64 {
        self.shared.feeds.bytes_written()
    }

    fn enforces_limits(&self) -> bool {
        self.shared
            .cgroups
            .as_ref()
            .is_some_and(|cg| cg.enforces_limits())
    }

    fn usage(&self, pod_uid: &str, container: &str) -> Option<Usage> {
        let cg = self.shared.cgroups.as_ref()?;
        let (cpu_ns, memory_bytes) = cg.usage(pod_uid, container);
        let now = Instant::now();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        // Runs that ended leave their readings behind: forget those of gone pods.
        if samples.len() > 4 * self.shared.running() + 64 {
            samples.retain(|(uid, c), _| self.shared.started(uid, c).is_some());
        }
        let key = (pod_uid.to_owned(), container.to_owned());
        // Over the window since the previous look when it is at least a second old (as
        // metrics-server's window), else since the container started.
        let (window, cpu_nanocores) = match (cpu_ns, samples.get(&key)) {
            (Some(ns), Some((then, before)))
                if now.duration_since(*then) >= MIN_WINDOW && ns >= *before =>
            {
                let w = now.duration_since(*then);
                (Some(w), Some(per_second(ns - before, w)))
            }
            (Some(ns), _) => match self.shared.started(pod_uid, container) {
                Some(t) => {
                    let w = now.duration_since(t);
                    (Some(w), Some(per_second(ns, w)))
                }
                None => (None, None),
            },
            (None, _) => (None, None),
        };
        if let Some(ns) = cpu_ns
            && samples
                .get(&key)
                .is_none_or(|(then, _)| now.duration_since(*then) >= MIN_WINDOW)
        {
            samples.insert(key, (now, ns));
        }
        Some(Usage {
            cpu_nanocores,
            window,
            memory_bytes,
        })
    }

    fn shutdown(&self) {
        if let Some(cg) = &self.shared.cgroups {
            cg.kill_all_pods();
            cg.remove_base();
        }
        // Without cgroups, or what escaped them: every process still below the daemon.
        let me = nix::unistd::getpid().as_raw();
        let procs = super::procs::scan();
        super::procs::kill_all(&super::procs::descendants(&procs, &[me]));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod perf {
    use super::*;
    use crate::clock::SystemClock;
    use tokio::sync::mpsc::unbounded_channel;
    use tokio::time::Instant;

    /// `cargo test --release --lib perf_5000_true -- --ignored --nocapture`; set
    /// `JOBVISOR_PERF_DIR` to put the logs on another file system (the default is $TMPDIR).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "performance check, run by hand"]
    async fn perf_5000_true_at_parallelism_50() {
        let dir = match std::env::var_os("JOBVISOR_PERF_DIR") {
            Some(d) => tempfile::tempdir_in(d).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        let (tx, mut rx) = unbounded_channel();
        let rt = ProcessRuntime::new(Arc::new(SystemClock), tx);
        let (total, parallel) = (5000, 50);
        let launch = |i: usize| ContainerLaunch {
            pod_uid: format!("u{i}"),
            namespace: "default".into(),
            pod_name: format!("p{i}"),
            container: "main".into(),
            restart_count: 0,
            argv: vec!["true".into()],
            refused: None,
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            working_dir: dir.path().into(),
            limits: Default::default(),
            pids_limit: None,
            user: None,
            log_path: super::super::logs::container_log_path(
                dir.path(),
                "default",
                &format!("p{i}"),
                &format!("u{i}"),
                "main",
                0,
            ),
            log_limits: Default::default(),
        };
        let t = Instant::now();
        let (mut started, mut done) = (0, 0);
        while done < total {
            while started < total && started - done < parallel {
                rt.start(launch(started));
                started += 1;
            }
            if let Some(RuntimeEvent::Exited { exit, .. }) = rx.recv().await {
                assert_eq!(exit.reason, crate::api::TerminatedReason::Completed);
                done += 1;
            }
        }
        let took = t.elapsed();
        eprintln!(
            "{total} containers in {took:?}: {:.0}/s",
            total as f64 / took.as_secs_f64()
        );
    }
}
