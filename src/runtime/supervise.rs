//! The per-container task and the kill path: wait, SIGTERM, grace, SIGKILL of the group, reap.
//!
//! **One tokio task per container run** ([`Shared::start`]). On a blocking-pool thread it
//! resolves `argv[0]` and `posix_spawn`s the container in a new session (pid = pgid = sid;
//! [`super::spawn`]); back on the runtime it sends `Started`, then pumps stdout and stderr
//! into the CRI log ([`super::logs::sink`]; the file is created with the first output, so a
//! silent container leaves none) until the main process exits. Then it SIGKILLs
//! the rest of the process group (Kubernetes kills the whole container when its main process
//! ends), reaps, waits up to 2 s for the pipes to reach EOF, flushes the log (and wakes its
//! `logs -f` followers a last time) and only then sends `Exited`: when the status says
//! terminated, the log is complete.
//!
//! **Why our own pidfd and `waitpid`, not `tokio::process`:** the group must be killed
//! *before* the main process is reaped. While it is an unreaped zombie its pid (= the pgid)
//! cannot be reused, so `killpg` cannot hit a stranger; after reaping it could. tokio's
//! `Child::wait` reaps as soon as the process exits, so we watch a pidfd (`pidfd_open`; on
//! kernels without it, SIGCHLD plus `waitid(WNOWAIT)`), kill the group, then reap with
//! `waitpid`. Every signal we send goes through `Ctl::pgid`, which is cleared under the same
//! lock when the process is reaped.
//!
//! **Stopping** ([`Shared::stop_pod`]): SIGTERM to each container's process group,
//! SIGKILL after the grace period (at once when it is zero). A stop that arrives before the
//! process is spawned cancels the spawn: the run ends with `Exited` exit code 137, no signal,
//! reason `Error`, message [`STOPPED_BEFORE_START`]. Every signal this runtime sends is sent
//! here ([`signal_group`]): a cgroup kill goes here too.
//!
//! Caveat: a descendant that leaves the process group (`setsid`, `setpgid`) escapes the kill
//! at exit and at stop; only a cgroup can catch those. If it keeps the output pipes open, the
//! log pump gives up after 2 s.

use std::collections::HashMap;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tracing::{debug, trace, warn};

use super::cgroup::{Cgroups, Placement};
use super::logs::LogFeeds;
use super::logs::sink::LogSink;
use super::reaper::{Reaper, owned_pids, recv_opt};
use super::spawn::{Prepared, Spawned, prepare, proc_start_time};
use super::{ContainerLaunch, ExitInfo, RuntimeEvent};
use crate::clock::Clock;

/// Message of the `Exited` sent for a run that a stop cancelled before it was spawned.
pub const STOPPED_BEFORE_START: &str = "container was stopped before its process started";

/// How long the pumps may keep reading after the main process exited (a descendant that left
/// the group may hold the pipes open forever).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// What a runtime's container tasks and its `stop_pod` share.
pub(super) struct Shared {
    clock: Arc<dyn Clock>,
    events: UnboundedSender<RuntimeEvent>,
    /// `start`/`stop_pod` are sync and may be called from any thread.
    handle: tokio::runtime::Handle,
    /// pod uid → its container runs that have not sent `Exited` yet.
    pods: Mutex<HashMap<String, Vec<Arc<Slot>>>>,
    running: AtomicUsize,
    reaper: Arc<Reaper>,
    /// Where the runs' log sinks wake `logs -f` followers.
    pub(super) feeds: LogFeeds,
    /// Every spawn, for the next daemon if this one crashes (`ledger.rs`).
    pub(super) ledger: Mutex<Option<super::ledger::Ledger>>,
    /// The pods' cgroups; `None`: no cgroups (see `procs.rs` for what is done instead).
    pub(super) cgroups: Option<Arc<Cgroups>>,
}

/// One container run, shared by its task and `stop_pod`.
pub(super) struct Slot {
    ctl: Mutex<Ctl>,
    pub(super) container: String,
}

