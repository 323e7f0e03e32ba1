//! Table-driven Job controller cases, ported in spirit from Kubernetes'
//! `pkg/controller/job/job_controller_test.go` (`TestControllerSyncJob` and friends).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::api::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, JobSpec,
    ObjectMeta, PodCondition, PodStatus,
};

const CFG: PodFailureBackoff = PodFailureBackoff {
    base: Duration::from_secs(10),
    max: Duration::from_secs(600),
};

fn now() -> Timestamp {
    "2026-01-01T12:00:00Z".parse().unwrap()
}
fn ago(secs: i64) -> Timestamp {
    now() - SignedDuration::from_secs(secs)
}

#[derive(Clone, Copy)]
enum P {
    /// running, ready
    Running,
    /// pending, not ready
    Pending,
    /// succeeded, finished `n` seconds ago
    Succeeded(i64),
    /// failed, finished `n` seconds ago
    Failed(i64),
    /// deleted by a user, still terminating
    Terminating,
    /// running with this many container restarts
    Restarted(i32),
}

fn pod(i: usize, kind: P, tracked: bool) -> Pod {
    let mut p = Pod {
        metadata: ObjectMeta {
            name: Some(format!("job-{i}")),
            creation_timestamp: Some(ago(1000 - i as i64)),
            ..Default::default()
        },
        ..Default::default()
    };
    if tracked {
        p.metadata.finalizers.push(JOB_TRACKING_FINALIZER.into());
    }
    let terminated = |code, secs| ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: code,
            finished_at: Some(ago(secs)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let running = ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(ago(5)),
        }),
        ..Default::default()
    };
    let (phase, state, restarts, ready) = match kind {
        P::Running => (PodPhase::Running, running, 0, true),
        P::Pending => (PodPhase::Pending, ContainerState::default(), 0, false),
        P::Succeeded(s) => (PodPhase::Succeeded, terminated(0, s), 0, false),
        P::Failed(s) => (PodPhase::Failed, terminated(1, s), 0, false),
        P::Terminating => {
            p.metadata.deletion_timestamp = Some(ago(1));
            (PodPhase::Running, running, 0, false)
        }
        P::Restarted(n) => (PodPhase::Running, running, n, true),
    };
    p.status = PodStatus {
        phase,
        container_statuses: vec![ContainerStatus {
            name: "c".into(),
            state,
            restart_count: restarts,
            ..Default::default()
        }],
        conditions: vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: None,
            reason: None,
            message: None,
        }],
        ..Default::default()
    };
    p
}

struct Case {
    name: &'static str,
    parallelism: i32,
    completions: Option<i32>,
    backoff_limit: i32,
    restart_policy: &'static str,
    replacement: Option<&'static str>,
    deadline: Option<i64>,
    /// (kind, still tracked by the finalizer)
    pods: Vec<(P, bool)>,
    /// status.succeeded / failed before this sync
    prior: (i32, i32),
    started_ago: Option<i64>,
    // expectations
    create: usize,
    delete: usize,
    active: i32,
    succeeded: i32,
    failed: i32,
    conditions: &'static [&'static str],
    reason: &'static str,
    requeue: Option<u64>,
}

const BASE: Case = Case {
    name: "",
    parallelism: 1,
    completions: Some(1),
    backoff_limit: 6,
    restart_policy: "Never",
    replacement: None,
    deadline: None,
    pods: Vec::new(),
    prior: (0, 0),
    started_ago: Some(100),
    create: 0,
    delete: 0,
    active: 0,
    succeeded: 0,
    failed: 0,
    conditions: &[],
    reason: "",
    requeue: None,
};

