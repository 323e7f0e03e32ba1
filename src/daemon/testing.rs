//! In-process daemons for the loop's unit tests: a real store in a temp root, a fake clock,
//! and a runtime that records what it is asked instead of running anything.
//!
//! [`Harness`] stands in for the loop: it hands the daemon the writer's reports and the
//! runtime's, and crashes and restarts it on the same root. Time moves only by the clock.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc::UnboundedReceiver;

use super::Daemon;
use crate::clock::{Clock, FakeClock};
use crate::config::{Config, Layout};
use crate::runtime::{ContainerLaunch, ExitInfo, Runtime, RuntimeEvent};
use crate::store::Durability;

/// What the daemon asked of its runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Start {
        pod_name: String,
        pod_uid: String,
        container: String,
        restart_count: i32,
    },
    StopPod {
        pod_uid: String,
        grace: Duration,
    },
    KillLeftover {
        pid: u32,
        proc_start: Option<u64>,
    },
}

/// A container run the fake runtime has reported started and not yet exited.
#[derive(Debug, Clone)]
struct Run {
    pod_uid: String,
    container: String,
    restart_count: i32,
    started_at: Timestamp,
}

/// The fake runtime's first pid; each start takes the next.
const FIRST_PID: u32 = 1000;

/// A start runs at once: `Started` is reported, with a pid of its own, and the run lasts until
/// the test ends it ([`Self::exit`]) or its pod is stopped (it dies of the SIGTERM). Reports
/// wait in a queue, as on the real runtime's channel, until the harness delivers them.
pub struct RecordingRuntime {
    clock: FakeClock,
    calls: Mutex<Vec<Call>>,
    running: Mutex<Vec<Run>>,
    reports: Mutex<VecDeque<RuntimeEvent>>,
    started: Mutex<Vec<(u32, Option<u64>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runtime for RecordingRuntime {
    fn start(&self, l: ContainerLaunch) {
        lock(&self.calls).push(Call::Start {
            pod_name: l.pod_name,
            pod_uid: l.pod_uid.clone(),
            container: l.container.clone(),
            restart_count: l.restart_count,
        });
        let mut started = lock(&self.started);
        let pid = FIRST_PID + started.len() as u32;
        let proc_start = Some(u64::from(pid) * 100);
        started.push((pid, proc_start));
        let started_at = self.clock.now();
        lock(&self.running).push(Run {
            pod_uid: l.pod_uid.clone(),
            container: l.container.clone(),
            restart_count: l.restart_count,
            started_at,
        });
        lock(&self.reports).push_back(RuntimeEvent::Started {
            pod_uid: l.pod_uid,
            container: l.container,
            restart_count: l.restart_count,
            pid,
            proc_start,
            started_at,
        });
    }
    fn stop_pod(&self, pod_uid: &str, grace: Duration) {
        lock(&self.calls).push(Call::StopPod {
            pod_uid: pod_uid.into(),
            grace,
        });
        let mut running = lock(&self.running);
        let (stopped, rest) = running.drain(..).partition(|r| r.pod_uid == pod_uid);
        *running = rest;
        drop(running);
        for run in stopped {
            self.report_exit(run, 143, Some(15));
        }
    }
    fn kill_leftover(&self, pid: u32, proc_start: Option<u64>) {
        lock(&self.calls).push(Call::KillLeftover { pid, proc_start });
    }
    fn running(&self) -> usize {
        lock(&self.running).len()
    }
}

impl RecordingRuntime {
    pub fn new(clock: FakeClock) -> RecordingRuntime {
        RecordingRuntime {
            clock,
            calls: Mutex::default(),
            running: Mutex::default(),
            reports: Mutex::default(),
            started: Mutex::default(),
        }
    }

    /// Each start as `(pod name, restartCount)`.
    pub fn starts(&self) -> Vec<(String, i32)> {
        lock(&self.calls)
            .iter()
            .filter_map(|c| match c {
                Call::Start {
                    pod_name,
                    restart_count,
                    ..
                } => Some((pod_name.clone(), *restart_count)),
                _ => None,
            })
            .collect()
    }

    /// Everything asked so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// `(pid, proc start)` of every run started, in order.
    pub fn started_processes(&self) -> Vec<(u32, Option<u64>)> {
        lock(&self.started).clone()
    }

    /// The running `container` of the pod exits with `exit_code` now.
    pub fn exit(&self, pod_uid: &str, container: &str, exit_code: i32) {
        let mut running = lock(&self.running);
        let Some(i) = running
            .iter()
            .position(|r| r.pod_uid == pod_uid && r.container == container)
        else {
            panic!("{pod_uid}/{container} is not running");
        };
        let run = running.remove(i);
        drop(running);
        self.report_exit(run, exit_code, None);
    }

    fn report_exit(&self, run: Run, exit_code: i32, signal: Option<i32>) {
        let reason = crate::api::TerminatedReason::of_exit(exit_code);
        lock(&self.reports).push_back(RuntimeEvent::Exited {
            pod_uid: run.pod_uid,
            container: run.container,
            restart_count: run.restart_count,
            exit: ExitInfo {
                exit_code,
                signal,
                reason,
                message: None,
                started_at: run.started_at,
                finished_at: self.clock.now(),
            },
        });
    }

    fn take_reports(&self) -> Vec<RuntimeEvent> {
        lock(&self.reports).drain(..).collect()
    }
}

/// A daemon (without its loop) over `root`, its manifests directory created.
pub fn daemon_in(root: &Path, cfg: Config) -> (Daemon, FakeClock, Arc<RecordingRuntime>) {
    let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().expect("timestamp"));
    let (d, runtime) = daemon_on(root, cfg, &clock);
    (d, clock, runtime)
}

fn daemon_on(root: &Path, cfg: Config, clock: &FakeClock) -> (Daemon, Arc<RecordingRuntime>) {
    let layout = Layout::under_root(root);
    std::fs::create_dir_all(&layout.manifests).expect("manifests directory");
    let runtime = Arc::new(RecordingRuntime::new(clock.clone()));
    let mut d =
        Daemon::open(cfg, layout, Arc::new(clock.clone()), runtime.clone()).expect("daemon");
    // Tests do not depend on the machine's zone.
    d.local_zone = jiff::tz::TimeZone::UTC;
    (d, runtime)
}

/// Takes the writer's reports until everything handed to it is durable.
pub fn settle(d: &mut Daemon, rx: &mut UnboundedReceiver<Durability>) {
    while d.gate.durable < d.store.last_handed() || d.store.has_dirty() {
        let report = rx.blocking_recv().expect("writer report");
        d.on_durability(report);
        d.turn();
    }
}

/// A daemon with the loop's inputs in the test's hands.
pub struct Harness {
    pub daemon: Daemon,
    pub clock: FakeClock,
    pub runtime: Arc<RecordingRuntime>,
    durability: UnboundedReceiver<Durability>,
    /// The log sweep's reports (`retention.rs`).
    sweeps: UnboundedReceiver<super::retention::SweepReport>,
    /// Only its blocking pool is used: the log sweep's steps run there, as in the daemon.
    blocking: Arc<tokio::runtime::Runtime>,
    root: PathBuf,
    cfg: Config,
}

impl Harness {
    /// Every pod the daemon has, typed.
    pub fn pods(&self) -> Vec<crate::api::Pod> {
        self.daemon
            .world
            .all_pods()
            .into_iter()
            .map(|r| r.pod)
            .collect()
    }

