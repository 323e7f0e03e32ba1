//! Indexed Job cases, ported in our words from Kubernetes' `job_controller_test.go`
//! (`TestControllerSyncJob`'s "indexed job …" rows, `TestBackoffLimitPerIndex`,
//! `TestSyncJobWithJobSuccessPolicy`, `TestSyncJobWithJobBackoffLimitPerIndex`) and
//! `indexed_job_utils_test.go` (`TestFirstPendingIndexes`, `TestPodGenerateNameWithIndex`).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::api::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus,
    JobConditionType, JobSpec, ObjectMeta, PodCondition, PodStatus, SuccessPolicy,
    SuccessPolicyRule,
};
use crate::controller::job::{JobDecision, sync};

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

#[derive(Clone, Copy, Debug)]
enum K {
    Running,
    Pending,
    /// succeeded `n` seconds ago
    Succeeded(i64),
    /// failed `n` seconds ago
    Failed(i64),
    /// deleted by someone else, still running
    Terminating,
}

/// A pod of index `ix` (`None`: no index annotation), tracked, with failure counts
/// `(counted, ignored)` in its annotations.
#[derive(Clone, Copy, Debug)]
struct PodRow {
    ix: Option<i32>,
    kind: K,
    tracked: bool,
    failures: (i32, i32),
}

const fn p(ix: i32, kind: K) -> PodRow {
    PodRow {
        ix: Some(ix),
        kind,
        tracked: true,
        failures: (0, 0),
    }
}
const fn pf(ix: i32, kind: K, counted: i32) -> PodRow {
    PodRow {
        ix: Some(ix),
        kind,
        tracked: true,
        failures: (counted, 0),
    }
}