fn run(c: &Case) -> JobDecision {
    let mut job = Job {
        spec: JobSpec {
            parallelism: Some(c.parallelism),
            completions: c.completions,
            backoff_limit: Some(c.backoff_limit),
            active_deadline_seconds: c.deadline,
            pod_replacement_policy: c.replacement.map(String::from),
            ..Default::default()
        },
        ..Default::default()
    };
    job.spec.template.spec.restart_policy = Some(c.restart_policy.into());
    job.status = Some(JobStatus {
        succeeded: c.prior.0,
        failed: c.prior.1,
        start_time: c.started_ago.map(ago),
        ..Default::default()
    });
    let pods: Vec<Pod> = c
        .pods
        .iter()
        .enumerate()
        .map(|(i, (k, t))| pod(i, *k, *t))
        .collect();
    let refs: Vec<&Pod> = pods.iter().collect();
    sync(&job, &refs, now(), CFG)
}

#[test]
fn sync_table() {
    use P::*;
    let cases = vec![
        Case {
            name: "job start",
            parallelism: 2,
            completions: Some(5),
            create: 2,
            active: 2,
            ..BASE
        },
        Case {
            name: "work queue start",
            parallelism: 2,
            completions: None,
            create: 2,
            active: 2,
            ..BASE
        },
        Case {
            name: "correct number of pods",
            parallelism: 2,
            completions: Some(5),
            pods: vec![(Running, true), (Running, true)],
            active: 2,
            ..BASE
        },
        Case {
            name: "too few active pods",
            parallelism: 2,
            completions: Some(5),
            pods: vec![(Running, true), (Succeeded(5), true)],
            create: 1,
            active: 2,
            succeeded: 1,
            ..BASE
        },
        Case {
            name: "too many active pods",
            parallelism: 2,
            completions: Some(5),
            pods: vec![(Running, true), (Running, true), (Pending, true)],
            delete: 1,
            active: 2,
            ..BASE
        },
        Case {
            name: "never more than the completions left",
            parallelism: 5,
            completions: Some(3),
            prior: (2, 0),
            create: 1,
            active: 1,
            succeeded: 2,
            ..BASE
        },
        Case {
            name: "job finish",
            parallelism: 2,
            completions: Some(5),
            prior: (4, 0),
            pods: vec![(Succeeded(1), true)],
            succeeded: 5,
            conditions: &["SuccessCriteriaMet", "Complete"],
            reason: "CompletionsReached",
            ..BASE
        },
        Case {
            name: "completions reached with a pod still running: terminate it, uncounted",
            parallelism: 2,
            completions: Some(1),
            pods: vec![(Succeeded(1), true), (Running, true)],
            delete: 1,
            succeeded: 1,
            conditions: &["SuccessCriteriaMet"],
            reason: "CompletionsReached",
            ..BASE
        },
        Case {
            name: "work queue: one done, one running: wait",
            parallelism: 2,
            completions: None,
            pods: vec![(Succeeded(1), true), (Running, true)],
            active: 1,
            succeeded: 1,
            ..BASE
        },
        Case {
            name: "work queue: all finished",
            parallelism: 2,
            completions: None,
            pods: vec![(Succeeded(1), true), (Succeeded(1), true)],
            succeeded: 2,
            conditions: &["SuccessCriteriaMet", "Complete"],
            reason: "CompletionsReached",
            ..BASE
        },
        Case {
            name: "work queue: finished despite one failure",
            parallelism: 2,
            completions: None,
            pods: vec![(Succeeded(1), true), (Failed(1), true)],
            succeeded: 1,
            failed: 1,
            conditions: &["SuccessCriteriaMet", "Complete"],
            reason: "CompletionsReached",
            ..BASE
        },
        Case {
            name: "counted pods are not counted again",
            parallelism: 1,
            completions: Some(3),
            prior: (1, 1),
            pods: vec![(Succeeded(50), false), (Failed(40), false)],
            create: 1,
            active: 1,
            succeeded: 1,
            failed: 1,
            ..BASE
        },
        Case {
            name: "new failed pod waits out the backoff",
            parallelism: 1,
            completions: Some(5),
            pods: vec![(Failed(3), true)],
            failed: 1,
            requeue: Some(7),
            ..BASE
        },
        Case {
            name: "backoff elapsed: replace",
            parallelism: 1,
            completions: Some(5),
            pods: vec![(Failed(11), true)],
            create: 1,
            active: 1,
            failed: 1,
            ..BASE
        },
        Case {
            name: "two consecutive failures double the delay",
            parallelism: 1,
            completions: Some(5),
            prior: (0, 1),
            pods: vec![(Failed(30), false), (Failed(5), true)],
            failed: 2,
            requeue: Some(15),
            ..BASE
        },
        Case {
            name: "a success resets the backoff",
            parallelism: 1,
            completions: Some(5),
            prior: (0, 2),
            pods: vec![
                (Failed(30), false),
                (Failed(25), false),
                (Succeeded(20), true),
            ],
            create: 1,
            active: 1,
            succeeded: 1,
            failed: 2,
            ..BASE
        },
        Case {
            name: "backoffLimit 0: first failure fails the job",
            backoff_limit: 0,
            pods: vec![(Failed(1), true)],
            failed: 1,
            conditions: &["FailureTarget", "Failed"],
            reason: "BackoffLimitExceeded",
            ..BASE
        },
        Case {
            name: "failed == backoffLimit is not past it",
            backoff_limit: 2,
            prior: (0, 1),
            pods: vec![(Failed(100), false), (Failed(100), true)],
            create: 1,
            active: 1,
            failed: 2,
            ..BASE
        },
        Case {
            name: "failed > backoffLimit fails the job",
            backoff_limit: 2,
            prior: (0, 2),
            pods: vec![(Failed(1), true)],
            failed: 3,
            conditions: &["FailureTarget", "Failed"],
            reason: "BackoffLimitExceeded",
            ..BASE
        },
        Case {
            name: "failing with active pods: terminate them, count them failed, Failed waits",
            parallelism: 2,
            completions: Some(5),
            backoff_limit: 0,
            pods: vec![(Failed(1), true), (Running, true)],
            delete: 1,
            failed: 2,
            conditions: &["FailureTarget"],
            reason: "BackoffLimitExceeded",
            ..BASE
        },
        Case {
            name: "OnFailure: restarts reach backoffLimit",
            restart_policy: "OnFailure",
            backoff_limit: 2,
            pods: vec![(Restarted(2), true)],
            delete: 1,
            failed: 1,
            conditions: &["FailureTarget"],
            reason: "BackoffLimitExceeded",
            ..BASE
        },
        Case {
            name: "OnFailure: restarts below backoffLimit",
            restart_policy: "OnFailure",
            backoff_limit: 2,
            pods: vec![(Restarted(1), true)],
            active: 1,
            ..BASE
        },
        Case {
            name: "OnFailure: backoffLimit 0 fails on the first restart",
            restart_policy: "OnFailure",
            backoff_limit: 0,
            pods: vec![(Restarted(1), true)],
            delete: 1,
            failed: 1,
            conditions: &["FailureTarget"],
            reason: "BackoffLimitExceeded",
            ..BASE
        },
        Case {
            name: "deadline exceeded",
            deadline: Some(10),
            started_ago: Some(10),
            pods: vec![(Running, true)],
            delete: 1,
            failed: 1,
            conditions: &["FailureTarget"],
            reason: "DeadlineExceeded",
            ..BASE
        },
        Case {
            name: "deadline exceeded with no pods",
            deadline: Some(10),
            started_ago: Some(60),
            pods: vec![(Failed(100), false)],
            prior: (0, 1),
            failed: 1,
            conditions: &["FailureTarget", "Failed"],
            reason: "DeadlineExceeded",
            ..BASE
        },
        Case {
            name: "deadline ahead: requeue for it",
            deadline: Some(30),
            started_ago: Some(10),
            pods: vec![(Running, true)],
            active: 1,
            requeue: Some(20),
            ..BASE
        },
        Case {
            name: "backoffLimit wins over the deadline",
            deadline: Some(1),
            backoff_limit: 0,
            pods: vec![(Failed(1), true)],
            failed: 1,
            conditions: &["FailureTarget", "Failed"],
            reason: "BackoffLimitExceeded",
            ..BASE
        },
        Case {
            name: "first sync sets startTime and creates",
            started_ago: None,
            create: 1,
            active: 1,
            ..BASE
        },
        Case {
            name: "completions 0 completes at once",
            completions: Some(0),
            conditions: &["SuccessCriteriaMet", "Complete"],
            reason: "CompletionsReached",
            ..BASE
        },
        Case {
            name: "parallelism 0 creates nothing",
            parallelism: 0,
            completions: Some(3),
            ..BASE
        },
        Case {
            name: "user-deleted pod counts as failed and is replaced",
            parallelism: 1,
            completions: Some(2),
            pods: vec![(Terminating, true)],
            failed: 1,
            requeue: None,
            create: 1,
            active: 1,
            ..BASE
        },
        Case {
            name: "podReplacementPolicy Failed: no replacement while the old pod terminates",
            parallelism: 1,
            completions: Some(2),
            replacement: Some("Failed"),
            pods: vec![(Terminating, true)],
            ..BASE
        },
    ];
    for c in &cases {
        let d = run(c);
        let got_conditions: Vec<&str> = d
            .status
            .conditions
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(d.create, c.create, "{}: create", c.name);
        assert_eq!(d.delete.len(), c.delete, "{}: delete", c.name);
        assert_eq!(d.status.active, c.active, "{}: active", c.name);
        assert_eq!(d.status.succeeded, c.succeeded, "{}: succeeded", c.name);
        assert_eq!(d.status.failed, c.failed, "{}: failed", c.name);
        assert_eq!(got_conditions, c.conditions, "{}: conditions", c.name);
        if let Some(cond) = d.status.conditions.first() {
            assert_eq!(cond.reason, c.reason, "{}: reason", c.name);
        }
        assert_eq!(
            d.requeue_after.map(|r| r.as_secs()),
            c.requeue,
            "{}: requeue",
            c.name
        );
        assert!(d.status.start_time.is_some(), "{}: startTime", c.name);
        let complete = got_conditions.contains(&"Complete");
        assert_eq!(
            d.status.completion_time.is_some(),
            complete,
            "{}: completionTime",
            c.name
        );
    }
}

