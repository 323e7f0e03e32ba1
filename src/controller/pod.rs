//! The kubelet's decisions for one pod: which containers to start or restart, when, and
//! what the pod's phase and conditions are (`kubelet getPhase`, `kuberuntime doBackOff`).
//!
//! The daemon records what the runtime reports (started, exited) into the pod status; this
//! module turns that into the next actions. A container with no status yet has never been
//! asked to start. `restartPolicy: OnFailure` restarts a container that exited non-zero, the
//! first time at once, then after the CrashLoopBackOff delay measured from its exit.

use std::time::Duration;

use jiff::Timestamp;

use super::{EventSpec, add, backoff, elapsed};
use crate::api::{
    ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodCondition, PodConditionType, PodPhase, PodStatus, RestartPolicy, WaitingReason,
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartBackoff {
    pub base: Duration,
    pub max: Duration,
}

/// A start the runtime should perform now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub container: String,
    /// The run number: 0 for the first start, restartCount after a restart.
    pub restart_count: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodDecision {
    pub status: PodStatus,
    pub start: Vec<Start>,
    pub requeue_after: Option<Duration>,
    pub events: Vec<EventSpec>,
    /// CrashLoopBackOff restart counting starts again from this restartCount (per container).
    pub backoff_resets: Vec<(String, i32)>,
    /// The pod's `activeDeadlineSeconds` has just passed: kill its containers (with its
    /// grace period). It ends `Failed`, reason `DeadlineExceeded`, once none runs.
    pub kill: bool,
}

/// The pod's `status.reason` and `status.message` (and the event) when its
/// `activeDeadlineSeconds` passed (kubelet `pkg/kubelet/active_deadline.go`).
pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
pub const DEADLINE_EXCEEDED_MESSAGE: &str =
    "Pod was active on the node longer than the specified deadline";

/// Where a pod stands against its `activeDeadlineSeconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// No deadline, or the pod has ended.
    None,
    /// Passes after this long.
    In(Duration),
    Exceeded,
}

/// kubelet `activeDeadlineHandler.pastActiveDeadline`: measured from `status.startTime`
/// (when the node took the pod; its creation if unset).
pub fn deadline(pod: &Pod, now: Timestamp) -> Deadline {
    let start = pod.status.start_time.or(pod.metadata.creation_timestamp);
    let (Some(secs), Some(start)) = (pod.spec.active_deadline_seconds, start) else {
        return Deadline::None;
    };
    if pod.status.phase.is_terminal() {
        return Deadline::None;
    }
    let at = add(start, Duration::from_secs(u64::try_from(secs).unwrap_or(0)));
    if now >= at {
        Deadline::Exceeded
    } else {
        Deadline::In(elapsed(now, at))
    }
}

/// Where a container's CrashLoopBackOff count restarts from (`restartCount` at the last
/// reset); kept by the daemon beside the pod.
pub type BackoffBase<'a> = dyn Fn(&str) -> i32 + 'a;

/// Where one container is in its lifecycle, read from its status: the states of the
/// kubelet's container state machine, with the data each one needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// No status yet: never asked to start.
    New,
    /// Asked to start (`ContainerCreating`) or running: the runtime will report its exit.
    Live,
    /// Its last run ended with this exit code.
    Exited { exit_code: i32 },
    /// Waiting out CrashLoopBackOff before the next run.
    BackingOff,
}

impl Lifecycle {
    fn of(cs: Option<&ContainerStatus>) -> Lifecycle {
        let Some(cs) = cs else {
            return Lifecycle::New;
        };
        match (&cs.state.terminated, &cs.state.waiting) {
            (Some(t), _) => Lifecycle::Exited {
                exit_code: t.exit_code,
            },
            (None, Some(w)) if w.reason == Some(WaitingReason::CrashLoopBackOff) => {
                Lifecycle::BackingOff
            }
            _ => Lifecycle::Live,
        }
    }
}

