//! The orphan reaper, and the gate that keeps it off children still being spawned.
//!
//! The daemon is a child subreaper, so whatever a container leaves behind is reparented to us.
//! A reaper task (SIGCHLD, a kick after each reap, a 500 ms tick) reaps them with the design in
//! `shared/DEPENDENCIES.md` §4: peek with `waitid(P_ALL, WNOWAIT)`, leave pids in `OWNED` to
//! their task, `waitpid` the rest. The owned set is process-wide because `waitid(P_ALL)` is.
//! Spawns hold the `SPAWNING` gate shared from before `posix_spawn` until the pid is in
//! `OWNED`; the reaper takes it exclusively before reaping a pid it does not know (or, while
//! spawns are in flight, looks again when the next one is done), so a fresh child is never
//! mistaken for an orphan, spawns still run in parallel, and the reaper never blocks an async
//! worker.
//!
//! Caveat: nothing else in this process may spawn children (std or tokio `Command`,
//! `output()`) while a `ProcessRuntime` exists: the orphan reaper would take their exit
//! status. Such code would have to register its pids in `OWNED` the way
//! [`super::spawn`] does.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, trace};

/// SIGCHLD coalesces and can be missed while the reaper is busy: look again this often anyway.
const REAPER_TICK: Duration = Duration::from_millis(500);
/// How long the reaper keeps deferring to spawns in flight before it waits them out (on the
/// blocking pool): a steady stream of spawns must not keep orphans unreaped.
const REAPER_PATIENCE: Duration = Duration::from_millis(200);

/// Pids of every child this process spawned and reaps itself (see the module docs). A pid
/// goes in before its spawn releases [`SPAWNING`], and out when its task reaps it (under this
/// lock); the orphan reaper holds it across its check and reap of a pid not in it.
static OWNED: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Held shared by every spawn from before `posix_spawn` until its pid is in [`OWNED`]; the
/// orphan reaper takes it exclusively before reaping a pid it does not know, so a child whose
/// spawn is still in flight is never taken for an orphan. Shared, so spawns run in parallel:
/// `posix_spawn` waits for the child's exec, and one lock across it capped the spawn rate.
pub(super) static SPAWNING: RwLock<()> = RwLock::new(());

pub(super) fn owned_pids() -> MutexGuard<'static, BTreeSet<i32>> {
    // The set stays consistent even if a holder panicked: every update is a single call.
    OWNED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a pid from [`OWNED`] if its task ends without reaping it (panic, runtime
/// shutdown), so the orphan reaper can collect the zombie instead of stopping at it forever.
pub(super) struct OwnedPid(pub(super) Option<i32>);

impl Drop for OwnedPid {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            owned_pids().remove(&pid);
        }
    }
}

/// Wakes the orphan reaper; one per runtime, shared with its container tasks.
pub(super) struct Reaper {
    /// Wakes the orphan reaper after we reaped one of ours: an owned zombie hides later ones.
    kick: Notify,
    /// The reaper found a pid it does not know while spawns were in flight: the next spawn to
    /// finish kicks it, so it can look again. (Per runtime while the gate is per process: with
    /// several runtimes, as in tests, another's spawns do not kick us; the tick and
    /// [`REAPER_PATIENCE`] bound that wait.)
    deferred: AtomicBool,
}

impl Reaper {
    /// Makes this process a child subreaper and starts the orphan reaper, which runs until the
    /// returned `Arc` and its clones are gone.
    pub(super) fn start(handle: &tokio::runtime::Handle) -> Arc<Reaper> {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            debug!(error = %e, "cannot become a child subreaper; orphans go to init");
        }
        let reaper = Arc::new(Reaper {
            kick: Notify::new(),
            deferred: AtomicBool::new(false),
        });
        handle.spawn(orphan_reaper(Arc::downgrade(&reaper)));
        reaper
    }

    /// We reaped one of ours: an owned zombie hides later ones.
    pub(super) fn reaped_ours(&self) {
        self.kick.notify_one();
    }

    /// A spawn's SPAWNING guard is gone: a reaper that deferred to it may look again. (The fence
    /// pairs with the reaper's: its flag store and our guard release cannot both be missed.)
    pub(super) fn spawn_done(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.deferred.swap(false, Ordering::SeqCst) {
            self.kick.notify_one();
        }
    }
}

