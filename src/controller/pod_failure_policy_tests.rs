//! The cases of Kubernetes' `TestMatchPodFailurePolicy`
//! (`pkg/controller/job/pod_failure_policy_test.go`), in our own table.

use super::*;
use crate::api::{
    ContainerState, ContainerStateTerminated, ObjectMeta, PodFailurePolicyRule, PodPhase, PodStatus,
};

/// A rule on exit codes: `action`, `operator`, `values`, optionally one container.
fn on_codes(
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

/// A rule on one pod condition `type_` with `status`.
fn on_condition(action: &str, type_: &str, status: &str) -> PodFailurePolicyRule {
    PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: None,
        on_pod_conditions: vec![PodFailurePolicyOnPodConditionsPattern {
            type_: type_.into(),
            status: status.into(),
        }],
    }
}

/// A container that exited with `code`, or (`None`) one still running.
fn container(name: &str, code: Option<i32>) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        state: ContainerState {
            terminated: code.map(|exit_code| ContainerStateTerminated {
                exit_code,
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn condition(type_: &str, status: &str) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        last_transition_time: None,
        reason: None,
        message: None,
    }
}

/// The failed pod `default/mypod`.
fn failed_pod(containers: Vec<ContainerStatus>, conditions: Vec<PodCondition>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("mypod".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        status: PodStatus {
            phase: PodPhase::Failed,
            container_statuses: containers,
            conditions,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn fail_job(message: &str) -> FailureVerdict {
    FailureVerdict::FailJob {
        message: message.into(),
    }
}

type Rules = Vec<PodFailurePolicyRule>;
/// The matching rule's index and verdict.
type Matched = Option<(usize, FailureVerdict)>;

#[test]
fn match_pod_failure_policy_table() {
    use FailureVerdict::*;
    let exited = |name: &str, code| failed_pod(vec![container(name, Some(code))], vec![]);
    let with_condition = |type_, status| failed_pod(vec![], vec![condition(type_, status)]);
    const TARGET: &str = "DisruptionTarget";
    #[rustfmt::skip]
    let rows: Vec<(&str, Option<Rules>, Pod, Matched)> = vec![
        ("a rule with an unknown action is skipped (exit codes)",
         Some(vec![on_codes("UnknownAction", "In", &[1, 2], None), on_codes("FailJob", "In", &[2, 3], None)]),
         exited("main-container", 2),
         Some((1, fail_job("Container main-container for pod default/mypod failed with exit code 2 matching FailJob rule at index 1")))),
        ("a rule with an unknown action is skipped (pod conditions)",
         Some(vec![on_condition("UnknownAction", TARGET, "True"), on_condition("Ignore", TARGET, "True")]),
         with_condition(TARGET, "True"), Some((1, Ignore))),
        ("a rule with an unknown operator never matches",
         Some(vec![on_codes("Ignore", "UnknownOperator", &[1, 2], None), on_codes("FailJob", "In", &[2, 3], None)]),
         exited("main-container", 2),
         Some((1, fail_job("Container main-container for pod default/mypod failed with exit code 2 matching FailJob rule at index 1")))),
        ("no policy", None, exited("", 2), None),
        ("Ignore matched by exit code",
         Some(vec![on_codes("Ignore", "In", &[1, 2, 3], None)]), exited("", 2), Some((0, Ignore))),
        ("FailJob matched by exit code",
         Some(vec![on_codes("FailJob", "In", &[1, 2, 3], None)]), exited("main-container", 2),
         Some((0, fail_job("Container main-container for pod default/mypod failed with exit code 2 matching FailJob rule at index 0")))),
        ("containers that succeeded never match, even NotIn",
         Some(vec![on_codes("FailJob", "NotIn", &[111], None)]),
         failed_pod(vec![container("main-container", Some(111)), container("support-container", Some(0))], vec![]),
         None),
        ("FailIndex matched by exit code",
         Some(vec![on_codes("FailIndex", "In", &[1, 2, 3], None)]), exited("", 2), Some((0, FailIndex))),
        ("NotIn [0] matches any failed container, not the one that exited 0",
         Some(vec![on_codes("FailJob", "NotIn", &[0], None)]),
         failed_pod(vec![container("main-container", Some(1)), container("support-container", Some(0))], vec![]),
         Some((0, fail_job("Container main-container for pod default/mypod failed with exit code 1 matching FailJob rule at index 0")))),
        ("the second rule matches",
         Some(vec![on_codes("Count", "In", &[1, 2, 3], None), on_codes("FailJob", "In", &[4, 5, 6], None)]),
         exited("main-container", 6),
         Some((1, fail_job("Container main-container for pod default/mypod failed with exit code 6 matching FailJob rule at index 1")))),
        ("Count matched by exit code; a running container is passed over",
         Some(vec![on_codes("Count", "In", &[1, 2, 3], None)]),
         failed_pod(vec![container("foo", None), container("bar", Some(2))], vec![]), Some((0, Count))),
        ("FailIndex matched by condition",
         Some(vec![on_condition("FailIndex", TARGET, "True")]), with_condition(TARGET, "True"), Some((0, FailIndex))),
        ("Ignore matched by condition",
         Some(vec![on_condition("Ignore", TARGET, "True")]), with_condition(TARGET, "True"), Some((0, Ignore))),
        ("Ignore matched by status False",
         Some(vec![on_condition("Ignore", TARGET, "False")]), with_condition(TARGET, "False"), Some((0, Ignore))),
        ("Ignore matched by status Unknown",
         Some(vec![on_condition("Ignore", TARGET, "Unknown")]), with_condition(TARGET, "Unknown"), Some((0, Ignore))),
        ("pattern False, pod True: no match",
         Some(vec![on_condition("Ignore", TARGET, "False")]), with_condition(TARGET, "True"), None),
        ("pattern True, pod False: no match",
         Some(vec![on_condition("Ignore", TARGET, "True")]), with_condition(TARGET, "False"), None),
        ("FailJob matched by condition",
         Some(vec![on_condition("FailJob", TARGET, "True")]), with_condition(TARGET, "True"),
         Some((0, fail_job("Pod default/mypod has condition DisruptionTarget matching FailJob rule at index 0")))),
        ("Count matched by condition",
         Some(vec![on_condition("Count", TARGET, "True")]), with_condition(TARGET, "True"), Some((0, Count))),
        ("several rules: the first that matches decides",
         Some(vec![
             on_codes("Count", "NotIn", &[8], None),
             on_codes("Ignore", "In", &[1, 2, 3], None),
             on_codes("FailJob", "NotIn", &[5, 6, 7], None),
             on_condition("Count", "ResourceLimitExceeded", "True"),
             on_condition("Ignore", TARGET, "True"),
         ]),
         exited("", 32), Some((0, Count))),
        // Kubernetes' TestSyncJobWithJobPodFailurePolicy, first case.
        ("containerName: another container's matching code is not looked at",
         Some(vec![on_codes("Ignore", "In", &[1, 2, 3], Some("main-container")), on_codes("FailJob", "In", &[5, 6, 7], Some("main-container"))]),
         failed_pod(vec![container("monitoring-container", Some(5)), container("main-container", Some(42))], vec![]),
         None),
        ("containerName: its own code matches",
         Some(vec![on_codes("FailJob", "In", &[42], Some("main"))]),
         failed_pod(vec![container("sidecar", Some(42)), container("main", Some(42))], vec![]),
         Some((0, fail_job("Container main for pod default/mypod failed with exit code 42 matching FailJob rule at index 0")))),
        ("the pod's first matching condition names the message",
         Some(vec![PodFailurePolicyRule {
             action: "FailJob".into(),
             on_exit_codes: None,
             on_pod_conditions: vec![
                 PodFailurePolicyOnPodConditionsPattern { type_: TARGET.into(), status: "True".into() },
                 PodFailurePolicyOnPodConditionsPattern { type_: "ResourceLimitExceeded".into(), status: "True".into() },
             ],
         }]),
         failed_pod(vec![], vec![condition("Ready", "False"), condition("ResourceLimitExceeded", "True"), condition(TARGET, "True")]),
         Some((0, fail_job("Pod default/mypod has condition ResourceLimitExceeded matching FailJob rule at index 0")))),
        ("an empty policy matches nothing", Some(vec![]), exited("", 1), None),
    ];
    for (name, rules, pod, want) in rows {
        let policy = rules.map(|rules| PodFailurePolicy { rules });
        assert_eq!(matching_rule(policy.as_ref(), &pod), want, "{name}");
        let verdict = want.map_or(Count, |(_, v)| v);
        assert_eq!(classify(policy.as_ref(), &pod), verdict, "{name}");
    }
}

#[test]
fn only_ignore_goes_uncounted() {
    use FailureVerdict::*;
    assert!(Count.counts());
    assert!(FailIndex.counts());
    assert!(fail_job("x").counts());
    assert!(!Ignore.counts());
}

#[test]
fn the_first_failed_pod_a_fail_job_rule_matches_names_the_failure() {
    let policy = PodFailurePolicy {
        rules: vec![
            on_codes("Ignore", "In", &[1], None),
            on_codes("FailJob", "In", &[42], None),
        ],
    };
    let named = |name: &str, code| {
        let mut p = failed_pod(vec![container("main", Some(code))], vec![]);
        p.metadata.name = Some(name.into());
        p
    };
    let pods = [named("a", 1), named("b", 42), named("c", 42)];
    assert_eq!(
        fail_job_message(Some(&policy), &pods).as_deref(),
        Some(
            "Container main for pod default/b failed with exit code 42 matching FailJob rule at index 1"
        )
    );
    assert_eq!(fail_job_message(Some(&policy), &pods[..1]), None);
    assert_eq!(fail_job_message(None, &pods), None);
}