/// What to do with one container now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Stay,
    /// First start of a container that has none yet.
    Create,
    /// Start the next run now (`restartCount` + 1).
    Restart,
    /// It exited and its restart is not due yet: into CrashLoopBackOff.
    BackOff,
    /// Still backing off: look again when the delay is over.
    Wait,
}

/// The container state machine's transition table (kubelet `computePodActions` for one
/// container): `restarts` is the pod's restartPolicy applied to the last exit code,
/// `deleted` says the pod is terminating, `due` that the CrashLoopBackOff delay is over.
pub fn step(state: Lifecycle, restarts: bool, deleted: bool, due: bool) -> Step {
    use Lifecycle::*;
    match (state, deleted) {
        (New, false) => Step::Create,
        (New, true) | (Live, _) | (Exited { .. } | BackingOff, true) => Step::Stay,
        (Exited { .. }, false) if !restarts => Step::Stay,
        (Exited { .. } | BackingOff, false) if due => Step::Restart,
        (Exited { .. }, false) => Step::BackOff,
        (BackingOff, false) => Step::Wait,
    }
}

pub fn sync(
    pod: &Pod,
    backoff_base: &BackoffBase<'_>,
    now: Timestamp,
    cfg: RestartBackoff,
) -> PodDecision {
    let mut status = pod.status.clone();
    let mut start = Vec::new();
    let mut events = Vec::new();
    let mut requeue: Option<Duration> = None;
    let mut resets = Vec::new();
    let deleted = pod.metadata.deletion_timestamp.is_some();
    let policy = pod.spec.restart_policy();
    let mut kill = false;
    let expired = match deadline(pod, now) {
        Deadline::Exceeded => true,
        Deadline::In(left) => {
            requeue = Some(left);
            false
        }
        Deadline::None => false,
    };
    if expired && status.reason.as_deref() != Some(DEADLINE_EXCEEDED) {
        status.reason = Some(DEADLINE_EXCEEDED.into());
        status.message = Some(DEADLINE_EXCEEDED_MESSAGE.into());
        events.push(EventSpec::normal(
            DEADLINE_EXCEEDED,
            DEADLINE_EXCEEDED_MESSAGE,
        ));
        kill = true;
    }
    // Past its deadline a pod starts nothing more, as a deleted one.
    let stopping = deleted || expired;

    if !status.phase.is_terminal() {
        for container in &pod.spec.containers {
            let i = status
                .container_statuses
                .iter()
                .position(|c| c.name == container.name);
            let state = Lifecycle::of(i.map(|i| &status.container_statuses[i]));
            let restarts = match state {
                Lifecycle::Exited { exit_code } => policy.restarts(exit_code),
                _ => true,
            };
            let delay = i.and_then(|i| {
                let cs = &status.container_statuses[i];
                restart_delay(cs, backoff_base(&cs.name), now, cfg)
            });
            let due = delay.as_ref().is_some_and(|d| d.remaining.is_zero());
            match (step(state, restarts, stopping, due), i) {
                (Step::Create, _) => {
                    status.container_statuses.push(creating(
                        &container.name,
                        container.image.as_deref(),
                        0,
                    ));
                    start.push(Start {
                        container: container.name.clone(),
                        restart_count: 0,
                    });
                }
                (Step::Restart, Some(i)) => {
                    let cs = &mut status.container_statuses[i];
                    if delay.is_some_and(|d| d.reset) {
                        resets.push((cs.name.clone(), cs.restart_count));
                    }
                    restart(cs);
                    start.push(Start {
                        container: cs.name.clone(),
                        restart_count: cs.restart_count,
                    });
                }
                (Step::BackOff | Step::Wait, Some(i)) => {
                    let Some(d) = delay else { continue };
                    let cs = &mut status.container_statuses[i];
                    if d.reset {
                        resets.push((cs.name.clone(), cs.restart_count));
                    }
                    if state != Lifecycle::BackingOff {
                        let msg = format!(
                            "Back-off restarting failed container {} in pod {}_{}({})",
                            cs.name,
                            pod.metadata.name(),
                            pod.metadata.namespace(),
                            pod.metadata.uid()
                        );
                        events.push(EventSpec::warning("BackOff", msg));
                        into_backoff(pod, cs, d.delay);
                    }
                    requeue = Some(requeue.map_or(d.remaining, |r| r.min(d.remaining)));
                }
                _ => {}
            }
        }
    }
    let phase = phase(pod, &status, deleted, expired);
    if phase != status.phase {
        status.phase = phase;
    }
    update_conditions(&mut status, now);
    PodDecision {
        status,
        start,
        requeue_after: requeue,
        events,
        backoff_resets: resets,
        kill,
    }
}