fn pod(n: usize, r: &PodRow) -> Pod {
    let mut pod = Pod {
        metadata: ObjectMeta {
            name: Some(format!("p{n}")),
            creation_timestamp: Some(ago(1000 - n as i64)),
            ..Default::default()
        },
        ..Default::default()
    };
    if let Some(ix) = r.ix {
        pod.metadata
            .annotations
            .insert(JOB_COMPLETION_INDEX.into(), ix.to_string());
    }
    if r.failures != (0, 0) {
        let a = &mut pod.metadata.annotations;
        a.insert(JOB_INDEX_FAILURE_COUNT.into(), r.failures.0.to_string());
        a.insert(
            JOB_INDEX_IGNORED_FAILURE_COUNT.into(),
            r.failures.1.to_string(),
        );
    }
    if r.tracked {
        pod.metadata
            .finalizers
            .push(crate::api::JOB_TRACKING_FINALIZER.into());
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
    let (phase, state, ready) = match r.kind {
        K::Running => (PodPhase::Running, running, true),
        K::Pending => (PodPhase::Pending, ContainerState::default(), false),
        K::Succeeded(s) => (PodPhase::Succeeded, terminated(0, s), false),
        K::Failed(s) => (PodPhase::Failed, terminated(1, s), false),
        K::Terminating => {
            pod.metadata.deletion_timestamp = Some(ago(1));
            (PodPhase::Running, running, false)
        }
    };
    pod.status = PodStatus {
        phase,
        container_statuses: vec![ContainerStatus {
            name: "c".into(),
            state,
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
    pod
}

fn job(parallelism: i32, completions: i32) -> Job {
    let mut j = Job {
        metadata: ObjectMeta {
            name: Some("idx".into()),
            ..Default::default()
        },
        spec: JobSpec {
            parallelism: Some(parallelism),
            completions: Some(completions),
            completion_mode: Some("Indexed".into()),
            backoff_limit: Some(6),
            pod_replacement_policy: Some("TerminatingOrFailed".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    j.spec.template.spec.restart_policy = Some("Never".into());
    j.status = Some(JobStatus {
        start_time: Some(ago(100)),
        ..Default::default()
    });
    j
}

/// With `backoffLimitPerIndex` (and its defaulted global limit).
fn per_index(mut j: Job, limit: i32, max_failed: Option<i32>) -> Job {
    j.spec.backoff_limit_per_index = Some(limit);
    j.spec.max_failed_indexes = max_failed;
    j.spec.backoff_limit = Some(i32::MAX);
    j.status.as_mut().unwrap().failed_indexes = Some(String::new());
    j
}

fn prior(mut j: Job, completed: &str, failed: Option<&str>, counts: (i32, i32)) -> Job {
    let s = j.status.as_mut().unwrap();
    s.completed_indexes = completed.into();
    if let Some(f) = failed {
        s.failed_indexes = Some(f.into());
    }
    s.succeeded = counts.0;
    s.failed = counts.1;
    j
}

fn run(j: &Job, rows: &[PodRow]) -> JobDecision {
    let pods: Vec<Pod> = rows.iter().enumerate().map(|(n, r)| pod(n, r)).collect();
    let refs: Vec<&Pod> = pods.iter().collect();
    sync(j, &refs, now(), CFG)
}

/// What one sync decided, in the terms the cases check.
#[derive(Debug, PartialEq)]
struct Got {
    /// (index, failure counts) of each pod to create
    create: Vec<(i32, Option<(i32, i32)>)>,
    /// deleted pods (by the number of their row)
    delete: Vec<String>,
    /// pods released from tracking
    untrack: Vec<String>,
    completed: String,
    failed_indexes: Option<String>,
    succeeded: i32,
    failed: i32,
    active: i32,
    /// condition types, then the first condition's reason and message
    conditions: Vec<String>,
    reason: String,
    requeue: Option<u64>,
}

fn got(d: &JobDecision) -> Got {
    let mut untrack = d.untrack.clone();
    untrack.sort();
    Got {
        create: d.indexes.iter().map(|n| (n.index, n.failures)).collect(),
        delete: d.delete.iter().map(|x| x.pod.clone()).collect(),
        untrack,
        completed: d.status.completed_indexes.clone(),
        failed_indexes: d.status.failed_indexes.clone(),
        succeeded: d.status.succeeded,
        failed: d.status.failed,
        active: d.status.active,
        conditions: d
            .status
            .conditions
            .iter()
            .map(|c| c.type_.as_str().to_string())
            .collect(),
        reason: d
            .status
            .conditions
            .last()
            .map(|c| format!("{}: {}", c.reason, c.message))
            .unwrap_or_default(),
        requeue: d.requeue_after.map(|r| r.as_secs()),
    }
}

const NONE: Got = Got {
    create: Vec::new(),
    delete: Vec::new(),
    untrack: Vec::new(),
    completed: String::new(),
    failed_indexes: None,
    succeeded: 0,
    failed: 0,
    active: 0,
    conditions: Vec::new(),
    reason: String::new(),
    requeue: None,
};

fn names(list: &[usize]) -> Vec<String> {
    list.iter().map(|n| format!("p{n}")).collect()
}
fn idx(list: &[i32]) -> Vec<(i32, Option<(i32, i32)>)> {
    list.iter().map(|i| (*i, None)).collect()
}
fn conds(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `TestControllerSyncJob`'s "indexed job …" rows: indexes created lowest first, only the
/// first success of an index counts, duplicates and strays deleted.
#[test]
fn indexed_pods_by_index() {
    use K::*;
    #[rustfmt::skip]
    let cases: Vec<(&str, Job, Vec<PodRow>, Got)> = vec![
        ("start: the lowest indexes first", job(2, 5), vec![],
         Got { create: idx(&[0, 1]), active: 2, ..NONE }),
        ("completed", job(2, 3),
         vec![p(0, Succeeded(5)), p(1, Succeeded(5)), p(2, Succeeded(5))],
         Got { untrack: names(&[0, 1, 2]), completed: "0-2".into(), succeeded: 3,
               conditions: conds(&["SuccessCriteriaMet", "Complete"]),
               reason: "CompletionsReached: Reached expected number of succeeded pods".into(), ..NONE }),
        ("a repeated success counts once", job(2, 3),
         vec![p(0, Succeeded(5)), p(1, Succeeded(5)), p(1, Succeeded(4))],
         Got { create: idx(&[2]), untrack: names(&[0, 1, 2]), completed: "0,1".into(), succeeded: 2, active: 1, ..NONE }),
        ("some running, some completed: the gaps fill lowest first", job(8, 20),
         vec![p(0, Running), p(2, Running), p(3, Succeeded(5)), p(4, Running), p(5, Succeeded(5)),
              p(7, Running), p(8, Succeeded(5)), p(11, Succeeded(5))],
         Got { create: idx(&[1, 6, 9, 10]), untrack: names(&[2, 4, 6, 7]), completed: "3,5,8,11".into(),
               succeeded: 4, active: 8, ..NONE }),
        ("failed pods' indexes run again", job(3, 3),
         vec![p(0, Failed(30)), p(1, Running), p(2, Failed(30))],
         Got { create: idx(&[0, 2]), untrack: names(&[0, 2]), failed: 2, active: 3, ..NONE }),
        ("pods without an index are deleted, uncounted", job(2, 2),
         vec![p(0, Running), PodRow { ix: None, kind: Running, tracked: true, failures: (0, 0) }],
         Got { delete: names(&[1]), untrack: names(&[1]), active: 1, ..NONE }),
        ("a failed pod without an index counts for nothing", job(1, 1),
         vec![p(0, Running), PodRow { ix: None, kind: Failed(5), tracked: true, failures: (0, 0) }],
         Got { untrack: names(&[1]), active: 1, ..NONE }),
        ("repeated indexes: all but one go, before any creation", job(3, 3),
         vec![p(0, Running), p(0, Pending), p(1, Running), p(1, Running)],
         Got { delete: names(&[1, 3]), untrack: names(&[1, 3]), active: 2, ..NONE }),
        ("indexes past completions are deleted (elastic scale-down)", job(2, 2),
         vec![p(0, Running), p(1, Running), p(2, Running), p(3, Pending)],
         Got { delete: names(&[2, 3]), untrack: names(&[2, 3]), active: 2, ..NONE }),
        ("completed indexes past completions are dropped (elastic scale-down)",
         prior(job(1, 2), "0-3", None, (4, 0)), vec![],
         Got { completed: "0,1".into(), succeeded: 2, conditions: conds(&["SuccessCriteriaMet", "Complete"]),
               reason: "CompletionsReached: Reached expected number of succeeded pods".into(), ..NONE }),
        ("scaled up: the new indexes run", prior(job(4, 4), "0,1", None, (2, 0)), vec![],
         Got { create: idx(&[2, 3]), completed: "0,1".into(), succeeded: 2, active: 2, ..NONE }),
        ("parallelism lowered: the least advanced pod goes", job(1, 3),
         vec![p(0, Running), p(1, Pending)],
         Got { delete: names(&[1]), untrack: names(&[1]), active: 1, ..NONE }),
        ("a success already counted is not counted again",
         prior(job(1, 2), "0", None, (1, 0)),
         vec![PodRow { ix: Some(0), kind: Succeeded(50), tracked: false, failures: (0, 0) }],
         Got { create: idx(&[1]), completed: "0".into(), succeeded: 1, active: 1, ..NONE }),
        ("global backoff delays every index (without backoffLimitPerIndex)", job(2, 2),
         vec![p(0, Failed(3)), p(1, Running)],
         Got { untrack: names(&[0]), failed: 1, active: 1, requeue: Some(7), ..NONE }),
        ("activeDeadlineSeconds: running pods end, counted failed",
         { let mut j = job(2, 3); j.spec.active_deadline_seconds = Some(50); j },
         vec![p(0, Succeeded(60)), p(1, Running), p(2, Running)],
         Got { delete: names(&[1, 2]), untrack: names(&[0, 1, 2]), completed: "0".into(), succeeded: 1, failed: 2,
               conditions: conds(&["FailureTarget"]),
               reason: "DeadlineExceeded: Job was active longer than specified deadline".into(), ..NONE }),
        ("failing: a running pod of an index past completions goes uncounted (as a failed one)",
         { let mut j = job(2, 2); j.spec.backoff_limit = Some(0); j },
         vec![p(0, Failed(5)), p(1, Running), p(3, Running)],
         Got { delete: names(&[1, 2]), untrack: names(&[0, 1, 2]), failed: 2,
               conditions: conds(&["FailureTarget"]),
               reason: "BackoffLimitExceeded: Job has reached the specified backoff limit".into(), ..NONE }),
        ("podReplacementPolicy Failed: a terminating pod's index waits",
         { let mut j = job(2, 2); j.spec.pod_replacement_policy = Some("Failed".into()); j },
         vec![p(0, Terminating), p(1, Running)],
         Got { active: 1, ..NONE }),
        ("podReplacementPolicy Failed: a free slot goes to the next index, not the terminating one",
         { let mut j = job(3, 3); j.spec.pod_replacement_policy = Some("Failed".into()); j },
         vec![p(0, Terminating), p(1, Running)],
         Got { create: idx(&[2]), active: 2, ..NONE }),
        ("podReplacementPolicy TerminatingOrFailed: a terminating pod's index runs again at once",
         job(2, 2), vec![p(0, Terminating), p(1, Running)],
         Got { create: idx(&[0]), untrack: names(&[0]), failed: 1, active: 2, ..NONE }),
        ("suspended: every pod goes, uncounted",
         { let mut j = job(2, 2); j.spec.suspend = Some(true); j },
         vec![p(0, Running), p(1, Running)],
         Got { delete: names(&[0, 1]), untrack: names(&[0, 1]), conditions: conds(&["Suspended"]),
               reason: "JobSuspended: Job suspended".into(), ..NONE }),
    ];
    for (name, j, rows, want) in cases {
        let d = run(&j, &rows);
        assert_eq!(got(&d), want, "{name}");
    }
}

/// `TestBackoffLimitPerIndex` / `TestSyncJobWithJobBackoffLimitPerIndex`, in our words.
#[test]
fn per_index_backoff_and_failed_indexes() {
    use K::*;
    #[rustfmt::skip]
    let cases: Vec<(&str, Job, Vec<PodRow>, Got)> = vec![
        ("start: each pod carries a zero failure count", per_index(job(2, 2), 1, None), vec![],
         Got { create: vec![(0, Some((0, 0))), (1, Some((0, 0)))], failed_indexes: Some("".into()), active: 2, ..NONE }),
        ("a first failure: held (uncounted) until its replacement exists, which carries count 1",
         per_index(job(2, 2), 1, None), vec![p(0, Failed(20)), p(1, Running)],
         Got { create: vec![(0, Some((1, 0)))], failed_indexes: Some("".into()), active: 2, ..NONE }),
        ("... once the replacement runs, the failure is counted and released",
         per_index(job(2, 2), 1, None), vec![p(0, Failed(20)), pf(0, Running, 1), p(1, Running)],
         Got { untrack: names(&[0]), failed_indexes: Some("".into()), failed: 1, active: 2, ..NONE }),
        ("the index's own delay: 10 s after its first failure",
         per_index(job(2, 2), 1, None), vec![p(0, Failed(4)), p(1, Running)],
         Got { failed_indexes: Some("".into()), active: 1, requeue: Some(6), ..NONE }),
        ("other indexes are not delayed",
         per_index(job(3, 3), 3, None), vec![p(0, Failed(4)), pf(1, Failed(50), 1), p(2, Running)],
         Got { create: vec![(1, Some((2, 0)))], failed_indexes: Some("".into()), active: 2, requeue: Some(6), ..NONE }),
        ("the delay grows with the index's failures: 20 s after the second",
         per_index(job(1, 1), 3, None), vec![pf(0, Failed(15), 1)],
         Got { failed_indexes: Some("".into()), requeue: Some(5), ..NONE }),
        ("ignored failures lengthen the delay too (k = counted + ignored + 1)",
         per_index(job(1, 1), 3, None),
         vec![PodRow { ix: Some(0), kind: Failed(30), tracked: true, failures: (0, 2) }],
         Got { failed_indexes: Some("".into()), requeue: Some(10), ..NONE }),
        ("failure number backoffLimitPerIndex+1 fails the index; the others go on",
         per_index(job(2, 3), 1, None), vec![pf(0, Failed(5), 1), p(1, Running)],
         Got { create: vec![(2, Some((0, 0)))], untrack: names(&[0]), failed_indexes: Some("0".into()), failed: 1, active: 2, ..NONE }),
        ("backoffLimitPerIndex 0: the first failure fails the index",
         per_index(job(2, 2), 0, None), vec![p(0, Failed(5)), p(1, Running)],
         Got { untrack: names(&[0]), failed_indexes: Some("0".into()), failed: 1, active: 1, ..NONE }),
        ("all indexes done, one failed: FailedIndexes",
         prior(per_index(job(2, 2), 0, None), "1", Some(""), (1, 0)), vec![p(0, Failed(5))],
         Got { untrack: names(&[0]), completed: "1".into(), failed_indexes: Some("0".into()), succeeded: 1, failed: 1,
               conditions: conds(&["FailureTarget", "Failed"]), reason: "FailedIndexes: Job has failed indexes".into(), ..NONE }),
        ("more failed indexes than maxFailedIndexes: running pods end at once",
         per_index(job(3, 3), 0, Some(0)), vec![p(0, Failed(5)), p(1, Running), p(2, Running)],
         Got { delete: names(&[1, 2]), untrack: names(&[0, 1, 2]), failed_indexes: Some("0".into()), failed: 3,
               conditions: conds(&["FailureTarget"]),
               reason: "MaxFailedIndexesExceeded: Job has exceeded the specified maximal number of failed indexes".into(), ..NONE }),
        ("failed indexes within maxFailedIndexes: the rest go on",
         per_index(job(3, 3), 0, Some(1)), vec![p(0, Failed(5)), p(1, Running), p(2, Running)],
         Got { untrack: names(&[0]), failed_indexes: Some("0".into()), failed: 1, active: 2, ..NONE }),
        ("failed indexes are remembered from status",
         prior(per_index(job(2, 3), 0, None), "", Some("0,1"), (0, 2)), vec![],
         Got { create: vec![(2, Some((0, 0)))], failed_indexes: Some("0,1".into()), failed: 2, active: 1, ..NONE }),
        ("the global backoffLimit still counts held failures",
         { let mut j = per_index(job(2, 2), 3, None); j.spec.backoff_limit = Some(1); j },
         vec![p(0, Failed(20)), p(1, Failed(20))],
         Got { untrack: names(&[0, 1]), failed_indexes: Some("".into()), failed: 2,
               conditions: conds(&["FailureTarget", "Failed"]),
               reason: "BackoffLimitExceeded: Job has reached the specified backoff limit".into(), ..NONE }),
        ("the deadline: held failures are counted as the Job fails",
         { let mut j = per_index(job(1, 1), 3, None); j.spec.active_deadline_seconds = Some(50); j },
         vec![p(0, Failed(20))],
         Got { untrack: names(&[0]), failed_indexes: Some("".into()), failed: 1,
               conditions: conds(&["FailureTarget", "Failed"]),
               reason: "DeadlineExceeded: Job was active longer than specified deadline".into(), ..NONE }),
        ("a user-deleted pod counts as a failure of its index (TerminatingOrFailed)",
         per_index(job(1, 1), 0, None), vec![p(0, Terminating)],
         Got { untrack: names(&[0]), failed_indexes: Some("0".into()), failed: 1,
               conditions: conds(&["FailureTarget"]), reason: "FailedIndexes: Job has failed indexes".into(), ..NONE }),
    ];
    for (name, j, rows, want) in cases {
        let d = run(&j, &rows);
        assert_eq!(got(&d), want, "{name}");
    }
}

/// With a podFailurePolicy whose one rule matches exit code 1 (every failed pod here).
fn on_exit_1(mut j: Job, action: &str) -> Job {
    use crate::api::{
        PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
    };
    j.spec.pod_failure_policy = Some(PodFailurePolicy {
        rules: vec![PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: "In".into(),
                values: Some(vec![1]),
            }),
            on_pod_conditions: Vec::new(),
        }],
    });
    j.spec.pod_replacement_policy = Some("Failed".into());
    j
}

/// `TestBackoffLimitPerIndex`'s podFailurePolicy rows: `FailIndex` fails the index at its
/// first failure whatever its budget; `Ignore` counts nowhere, the replacement carrying one
/// more ignored failure; `FailJob` fails the whole Job before any index is looked at.
#[test]
fn pod_failure_policy_by_index() {
    use K::*;
    #[rustfmt::skip]
    let cases: Vec<(&str, Job, Vec<PodRow>, Got)> = vec![
        ("FailIndex: the index fails at once, counted; the others go on",
         on_exit_1(per_index(job(2, 3), 5, None), "FailIndex"), vec![p(0, Failed(20)), p(1, Running)],
         Got { create: vec![(2, Some((0, 0)))], untrack: names(&[0]), failed_indexes: Some("0".into()), failed: 1, active: 2, ..NONE }),
        ("Count: the index's budget as without a policy (held until replaced)",
         on_exit_1(per_index(job(2, 2), 5, None), "Count"), vec![p(0, Failed(20)), p(1, Running)],
         Got { create: vec![(0, Some((1, 0)))], failed_indexes: Some("".into()), active: 2, ..NONE }),
        ("Ignore: uncounted, the replacement carries one ignored failure",
         on_exit_1(per_index(job(2, 2), 0, None), "Ignore"), vec![p(0, Failed(20)), p(1, Running)],
         Got { create: vec![(0, Some((0, 1)))], failed_indexes: Some("".into()), active: 2, ..NONE }),
        ("Ignore once replaced: released, failed stays 0",
         on_exit_1(per_index(job(2, 2), 0, None), "Ignore"), vec![p(0, Failed(20)), PodRow { ix: Some(0), kind: Running, tracked: true, failures: (0, 1) }, p(1, Running)],
         Got { untrack: names(&[0]), failed_indexes: Some("".into()), active: 2, ..NONE }),
        ("FailJob: the Job fails with the rule's message, the running pods counted",
         on_exit_1(per_index(job(2, 2), 5, None), "FailJob"), vec![p(0, Failed(20)), p(1, Running)],
         Got { delete: names(&[1]), untrack: names(&[0, 1]), failed_indexes: Some("".into()), failed: 2,
               conditions: conds(&["FailureTarget"]),
               reason: "PodFailurePolicy: Container c for pod default/p0 failed with exit code 1 matching FailJob rule at index 0".into(), ..NONE }),
    ];
    for (name, j, rows, want) in cases {
        let d = run(&j, &rows);
        assert_eq!(got(&d), want, "{name}");
    }
}

fn with_policy(mut j: Job, rules: &[(Option<&str>, Option<i32>)]) -> Job {
    j.spec.success_policy = Some(SuccessPolicy {
        rules: rules
            .iter()
            .map(|(i, c)| SuccessPolicyRule {
                succeeded_indexes: i.map(str::to_string),
                succeeded_count: *c,
            })
            .collect(),
    });
    j
}

/// `TestSyncJobWithJobSuccessPolicy`, in our words.
#[test]
fn success_policy_ends_the_job_early() {
    use K::*;
    let met = |i: usize| format!("SuccessPolicy: Matched rules at index {i}");
    #[rustfmt::skip]
    let cases: Vec<(&str, Job, Vec<PodRow>, Got)> = vec![
        ("succeededIndexes met: the other pods end, not counted failed",
         with_policy(job(3, 3), &[(Some("0"), None)]),
         vec![p(0, Succeeded(5)), p(1, Running), p(2, Running)],
         Got { delete: names(&[1, 2]), untrack: names(&[0, 1, 2]), completed: "0".into(), succeeded: 1,
               conditions: conds(&["SuccessCriteriaMet"]), reason: met(0), ..NONE }),
        ("... and once they are gone, Complete with the same reason",
         { let mut j = with_policy(job(3, 3), &[(Some("0"), None)]);
           let s = j.status.as_mut().unwrap();
           s.completed_indexes = "0".into(); s.succeeded = 1;
           s.conditions.push(crate::api::JobCondition { type_: JobConditionType::SuccessCriteriaMet, status: "True".into(),
               last_probe_time: None, last_transition_time: None, reason: "SuccessPolicy".into(), message: "Matched rules at index 0".into() });
           j },
         vec![],
         Got { completed: "0".into(), succeeded: 1, conditions: conds(&["SuccessCriteriaMet", "Complete"]), reason: met(0), ..NONE }),
        ("succeededCount met", with_policy(job(3, 3), &[(None, Some(2))]),
         vec![p(0, Succeeded(5)), p(1, Running), p(2, Succeeded(5))],
         Got { delete: names(&[1]), untrack: names(&[0, 1, 2]), completed: "0,2".into(), succeeded: 2,
               conditions: conds(&["SuccessCriteriaMet"]), reason: met(0), ..NONE }),
        ("succeededCount of succeededIndexes met", with_policy(job(4, 4), &[(Some("1-3"), Some(2))]),
         vec![p(0, Succeeded(5)), p(1, Succeeded(5)), p(2, Running), p(3, Succeeded(5))],
         Got { delete: names(&[2]), untrack: names(&[0, 1, 2, 3]), completed: "0,1,3".into(), succeeded: 3,
               conditions: conds(&["SuccessCriteriaMet"]), reason: met(0), ..NONE }),
        ("not met yet: the pods go on", with_policy(job(3, 3), &[(Some("0,1"), None)]),
         vec![p(0, Succeeded(5)), p(1, Running), p(2, Running)],
         Got { untrack: names(&[0]), completed: "0".into(), succeeded: 1, active: 2, ..NONE }),
        ("the first rule met names its index", with_policy(job(3, 3), &[(Some("2"), None), (None, Some(1))]),
         vec![p(0, Succeeded(5)), p(1, Running), p(2, Running)],
         Got { delete: names(&[1, 2]), untrack: names(&[0, 1, 2]), completed: "0".into(), succeeded: 1,
               conditions: conds(&["SuccessCriteriaMet"]), reason: met(1), ..NONE }),
        ("failure met first wins (FailedIndexes before successPolicy)",
         with_policy(per_index(job(2, 2), 0, None), &[(None, Some(1))]),
         vec![p(0, Succeeded(5)), p(1, Failed(5))],
         Got { untrack: names(&[0, 1]), completed: "0".into(), failed_indexes: Some("1".into()), succeeded: 1, failed: 1,
               conditions: conds(&["FailureTarget", "Failed"]), reason: "FailedIndexes: Job has failed indexes".into(), ..NONE }),
        ("the deadline wins over a policy met in the same sync",
         { let mut j = with_policy(job(2, 2), &[(None, Some(1))]); j.spec.active_deadline_seconds = Some(50); j },
         vec![p(0, Succeeded(5)), p(1, Running)],
         Got { delete: names(&[1]), untrack: names(&[0, 1]), completed: "0".into(), succeeded: 1, failed: 1,
               conditions: conds(&["FailureTarget"]), reason: "DeadlineExceeded: Job was active longer than specified deadline".into(), ..NONE }),
        ("once met it stays: a later failed index changes nothing",
         { let mut j = with_policy(per_index(job(2, 2), 0, None), &[(None, Some(1))]);
           let s = j.status.as_mut().unwrap();
           s.completed_indexes = "0".into(); s.succeeded = 1;
           s.conditions.push(crate::api::JobCondition { type_: JobConditionType::SuccessCriteriaMet, status: "True".into(),
               last_probe_time: None, last_transition_time: None, reason: "SuccessPolicy".into(), message: "Matched rules at index 0".into() });
           j },
         vec![p(1, Failed(5))],
         Got { untrack: names(&[0]), completed: "0".into(), failed_indexes: Some("1".into()), succeeded: 1, failed: 1,
               conditions: conds(&["SuccessCriteriaMet", "Complete"]), reason: met(0), ..NONE }),
    ];
    for (name, j, rows, want) in cases {
        let d = run(&j, &rows);
        assert_eq!(got(&d), want, "{name}");
    }
}

/// `TestFirstPendingIndexes`.
#[test]
fn first_pending_indexes() {
    type Row<'a> = (&'a str, &'a [(i32, i32)], i32, usize, &'a [i32]);
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("cnt greater than completions", &[], 5, 10, &[0, 1, 2, 3, 4]),
        ("cnt less than completions", &[], 5, 2, &[0, 1]),
        ("first pods active", &[(0, 1)], 10, 3, &[2, 3, 4]),
        ("last pods active or succeeded", &[(4, 5)], 6, 6, &[0, 1, 2, 3]),
        ("mixed", &[(1, 1), (3, 5), (7, 7), (11, 12)], 15, 5, &[0, 2, 6, 8, 9]),
        ("everything taken", &[(0, 4)], 5, 3, &[]),
    ];
    for (name, taken, completions, count, want) in rows {
        let got = first_pending(&Intervals::from_pairs(taken), *completions, *count);
        assert_eq!(got, *want, "{name}");
    }
}

/// `TestPodGenerateNameWithIndex`: the `-<index>-` part survives the 58-character cut.
#[test]
fn generate_names_keep_the_index() {
    let long = "a".repeat(60);
    #[rustfmt::skip]
    let rows: Vec<(&str, i32, String)> = vec![
        ("job", 1, "job-1-".into()),
        (&long, 1, format!("{}-1-", "a".repeat(55))),
        (&long, 10_000, format!("{}-10000-", "a".repeat(51))),
        (&long[..52], 123, format!("{}-123-", "a".repeat(52))),
        (&long[..53], 123, format!("{}-123-", "a".repeat(53))),
        (&long[..54], 123, format!("{}-123-", "a".repeat(53))),
    ];
    for (job, ix, want) in rows {
        let got = generate_name(job, ix);
        assert_eq!(got, want, "{job} {ix}");
        assert!(got.len() <= 58);
    }
}

/// What an index's pod gets on top of the template (`manageJob`'s Indexed branch).
#[test]
fn an_index_pod_carries_its_index_everywhere() {
    let mut j = job(1, 3);
    j.spec.template.spec.containers = vec![
        crate::api::Container {
            name: "a".into(),
            ..Default::default()
        },
        crate::api::Container {
            name: "b".into(),
            env: vec![crate::api::EnvVar {
                name: COMPLETION_INDEX_ENV.into(),
                value: Some("mine".into()),
                value_from: None,
            }],
            ..Default::default()
        },
    ];
    let mut pod = Pod {
        spec: j.spec.template.spec.clone(),
        ..Default::default()
    };
    apply(
        &mut pod,
        &j,
        &NewIndex {
            index: 2,
            failures: Some((1, 0)),
        },
    );
    let m = &pod.metadata;
    assert_eq!(
        m.annotations.get(JOB_COMPLETION_INDEX).map(String::as_str),
        Some("2")
    );
    assert_eq!(
        m.labels.get(JOB_COMPLETION_INDEX).map(String::as_str),
        Some("2")
    );
    assert_eq!(
        m.annotations
            .get(JOB_INDEX_FAILURE_COUNT)
            .map(String::as_str),
        Some("1")
    );
    // Zero ignored failures: no annotation.
    assert!(!m.annotations.contains_key(JOB_INDEX_IGNORED_FAILURE_COUNT));
    assert_eq!(m.generate_name.as_deref(), Some("idx-2-"));
    assert_eq!(pod.spec.hostname.as_deref(), Some("idx-2"));
    let env_a = &pod.spec.containers[0].env;
    assert_eq!(env_a.len(), 1);
    assert_eq!(env_a[0].name, "JOB_COMPLETION_INDEX");
    assert_eq!(
        env_a[0].value_from,
        Some(
            serde_json::json!({"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}})
        )
    );
    // A container that sets the variable itself keeps its own.
    assert_eq!(pod.spec.containers[1].env.len(), 1);
    assert_eq!(pod.spec.containers[1].env[0].value.as_deref(), Some("mine"));

    let mut ignored = Pod::default();
    apply(
        &mut ignored,
        &j,
        &NewIndex {
            index: 0,
            failures: Some((0, 2)),
        },
    );
    let a = &ignored.metadata.annotations;
    assert_eq!(
        a.get(JOB_INDEX_FAILURE_COUNT).map(String::as_str),
        Some("0")
    );
    assert_eq!(
        a.get(JOB_INDEX_IGNORED_FAILURE_COUNT).map(String::as_str),
        Some("2")
    );
    let mut plain = Pod::default();
    apply(
        &mut plain,
        &j,
        &NewIndex {
            index: 0,
            failures: None,
        },
    );
    assert!(
        !plain
            .metadata
            .annotations
            .contains_key(JOB_INDEX_FAILURE_COUNT)
    );
}