#[derive(Default)]
pub(super) struct Ctl {
    /// Set from spawn until reap. Only while it is set may the group be signalled: until the
    /// main process is reaped its pid (= pgid) cannot name anybody else.
    pub(super) pgid: Option<Pid>,
    /// A stop was requested; a spawn that has not happened yet must not happen.
    pub(super) stopping: bool,
    /// SIGKILL was sent by a stop (no need to send it again).
    killed: bool,
    /// When the process was spawned (for `top pods`' first CPU window).
    pub(super) started: Option<std::time::Instant>,
    /// Without cgroups: sessions that descendants made of their own (`setsid`), found at the
    /// stop, killed with the container.
    sessions: Vec<(i32, Option<u64>)>,
}

impl Slot {
    pub(super) fn ctl(&self) -> MutexGuard<'_, Ctl> {
        self.ctl.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Shared {
    /// # Panics
    /// When called outside a tokio runtime.
    pub(super) fn new(
        clock: Arc<dyn Clock>,
        events: UnboundedSender<RuntimeEvent>,
        cgroups: Option<Arc<Cgroups>>,
    ) -> Arc<Shared> {
        let handle = tokio::runtime::Handle::current();
        Arc::new(Shared {
            clock,
            events,
            reaper: Reaper::start(&handle),
            handle,
            pods: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            feeds: LogFeeds::new(),
            ledger: Mutex::new(None),
            cgroups,
        })
    }

    /// Writes the spawn into the ledger, if there is one.
    fn record_spawn(&self, pid: u32, start: Option<u64>) {
        let Some(start) = start else {
            // Already reaped by nobody but us, so gone: nothing to find after a crash.
            return;
        };
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = ledger.as_mut()
            && let Err(e) = l.record(pid, start, || self.running_processes())
        {
            warn!(error = %e, pid, "cannot write the spawn ledger");
        }
    }

    /// `(pid, start time)` of every process running now.
    fn running_processes(&self) -> Vec<(u32, u64)> {
        let slots: Vec<Arc<Slot>> = self.pods().values().flatten().cloned().collect();
        slots
            .iter()
            .filter_map(|s| s.ctl().pgid)
            .filter_map(|pgid| {
                let pid = pgid.as_raw().unsigned_abs();
                Some((pid, proc_start_time(pid)?))
            })
            .collect()
    }

    fn pods(&self) -> MutexGuard<'_, HashMap<String, Vec<Arc<Slot>>>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts one container run: registers it (so a `stop_pod` right after finds it) and
    /// spawns its task.
    pub(super) fn start(self: &Arc<Self>, launch: ContainerLaunch) {
        let slot = Arc::new(Slot {
            ctl: Mutex::new(Ctl::default()),
            container: launch.container.clone(),
        });
        // Registered before returning, so a `stop_pod` right after `start` finds it.
        self.pods()
            .entry(launch.pod_uid.clone())
            .or_default()
            .push(slot.clone());
        self.running.fetch_add(1, Ordering::SeqCst);
        let done = Done {
            shared: self.clone(),
            pod_uid: launch.pod_uid.clone(),
            container: launch.container.clone(),
            restart_count: launch.restart_count,
            slot: slot.clone(),
            sent: false,
        };
        // Before `Started` can be sent: see `LogSink::new`.
        let log = LogSink::new(&launch, &self.feeds, self.events.clone());
        self.handle.spawn(run(done, Arc::new(launch), slot, log));
    }

    /// SIGTERM to each running container of the pod, SIGKILL after `grace`.
    pub(super) fn stop_pod(&self, pod_uid: &str, grace: Duration) {
        let Some(slots) = self.pods().get(pod_uid).cloned() else {
            return;
        };
        if self.cgroups.is_none() {
            remember_sessions(&slots);
        }
        for slot in &slots {
            let mut ctl = slot.ctl();
            let first = !ctl.stopping;
            ctl.stopping = true;
            let Some(pgid) = ctl.pgid else { continue };
            if grace.is_zero() {
                if !ctl.killed {
                    ctl.killed = true;
                    signal_group(pgid, Signal::SIGKILL);
                    kill_sessions(&ctl.sessions);
                }
            } else if first {
                // Only the first stop sends SIGTERM: some programs treat a second one as
                // "quit now". A later stop with a shorter grace still shortens the wait below.
                signal_group(pgid, Signal::SIGTERM);
            }
        }
        let cgroups = self.cgroups.clone();
        let uid = pod_uid.to_owned();
        let kill_pod_cgroup = move || {
            if let Some(cg) = &cgroups {
                cg.kill(&uid, None);
            }
        };
        if grace.is_zero() {
            self.handle.spawn_blocking(kill_pod_cgroup);
            return;
        }
        self.handle.spawn(async move {
            tokio::time::sleep(grace).await;
            for slot in &slots {
                let mut ctl = slot.ctl();
                if let Some(pgid) = ctl.pgid
                    && !ctl.killed
                {
                    ctl.killed = true;
                    signal_group(pgid, Signal::SIGKILL);
                    kill_sessions(&ctl.sessions);
                }
            }
            let _ = tokio::task::spawn_blocking(kill_pod_cgroup).await;
        });
    }

    pub(super) fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// When the running `container` of the pod was spawned.
    pub(super) fn started(&self, pod_uid: &str, container: &str) -> Option<std::time::Instant> {
        let slots = self.pods().get(pod_uid)?.clone();
        slots
            .iter()
            .filter(|s| s.container == container)
            .find_map(|s| s.ctl().started)
    }
}

/// Kills the process group of a container a previous daemon started, if `pid` still names
/// the process that started at `proc_start`.
pub(super) fn kill_leftover(pid: u32, proc_start: Option<u64>) {
    let Ok(raw) = i32::try_from(pid) else { return };
    // killpg(0) means our own group, 1 is init's: never those, nor ourselves.
    if raw <= 1
        || Pid::from_raw(raw) == nix::unistd::getpgrp()
        || Pid::from_raw(raw) == nix::unistd::getpid()
    {
        return;
    }
    if let (Some(recorded), Some(now)) = (proc_start, proc_start_time(pid))
        && recorded != now
    {
        debug!(pid, "pid was reused since; leaving it alone");
        return;
    }
    // The leader may be gone while members live on; its pid cannot be reused while they
    // hold it as their pgid, so killing that group is still safe.
    debug!(pid, "killing leftover process group");
    signal_group(Pid::from_raw(raw), Signal::SIGKILL);
}

/// Without cgroups: notes the sessions the descendants of each running container made of
/// their own, while the containers still run (after their end, their orphans are ours and
/// nothing says where they came from).
fn remember_sessions(slots: &[Arc<Slot>]) {
    let procs = super::procs::scan();
    for slot in slots {
        let mut ctl = slot.ctl();
        let Some(pgid) = ctl.pgid else { continue };
        let root = pgid.as_raw();
        for d in super::procs::descendants(&procs, &[root]) {
            if d.sid != root && !ctl.sessions.iter().any(|(s, _)| *s == d.sid) {
                let leader = procs.iter().find(|p| p.pid == d.sid).map(|p| p.start);
                ctl.sessions.push((d.sid, leader));
            }
        }
    }
}

/// Without cgroups: SIGKILL to every process of these sessions and their descendants.
fn kill_sessions(sessions: &[(i32, Option<u64>)]) {
    if sessions.is_empty() {
        return;
    }
    let procs = super::procs::scan();
    let me = nix::unistd::getpid().as_raw();
    let mut victims = super::procs::in_sessions(&procs, sessions, me);
    let roots: Vec<i32> = victims.iter().map(|p| p.pid).collect();
    victims.extend(super::procs::descendants(&procs, &roots));
    super::procs::kill_all(&victims);
}

fn signal_group(pgid: Pid, sig: Signal) {
    match killpg(pgid, sig) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => warn!(pgid = pgid.as_raw(), signal = %sig, error = %e, "killpg failed"),
    }
}