    pub fn new(root: &Path, cfg: Config) -> Harness {
        let (mut daemon, clock, runtime) = daemon_in(root, cfg.clone());
        let durability = daemon
            .durability_rx
            .take()
            .expect("a new daemon's writer reports");
        let sweeps = daemon.retention.rx.take().expect("a new daemon's sweeps");
        let blocking = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime for the blocking pool");
        Harness {
            daemon,
            clock,
            runtime,
            durability,
            sweeps,
            blocking: Arc::new(blocking),
            root: root.to_path_buf(),
            cfg,
        }
    }

    /// What `Target::LogSweep` does when its timer fires, and what the loop does with the
    /// sweep's reports, until the sweep has ended.
    pub fn sweep_logs(&mut self) {
        let blocking = self.blocking.clone();
        let _in_runtime = blocking.enter();
        // As `fire_timers` takes the wake-up it fires.
        self.daemon.timer_index.remove(&super::Target::LogSweep);
        self.daemon.sweep_logs();
        self.daemon.turn();
        while self.daemon.retention.in_flight() {
            let report = self.sweeps.blocking_recv().expect("a sweep report");
            self.daemon.on_log_sweep(report);
            self.daemon.turn();
        }
        self.run();
    }

    /// `text` as the content of `manifests/<file>`, applied as the watcher applies it.
    pub fn apply(&mut self, file: &str, text: &str) {
        let path = self.daemon.layout.manifests.join(file);
        self.daemon.apply_text(&path, text.to_string(), true);
        self.daemon.turn();
        self.run();
    }

    /// What the loop would do until nothing is left to do: takes the writer's reports (held
    /// starts then reach the runtime) and the runtime's reports, turn after turn.
    pub fn run(&mut self) {
        loop {
            settle(&mut self.daemon, &mut self.durability);
            let reports = self.runtime.take_reports();
            if reports.is_empty() {
                return;
            }
            for report in reports {
                self.daemon.on_runtime(report);
            }
            self.daemon.turn();
        }
    }

