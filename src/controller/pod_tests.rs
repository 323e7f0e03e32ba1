//! Kubelet decisions: start, restart with CrashLoopBackOff, and pod phase.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::api::{Container, ContainerStateRunning, ObjectMeta, PodSpec};

const CFG: RestartBackoff = RestartBackoff {
    base: Duration::from_secs(10),
    max: Duration::from_secs(300),
};

fn now() -> Timestamp {
    "2026-01-01T12:00:00Z".parse().unwrap()
}
fn ago(secs: i64) -> Timestamp {
    now() - SignedDuration::from_secs(secs)
}

fn pod(policy: &str, containers: &[&str]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("p".into()),
            namespace: Some("default".into()),
            uid: Some("u".into()),
            ..Default::default()
        },
        spec: PodSpec {
            restart_policy: Some(policy.into()),
            containers: containers
                .iter()
                .map(|c| Container {
                    name: c.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn running(name: &str, restarts: i32) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        restart_count: restarts,
        state: ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(ago(60)),
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn exited(
    name: &str,
    code: i32,
    restarts: i32,
    ran_secs: i64,
    finished_ago: i64,
) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        restart_count: restarts,
        state: ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                started_at: Some(ago(finished_ago + ran_secs)),
                finished_at: Some(ago(finished_ago)),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn no_base(_: &str) -> i32 {
    0
}

#[test]
fn new_pod_starts_every_container() {
    let d = sync(&pod("Never", &["a", "b"]), &no_base, now(), CFG);
    let names: Vec<&str> = d.start.iter().map(|s| s.container.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(d.status.phase, PodPhase::Pending);
    // Asked once: the next sync does not start them again.
    let mut p = pod("Never", &["a", "b"]);
    p.status = d.status;
    assert!(sync(&p, &no_base, now(), CFG).start.is_empty());
}

#[test]
fn phase_table() {
    // (policy, container statuses, deleted, expected phase)
    let cases: Vec<(&str, Vec<ContainerStatus>, bool, PodPhase)> = vec![
        ("Never", vec![running("a", 0)], false, PodPhase::Running),
        (
            "Never",
            vec![exited("a", 0, 0, 1, 1)],
            false,
            PodPhase::Succeeded,
        ),
        (
            "Never",
            vec![exited("a", 1, 0, 1, 1)],
            false,
            PodPhase::Failed,
        ),
        (
            "Never",
            vec![exited("a", 128, 0, 0, 1)],
            false,
            PodPhase::Failed,
        ),
        (
            "Never",
            vec![exited("a", 1, 0, 1, 1), running("b", 0)],
            false,
            PodPhase::Running,
        ),
        (
            "Never",
            vec![exited("a", 0, 0, 1, 1), exited("b", 2, 0, 1, 1)],
            false,
            PodPhase::Failed,
        ),
        (
            "OnFailure",
            vec![exited("a", 0, 0, 1, 1)],
            false,
            PodPhase::Succeeded,
        ),
        ("OnFailure", vec![running("a", 0)], true, PodPhase::Running),
        (
            "OnFailure",
            vec![exited("a", 143, 0, 1, 0)],
            true,
            PodPhase::Failed,
        ),
        (
            "Never",
            vec![exited("a", 0, 0, 1, 0)],
            true,
            PodPhase::Succeeded,
        ),
    ];
    for (i, (policy, statuses, deleted, want)) in cases.into_iter().enumerate() {
        let names: Vec<String> = statuses.iter().map(|s| s.name.clone()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut p = pod(policy, &refs);
        p.status.container_statuses = statuses;
        p.status.phase = PodPhase::Running;
        if deleted {
            p.metadata.deletion_timestamp = Some(ago(1));
        }
        let d = sync(&p, &no_base, now(), CFG);
        assert_eq!(d.status.phase, want, "case {i}");
        assert!(d.start.is_empty(), "case {i}: nothing restarts");
    }
}

#[test]
fn on_failure_first_restart_is_immediate_then_backs_off() {
    let mut p = pod("OnFailure", &["a"]);
    p.status.phase = PodPhase::Running;
    p.status.container_statuses = vec![exited("a", 1, 0, 1, 0)];
    let d = sync(&p, &no_base, now(), CFG);
    assert_eq!(
        d.start,
        vec![Start {
            container: "a".into(),
            restart_count: 1
        }]
    );
    assert_eq!(d.status.container_statuses[0].restart_count, 1);
    assert!(
        d.status.container_statuses[0]
            .last_state
            .terminated
            .is_some()
    );

    // Second failure: wait 10s in CrashLoopBackOff.
    p.status.container_statuses = vec![exited("a", 1, 1, 1, 0)];
    let d = sync(&p, &no_base, now(), CFG);
    assert!(d.start.is_empty());
    assert_eq!(d.requeue_after, Some(Duration::from_secs(10)));
    let cs = &d.status.container_statuses[0];
    let waiting = cs.state.waiting.as_ref().unwrap();
    assert_eq!(waiting.reason, Some(WaitingReason::CrashLoopBackOff));
    assert_eq!(
        waiting.message.as_deref(),
        Some("back-off 10s restarting failed container=a pod=p_default(u)")
    );
    assert_eq!(d.events[0].reason, "BackOff");
    assert_eq!(d.status.phase, PodPhase::Running);

    // Still waiting 4s later; restarted when due.
    p.status = d.status.clone();
    let d = sync(&p, &no_base, now() + SignedDuration::from_secs(4), CFG);
    assert!(d.start.is_empty() && d.events.is_empty());
    assert_eq!(d.requeue_after, Some(Duration::from_secs(6)));
    let d = sync(&p, &no_base, now() + SignedDuration::from_secs(10), CFG);
    assert_eq!(
        d.start,
        vec![Start {
            container: "a".into(),
            restart_count: 2
        }]
    );

    // Third failure waits 20s, the k-th 10·2^(k-2) capped at 5m.
    p.status.container_statuses = vec![exited("a", 1, 2, 1, 0)];
    assert_eq!(
        sync(&p, &no_base, now(), CFG).requeue_after,
        Some(Duration::from_secs(20))
    );
    p.status.container_statuses = vec![exited("a", 1, 9, 1, 0)];
    assert_eq!(
        sync(&p, &no_base, now(), CFG).requeue_after,
        Some(Duration::from_secs(300))
    );
}

#[test]
fn long_run_resets_crash_loop_backoff() {
    let mut p = pod("OnFailure", &["a"]);
    p.status.phase = PodPhase::Running;
    p.status.container_statuses = vec![exited("a", 1, 5, 601, 0)];
    let d = sync(&p, &no_base, now(), CFG);
    assert_eq!(
        d.start,
        vec![Start {
            container: "a".into(),
            restart_count: 6
        }]
    );
    assert_eq!(d.backoff_resets, vec![("a".to_string(), 5)]);
    // From the reset on, the next failure waits the base again.
    p.status.container_statuses = vec![exited("a", 1, 6, 1, 0)];
    let d = sync(&p, &|_: &str| 5, now(), CFG);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(10)));
}

#[test]
fn exit_zero_and_never_do_not_restart() {
    let mut p = pod("OnFailure", &["a", "b"]);
    p.status.phase = PodPhase::Running;
    p.status.container_statuses = vec![exited("a", 0, 0, 1, 0), running("b", 0)];
    let d = sync(&p, &no_base, now(), CFG);
    assert!(d.start.is_empty());
    assert_eq!(d.status.phase, PodPhase::Running);
    let mut p = pod("Never", &["a"]);
    p.status.container_statuses = vec![exited("a", 1, 0, 1, 0)];
    assert!(sync(&p, &no_base, now(), CFG).start.is_empty());
}

#[test]
fn deleted_pod_never_restarts() {
    let mut p = pod("OnFailure", &["a"]);
    p.metadata.deletion_timestamp = Some(ago(1));
    p.status.phase = PodPhase::Running;
    p.status.container_statuses = vec![exited("a", 143, 0, 1, 0)];
    let d = sync(&p, &no_base, now(), CFG);
    assert!(d.start.is_empty());
    assert_eq!(d.status.phase, PodPhase::Failed);
}

#[test]
fn ready_follows_running_containers() {
    let mut p = pod("Never", &["a"]);
    p.status.container_statuses = vec![running("a", 0)];
    let d = sync(&p, &no_base, now(), CFG);
    p.status = d.status;
    assert!(is_ready(&p));
    p.status.container_statuses = vec![exited("a", 0, 0, 1, 0)];
    let d = sync(&p, &no_base, now(), CFG);
    p.status = d.status;
    assert!(!is_ready(&p));
}

#[test]
fn go_durations() {
    assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
    assert_eq!(go_duration(Duration::from_secs(10)), "10s");
    assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
}

/// The container state machine, one row per transition.
#[test]
fn container_transition_table() {
    use Lifecycle::*;
    let exited = Exited { exit_code: 1 };
    // (state, policy restarts this exit, pod deleted, back-off over, expected step)
    let rows = [
        (New, true, false, false, Step::Create),
        (New, true, true, false, Step::Stay),
        (Live, true, false, true, Step::Stay),
        (Live, true, true, true, Step::Stay),
        (exited, false, false, true, Step::Stay),
        (exited, true, true, true, Step::Stay),
        (exited, true, false, true, Step::Restart),
        (exited, true, false, false, Step::BackOff),
        (BackingOff, true, false, true, Step::Restart),
        (BackingOff, true, false, false, Step::Wait),
        (BackingOff, true, true, true, Step::Stay),
    ];
    for (state, restarts, deleted, due, want) in rows {
        assert_eq!(
            step(state, restarts, deleted, due),
            want,
            "{state:?} restarts={restarts} deleted={deleted} due={due}"
        );
    }
}

/// kubelet `ShouldContainerBeRestarted`: Always restarts any exit, OnFailure a non-zero one.
#[test]
fn restart_policy_per_exit_code() {
    use crate::api::RestartPolicy as P;
    for (policy, code, want) in [
        (P::Always, 0, true),
        (P::Always, 1, true),
        (P::OnFailure, 0, false),
        (P::OnFailure, 137, true),
        (P::Never, 1, false),
        (P::Never, 0, false),
    ] {
        assert_eq!(policy.restarts(code), want, "{policy:?} exit {code}");
    }
}

/// `restartPolicy: Always` (a bare Pod's default): a container that exits 0 is restarted at
/// once the first time, then backs off (`Completed`, then `CrashLoopBackOff`), and the pod
/// stays Running throughout, as the tutorial's `expr 8 + 3` pod shows on a cluster.
#[test]
fn always_restarts_even_success_and_stays_running() {
    let mut p = pod("Always", &["a"]);
    p.status.phase = PodPhase::Running;
    p.status.container_statuses = vec![exited("a", 0, 0, 1, 0)];
    let d = sync(&p, &no_base, now(), CFG);
    assert_eq!(d.status.phase, PodPhase::Running);
    assert_eq!(
        d.start,
        [Start {
            container: "a".into(),
            restart_count: 1
        }]
    );
    // Its second exit waits out the back-off: 10s from the exit.
    p.status.container_statuses = vec![exited("a", 0, 1, 1, 0)];
    let d = sync(&p, &no_base, now(), CFG);
    assert!(d.start.is_empty());
    assert_eq!(d.status.phase, PodPhase::Running);
    let cs = &d.status.container_statuses[0];
    assert_eq!(cs.waiting_reason(), Some(&WaitingReason::CrashLoopBackOff));
    assert_eq!(
        cs.last_state.terminated.as_ref().map(|t| t.exit_code),
        Some(0)
    );
    assert_eq!(d.requeue_after, Some(Duration::from_secs(10)));
    assert_eq!(d.events[0].reason, "BackOff");
    // Once the back-off is over it starts again.
    p.status = d.status;
    let d = sync(&p, &no_base, now() + SignedDuration::from_secs(10), CFG);
    assert_eq!(d.start.len(), 1);
    assert_eq!(d.start[0].restart_count, 2);
}

/// An `Always` pod ends only when deleted: Succeeded if every container's last exit was 0.
#[test]
fn always_pod_phase_when_deleted() {
    for (code, want) in [(0, PodPhase::Succeeded), (143, PodPhase::Failed)] {
        let mut p = pod("Always", &["a"]);
        p.metadata.deletion_timestamp = Some(ago(1));
        p.status.phase = PodPhase::Running;
        p.status.container_statuses = vec![exited("a", code, 3, 1, 0)];
        let d = sync(&p, &no_base, now(), CFG);
        assert!(d.start.is_empty());
        assert_eq!(d.status.phase, want, "exit {code}");
    }
}

/// Pod `activeDeadlineSeconds`, after the cases of the kubelet's `active_deadline_test.go`
/// (in our words) and what `syncPod` does with a pod it evicts: containers killed, nothing
/// started again, `Failed` with reason `DeadlineExceeded` once none runs.
#[test]
fn active_deadline_table() {
    let base = |policy: &str, deadline: Option<i64>, started_ago: i64, cs: Vec<ContainerStatus>| {
        let mut p = pod(policy, &["a"]);
        p.spec.active_deadline_seconds = deadline;
        p.status.start_time = Some(ago(started_ago));
        p.status.phase = PodPhase::Running;
        p.status.container_statuses = cs;
        p
    };
    struct Case {
        name: &'static str,
        pod: Pod,
        kill: bool,
        phase: PodPhase,
        reason: Option<&'static str>,
        starts: usize,
        requeue: Option<u64>,
        event: bool,
    }
    let mut marked = base("Never", Some(30), 60, vec![running("a", 0)]);
    marked.status.reason = Some(DEADLINE_EXCEEDED.into());
    marked.status.message = Some(DEADLINE_EXCEEDED_MESSAGE.into());
    let mut marked_exited = marked.clone();
    marked_exited.status.container_statuses = vec![exited("a", 143, 0, 40, 1)];
    let mut ended = base("Never", Some(30), 60, vec![exited("a", 1, 0, 10, 50)]);
    ended.status.phase = PodPhase::Failed;
    let cases = vec![
        Case {
            name: "no deadline",
            pod: base("Never", None, 1000, vec![running("a", 0)]),
            kill: false,
            phase: PodPhase::Running,
            reason: None,
            starts: 0,
            requeue: None,
            event: false,
        },
        Case {
            name: "not yet: look again when it passes",
            pod: base("Never", Some(30), 10, vec![running("a", 0)]),
            kill: false,
            phase: PodPhase::Running,
            reason: None,
            starts: 0,
            requeue: Some(20),
            event: false,
        },
        Case {
            name: "passed exactly: kill, reason, event; Running until the container ends",
            pod: base("Never", Some(30), 30, vec![running("a", 0)]),
            kill: true,
            phase: PodPhase::Running,
            reason: Some(DEADLINE_EXCEEDED),
            starts: 0,
            requeue: None,
            event: true,
        },
        Case {
            name: "already killed: no second kill or event",
            pod: marked,
            kill: false,
            phase: PodPhase::Running,
            reason: Some(DEADLINE_EXCEEDED),
            starts: 0,
            requeue: None,
            event: false,
        },
        Case {
            name: "killed container ended: Failed, not restarted under OnFailure either",
            pod: {
                let mut p = marked_exited.clone();
                p.spec.restart_policy = Some("OnFailure".into());
                p
            },
            kill: false,
            phase: PodPhase::Failed,
            reason: Some(DEADLINE_EXCEEDED),
            starts: 0,
            requeue: None,
            event: false,
        },
        Case {
            name: "past the deadline with a success: still Failed",
            pod: base("Never", Some(30), 60, vec![exited("a", 0, 0, 10, 1)]),
            kill: true,
            phase: PodPhase::Failed,
            reason: Some(DEADLINE_EXCEEDED),
            starts: 0,
            requeue: None,
            event: true,
        },
        Case {
            name: "a pod that ended is left alone",
            pod: ended,
            kill: false,
            phase: PodPhase::Failed,
            reason: None,
            starts: 0,
            requeue: None,
            event: false,
        },
    ];
    for c in cases {
        let d = sync(&c.pod, &|_| 0, now(), CFG);
        let n = c.name;
        assert_eq!(d.kill, c.kill, "{n}: kill");
        assert_eq!(d.status.phase, c.phase, "{n}: phase");
        assert_eq!(d.status.reason.as_deref(), c.reason, "{n}: reason");
        if c.reason.is_some() {
            assert_eq!(
                d.status.message.as_deref(),
                Some(DEADLINE_EXCEEDED_MESSAGE),
                "{n}: message"
            );
        }
        assert_eq!(d.start.len(), c.starts, "{n}: starts");
        assert_eq!(
            d.requeue_after,
            c.requeue.map(Duration::from_secs),
            "{n}: requeue"
        );
        let evented = d.events.iter().any(|e| {
            e.reason == DEADLINE_EXCEEDED
                && e.message == DEADLINE_EXCEEDED_MESSAGE
                && e.type_ == crate::api::EventType::Normal
        });
        assert_eq!(evented, c.event, "{n}: event");
    }
}