/// When a stopped container's next run is due.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RestartDelay {
    /// The CrashLoopBackOff delay of this restart.
    delay: Duration,
    /// Left of it now (zero: due).
    remaining: Duration,
    /// The back-off count starts again from this run.
    reset: bool,
}

/// The CrashLoopBackOff delay of a container that has stopped (`None` while it runs):
/// measured from its last exit, the first restart at once.
fn restart_delay(
    cs: &ContainerStatus,
    base: i32,
    now: Timestamp,
    cfg: RestartBackoff,
) -> Option<RestartDelay> {
    let (last, first) = match (&cs.state.terminated, &cs.state.waiting) {
        (Some(t), _) => (t, true),
        (None, Some(w)) if w.reason == Some(WaitingReason::CrashLoopBackOff) => {
            (cs.last_state.terminated.as_ref()?, false)
        }
        _ => return None,
    };
    let finished = last.finished_at.unwrap_or(now);
    // client-go's backoff entry expires when the exit comes more than 2×max after the
    // last restart: a long healthy run makes the next restart immediate again.
    let ran = last
        .started_at
        .map(|s| elapsed(s, finished))
        .unwrap_or_default();
    let reset = first && ran > cfg.max * 2 && cs.restart_count > base;
    let base = if reset { cs.restart_count } else { base };
    let next = u32::try_from(cs.restart_count + 1 - base).unwrap_or(1);
    let delay = backoff::container_restart_delay(next, cfg.base, cfg.max);
    let due = add(finished, delay);
    Some(RestartDelay {
        delay,
        remaining: if now >= due {
            Duration::ZERO
        } else {
            elapsed(now, due)
        },
        reset,
    })
}

fn creating(name: &str, image: Option<&str>, restart_count: i32) -> ContainerStatus {
    ContainerStatus {
        name: name.to_string(),
        state: ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(WaitingReason::ContainerCreating),
                message: None,
            }),
            ..Default::default()
        },
        // The kubelet reports the reference the runtime resolved: normalised, default tag.
        image: crate::images::status_image(image.unwrap_or_default()),
        restart_count,
        started: Some(false),
        ..Default::default()
    }
}

fn restart(cs: &mut ContainerStatus) {
    if let Some(t) = cs.state.terminated.take() {
        cs.last_state = ContainerState {
            terminated: Some(t),
            ..Default::default()
        };
    }
    cs.restart_count += 1;
    cs.state = ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(WaitingReason::ContainerCreating),
            message: None,
        }),
        ..Default::default()
    };
    cs.ready = false;
    cs.started = Some(false);
}

fn into_backoff(pod: &Pod, cs: &mut ContainerStatus, delay: Duration) {
    if let Some(t) = cs.state.terminated.take() {
        cs.last_state = ContainerState {
            terminated: Some(t),
            ..Default::default()
        };
    }
    let message = format!(
        "back-off {} restarting failed container={} pod={}_{}({})",
        go_duration(delay),
        cs.name,
        pod.metadata.name(),
        pod.metadata.namespace(),
        pod.metadata.uid()
    );
    cs.state = ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(WaitingReason::CrashLoopBackOff),
            message: Some(message),
        }),
        ..Default::default()
    };
    cs.ready = false;
    cs.started = Some(false);
}