/// Sends `Exited` and forgets the run, exactly once, even if the task panics or is dropped.
struct Done {
    shared: Arc<Shared>,
    pod_uid: String,
    container: String,
    restart_count: i32,
    slot: Arc<Slot>,
    sent: bool,
}

impl Done {
    fn send(&mut self, exit: ExitInfo) {
        if std::mem::replace(&mut self.sent, true) {
            return;
        }
        {
            let mut pods = self.shared.pods();
            if let Some(slots) = pods.get_mut(&self.pod_uid) {
                slots.retain(|s| !Arc::ptr_eq(s, &self.slot));
                if slots.is_empty() {
                    pods.remove(&self.pod_uid);
                }
            }
        }
        // Before the event, so `running()` is already down when the daemon sees it.
        self.shared.running.fetch_sub(1, Ordering::SeqCst);
        let _ = self.shared.events.send(RuntimeEvent::Exited {
            pod_uid: self.pod_uid.clone(),
            container: self.container.clone(),
            restart_count: self.restart_count,
            exit,
        });
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if !self.sent {
            let now = self.shared.clock.now();
            self.send(ExitInfo {
                exit_code: 255,
                signal: None,
                reason: crate::api::TerminatedReason::Error,
                message: Some("internal error: the container's supervisor ended early".into()),
                started_at: now,
                finished_at: now,
            });
        }
    }
}

