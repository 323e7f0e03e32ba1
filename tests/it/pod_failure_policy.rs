//! `spec.podFailurePolicy` through files, the CLI and the socket: a FailJob rule on an exit
//! code, the Kubernetes docs' Ignore-on-DisruptionTarget case across daemon restarts (SIGKILL
//! and SIGTERM), an API delete that is no disruption, and the validation messages.

use std::time::Duration;

use serde_json::Value;

use crate::api::{open_watch, watch_events};
use crate::support::*;

const T: Duration = Duration::from_secs(60);

fn pods_named(d: &TestDaemon, job: &str) -> Vec<String> {
    d.pods_of(job)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

fn condition<'a>(job: &'a Value, type_: &str) -> &'a Value {
    job["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn has_disruption_target(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "DisruptionTarget" && c["status"] == "True")
    })
}

/// A container that exits 42 under a FailJob rule for 42: the Job ends Failed with reason
/// PodFailurePolicy and the message naming the container, the pod and the rule; the
/// Warning event says the same, and `get jobs` shows it Failed after one pod.
#[test]
fn an_exit_code_matching_a_fail_job_rule_fails_the_job() {
    let d = TestDaemon::start();
    let spec = "  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions:
      - type: DisruptionTarget
    - action: FailJob
      onExitCodes:
        containerName: main
        operator: In
        values: [42]
";
    d.drop_manifest(
        "pfp.yaml",
        &job_yaml("pfp", "Never", &["sh", "-c", "exit 42"], spec),
    );
    let job = d.wait_condition("pfp", "Failed", T);
    let pods = pods_named(&d, "pfp");
    assert_eq!(pods.len(), 1, "no replacement: {pods:?}");
    let message = format!(
        "Container main for pod default/{} failed with exit code 42 matching FailJob rule at index 1",
        pods[0]
    );
    for type_ in ["FailureTarget", "Failed"] {
        let c = condition(&job, type_);
        assert_eq!(c["reason"], "PodFailurePolicy", "{job:#}");
        assert_eq!(c["message"], message.as_str(), "{job:#}");
    }
    assert_eq!(job["status"]["failed"], 1, "{job:#}");
    assert!(
        d.event_reasons().iter().any(|r| r == "PodFailurePolicy"),
        "{:?}",
        d.event_reasons()
    );
    let table = d.cli_ok(&["get", "jobs", "pfp"]);
    assert!(
        table.lines().nth(1).unwrap_or("").contains("Failed"),
        "{table}"
    );
    // The manifest as the API serves it: the policy kept, podReplacementPolicy defaulted.
    let spec = &job["spec"];
    assert_eq!(spec["podReplacementPolicy"], "Failed", "{spec:#}");
    assert_eq!(
        spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"], "True",
        "{spec:#}"
    );
}

/// Kubernetes' `job-pod-failure-policy-ignore.yaml` case, with the daemon as the node: a
/// Job whose pods are interrupted, once by a crash (SIGKILL) and once by a clean stop
/// (SIGTERM), each time the daemon started again. Each interrupted pod ends Failed with
/// DisruptionTarget, the Ignore rule keeps it out of `status.failed` (backoffLimit 0 is
/// never reached), and the third pod completes the Job.
#[test]
fn pods_interrupted_by_daemon_restarts_are_ignored() {
    let mut d = TestDaemon::start();
    let counter = d.path().join("runs");
    // Each run counts itself; the first two then wait to be interrupted, the third succeeds.
    let script = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}.tmp; mv {c}.tmp {c}; \
         [ \"$n\" -ge 2 ] && exit 0; exec sleep 600",
        c = counter.display()
    );
    let spec = "  backoffLimit: 0
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions:
      - type: DisruptionTarget
";
    d.drop_manifest(
        "ignore.yaml",
        &job_yaml("ignore", "Never", &["sh", "-c", &script], spec),
    );
    let runs = |n: &str| {
        wait_until(T, || {
            std::fs::read_to_string(&counter).is_ok_and(|s| s.trim() == n)
        })
    };
    assert!(runs("1"), "the first pod never ran");
    d.kill9();
    d.respawn();
    assert!(runs("2"), "the crash's interrupted pod was not replaced");
    d.stop();
    d.respawn();

    let job = d.wait_condition("ignore", "Complete", T);
    assert_eq!(job["status"]["failed"], 0, "{job:#}");
    assert_eq!(job["status"]["succeeded"], 1, "{job:#}");
    let pods = d.pods_of("ignore");
    assert_eq!(pods.len(), 3, "{pods:#?}");
    for p in &pods[..2] {
        assert_eq!(p["status"]["phase"], "Failed", "{p:#}");
        assert!(has_disruption_target(p), "{p:#}");
    }
    assert_eq!(pods[2]["status"]["phase"], "Succeeded");
}

