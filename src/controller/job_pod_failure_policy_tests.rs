//! The Job controller with a `podFailurePolicy`: the podFailurePolicy cases of Kubernetes'
//! `TestSyncJobWithJobPodFailurePolicy` (`pkg/controller/job/job_controller_test.go`), in our
//! own table, plus the counting and replacement that follow from each verdict.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::api::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, JobSpec,
    ObjectMeta, PodCondition, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule, PodStatus,
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

fn codes(
    action: &str,
    operator: &str,
    values: &[i32],
    container: Option<&str>,
) -> PodFailurePolicyRule {
    PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: container.map(String::from),
            operator: operator.into(),
            values: Some(values.to_vec()),
        }),
        on_pod_conditions: vec![],
    }
}

fn condition_rule(action: &str, type_: &str) -> PodFailurePolicyRule {
    PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: None,
        on_pod_conditions: vec![PodFailurePolicyOnPodConditionsPattern {
            type_: type_.into(),
            status: "True".into(),
        }],
    }
}

/// Kubernetes' `onExitCodeRules`: ignore 1–3, fail the Job on 5–7.
fn on_exit_code_rules() -> Vec<PodFailurePolicyRule> {
    vec![
        codes("Ignore", "In", &[1, 2, 3], None),
        codes("FailJob", "In", &[5, 6, 7], None),
    ]
}