#[test]
fn finishing_is_two_steps_and_final() {
    // Step 1: backoff exceeded with a running pod → FailureTarget, pod deleted, no Failed yet.
    let case = Case {
        parallelism: 2,
        completions: Some(5),
        backoff_limit: 0,
        pods: vec![(P::Failed(1), true), (P::Running, true)],
        ..BASE
    };
    let d = run(&case);
    assert_eq!(
        d.untrack,
        vec!["job-0", "job-1"],
        "both pods released from tracking once"
    );
    let mut job = Job::default();
    job.spec.backoff_limit = Some(0);
    job.status = Some(d.status.clone());
    // Step 2: the deleted pod is still terminating: still no Failed.
    let mut p = pod(1, P::Running, false);
    p.metadata.deletion_timestamp = Some(now());
    let d2 = sync(&job, &[&p], now(), CFG);
    assert_eq!(d2.status.terminating, 1);
    assert!(
        d2.status
            .condition(crate::api::JobConditionType::Failed)
            .is_none()
    );
    // Step 3: it ended (Failed, untracked): Failed appended, counts unchanged, one event.
    p.status.phase = PodPhase::Failed;
    let d3 = sync(&job, &[&p], now(), CFG);
    let types: Vec<&str> = d3
        .status
        .conditions
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(types, ["FailureTarget", "Failed"]);
    assert_eq!(d3.status.failed, 2);
    assert_eq!(
        d3.events,
        vec![EventSpec::warning(
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit"
        )]
    );
    // A finished Job never does anything again.
    job.status = Some(d3.status.clone());
    let d4 = sync(&job, &[], now(), CFG);
    assert_eq!((d4.create, d4.delete.len(), d4.events.len()), (0, 0, 0));
    assert_eq!(d4.status, d3.status);
}