    /// Takes the writer's reports only: held answers and starts go out, while what the
    /// runtime reported waits for [`Harness::run`].
    pub fn settle(&mut self) {
        settle(&mut self.daemon, &mut self.durability);
    }

    /// An API request as the server hands it to the loop, answered once durable.
    #[allow(clippy::result_large_err)] // the Status is the API's answer as it is
    pub fn ask<T>(
        &mut self,
        request: impl FnOnce(super::requests::Reply<T>) -> super::requests::Request,
    ) -> Result<T, crate::api::Status> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.daemon.on_request(request(tx));
        self.daemon.turn();
        self.settle();
        rx.try_recv().expect("an answer once the state is on disk")
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(jiff::SignedDuration::from_secs(secs));
    }

    /// The daemon dies at once: the state is what its writer was handed (as after SIGKILL;
    /// its processes are not ours to stop). A new daemon on the same root, with a new runtime
    /// and the same clock, recovers and runs.
    pub fn crash_and_restart(self) -> Harness {
        self.crash_and_restart_after(0)
    }

    /// [`Harness::crash_and_restart`], the daemon down for `secs` seconds in between.
    pub fn crash_and_restart_after(self, secs: i64) -> Harness {
        let Harness {
            daemon,
            clock,
            blocking,
            root,
            cfg,
            ..
        } = self;
        drop(daemon);
        clock.advance(jiff::SignedDuration::from_secs(secs));
        let (mut daemon, runtime) = daemon_on(&root, cfg.clone(), &clock);
        let durability = daemon
            .durability_rx
            .take()
            .expect("a new daemon's writer reports");
        let sweeps = daemon.retention.rx.take().expect("a new daemon's sweeps");
        daemon.recover();
        daemon.turn();
        let mut h = Harness {
            daemon,
            clock,
            runtime,
            durability,
            sweeps,
            blocking,
            root,
            cfg,
        };
        h.run();
        h
    }
}

/// A Job `name` running `command`; `extra_spec` lines go under `spec:` (2-space indent).
pub fn job(name: &str, restart_policy: &str, command: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{extra_spec}  template:
    spec:
      restartPolicy: {restart_policy}
      containers:
      - name: main
        image: busybox
        command: [\"{command}\"]
"
    )
}

/// A CronJob `name` on `schedule` whose Job runs `command`; `extra_spec` lines go under
/// `spec:` (2-space indent).
pub fn cronjob(name: &str, schedule: &str, command: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
spec:
  schedule: \"{schedule}\"
{extra_spec}  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: busybox
            command: [\"{command}\"]
"
    )
}

impl Harness {
    /// What the loop does when the wall-clock timer fires: the CronJobs whose slot has come
    /// sync, and all that follows runs.
    pub fn fire_cron(&mut self) {
        self.daemon.on_wall_timer(super::wall_timer::Wake::Due);
        self.daemon.turn();
        self.run();
    }

    /// When the daemon's CronJob timer is armed for.
    pub fn next_cron_wake(&self) -> Option<jiff::Timestamp> {
        self.daemon.cron_wakes.earliest()
    }

    /// What the loop does when the `watch.removalGrace` timer of `path` comes due: the
    /// removal is confirmed if it is still pending (`fire_timers`).
    pub fn removal_timer_fires(&mut self, path: &std::path::Path) {
        let target = super::Target::Removal(path.to_path_buf());
        if self.daemon.timer_index.remove(&target).is_some() {
            self.daemon.confirm_removal(path);
        }
    }

    /// What the loop does when the timer of the Job `default/name` comes due (`fire_timers`):
    /// the Job syncs, and all that follows runs. False if no timer was armed for it.
    pub fn job_timer_fires(&mut self, name: &str) -> bool {
        let k = super::world::key("default", name);
        let target = super::Target::Job(k.clone());
        if self.daemon.timer_index.remove(&target).is_none() {
            return false;
        }
        self.daemon.dirty_jobs.insert(k);
        self.daemon.turn();
        self.run();
        true
    }

    /// What the loop does when the timer of the pod `default/name` comes due: the pod
    /// syncs, and all that follows runs. False if no timer was armed for it.
    pub fn pod_timer_fires(&mut self, name: &str) -> bool {
        let k = super::world::key("default", name);
        let target = super::Target::Pod(k.clone());
        if self.daemon.timer_index.remove(&target).is_none() {
            return false;
        }
        self.daemon.dirty_pods.insert(k);
        self.daemon.turn();
        self.run();
        true
    }

    /// Moves the clock to the next CronJob wake-up and fires the timer there.
    pub fn advance_to_next_slot(&mut self) -> jiff::Timestamp {
        let at = self.next_cron_wake().expect("a CronJob wake-up armed");
        let now = self.clock.now();
        if at > now {
            self.clock.advance(at.duration_since(now));
        }
        self.fire_cron();
        at
    }
}
