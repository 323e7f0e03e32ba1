//! `podFailurePolicy` carried out by the daemon, with the fake runtime and clock: a FailJob
//! rule on an exit code, and the Kubernetes remedy for pods a daemon stop or crash
//! interrupts (an `Ignore` rule on `DisruptionTarget`), which a plain API delete does not
//! trigger, as in Kubernetes.

use super::testing::{Harness, job};
use crate::api::{Job, JobConditionType, Pod, PodConditionType, PodPhase};
use crate::config::Config;

fn the_job(h: &Harness) -> Job {
    let mut jobs = h.daemon.world.all_jobs().into_iter();
    let job = jobs.next().expect("a Job").job;
    assert!(jobs.next().is_none(), "one Job");
    job
}

/// The Job's pods, oldest first.
fn pods(h: &Harness) -> Vec<Pod> {
    let mut pods = h.pods();
    pods.sort_by_key(|p| (p.metadata.creation_timestamp, p.metadata.name.clone()));
    pods
}

fn conditions(job: &Job) -> Vec<(String, String, String)> {
    let status = job.status.clone().unwrap_or_default();
    status
        .conditions
        .iter()
        .map(|c| (c.type_.to_string(), c.reason.clone(), c.message.clone()))
        .collect()
}

fn disruption_target(p: &Pod) -> Option<&str> {
    p.status
        .conditions
        .iter()
        .find(|c| c.type_ == PodConditionType::DisruptionTarget)
        .map(|c| c.status.as_str())
}

/// `extra_spec` for [`job`]: backoffLimit 0 and one rule.
fn policy(rule: &str) -> String {
    format!("  backoffLimit: 0\n  podFailurePolicy:\n    rules:\n{rule}")
}

const FAIL_ON_42: &str = "    - action: FailJob
      onExitCodes:
        containerName: main
        operator: In
        values: [42]
";

const IGNORE_DISRUPTIONS: &str = "    - action: Ignore
      onPodConditions:
      - type: DisruptionTarget
";

/// A container exits 42: the Job fails at once (FailureTarget, then Failed) with reason
/// PodFailurePolicy and a message naming the container, the pod and the rule, with the
/// Warning event; no pod is created after it.
#[test]
fn an_exit_code_matching_a_fail_job_rule_fails_the_job() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let spec = format!(
        "  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n{IGNORE_DISRUPTIONS}{FAIL_ON_42}"
    );
    h.apply("j.yaml", &job("j", "Never", "sleep", &spec));
    let pod = pods(&h).remove(0);
    h.advance(3);
    h.runtime.exit(pod.metadata.uid(), "main", 42);
    h.run();

    let job = the_job(&h);
    let message = format!(
        "Container main for pod default/{} failed with exit code 42 matching FailJob rule at index 1",
        pod.metadata.name()
    );
    let want = |t: &str| {
        (
            t.to_string(),
            "PodFailurePolicy".to_string(),
            message.clone(),
        )
    };
    assert_eq!(conditions(&job), [want("FailureTarget"), want("Failed")]);
    let status = job.status.clone().unwrap_or_default();
    assert_eq!((status.failed, status.active), (1, 0), "{status:#?}");
    assert_eq!(pods(&h).len(), 1, "nothing replaced the pod");
    let events = h.daemon.world.all_events();
    assert!(
        events
            .iter()
            .any(|e| e.reason == "PodFailurePolicy" && e.message == message),
        "{events:#?}"
    );
}

/// What follows an interruption under `Ignore` on DisruptionTarget: the interrupted pod
/// is Failed with DisruptionTarget=True, not counted (backoffLimit 0 is not reached), and
/// replaced once the pod-failure backoff has passed; the replacement completes the Job.
fn interrupted_then_completed(mut h: Harness, interrupted: &Pod) {
    let old = pods(&h)
        .into_iter()
        .find(|p| p.metadata.uid() == interrupted.metadata.uid())
        .expect("the interrupted pod is kept");
    assert_eq!(old.status.phase, PodPhase::Failed);
    assert_eq!(disruption_target(&old), Some("True"), "{:#?}", old.status);
    let status = the_job(&h).status.unwrap_or_default();
    assert_eq!(status.failed, 0, "{status:#?}");
    assert!(conditions(&the_job(&h)).is_empty(), "{status:#?}");

    // The replacement waits out the first pod-failure backoff (10 s), as in Kubernetes.
    assert_eq!(pods(&h).len(), 1);
    h.advance(10);
    assert!(h.job_timer_fires("j"), "the backoff's timer");
    let all = pods(&h);
    assert_eq!(all.len(), 2, "replaced");
    let new = &all[1];
    h.runtime.exit(new.metadata.uid(), "main", 0);
    h.run();

    let job = the_job(&h);
    let status = job.status.clone().unwrap_or_default();
    assert!(
        status.condition(JobConditionType::Complete).is_some(),
        "{status:#?}"
    );
    assert_eq!((status.succeeded, status.failed), (1, 0), "{status:#?}");
}

#[test]
fn a_pod_interrupted_by_a_daemon_crash_is_ignored_and_replaced() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "j.yaml",
        &job("j", "Never", "sleep", &policy(IGNORE_DISRUPTIONS)),
    );
    let pod = pods(&h).remove(0);
    assert_eq!(pod.status.phase, PodPhase::Running);
    h.advance(5);
    let h = h.crash_and_restart();
    interrupted_then_completed(h, &pod);
}

#[test]
fn a_pod_stopped_by_a_daemon_shutdown_is_ignored_and_replaced() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "j.yaml",
        &job("j", "Never", "sleep", &policy(IGNORE_DISRUPTIONS)),
    );
    let pod = pods(&h).remove(0);
    h.advance(5);
    h.daemon.begin_shutdown("SIGTERM");
    h.daemon.turn();
    h.run();
    assert!(h.daemon.shutdown_done());
    // Started again on the same root.
    let h = h.crash_and_restart();
    interrupted_then_completed(h, &pod);
}

/// A pod deleted through the API ends Failed without DisruptionTarget (the kubelet sets it
/// only when the node or an eviction ends a pod), so the Ignore rule does not match: the
/// failure counts, and backoffLimit 0 fails the Job. (The integration test
/// `pod_failure_policy::an_api_delete_is_no_disruption` reads the pod's last status.)
#[test]
fn a_pod_deleted_through_the_api_is_not_a_disruption() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "j.yaml",
        &job("j", "Never", "sleep", &policy(IGNORE_DISRUPTIONS)),
    );
    let pod = pods(&h).remove(0);
    h.advance(5);
    h.ask(|reply| super::requests::Request::Delete {
        kind: crate::api::Kind::Pod,
        namespace: "default".into(),
        name: pod.metadata.name().into(),
        delete: Default::default(),
        reply,
    })
    .expect("deleted");
    h.run();

    let job = the_job(&h);
    let status = job.status.clone().unwrap_or_default();
    assert_eq!(status.failed, 1, "{status:#?}");
    let reasons: Vec<String> = conditions(&job).into_iter().map(|c| c.1).collect();
    assert_eq!(reasons, ["BackoffLimitExceeded", "BackoffLimitExceeded"]);
    // Counted, then released and removed as any deleted pod: the rule did not match it.
    assert!(
        pods(&h)
            .iter()
            .all(|p| p.metadata.uid() != pod.metadata.uid()),
        "the deleted pod is gone once counted"
    );
}