#[test]
fn complete_sets_completion_time_and_event() {
    let case = Case {
        completions: Some(1),
        pods: vec![(P::Succeeded(1), true)],
        ..BASE
    };
    let d = run(&case);
    assert_eq!(d.status.completion_time, Some(now()));
    assert_eq!(
        d.events,
        vec![EventSpec::normal("Completed", "Job completed")]
    );
    assert_eq!(
        d.status
            .condition(crate::api::JobConditionType::Complete)
            .map(|c| c.message.as_str()),
        Some("Reached expected number of succeeded pods")
    );
}

/// `recordJobFinished`: a Job that counted more successes than its completions (two pods
/// succeeding in the same sync after a parallelism change) warns before `Completed`.
#[test]
fn too_many_succeeded_pods_warns() {
    let case = Case {
        completions: Some(1),
        pods: vec![(P::Succeeded(2), true), (P::Succeeded(1), true)],
        ..BASE
    };
    let d = run(&case);
    assert_eq!(d.status.succeeded, 2);
    assert_eq!(
        d.events,
        vec![
            EventSpec::warning(
                "TooManySucceededPods",
                "Too many succeeded pods running after completion count reached"
            ),
            EventSpec::normal("Completed", "Job completed")
        ]
    );
}

/// One suspend case: the Job before (`suspend`, its prior `Suspended` condition, pods, start)
/// and what one sync must decide.
struct Suspend {
    name: &'static str,
    suspend: bool,
    /// The `Suspended` condition already there: `Some(true)` True, `Some(false)` False.
    was: Option<bool>,
    pods: Vec<(P, bool)>,
    started_ago: Option<i64>,
    deadline: Option<i64>,
    prior_failed: i32,
    backoff_limit: i32,
    create: usize,
    delete: usize,
    active: i32,
    failed: i32,
    /// The `Suspended` condition after: (status, reason); None: no such condition.
    condition: Option<(&'static str, &'static str)>,
    events: &'static [&'static str],
    /// startTime after, as seconds ago (0: now); None: unset.
    start: Option<i64>,
    /// A terminal condition reached: its type.
    terminal: Option<&'static str>,
}