/// A pod of the test: its phase, containers (`None`: still running) and conditions.
#[derive(Clone)]
struct P {
    phase: PodPhase,
    containers: Vec<(&'static str, Option<i32>)>,
    conditions: Vec<&'static str>,
    /// Seconds since its containers ended.
    finished_ago: i64,
    tracked: bool,
    deleted: bool,
}

const RUNNING: P = P {
    phase: PodPhase::Running,
    containers: Vec::new(),
    conditions: Vec::new(),
    finished_ago: 0,
    tracked: true,
    deleted: false,
};

/// Failed long ago (no backoff left), its `main-container` exited with `code`.
fn failed(code: i32) -> P {
    P {
        phase: PodPhase::Failed,
        containers: vec![("main-container", Some(code))],
        finished_ago: 1000,
        ..RUNNING
    }
}

fn build(i: usize, p: &P) -> Pod {
    let finished_at = Some(ago(p.finished_ago));
    let mut pod = Pod {
        metadata: ObjectMeta {
            name: Some(format!("mypod-{i}")),
            namespace: Some("default".into()),
            creation_timestamp: Some(ago(2000 - i as i64)),
            deletion_timestamp: p.deleted.then(|| ago(1)),
            ..Default::default()
        },
        status: PodStatus {
            phase: p.phase,
            container_statuses: p
                .containers
                .iter()
                .map(|(name, code)| ContainerStatus {
                    name: (*name).into(),
                    state: match code {
                        Some(exit_code) => ContainerState {
                            terminated: Some(ContainerStateTerminated {
                                exit_code: *exit_code,
                                finished_at,
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        None => ContainerState {
                            running: Some(ContainerStateRunning {
                                started_at: Some(ago(5)),
                            }),
                            ..Default::default()
                        },
                    },
                    ..Default::default()
                })
                .collect(),
            conditions: p
                .conditions
                .iter()
                .map(|t| PodCondition {
                    type_: (*t).into(),
                    status: "True".into(),
                    last_transition_time: finished_at,
                    reason: None,
                    message: None,
                })
                .collect(),
            ..Default::default()
        },
        ..Default::default()
    };
    if p.tracked {
        pod.metadata.finalizers.push(JOB_TRACKING_FINALIZER.into());
    }
    pod
}

struct Case {
    name: &'static str,
    rules: Vec<PodFailurePolicyRule>,
    parallelism: i32,
    completions: i32,
    backoff_limit: i32,
    pods: Vec<P>,
    /// status.failed before this sync
    prior_failed: i32,
    /// an interim condition already set: (reason, message)
    failure_target: Option<(&'static str, &'static str)>,
    // expectations
    create: usize,
    delete: usize,
    active: i32,
    failed: i32,
    terminating: i32,
    untrack: usize,
    conditions: &'static [&'static str],
    reason: &'static str,
    message: &'static str,
    requeue: Option<u64>,
}

const BASE: Case = Case {
    name: "",
    rules: Vec::new(),
    parallelism: 1,
    completions: 1,
    backoff_limit: 6,
    pods: Vec::new(),
    prior_failed: 0,
    failure_target: None,
    create: 0,
    delete: 0,
    active: 0,
    failed: 0,
    terminating: 0,
    untrack: 0,
    conditions: &[],
    reason: "",
    message: "",
    requeue: None,
};

fn run(c: &Case) -> JobDecision {
    let mut job = Job {
        spec: JobSpec {
            parallelism: Some(c.parallelism),
            completions: Some(c.completions),
            backoff_limit: Some(c.backoff_limit),
            // As defaulting and validation leave it with a podFailurePolicy.
            pod_replacement_policy: Some("Failed".into()),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: c.rules.clone(),
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    job.spec.template.spec.restart_policy = Some("Never".into());
    let mut status = JobStatus {
        failed: c.prior_failed,
        start_time: Some(ago(3000)),
        ..Default::default()
    };
    if let Some((reason, message)) = c.failure_target {
        status.conditions.push(condition(
            JobConditionType::FailureTarget,
            reason,
            message,
            ago(10),
        ));
    }
    job.status = Some(status);
    let pods: Vec<Pod> = c
        .pods
        .iter()
        .enumerate()
        .map(|(i, p)| build(i, p))
        .collect();
    let refs: Vec<&Pod> = pods.iter().collect();
    sync(&job, &refs, now(), CFG)
}

const MSG_EXIT_5: &str = "Container main-container for pod default/mypod-0 failed with exit code 5 matching FailJob rule at index 1";

#[test]
fn sync_with_pod_failure_policy_table() {
    let cases = vec![
        Case {
            name: "FailJob by exit code: FailureTarget, then Failed, reason PodFailurePolicy",
            rules: on_exit_code_rules(),
            pods: vec![failed(5)],
            failed: 1,
            untrack: 1,
            conditions: &["FailureTarget", "Failed"],
            reason: "PodFailurePolicy",
            message: MSG_EXIT_5,
            ..BASE
        },
        Case {
            name: "FailJob wins over backoffLimit reached by the same failure",
            rules: on_exit_code_rules(),
            backoff_limit: 0,
            pods: vec![failed(5)],
            failed: 1,
            untrack: 1,
            conditions: &["FailureTarget", "Failed"],
            reason: "PodFailurePolicy",
            message: MSG_EXIT_5,
            ..BASE
        },
        Case {
            name: "FailJob with a pod still running: it is terminated and counted failed, Failed waits",
            rules: on_exit_code_rules(),
            parallelism: 2,
            completions: 2,
            pods: vec![failed(5), RUNNING],
            delete: 1,
            failed: 2,
            terminating: 1,
            untrack: 2,
            conditions: &["FailureTarget"],
            reason: "PodFailurePolicy",
            message: MSG_EXIT_5,
            ..BASE
        },
        Case {
            name: "already FailureTarget (its pod gone): Failed with the same message",
            rules: on_exit_code_rules(),
            prior_failed: 1,
            failure_target: Some((
                "PodFailurePolicy",
                "Container main-container for pod default/already-deleted-pod failed with exit code 5 matching FailJob rule at index 1",
            )),
            failed: 1,
            conditions: &["FailureTarget", "Failed"],
            reason: "PodFailurePolicy",
            message: "Container main-container for pod default/already-deleted-pod failed with exit code 5 matching FailJob rule at index 1",
            ..BASE
        },
        Case {
            name: "FailJob with NotIn",
            rules: vec![codes("FailJob", "NotIn", &[5, 6, 7], None)],
            pods: vec![failed(42)],
            failed: 1,
            untrack: 1,
            conditions: &["FailureTarget", "Failed"],
            reason: "PodFailurePolicy",
            message: "Container main-container for pod default/mypod-0 failed with exit code 42 matching FailJob rule at index 0",
            ..BASE
        },
        Case {
            name: "NotIn not matched: default handling, counted and replaced",
            rules: vec![codes("FailJob", "NotIn", &[5, 6, 7], None)],
            pods: vec![failed(5)],
            create: 1,
            active: 1,
            failed: 1,
            untrack: 1,
            ..BASE
        },
        Case {
            name: "FailJob by condition",
            rules: vec![condition_rule("FailJob", "DisruptionTarget")],
            pods: vec![P {
                conditions: vec!["DisruptionTarget"],
                ..failed(137)
            }],
            failed: 1,
            untrack: 1,
            conditions: &["FailureTarget", "Failed"],
            reason: "PodFailurePolicy",
            message: "Pod default/mypod-0 has condition DisruptionTarget matching FailJob rule at index 0",
            ..BASE
        },
        Case {
            name: "Ignore by exit code: not counted (backoffLimit 0 not reached), replaced",
            rules: on_exit_code_rules(),
            backoff_limit: 0,
            pods: vec![failed(1)],
            create: 1,
            active: 1,
            untrack: 1,
            ..BASE
        },
        Case {
            name: "Ignore by condition: not counted, replaced",
            rules: vec![condition_rule("Ignore", "DisruptionTarget")],
            backoff_limit: 0,
            pods: vec![P {
                conditions: vec!["DisruptionTarget"],
                ..failed(137)
            }],
            create: 1,
            active: 1,
            untrack: 1,
            ..BASE
        },
        Case {
            name: "an ignored failure still delays the replacement (the pod-failure backoff)",
            rules: vec![condition_rule("Ignore", "DisruptionTarget")],
            backoff_limit: 0,
            pods: vec![P {
                conditions: vec!["DisruptionTarget"],
                finished_ago: 4,
                ..failed(137)
            }],
            untrack: 1,
            requeue: Some(6),
            ..BASE
        },
        Case {
            name: "ignored failures already released are not counted later either",
            rules: on_exit_code_rules(),
            backoff_limit: 0,
            pods: vec![P {
                tracked: false,
                ..failed(2)
            }],
            create: 1,
            active: 1,
            ..BASE
        },
        Case {
            name: "Count: both rules match, the first decides",
            rules: vec![
                codes("Count", "In", &[1, 2], None),
                codes("Ignore", "In", &[2, 3], None),
            ],
            pods: vec![failed(2)],
            create: 1,
            active: 1,
            failed: 1,
            untrack: 1,
            ..BASE
        },
        Case {
            name: "Count by condition, first of two matching rules",
            rules: vec![
                condition_rule("Count", "ResourceLimitExceeded"),
                condition_rule("Ignore", "DisruptionTarget"),
            ],
            pods: vec![P {
                conditions: vec!["ResourceLimitExceeded", "DisruptionTarget"],
                ..failed(1)
            }],
            create: 1,
            active: 1,
            failed: 1,
            untrack: 1,
            ..BASE
        },
        Case {
            name: "no rule matches: counted, and backoffLimit 0 fails the Job as usual",
            rules: on_exit_code_rules(),
            backoff_limit: 0,
            pods: vec![failed(10)],
            failed: 1,
            untrack: 1,
            conditions: &["FailureTarget", "Failed"],
            reason: "BackoffLimitExceeded",
            message: "Job has reached the specified backoff limit",
            ..BASE
        },
        Case {
            name: "containerName: a matching code of another container is not looked at",
            rules: vec![
                codes("Ignore", "In", &[1, 2, 3], Some("main-container")),
                codes("FailJob", "In", &[5, 6, 7], Some("main-container")),
            ],
            pods: vec![P {
                containers: vec![
                    ("monitoring-container", Some(5)),
                    ("main-container", Some(42)),
                ],
                ..failed(0)
            }],
            create: 1,
            active: 1,
            failed: 1,
            untrack: 1,
            ..BASE
        },
        Case {
            name: "a running pod whose container exited 5 is no failure yet",
            rules: on_exit_code_rules(),
            pods: vec![P {
                containers: vec![("main-container", Some(5)), ("sidecar", None)],
                ..RUNNING
            }],
            active: 1,
            ..BASE
        },
        Case {
            name: "a terminating pod waits until it has failed: not counted, its slot held",
            rules: vec![condition_rule("Count", "DisruptionTarget")],
            backoff_limit: 0,
            pods: vec![P {
                deleted: true,
                containers: vec![("main-container", None)],
                ..RUNNING
            }],
            terminating: 1,
            ..BASE
        },
        Case {
            name: "terminated then: a deleted pod that failed is judged by the policy",
            rules: on_exit_code_rules(),
            backoff_limit: 0,
            pods: vec![P {
                deleted: true,
                ..failed(3)
            }],
            create: 1,
            active: 1,
            untrack: 1,
            ..BASE
        },
        Case {
            name: "failing: a running pod whose finished container an Ignore rule matches is not counted",
            rules: vec![
                codes("Ignore", "In", &[1], None),
                codes("FailJob", "In", &[5], None),
            ],
            parallelism: 2,
            completions: 2,
            pods: vec![
                failed(5),
                P {
                    containers: vec![("main-container", Some(1)), ("sidecar", None)],
                    ..RUNNING
                },
            ],
            delete: 1,
            failed: 1,
            terminating: 1,
            untrack: 2,
            conditions: &["FailureTarget"],
            reason: "PodFailurePolicy",
            message: "Container main-container for pod default/mypod-0 failed with exit code 5 matching FailJob rule at index 1",
            ..BASE
        },
    ];
    for c in &cases {
        let d = run(c);
        let s = &d.status;
        let got = (
            d.create,
            d.delete.len(),
            s.active,
            s.failed,
            s.terminating,
            d.untrack.len(),
            d.requeue_after.map(|r| r.as_secs()),
        );
        let want = (
            c.create,
            c.delete,
            c.active,
            c.failed,
            c.terminating,
            c.untrack,
            c.requeue,
        );
        assert_eq!(
            got, want,
            "{}: (create, delete, active, failed, terminating, untrack, requeue)",
            c.name
        );
        let types: Vec<&str> = s.conditions.iter().map(|x| x.type_.as_str()).collect();
        assert_eq!(types, c.conditions, "{}", c.name);
        for cond in &s.conditions {
            assert_eq!(
                (cond.reason.as_str(), cond.message.as_str()),
                (c.reason, c.message),
                "{}",
                c.name
            );
        }
    }
}

/// The Job's `Failed` comes with `Warning PodFailurePolicy <message>`, as in Kubernetes.
#[test]
fn a_job_failed_by_the_policy_gets_its_warning_event() {
    let d = run(&Case {
        rules: on_exit_code_rules(),
        pods: vec![failed(5)],
        ..BASE
    });
    assert_eq!(
        d.events,
        vec![EventSpec::warning("PodFailurePolicy", MSG_EXIT_5)]
    );
}
