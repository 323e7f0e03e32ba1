//! Pods ended by their node rather than by their containers: at shutdown, as the kubelet's
//! graceful node shutdown ends them (`nodeshutdown_manager_linux.go`), and after a crash of
//! the daemon, whose containers it can no longer supervise (recovery).

use jiff::Timestamp;

use crate::api::{
    ContainerState, ContainerStateTerminated, ContainerStatus, PodCondition, PodConditionType,
    PodPhase, PodStatus,
};

/// The pod's `status.message` and condition message after the daemon crashed under it.
pub const DAEMON_STOPPED: &str =
    "Pod was terminated because the jobvisor daemon stopped unexpectedly.";

/// The message of a container that was running (or starting) when the daemon crashed.
pub const LOST_CONTAINER: &str = "the jobvisor daemon stopped while this container was running";

/// The pod ended by its node with `message`: `Failed`, reason `Terminated` and a
/// `DisruptionTarget` condition (reason `TerminationByKubelet`). `None` while it must wait —
/// a container still runs or is starting — and for a pod that has ended already.
pub fn disrupted(status: &PodStatus, message: &str, now: Timestamp) -> Option<PodStatus> {
    if status.phase.is_terminal() || status.container_statuses.iter().any(still_running) {
        return None;
    }
    let mut ended = status.clone();
    ended.phase = PodPhase::Failed;
    ended.reason = Some("Terminated".into());
    ended.message = Some(message.into());
    update_condition(
        &mut ended.conditions,
        PodCondition {
            type_: PodConditionType::DisruptionTarget,
            status: "True".into(),
            last_transition_time: Some(now),
            reason: Some("TerminationByKubelet".into()),
            message: Some(message.into()),
        },
    );
    Some(ended)
}

/// Recovery: a pod the crashed daemon left unfinished. Every container not known to have
/// ended was killed with it (exit 137, SIGKILL) and the pod is [`disrupted`] with
/// [`DAEMON_STOPPED`]. `None` for a pod that had ended.
pub fn lost_container_exit(status: &PodStatus, now: Timestamp) -> Option<PodStatus> {
    if status.phase.is_terminal() {
        return None;
    }
    let mut ended = status.clone();
    for cs in &mut ended.container_statuses {
        if cs.state.terminated.is_none() {
            kill(cs, now);
        }
    }
    disrupted(&ended, DAEMON_STOPPED, now)
}

/// Recovery of a pod that restarts in place (a bare Pod, the kubelet's static pod): the
/// containers that were running or starting were killed with the daemon (exit 137); one
/// waiting out its back-off was not running and goes on waiting. The pod itself goes on.
pub fn interrupted(status: &PodStatus, now: Timestamp) -> PodStatus {
    let mut after = status.clone();
    for cs in after
        .container_statuses
        .iter_mut()
        .filter(|c| still_running(c))
    {
        kill(cs, now);
    }
    after
}

/// Running, or about to: a start was asked for, so an exit will be reported.
fn still_running(cs: &ContainerStatus) -> bool {
    cs.state.running.is_some() || cs.is_creating()
}

fn kill(cs: &mut ContainerStatus, now: Timestamp) {
    let started_at = cs.state.running.as_ref().and_then(|r| r.started_at);
    cs.state = ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: 137,
            signal: Some(9),
            reason: Some(crate::api::TerminatedReason::Error),
            message: Some(LOST_CONTAINER.into()),
            started_at,
            finished_at: Some(now),
            container_id: cs.container_id.clone(),
        }),
        ..Default::default()
    };
    cs.ready = false;
}