const SUSPEND: Suspend = Suspend {
    name: "",
    suspend: true,
    was: None,
    pods: Vec::new(),
    started_ago: None,
    deadline: None,
    prior_failed: 0,
    backoff_limit: 6,
    create: 0,
    delete: 0,
    active: 0,
    failed: 0,
    condition: None,
    events: &[],
    start: None,
    terminal: None,
};

/// The suspend cases of Kubernetes' `TestControllerSyncJob` ("suspending a job…", "resuming
/// a suspended job", created suspended) and of `TestPastDeadlineJobFinished`, in our words.
#[test]
fn suspend_table() {
    use P::*;
    let cases = vec![
        Suspend {
            name: "created suspended: no pods, no start, condition and event",
            condition: Some(("True", "JobSuspended")),
            events: &["Suspended"],
            ..SUSPEND
        },
        Suspend {
            name: "suspending a running job deletes its pods uncounted and clears startTime",
            pods: vec![(Running, true), (Pending, true)],
            started_ago: Some(50),
            delete: 2,
            condition: Some(("True", "JobSuspended")),
            events: &["Suspended"],
            ..SUSPEND
        },
        Suspend {
            name: "already suspended: nothing new, no second event",
            was: Some(true),
            condition: Some(("True", "JobSuspended")),
            ..SUSPEND
        },
        Suspend {
            name: "suspended past its deadline does not fail",
            was: Some(true),
            started_ago: Some(500),
            deadline: Some(10),
            condition: Some(("True", "JobSuspended")),
            ..SUSPEND
        },
        Suspend {
            name: "suspended, a pod that failed before still counts against backoffLimit",
            pods: vec![(Failed(5), true)],
            backoff_limit: 0,
            started_ago: Some(50),
            failed: 1,
            terminal: Some("Failed"),
            start: Some(50),
            ..SUSPEND
        },
        Suspend {
            name: "resuming: pods created, condition False, startTime now",
            suspend: false,
            was: Some(true),
            create: 1,
            active: 1,
            condition: Some(("False", "JobResumed")),
            events: &["Resumed"],
            start: Some(0),
            ..SUSPEND
        },
        Suspend {
            name: "resuming restarts the deadline clock",
            suspend: false,
            was: Some(true),
            started_ago: Some(500),
            deadline: Some(10),
            create: 1,
            active: 1,
            condition: Some(("False", "JobResumed")),
            events: &["Resumed"],
            start: Some(0),
            ..SUSPEND
        },
        Suspend {
            name: "resumed before: no second event, startTime kept",
            suspend: false,
            was: Some(false),
            pods: vec![(Running, true)],
            started_ago: Some(30),
            active: 1,
            condition: Some(("False", "JobResumed")),
            start: Some(30),
            ..SUSPEND
        },
        Suspend {
            name: "never suspended: no condition at all",
            suspend: false,
            create: 1,
            active: 1,
            start: Some(0),
            ..SUSPEND
        },
    ];
    for c in &cases {
        let mut job = Job {
            spec: JobSpec {
                parallelism: Some(1),
                completions: Some(1),
                backoff_limit: Some(c.backoff_limit),
                active_deadline_seconds: c.deadline,
                suspend: Some(c.suspend),
                ..Default::default()
            },
            ..Default::default()
        };
        job.spec.template.spec.restart_policy = Some("Never".into());
        let mut status = JobStatus {
            failed: c.prior_failed,
            start_time: c.started_ago.map(ago),
            ..Default::default()
        };
        if let Some(was) = c.was {
            let (reason, message) = if was {
                ("JobSuspended", "Job suspended")
            } else {
                ("JobResumed", "Job resumed")
            };
            let mut cond = condition(JobConditionType::Suspended, reason, message, ago(100));
            cond.status = if was { "True" } else { "False" }.into();
            status.conditions.push(cond);
        }
        job.status = Some(status);
        let pods: Vec<Pod> = c
            .pods
            .iter()
            .enumerate()
            .map(|(i, (k, t))| pod(i, *k, *t))
            .collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let d = sync(&job, &refs, now(), CFG);
        let n = c.name;
        assert_eq!(d.create, c.create, "{n}: create");
        assert_eq!(d.delete.len(), c.delete, "{n}: delete");
        assert!(
            d.delete.iter().all(|x| !x.count_as_failed),
            "{n}: a suspended pod is counted failed"
        );
        assert_eq!(d.status.active, c.active, "{n}: active");
        assert_eq!(d.status.failed, c.failed, "{n}: failed");
        assert_eq!(d.status.succeeded, 0, "{n}: succeeded");
        let got = d
            .status
            .conditions
            .iter()
            .find(|x| x.type_ == JobConditionType::Suspended)
            .map(|x| (x.status.as_str(), x.reason.as_str()));
        assert_eq!(got, c.condition, "{n}: Suspended condition");
        let reasons: Vec<&str> = d
            .events
            .iter()
            .filter(|e| e.reason == "Suspended" || e.reason == "Resumed")
            .map(|e| e.reason.as_str())
            .collect();
        assert_eq!(reasons, c.events, "{n}: events");
        assert_eq!(d.status.start_time, c.start.map(ago), "{n}: startTime");
        let terminal = d
            .status
            .conditions
            .iter()
            .find(|x| x.type_ == JobConditionType::Complete || x.type_ == JobConditionType::Failed)
            .map(|x| x.type_.as_str());
        assert_eq!(terminal, c.terminal, "{n}: terminal condition");
    }
}