/// Go's `time.Duration.String()` for the whole-millisecond delays we produce: `10s`, `5m0s`, `200ms`.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    let secs = if s.fract() == 0.0 {
        format!("{}s", s as u64)
    } else {
        format!("{s}s")
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

fn terminated(cs: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    cs.state.terminated.as_ref()
}

/// kubelet `getPhase` for a pod without init containers. `expired`: past its
/// activeDeadlineSeconds, it is `Failed` once nothing of it runs, whatever the exit codes.
fn phase(pod: &Pod, status: &PodStatus, deleted: bool, expired: bool) -> PodPhase {
    if status.phase.is_terminal() {
        return status.phase;
    }
    let policy = pod.spec.restart_policy();
    let statuses: Vec<Option<&ContainerStatus>> = pod
        .spec
        .containers
        .iter()
        .map(|c| status.container_statuses.iter().find(|s| s.name == c.name))
        .collect();
    let exit_codes: Vec<Option<i32>> = statuses
        .iter()
        .map(|s| s.and_then(terminated).map(|t| t.exit_code))
        .collect();
    let all_ok = exit_codes.iter().all(|c| *c == Some(0));
    // A deleted pod is done once nothing of it runs; containers waiting (never started or in
    // back-off) will not start any more.
    let running = statuses
        .iter()
        .any(|s| s.is_some_and(|s| s.state.running.is_some() || is_starting(s)));
    if expired && !running {
        return PodPhase::Failed;
    }
    if deleted && !running {
        return if all_ok {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
    }
    // `Always` restarts whatever ended: the pod runs until it is deleted.
    if policy != RestartPolicy::Always {
        if all_ok {
            return PodPhase::Succeeded;
        }
        let all_done = exit_codes.iter().all(Option::is_some);
        if all_done && policy != RestartPolicy::OnFailure {
            return PodPhase::Failed;
        }
    }
    let any_started = statuses.iter().any(|s| {
        s.is_some_and(|s| {
            s.state.running.is_some() || s.state.terminated.is_some() || s.restart_count > 0
        })
    });
    if any_started {
        PodPhase::Running
    } else {
        PodPhase::Pending
    }
}

fn is_starting(cs: &ContainerStatus) -> bool {
    cs.is_creating()
}

fn update_conditions(status: &mut PodStatus, now: Timestamp) {
    let all_running = !status.container_statuses.is_empty()
        && status
            .container_statuses
            .iter()
            .all(|c| c.state.running.is_some());
    let ready = status.phase == PodPhase::Running && all_running;
    let initialized = true;
    let flag = |b: bool| if b { "True" } else { "False" };
    let reason = |b: bool| {
        if b {
            None
        } else {
            Some(
                if status.phase.is_terminal() {
                    "PodCompleted"
                } else {
                    "ContainersNotReady"
                }
                .to_string(),
            )
        }
    };
    let wanted = [
        (PodConditionType::Initialized, flag(initialized), None),
        (PodConditionType::Ready, flag(ready), reason(ready)),
        (
            PodConditionType::ContainersReady,
            flag(ready),
            reason(ready),
        ),
        (PodConditionType::PodScheduled, "True", None),
    ];
    for (type_, value, why) in wanted {
        match status.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status == value => {}
            Some(c) => {
                c.status = value.into();
                c.reason = why;
                c.last_transition_time = Some(now);
            }
            None => status.conditions.push(PodCondition {
                type_,
                status: value.into(),
                last_transition_time: Some(now),
                reason: why,
                message: None,
            }),
        }
    }
}

/// True when the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .conditions
        .iter()
        .any(|c| c.type_ == PodConditionType::Ready && c.status == "True")
}

/// When the pod finished: the latest container finish time, else its deletion time, else creation.
pub fn finish_time(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .container_statuses
        .iter()
        .filter_map(|c| terminated(c).and_then(|t| t.finished_at))
        .max()
        .or(pod.metadata.deletion_timestamp)
        .or(pod.metadata.creation_timestamp)
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