async fn run(mut done: Done, launch: Arc<ContainerLaunch>, slot: Arc<Slot>, log: LogSink) {
    // The log sink is dropped (its feed ended) when `supervise` returns, before `Exited`.
    let exit = supervise(&done.shared.clone(), launch, slot, log).await;
    done.send(exit);
}

fn start_error(now: Timestamp, message: String) -> ExitInfo {
    ExitInfo {
        exit_code: 128,
        signal: None,
        reason: crate::api::TerminatedReason::StartError,
        message: Some(message),
        started_at: now,
        finished_at: now,
    }
}

fn stopped_before_start(now: Timestamp) -> ExitInfo {
    ExitInfo {
        exit_code: 137,
        signal: None,
        reason: crate::api::TerminatedReason::Error,
        message: Some(STOPPED_BEFORE_START.into()),
        started_at: now,
        finished_at: now,
    }
}

/// The first wait before a start that ran out of file descriptors is tried again; it doubles
/// up to [`RETRY_MAX`].
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(50);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// The blocking half of one start attempt: the container's cgroups, then the spawn.
async fn prepare_run(
    shared: &Arc<Shared>,
    launch: &Arc<ContainerLaunch>,
    slot: &Arc<Slot>,
) -> (Result<Prepared, tokio::task::JoinError>, Option<Placement>) {
    let prepared = {
        let (launch, slot, shared) = (launch.clone(), slot.clone(), shared.clone());
        let cgroups = shared.cgroups.clone();
        tokio::task::spawn_blocking(move || {
            let placement = match &cgroups {
                Some(cg) => match cg.prepare(
                    &launch.pod_uid,
                    &launch.container,
                    &launch.limits,
                    launch.pids_limit,
                ) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        // What was made before the failure goes (the pod's too when empty).
                        cg.kill_container(&launch.pod_uid, &launch.container);
                        let message = format!("cannot create the container's cgroup: {e}");
                        let failed = if e.out_of_descriptors() {
                            Prepared::OutOfDescriptors(message)
                        } else {
                            Prepared::Failed(message)
                        };
                        return (failed, None);
                    }
                },
                None => None,
            };
            let fds = placement.as_ref().map_or(&[][..], |p| &p.procs[..]);
            let prepared = prepare(&launch, &slot, fds);
            match (&prepared, &cgroups) {
                (Prepared::Running(s), _) => {
                    shared.record_spawn(s.pid.as_raw().unsigned_abs(), s.proc_start);
                }
                // No process runs (a refused securityContext, a failed exec, a stop before
                // the spawn): nothing else would remove the cgroups made for it, and they
                // would stay until the daemon's next start.
                (_, Some(cg)) => cg.kill_container(&launch.pod_uid, &launch.container),
                (_, None) => {}
            }
            // The child has its own copies now (or never came).
            let placement = placement.map(|mut p| {
                p.procs.clear();
                p
            });
            (prepared, placement)
        })
        .await
    };
    shared.reaper.spawn_done();
    match prepared {
        Ok((p, placement)) => (Ok(p), placement),
        Err(e) => (Err(e), None),
    }
}