/// `podutil.UpdatePodCondition`: replaces the condition of that type where it stands, keeping
/// its transition time when its status does not change; appends it otherwise.
fn update_condition(conditions: &mut Vec<PodCondition>, mut condition: PodCondition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(old) => {
            if old.status == condition.status {
                condition.last_transition_time = old.last_transition_time;
            }
            *old = condition;
        }
        None => conditions.push(condition),
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::api::{ContainerStateRunning, ContainerStateWaiting};

    const SHUTDOWN: &str = "Pod was terminated in response to imminent node shutdown.";

    fn now() -> Timestamp {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }
    fn ago(secs: i64) -> Timestamp {
        now() - SignedDuration::from_secs(secs)
    }

    fn condition(type_: &str, status: &str, at: Timestamp) -> PodCondition {
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            last_transition_time: Some(at),
            reason: None,
            message: None,
        }
    }

    fn disruption(message: &str, at: Timestamp) -> PodCondition {
        PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            last_transition_time: Some(at),
            reason: Some("TerminationByKubelet".into()),
            message: Some(message.into()),
        }
    }

    fn container(name: &str, state: ContainerState) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            ready: state.running.is_some(),
            container_id: state
                .running
                .as_ref()
                .map(|_| format!("jobvisor://{}", name.len())),
            state,
            ..Default::default()
        }
    }
    fn running(name: &str) -> ContainerStatus {
        container(
            name,
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(ago(60)),
                }),
                ..Default::default()
            },
        )
    }
    fn waiting(name: &str, reason: &str) -> ContainerStatus {
        container(
            name,
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: None,
                }),
                ..Default::default()
            },
        )
    }
    fn exited(name: &str, code: i32) -> ContainerStatus {
        container(
            name,
            ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    reason: Some(crate::api::TerminatedReason::of_exit(code)),
                    started_at: Some(ago(60)),
                    finished_at: Some(ago(10)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    }

    /// A pod in `phase` with these containers and the kubelet's usual conditions.
    fn status(phase: PodPhase, containers: Vec<ContainerStatus>) -> PodStatus {
        PodStatus {
            phase,
            conditions: vec![
                condition("Initialized", "True", ago(90)),
                condition("Ready", "False", ago(90)),
            ],
            start_time: Some(ago(90)),
            container_statuses: containers,
            ..Default::default()
        }
    }

    /// `status` as the node ends it with `message`.
    fn ended(mut status: PodStatus, message: &str) -> PodStatus {
        status.phase = PodPhase::Failed;
        status.reason = Some("Terminated".into());
        status.message = Some(message.into());
        status.conditions.push(disruption(message, now()));
        status
    }

    #[test]
    fn disrupted_table() {
        use PodPhase::*;
        let shutdown = |containers| Some(ended(status(Running, containers), SHUTDOWN));
        #[rustfmt::skip]
        let rows: Vec<(&str, PodStatus, &str, Option<PodStatus>)> = vec![
            ("already succeeded: left alone",
             status(Succeeded, vec![exited("a", 0)]), SHUTDOWN, None),
            ("already failed: left alone",
             status(Failed, vec![exited("a", 1)]), SHUTDOWN, None),
            ("a container still running: its exit comes first",
             status(Running, vec![exited("a", 0), running("b")]), SHUTDOWN, None),
            ("a container in ContainerCreating: its start will report",
             status(Running, vec![waiting("a", "ContainerCreating")]), SHUTDOWN, None),
            ("every container exited, not all well",
             status(Running, vec![exited("a", 0), exited("b", 143)]), SHUTDOWN,
             shutdown(vec![exited("a", 0), exited("b", 143)])),
            ("a container in CrashLoopBackOff will not start again",
             status(Running, vec![waiting("a", "CrashLoopBackOff")]), SHUTDOWN,
             shutdown(vec![waiting("a", "CrashLoopBackOff")])),
            ("no container ever asked to start",
             status(Running, vec![]), SHUTDOWN, shutdown(vec![])),
            ("the message is the caller's",
             status(Running, vec![exited("a", 137)]), DAEMON_STOPPED,
             Some(ended(status(Running, vec![exited("a", 137)]), DAEMON_STOPPED))),
        ];
        for (name, before, message, want) in rows {
            assert_eq!(disrupted(&before, message, now()), want, "{name}");
        }
    }

    #[test]
    fn a_disruption_condition_already_there_is_updated_in_place() {
        let mut before = status(PodPhase::Running, vec![exited("a", 1)]);
        before.conditions.insert(0, disruption("earlier", ago(30)));
        let after = disrupted(&before, SHUTDOWN, now()).unwrap();
        assert_eq!(after.conditions.len(), before.conditions.len());
        // True before and after: the transition time stays, as UpdatePodCondition keeps it.
        assert_eq!(after.conditions[0], disruption(SHUTDOWN, ago(30)));
        assert_eq!(after.conditions[1..], before.conditions[1..]);

        before.conditions[0].status = "False".into();
        let after = disrupted(&before, SHUTDOWN, now()).unwrap();
        assert_eq!(after.conditions[0], disruption(SHUTDOWN, now()));
    }

    fn killed(mut cs: ContainerStatus, started_at: Option<Timestamp>) -> ContainerStatus {
        cs.state = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 137,
                signal: Some(9),
                reason: Some(crate::api::TerminatedReason::Error),
                message: Some(LOST_CONTAINER.into()),
                started_at,
                finished_at: Some(now()),
                container_id: cs.container_id.clone(),
            }),
            ..Default::default()
        };
        cs.ready = false;
        cs
    }

    #[test]
    fn lost_container_exit_table() {
        use PodPhase::*;
        let lost = |containers| Some(ended(status(Running, containers), DAEMON_STOPPED));
        #[rustfmt::skip]
        let rows: Vec<(&str, PodStatus, Option<PodStatus>)> = vec![
            ("already succeeded: left alone",
             status(Succeeded, vec![exited("a", 0)]), None),
            ("already failed: left alone",
             status(Failed, vec![running("a")]), None),
            ("a running container was killed with the daemon",
             status(Running, vec![running("a")]),
             lost(vec![killed(running("a"), Some(ago(60)))])),
            ("a starting container never reported a start",
             status(Running, vec![waiting("a", "ContainerCreating")]),
             lost(vec![killed(waiting("a", "ContainerCreating"), None)])),
            ("a container in back-off counts as lost too",
             status(Running, vec![waiting("a", "CrashLoopBackOff")]),
             lost(vec![killed(waiting("a", "CrashLoopBackOff"), None)])),
            ("containers that exited keep their exit",
             status(Running, vec![exited("a", 0), running("b")]),
             lost(vec![exited("a", 0), killed(running("b"), Some(ago(60)))])),
            ("no container yet",
             status(Running, vec![]), lost(vec![])),
        ];
        for (name, before, want) in rows {
            assert_eq!(lost_container_exit(&before, now()), want, "{name}");
        }
    }

    /// A pod that restarts in place: only what ran or was starting is killed; it stays Running.
    #[test]
    fn interrupted_table() {
        use PodPhase::*;
        #[rustfmt::skip]
        let rows: Vec<(&str, Vec<ContainerStatus>, Vec<ContainerStatus>)> = vec![
            ("a running container was killed", vec![running("a")],
             vec![killed(running("a"), Some(ago(60)))]),
            ("a starting one too", vec![waiting("a", "ContainerCreating")],
             vec![killed(waiting("a", "ContainerCreating"), None)]),
            ("one in back-off goes on waiting", vec![waiting("a", "CrashLoopBackOff")],
             vec![waiting("a", "CrashLoopBackOff")]),
            ("an exit is kept", vec![exited("a", 0), running("b")],
             vec![exited("a", 0), killed(running("b"), Some(ago(60)))]),
        ];
        for (name, before, want) in rows {
            let after = interrupted(&status(Running, before), now());
            assert_eq!(after, status(Running, want), "{name}");
        }
    }
}