/// A pod deleted through the API is no disruption, as in Kubernetes: it ends Failed without
/// DisruptionTarget (seen on a pod watch before the pod goes), the Ignore rule does not
/// match, and backoffLimit 0 fails the Job.
#[test]
fn an_api_delete_is_no_disruption() {
    let d = TestDaemon::start();
    let spec = "  backoffLimit: 0
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions:
      - type: DisruptionTarget
";
    d.drop_manifest(
        "del.yaml",
        &job_yaml("del", "Never", &["sleep", "600"], spec),
    );
    let mut name = String::new();
    assert!(
        wait_until(T, || {
            let pods = d.pods_of("del");
            let running = pods.first().filter(|p| p["status"]["phase"] == "Running");
            if let Some(p) = running {
                name = p["metadata"]["name"].as_str().unwrap_or("").to_string();
            }
            running.is_some()
        }),
        "the pod never ran"
    );
    let mut watch = open_watch(
        &d,
        "/api/v1/namespaces/default/pods?watch=true&labelSelector=job-name%3Ddel",
    );
    let (code, body) = d.http(
        "DELETE",
        &format!("/api/v1/namespaces/default/pods/{name}"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let events = watch_events(&mut watch, |e| {
        e["object"]["metadata"]["name"] == name.as_str()
            && e["object"]["status"]["phase"] == "Failed"
    });
    let failed = &events.last().expect("a watch event")["object"];
    assert_eq!(failed["status"]["phase"], "Failed", "{events:#?}");
    assert!(!has_disruption_target(failed), "{failed:#}");

    let job = d.wait_condition("del", "Failed", T);
    assert_eq!(
        condition(&job, "Failed")["reason"],
        "BackoffLimitExceeded",
        "{job:#}"
    );
    assert_eq!(job["status"]["failed"], 1, "{job:#}");
}

/// `jobvisor validate` gives the API server's messages for a bad policy, all at once.
#[test]
fn validate_names_every_bad_rule() {
    let d = TestDaemon::start();
    let spec = "  podFailurePolicy:
    rules:
    - action: FailIndex
      onExitCodes:
        containerName: sidecar
        operator: In
        values: [3, 0, 3]
    - action: Ignore
";
    let path = d.path().join("bad.yaml");
    std::fs::write(&path, job_yaml("bad", "OnFailure", &["true"], spec)).unwrap();
    let out = d.cli(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let r0 = "spec.podFailurePolicy.rules[0]";
    for want in [
        format!("{r0}.action: Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set"),
        format!("{r0}.onExitCodes.containerName: Invalid value: \"sidecar\": must be one of the container or initContainer names in the pod template"),
        format!("{r0}.onExitCodes.values[1]: Invalid value: 0: must not be 0 for the In operator"),
        format!("{r0}.onExitCodes.values[2]: Duplicate value: 3"),
        format!("{r0}.onExitCodes.values: Invalid value: [3,0,3]: must be ordered"),
        "spec.podFailurePolicy.rules[1]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required".to_string(),
        "spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is supported when podFailurePolicy is specified".to_string(),
    ] {
        assert!(text.contains(&format!("* {want}")), "missing {want:?} in:\n{text}");
    }
}

/// `examples/job-pod-failure-policy.yaml`: its two pods exit 42 (or one does and the other is
/// stopped, counted failed), and the Job fails at once instead of retrying six times.
#[test]
fn the_example_fails_on_exit_code_42() {
    let d = TestDaemon::start();
    d.copy_example("job-pod-failure-policy.yaml");
    let job = d.wait_condition("job-pod-failure-policy", "Failed", T);
    let c = condition(&job, "Failed");
    assert_eq!(c["reason"], "PodFailurePolicy", "{job:#}");
    // Two pods ran; one still running when the other failed was deleted, and is gone once
    // counted.
    let pods = pods_named(&d, "job-pod-failure-policy");
    assert!((1..=2).contains(&pods.len()), "{pods:?}");
    let named = pods.iter().any(|p| {
        c["message"]
            == format!(
                "Container main for pod default/{p} failed with exit code 42 matching FailJob rule at index 0"
            )
            .as_str()
    });
    assert!(named, "{job:#}");
    assert_eq!(job["status"]["failed"], 2, "{job:#}");
}