async fn supervise(
    shared: &Arc<Shared>,
    launch: Arc<ContainerLaunch>,
    slot: Arc<Slot>,
    mut log: LogSink,
) -> ExitInfo {
    let clock = &shared.clock;
    // Cheap early exit before the trip to the blocking pool.
    if slot.ctl().stopping {
        return stopped_before_start(clock.now());
    }
    // Out of file descriptors is the daemon's state, not the container's: wait for some to be
    // given back (by containers that end) and try again, as the kubelet retries a container
    // it could not create, while the pod waits in ContainerCreating.
    let mut pause = RETRY_FIRST;
    let (prepared, placement) = loop {
        let (prepared, placement) = prepare_run(shared, &launch, &slot).await;
        match prepared {
            Ok(Prepared::OutOfDescriptors(message)) => {
                debug!(?launch, %message, retry_in = ?pause, "out of file descriptors; trying the start again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
                if slot.ctl().stopping {
                    return stopped_before_start(clock.now());
                }
            }
            other => break (other, placement),
        }
    };
    let child = match prepared {
        Err(e) => return start_error(clock.now(), format!("internal error: {e}")),
        Ok(Prepared::Stopped) => return stopped_before_start(clock.now()),
        // (The loop above only ends on the others.)
        Ok(Prepared::Failed(message) | Prepared::OutOfDescriptors(message)) => {
            debug!(?launch, %message, "container failed to start");
            log.message(&message, clock.now()).await;
            return start_error(clock.now(), message);
        }
        Ok(Prepared::Running(child)) => child,
    };
    let Spawned {
        pid: pgid,
        stdout,
        stderr,
        proc_start,
        mut owned,
    } = child;
    let pid = pgid.as_raw().unsigned_abs();
    let started_at = clock.now();
    let _ = shared.events.send(RuntimeEvent::Started {
        pod_uid: launch.pod_uid.clone(),
        container: launch.container.clone(),
        restart_count: launch.restart_count,
        pid,
        proc_start,
        started_at,
    });
    trace!(pid, ?launch, "container started");

    log.attach(stdout, stderr, pid);
    let mut watch = ExitWatch::new(pgid);
    let mut exited: Option<(nix::Result<WaitStatus>, Timestamp)> = None;
    let mut drain_until: Option<Instant> = None;
    let mut oom = false;

    loop {
        if exited.is_some() && log.drained() {
            break;
        }
        tokio::select! {
            () = log.read(clock.as_ref()) => {}
            () = watch.exited(pgid), if exited.is_none() => {
                if let Some(status) = reap(&slot, pgid) {
                    owned.0 = None;
                    shared.reaper.reaped_ours();
                    let finished = clock.now();
                    // The rest of the container's tree dies with its main process, as a pid
                    // namespace dies with its init; that also ends the pipes of an escapee.
                    oom = end_of_tree(shared, &launch, &slot, (pgid, proc_start), placement.as_ref()).await;
                    exited = Some((status, finished));
                    drain_until = Some(Instant::now() + DRAIN_TIMEOUT);
                }
            }
            () = sleep_until(drain_until) => {
                warn!(pid, container = %launch.container,
                    "output pipes still open {DRAIN_TIMEOUT:?} after the container exited \
                     (a process left its group?); closing them");
                break;
            }
        }
        log.write_batch().await;
    }
    // After a drain timeout this keeps what was read of unfinished lines.
    let now = clock.now();
    log.close(now).await;

    match exited {
        Some((status, finished_at)) => {
            let mut exit = exit_info(status, started_at, finished_at);
            if oom {
                exit.reason = crate::api::TerminatedReason::OOMKilled;
            }
            exit
        }
        // The loop only ends without an exit through the drain timeout, which needs one.
        None => start_error(now, "internal error: no exit status".into()),
    }
}

/// After the main process is reaped: kills the rest of the container's processes (its cgroup;
/// without one, its session and the sessions noted at a stop) and says whether the OOM killer
/// struck (read from the cgroup's counter, never guessed from the exit code).
async fn end_of_tree(
    shared: &Arc<Shared>,
    launch: &Arc<ContainerLaunch>,
    slot: &Arc<Slot>,
    (pgid, proc_start): (Pid, Option<u64>),
    placement: Option<&Placement>,
) -> bool {
    let mut sessions = std::mem::take(&mut slot.ctl().sessions);
    // The leader is reaped: its pid names this session while members carry it, and a new
    // process with that pid (another start time) once none does.
    sessions.push((pgid.as_raw(), proc_start));
    let cgroups = shared.cgroups.clone();
    let launch = launch.clone();
    let oom_before = placement.map(|p| p.oom_before);
    tokio::task::spawn_blocking(move || match (&cgroups, oom_before) {
        (Some(cg), Some(before)) => {
            let oom = cg.oom_killed(&launch.pod_uid, &launch.container, before);
            cg.kill_container(&launch.pod_uid, &launch.container);
            oom
        }
        _ => {
            // A process of one of these sessions whose leader is gone has its parent in the
            // session too, or became our child when its parent died: without such a child
            // of ours, nothing is left to look for (and no scan of /proc at every exit).
            let suspects = super::procs::our_children().is_none_or(|children| {
                let owned = owned_pids();
                children
                    .into_iter()
                    .filter(|p| !owned.contains(p))
                    .any(|p| {
                        super::procs::stat(p)
                            .is_some_and(|i| sessions.iter().any(|(s, _)| *s == i.sid))
                    })
            });
            if suspects {
                kill_sessions(&sessions);
            }
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Kills what is left of the group, then reaps the main process. `None` if it has not
/// actually exited (should not happen after the watch fired).
fn reap(slot: &Slot, pgid: Pid) -> Option<nix::Result<WaitStatus>> {
    let mut ctl = slot.ctl();
    // The main process is a zombie here, so its pgid still names only this container.
    signal_group(pgid, Signal::SIGKILL);
    let mut owned = owned_pids();
    let status = match waitpid(pgid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => return None,
        other => other,
    };
    owned.remove(&pgid.as_raw());
    ctl.pgid = None;
    Some(status)
}

fn exit_info(
    status: nix::Result<WaitStatus>,
    started_at: Timestamp,
    finished_at: Timestamp,
) -> ExitInfo {
    let (exit_code, signal, message) = match status {
        Ok(WaitStatus::Exited(_, code)) => (code, None, None),
        Ok(WaitStatus::Signaled(_, sig, _)) => (128 + sig as i32, Some(sig as i32), None),
        // Cannot happen for a reaped process; say so rather than invent a code.
        Ok(other) => (255, None, Some(format!("unexpected wait status {other:?}"))),
        Err(e) => (255, None, Some(format!("exit status unavailable: {e}"))),
    };
    ExitInfo {
        exit_code,
        signal,
        reason: crate::api::TerminatedReason::of_exit(exit_code),
        message,
        started_at,
        finished_at,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Waits for the main process to exit *without reaping it*.
enum ExitWatch {
    Pidfd(AsyncFd<OwnedFd>),
    /// Kernels before 5.3: SIGCHLD (or a timer) plus `waitid(WNOWAIT)`.
    Poll(Option<tokio::signal::unix::Signal>),
}

impl ExitWatch {
    fn new(pid: Pid) -> ExitWatch {
        let registered = pidfd_open(pid).and_then(|fd| {
            // SAFETY: an OwnedFd is a valid open fd that stays the same until the AsyncFd
            // drops it.
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(io::Error::from)
        });
        match registered {
            Ok(fd) => ExitWatch::Pidfd(fd),
            Err(e) => {
                debug!(pid = pid.as_raw(), error = %e, "no pidfd; watching SIGCHLD");
                ExitWatch::Poll(signal(SignalKind::child()).ok())
            }
        }
    }

    async fn exited(&mut self, pid: Pid) {
        if let ExitWatch::Pidfd(fd) = self {
            // A pidfd becomes readable when the process exits, and stays so.
            let err = match fd.readable().await {
                Ok(_) => return,
                Err(e) => e,
            };
            debug!(pid = pid.as_raw(), error = %err, "pidfd wait failed; polling");
            *self = ExitWatch::Poll(None);
        }
        let ExitWatch::Poll(sigchld) = self else {
            return;
        };
        loop {
            if exited_unreaped(pid) {
                return;
            }
            // SIGCHLD says when to look; without it, look often.
            let tick = if sigchld.is_some() {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(50)
            };
            tokio::select! {
                r = recv_opt(sigchld.as_mut()) => if r.is_none() { *sigchld = None },
                () = tokio::time::sleep(tick) => {}
            }
        }
    }
}

fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), libc::PIDFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd_open: fd out of range"))?;
    // SAFETY: pidfd_open returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Has `pid` exited (zombie, not yet reaped)?
fn exited_unreaped(pid: Pid) -> bool {
    matches!(
        waitid(
            Id::Pid(pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT
        ),
        Ok(st) if st != WaitStatus::StillAlive
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use crate::runtime::logs::Stream;
    use crate::runtime::spawn::proc_stat_field;
    use crate::runtime::testing::{
        Harness, WAIT, assert_no_zombies_soon, log_text, records, wait_for_log, wait_gone,
    };
    use crate::runtime::{Runtime, RuntimeEvent};

    #[tokio::test]
    async fn exit_code_and_both_streams_in_the_log() {
        let mut h = Harness::new();
        let run = h.run(&["sh", "-c", "echo out; echo err >&2; exit 3"]).await;
        assert!(run.pid.is_some());
        assert!(run.proc_start.is_some());
        assert_eq!(run.exit.exit_code, 3);
        assert_eq!(run.exit.signal, None);
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Error);
        assert_eq!(run.exit.message, None);
        assert!(run.exit.started_at <= run.exit.finished_at);
        let mut recs = records(&run.log);
        recs.sort_by_key(|r| r.0.as_str());
        assert_eq!(
            recs,
            vec![
                (Stream::Stderr, false, "err".into()),
                (Stream::Stdout, false, "out".into())
            ]
        );
        assert_eq!(h.rt.running(), 0);
    }

    #[tokio::test]
    async fn killed_by_signal_is_128_plus_signal() {
        let mut h = Harness::new();
        let run = h.run(&["sh", "-c", "kill -9 $$"]).await;
        assert_eq!(run.exit.exit_code, 137);
        assert_eq!(run.exit.signal, Some(9));
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Error);
    }

    #[tokio::test]
    async fn stop_with_grace_kills_a_term_ignoring_container() {
        let mut h = Harness::new();
        let launch = h.launch(&["sh", "-c", "trap '' TERM; echo ready; sleep 30"]);
        let (uid, log) = h.start(launch);
        wait_for_log(&log, "ready").await;
        assert_eq!(h.rt.running(), 1);
        let asked = Instant::now();
        h.rt.stop_pod(&uid, Duration::from_millis(200));
        let run = h.wait(&uid, log).await;
        assert!(asked.elapsed() >= Duration::from_millis(200));
        assert_eq!(run.exit.exit_code, 137);
        assert_eq!(run.exit.signal, Some(9));
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Error);
        assert_eq!(h.rt.running(), 0);
        // Idempotent afterwards.
        h.rt.stop_pod(&uid, Duration::ZERO);
        h.rt.stop_pod("no-such-pod", Duration::ZERO);
    }

    #[tokio::test]
    async fn stop_sends_sigterm_first() {
        let mut h = Harness::new();
        let launch = h.launch(&["sleep", "30"]);
        let (uid, log) = h.start(launch);
        h.wait_started(&uid).await;
        h.rt.stop_pod(&uid, Duration::from_secs(30));
        // Asking again sends no second SIGTERM and does not wait any longer.
        h.rt.stop_pod(&uid, Duration::from_secs(60));
        let run = h.wait(&uid, log).await;
        assert_eq!(run.exit.exit_code, 143);
        assert_eq!(run.exit.signal, Some(15));
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Error);
    }

    #[tokio::test]
    async fn stop_with_zero_grace_kills_at_once() {
        let mut h = Harness::new();
        let launch = h.launch(&["sh", "-c", "trap '' TERM; sleep 30"]);
        let (uid, log) = h.start(launch);
        h.wait_started(&uid).await;
        h.rt.stop_pod(&uid, Duration::ZERO);
        let run = h.wait(&uid, log).await;
        assert_eq!((run.exit.exit_code, run.exit.signal), (137, Some(9)));
    }

    #[tokio::test]
    async fn stop_before_spawn_cancels_the_spawn() {
        // current_thread runtime: the container's task cannot run before we yield.
        let mut h = Harness::new();
        let launch = h.launch(&["sleep", "30"]);
        let (uid, log) = h.start(launch);
        h.rt.stop_pod(&uid, Duration::from_secs(30));
        let run = h.wait(&uid, log).await;
        assert_eq!(run.pid, None);
        assert_eq!(run.exit.exit_code, 137);
        assert_eq!(run.exit.signal, None);
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Error);
        assert_eq!(run.exit.message.as_deref(), Some(STOPPED_BEFORE_START));
        assert_eq!(h.rt.running(), 0);
    }

    #[tokio::test]
    async fn stop_pod_stops_all_its_containers() {
        let mut h = Harness::new();
        let a = h.launch(&["sleep", "30"]);
        let mut b = a.clone();
        b.container = "side".into();
        b.log_path = a.log_path.with_file_name("side.log");
        let (uid, _) = h.start(a);
        h.rt.start(b);
        assert_eq!(h.rt.running(), 2);
        let mut started = 0;
        while started < 2 {
            if let RuntimeEvent::Started { .. } = h.next_event().await {
                started += 1;
            }
        }
        h.rt.stop_pod(&uid, Duration::from_secs(30));
        let mut exited = Vec::new();
        while exited.len() < 2 {
            if let RuntimeEvent::Exited {
                container, exit, ..
            } = h.next_event().await
            {
                exited.push((container, exit.exit_code));
            }
        }
        exited.sort();
        assert_eq!(exited, vec![("main".into(), 143), ("side".into(), 143)]);
        assert_eq!(h.rt.running(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leftover_group_members_die_with_the_main_process() {
        let mut h = Harness::new();
        let run = h.run(&["sh", "-c", "sleep 30 & echo $!"]).await;
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Completed);
        let child: u32 = log_text(&run.log).trim().parse().unwrap();
        // Killed before Exited; reaped by the orphan reaper (we are its subreaper) soon after.
        let start = proc_start_time(child);
        // SIGKILL was sent before Exited; under load the kernel may take a moment to act on it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while start.is_some()
            && proc_start_time(child) == start
            && proc_stat_field(child, 3).as_deref() != Some("Z")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild {child} was not killed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        wait_gone(child, start).await;
        assert_no_zombies_soon().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn escaped_descendant_holding_the_pipe_delays_exit_by_at_most_2s() {
        let mut h = Harness::new();
        let t = Instant::now();
        // Print the pid only once it has its own session, or our kill could still reach it.
        let script = r#"setsid sleep 30 & p=$!
            while [ "$(cut -d' ' -f6 /proc/$p/stat)" != "$p" ]; do :; done
            echo $p"#;
        let run = h.run(&["sh", "-c", script]).await;
        let took = t.elapsed();
        let escaped: u32 = log_text(&run.log).trim().parse().unwrap();
        let start = proc_start_time(escaped);
        let _ = nix::sys::signal::kill(Pid::from_raw(escaped as i32), Signal::SIGKILL);
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Completed);
        assert!(took >= DRAIN_TIMEOUT && took < WAIT, "{took:?}");
        wait_gone(escaped, start).await;
    }

    #[tokio::test]
    async fn kill_leftover_checks_the_start_time() {
        let mut h = Harness::new();
        let launch = h.launch(&["sleep", "30"]);
        let (uid, log) = h.start(launch);
        let pid = h.wait_started(&uid).await;
        let start = proc_start_time(pid).unwrap();
        h.rt.kill_leftover(pid, Some(start + 1));
        h.rt.kill_leftover(0, None);
        h.rt.kill_leftover(1, None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            h.rt.running(),
            1,
            "a different start time must not be killed"
        );
        h.rt.kill_leftover(pid, Some(start));
        let run = h.wait(&uid, log).await;
        assert_eq!((run.exit.exit_code, run.exit.signal), (137, Some(9)));
    }

    #[tokio::test]
    async fn exit_watch_fallback_does_not_reap() {
        // The pre-5.3 path: SIGCHLD + waitid(WNOWAIT) must see the exit and leave the zombie.
        let _h = Harness::new();
        let child = {
            let mut owned = owned_pids();
            let child = std::process::Command::new("true").spawn().unwrap();
            owned.insert(child.id() as i32);
            child
        };
        let pid = Pid::from_raw(child.id() as i32);
        let mut watch = ExitWatch::Poll(signal(SignalKind::child()).ok());
        tokio::time::timeout(WAIT, watch.exited(pid)).await.unwrap();
        assert_eq!(proc_stat_field(child.id(), 3).as_deref(), Some("Z"));
        let slot = Slot {
            ctl: Mutex::new(Ctl {
                pgid: Some(pid),
                ..Ctl::default()
            }),
            container: "main".into(),
        };
        let status = reap(&slot, pid).unwrap();
        assert_eq!(status, Ok(WaitStatus::Exited(pid, 0)));
        assert!(slot.ctl().pgid.is_none());
        assert!(!owned_pids().contains(&pid.as_raw()));
    }
}