/// Reaps reparented orphans until the runtime is dropped and its last container is done (they
/// hold the [`Reaper`]).
async fn orphan_reaper(reaper: Weak<Reaper>) {
    let mut sigchld = match signal(SignalKind::child()) {
        Ok(s) => Some(s),
        Err(e) => {
            debug!(error = %e, "no SIGCHLD stream; reaping orphans on a timer only");
            None
        }
    };
    let mut deferred_since: Option<Instant> = None;
    loop {
        let Some(s) = reaper.upgrade() else { return };
        let pass = if deferred_since.is_some_and(|t| t.elapsed() >= REAPER_PATIENCE) {
            let s = s.clone();
            tokio::task::spawn_blocking(move || reap_orphans(&s.deferred, Gate::Wait))
                .await
                .unwrap_or(Pass::Deferred)
        } else {
            reap_orphans(&s.deferred, Gate::Try)
        };
        deferred_since = match pass {
            Pass::Done => None,
            Pass::Deferred => deferred_since.or_else(|| Some(Instant::now())),
        };
        tokio::select! {
            r = recv_opt(sigchld.as_mut()) => if r.is_none() { sigchld = None },
            () = s.kick.notified() => {}
            () = tokio::time::sleep(REAPER_TICK) => {}
        }
    }
}

pub(super) async fn recv_opt(s: Option<&mut tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// How the orphan reaper gets the [`SPAWNING`] gate for a pid it does not know.
#[derive(Clone, Copy)]
enum Gate {
    /// Only if no spawn is in flight (it runs on an async worker and must not block).
    Try,
    /// Wait for the spawns in flight (on the blocking pool); new ones wait behind us.
    Wait,
}

/// The outcome of one [`reap_orphans`] pass.
enum Pass {
    Done,
    /// Stopped at a pid it does not know while spawns were in flight.
    Deferred,
}

/// Reaps every waitable child that is not in [`OWNED`]; stops at the first owned one (its
/// task reaps it, then kicks us). A pid not in OWNED may be a child whose spawn is still in
/// flight: with [`Gate::Try`] it then sets `deferred` and stops, and the spawn kicks us when it
/// is done.
fn reap_orphans(deferred: &AtomicBool, gate: Gate) -> Pass {
    loop {
        let pid = match waitid(
            Id::All,
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        ) {
            Ok(WaitStatus::StillAlive) | Err(_) => return Pass::Done,
            Ok(st) => match st.pid() {
                Some(pid) => pid,
                None => return Pass::Done,
            },
        };
        if owned_pids().contains(&pid.as_raw()) {
            return Pass::Done;
        }
        // Set before trying, so a spawn that releases its guard after our try sees it (the
        // fence orders this store before the try's load, as the spawn's side does).
        deferred.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        let _gate = match gate {
            Gate::Wait => SPAWNING.write().unwrap_or_else(|e| e.into_inner()),
            Gate::Try => match SPAWNING.try_write() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return Pass::Deferred,
            },
        };
        deferred.store(false, Ordering::SeqCst);
        let owned = owned_pids();
        if owned.contains(&pid.as_raw()) {
            return Pass::Done;
        }
        // While it is unreaped, the zombie pins the pid: this reaps the process we peeked at
        // (or, if its task reaped it meanwhile, whatever orphan took the pid since — still an
        // orphan: no spawn can run while we hold the gate).
        let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
        trace!(pid = pid.as_raw(), "reaped orphan");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use crate::runtime::testing::{Harness, assert_no_zombies_soon};
    use crate::runtime::{Runtime, RuntimeEvent};
    use tokio::time::Instant;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_short_containers_leave_no_zombies() {
        let mut h = Harness::new();
        let total = 300;
        let parallel = 50;
        let mut started = 0;
        let mut done = 0;
        let t = Instant::now();
        while done < total {
            while started < total && started - done < parallel {
                let launch = h.launch(&["sh", "-c", "sleep 0 & true"]);
                h.start(launch);
                started += 1;
            }
            if let RuntimeEvent::Exited { exit, .. } = h.next_event().await {
                assert_eq!(
                    exit.reason,
                    crate::api::TerminatedReason::Completed,
                    "{exit:?}"
                );
                done += 1;
            }
        }
        eprintln!("{total} containers in {:?}", t.elapsed());
        assert_eq!(h.rt.running(), 0);
        assert_no_zombies_soon().await;
    }
}
