//! The Job examples of the Kubernetes documentation (`content/en/examples/controllers/` in
//! kubernetes/website), each run unchanged, with the outcome the documentation describes
//! (`docs/concepts/workloads/controllers/job.md`, `docs/tasks/job/pod-failure-policy.md`).
//!
//! An example that runs today ships in `examples/`; one that needs a feature still being
//! built waits, byte-identical, in `tests/data/docs-examples/`, with its test written and
//! `#[ignore]`d under the feature's name. Switching one on: `git mv` the file to `examples/`
//! and remove the `#[ignore]` ([`example`] finds it in either place).
//!
//! Not here: `job-pod-failure-policy-config-issue.yaml` (its outcome needs an image that
//! cannot be pulled and a hand-set pod condition, events jobvisor has no equivalent of) and
//! `job-success-policy-example.yaml` (an older file with no `metadata.name` and no
//! `restartPolicy`, which no API server accepts; `job-success-policy.yaml` replaced it).
//!
//! The examples' own `sleep`s (5, 30, 90 s) are the workload's, not jobvisor's delays: the
//! tests that run them give the image's alias a `PATH` whose `sleep` waits on a gate file
//! the test opens, so nothing waits out real time and a pod is known to be running.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const T: Duration = Duration::from_secs(60);

/// The upstream file, from `examples/` once shipped, else from the awaiting folder.
fn example(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = root.join("examples").join(name);
    let path = if shipped.exists() {
        shipped
    } else {
        root.join("tests/data/docs-examples").join(name)
    };
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Applies the example through the manifests directory, under its upstream file name.
fn apply(d: &TestDaemon, name: &str) {
    d.drop_manifest(name, &example(name));
}

fn condition<'a>(job: &'a Value, type_: &str) -> &'a Value {
    job["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition: {job}"))
}

/// The pod's completion index (the label an Indexed Job's pods carry).
fn index_of(pod: &Value) -> String {
    pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
        .as_str()
        .unwrap_or_else(|| panic!("no index label: {pod}"))
        .to_string()
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

/// A folder with `sleep` and `python3` stand-ins that wait until the test creates `open`.
/// `python3` lets the indexes in `go` (a file of `JOB_COMPLETION_INDEX` values, one a
/// line) through at once.
struct Gate {
    dir: tempfile::TempDir,
}

impl Gate {
    fn new() -> Gate {
        let dir = tempfile::Builder::new()
            .prefix("jobvisor-gate-")
            .tempdir()
            .expect("tempdir");
        let open = dir.path().join("open");
        let go = dir.path().join("go");
        // Waits until the gate opens, or its folder goes with a test that failed.
        let wait = format!(
            "while [ -d {} ] && [ ! -e {} ]; do /bin/sleep 0.01; done",
            dir.path().display(),
            open.display()
        );
        let scripts = [
            ("sleep", format!("#!/bin/sh\n{wait}\n")),
            (
                "python3",
                format!(
                    "#!/bin/sh\n{{ [ -n \"$JOB_COMPLETION_INDEX\" ] && grep -qx \"$JOB_COMPLETION_INDEX\" {}; }} || {{ {wait}; }}\nexec /usr/bin/python3 \"$@\"\n",
                    go.display()
                ),
            ),
        ];
        for (name, text) in scripts {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("stand-in");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Gate { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn open(&self) {
        std::fs::write(self.dir.path().join("open"), "").expect("open the gate");
    }

    fn let_through(&self, indexes: &[&str]) {
        let lines: String = indexes.iter().map(|i| format!("{i}\n")).collect();
        std::fs::write(self.dir.path().join("go"), lines).expect("go");
    }

    /// The daemon config: the fast delays, and `image` (the examples' own reference) with
    /// this folder first in its `PATH`; its entrypoint and cmd stay the built-in alias's,
    /// which the examples' `command` replaces anyway.
    fn config(&self, image: &str, cmd: &str) -> String {
        format!(
            "{FAST_CONFIG}images:\n  \"{image}\":\n    cmd: [{cmd}]\n    env: [\"PATH={}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"]\n",
            self.path().display()
        )
    }
}

// ------------------------------------------------------------------ shipped

/// The harness the awaiting tests stand on: under [`Gate::config`], the examples' image
/// (`docker.io/library/bash:5`, built-in alias) runs `bash` whose `sleep` is the gate's, so a
/// `sleep 90` ends when the test opens the gate, not 90 s later; and `python3` holds back
/// the indexes not let through.
#[test]
fn the_gate_stands_in_for_the_examples_sleep() {
    let gate = Gate::new();
    gate.let_through(&[]);
    let mut config = gate.config("docker.io/library/bash:5", "bash");
    config.push_str(&format!(
        "  python:\n    cmd: [python3]\n    env: [\"PATH={}:/usr/bin:/bin\"]\n",
        gate.path().display()
    ));
    let d = TestDaemon::start_with(&config);
    let job = |name: &str, image: &str, command: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: main\n        image: {image}\n        command: {command}\n"
        )
    };
    d.drop_manifest(
        "slow.yaml",
        &job(
            "slow",
            "docker.io/library/bash:5",
            r#"["bash", "-c", "echo hi && sleep 90 && echo done"]"#,
        ),
    );
    d.drop_manifest(
        "py.yaml",
        &job("py", "python:3", r#"["python3", "-c", "print('ran')"]"#),
    );
    assert!(wait_until(T, || d.cli(&["logs", "job/slow"]).stdout == b"hi\n"));
    assert!(!has_condition(&d.job("slow").unwrap(), "Complete"));
    assert!(!has_condition(&d.job("py").unwrap(), "Complete"));
    gate.open();
    d.wait_condition("slow", "Complete", T);
    assert_eq!(d.cli_ok(&["logs", "job/slow"]), "hi\ndone\n");
    d.wait_condition("py", "Complete", T);
    assert_eq!(d.cli_ok(&["logs", "job/py"]), "ran\n");
}

/// `controllers/job.yaml` (`job.md`, "Running an example Job"): computes π to 2000 places
/// and prints it; the Job completes with one succeeded pod, and `kubectl logs jobs/pi`
/// prints the documentation's digits, `describe job pi` its lines.
#[test]
fn pi_prints_pi_to_2000_places() {
    let d = TestDaemon::start();
    d.copy_example("job.yaml");
    let job = d.wait_condition("pi", "Complete", T);
    assert_eq!(condition_types(&job), ["SuccessCriteriaMet", "Complete"]);
    assert_eq!(condition(&job, "Complete")["reason"], "CompletionsReached");
    assert_eq!(job["status"]["succeeded"], 1);
    assert!(job["status"]["failed"].is_null() || job["status"]["failed"] == 0);
    assert_eq!(d.pods_of("pi").len(), 1);

    // The documentation's output, verbatim.
    let want = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/docs-examples/pi-2000.txt"),
    )
    .expect("pi-2000.txt");
    assert_eq!(d.cli_ok(&["logs", "jobs/pi"]), want);

    let describe: Vec<String> = d
        .cli_ok(&["describe", "job", "pi"])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let describe = describe.join("\n");
    for want in [
        "Parallelism: 1\nCompletions: 1\nCompletion Mode: NonIndexed\nSuspend: false\nBackoff Limit: 4\n",
        "Pods Statuses: 0 Active (0 Ready) / 1 Succeeded / 0 Failed\n",
        "Image: perl:5.34.0\n",
        "Command:\nperl\n-Mbignum=bpi\n-wle\nprint bpi(2000)\n",
        "Normal Completed",
    ] {
        assert!(describe.contains(want), "{want:?} missing in:\n{describe}");
    }
    assert!(
        describe.contains("job-controller Created pod: pi-"),
        "{describe}"
    );
}

// ------------------------------------------------------------------ awaiting

/// `controllers/job-backoff-limit-per-index-example.yaml` (`job.md`, "Backoff limit per
/// index"): odd indexes succeed, even ones fail twice (one retry each), so the Job fails
/// with `FailedIndexes` and the documented status.
#[test]
fn backoff_limit_per_index_example() {
    let d = TestDaemon::start();
    apply(&d, "job-backoff-limit-per-index-example.yaml");
    let name = "job-backoff-limit-per-index-example";
    let job = d.wait_condition(name, "Failed", T);
    let s = &job["status"];
    assert_eq!(s["completedIndexes"], "1,3,5,7,9");
    assert_eq!(s["failedIndexes"], "0,2,4,6,8");
    assert_eq!(
        s["succeeded"], 5,
        "1 succeeded pod for each of 5 succeeded indexes"
    );
    assert_eq!(
        s["failed"], 10,
        "2 failed pods (1 retry) for each of 5 failed indexes"
    );
    assert_eq!(condition_types(&job), ["FailureTarget", "Failed"]);
    for type_ in ["FailureTarget", "Failed"] {
        let c = condition(&job, type_);
        assert_eq!(
            (&c["reason"], &c["message"]),
            (&"FailedIndexes".into(), &"Job has failed indexes".into())
        );
    }
    let pods = d.pods_of(name);
    assert_eq!(pods.len(), 15);
    for pod in &pods {
        let pod_name = pod["metadata"]["name"].as_str().unwrap();
        assert_eq!(d.cli_ok(&["logs", pod_name]), "Hello world\n", "{pod_name}");
    }
}

/// `controllers/job-backoff-limit-per-index-failindex.yaml` (`pod-failure-policy.md`,
/// "avoid unnecessary Pod retries per index"): index 0 exits 1 and is retried once, index 1
/// exits 42, which `FailIndex` fails without a retry; 2 and 3 succeed. Five pods, and
/// `failedIndexes: "0,1"` with `failed: 3`.
#[test]
fn backoff_limit_per_index_failindex() {
    let d = TestDaemon::start();
    apply(&d, "job-backoff-limit-per-index-failindex.yaml");
    let name = "job-backoff-limit-per-index-failindex";
    let job = d.wait_condition(name, "Failed", T);
    assert_eq!(job["status"]["failedIndexes"], "0,1");
    assert_eq!(job["status"]["completedIndexes"], "2,3");
    assert_eq!(job["status"]["failed"], 3);
    assert_eq!(job["status"]["succeeded"], 2);
    let mut seen: Vec<(String, String)> = d
        .pods_of(name)
        .iter()
        .map(|p| (index_of(p), phase(p).to_string()))
        .collect();
    seen.sort();
    let want = [
        ("0", "Failed"),
        ("0", "Failed"),
        ("1", "Failed"),
        ("2", "Succeeded"),
        ("3", "Succeeded"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(i, p)| (i.to_string(), p.to_string()))
        .collect();
    assert_eq!(seen, want);
    let get = d.cli_ok(&["get", "pods", "-l", &format!("job-name={name}")]);
    assert_eq!(get.matches(" Error ").count(), 3, "{get}");
    assert_eq!(get.matches(" Completed ").count(), 2, "{get}");
}

/// `controllers/job-pod-failure-policy-example.yaml` (`job.md`, "Pod failure policy"): the
/// `main` container exits 42, the `FailJob` rule matches, and the **entire Job** fails at
/// once with reason `PodFailurePolicy`, its other pods terminated; no pod is retried.
#[test]
fn pod_failure_policy_example_fails_the_job_on_exit_42() {
    let gate = Gate::new();
    gate.open();
    let d = TestDaemon::start_with(&gate.config("docker.io/library/bash:5", "bash"));
    apply(&d, "job-pod-failure-policy-example.yaml");
    let name = "job-pod-failure-policy-example";
    let job = d.wait_condition(name, "Failed", T);
    assert_eq!(condition_types(&job), ["FailureTarget", "Failed"]);
    let failed = condition(&job, "Failed");
    assert_eq!(failed["reason"], "PodFailurePolicy");
    let message = failed["message"].as_str().unwrap();
    let prefix = format!("Container main for pod default/{name}-");
    assert!(
        message.starts_with(&prefix)
            && message.ends_with(" failed with exit code 42 matching FailJob rule at index 0"),
        "{message}"
    );
    assert_eq!(
        condition(&job, "FailureTarget")["message"],
        failed["message"]
    );
    assert_eq!(job["status"]["succeeded"].as_i64().unwrap_or(0), 0);
    // No retries: only the first parallel batch of three pods ever ran.
    assert!(d.pods_of(name).len() <= 3, "{:?}", d.pods_of(name).len());
    let pod = message["Container main for pod default/".len()..]
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(d.cli_ok(&["logs", pod]), "Hello world!\n");
}

/// `controllers/job-pod-failure-policy-failjob.yaml` (`pod-failure-policy.md`, "avoid
/// unnecessary Pod retries"): `FailureTarget` with reason `PodFailurePolicy` and the
/// documented message, then `Failed` with the same reason and message; not six retries.
#[test]
fn pod_failure_policy_failjob() {
    let gate = Gate::new();
    let d = TestDaemon::start_with(&gate.config("docker.io/library/bash:5", "bash"));
    apply(&d, "job-pod-failure-policy-failjob.yaml");
    let name = "job-pod-failure-policy-failjob";
    // Both pods of the first batch running (they printed), then their `sleep 30` ends.
    assert!(wait_until(T, || {
        let pods = d.pods_of(name);
        pods.len() == 2
            && pods.iter().all(|p| {
                let n = p["metadata"]["name"].as_str().unwrap_or("");
                d.cli(&["logs", n])
                    .stdout
                    .starts_with(b"Hello world! I'm going to exit with 42")
            })
    }));
    gate.open();
    let job = d.wait_condition(name, "Failed", T);
    assert_eq!(condition_types(&job), ["FailureTarget", "Failed"]);
    let target = condition(&job, "FailureTarget");
    let failed = condition(&job, "Failed");
    assert_eq!(target["reason"], "PodFailurePolicy");
    assert_eq!(
        (&failed["reason"], &failed["message"]),
        (&target["reason"], &target["message"])
    );
    let message = target["message"].as_str().unwrap();
    let pods: Vec<String> = d
        .pods_of(name)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    // No retry: of the two pods, one still running when the other failed is deleted, and
    // gone once counted (as a deleted pod without finalizer is in Kubernetes).
    assert!((1..=2).contains(&pods.len()), "no retry: {pods:?}");
    assert_eq!(job["status"]["failed"], 2, "{job:#}");
    assert!(
        pods.iter().any(|p| message
            == format!("Container main for pod default/{p} failed with exit code 42 matching FailJob rule at index 0")),
        "{message} names none of {pods:?}"
    );
}

/// `controllers/job-pod-failure-policy-ignore.yaml` (`pod-failure-policy.md`, "ignore Pod
/// disruptions"): the documentation drains the node while the pods run; here the daemon
/// restarts instead (its pods end `Failed` with `DisruptionTarget`, as a drain leaves them).
/// The `Ignore` rule keeps `.status.failed` at 0 though `backoffLimit` is 0, and the Job
/// resumes and succeeds.
#[test]
fn pod_failure_policy_ignore_survives_a_daemon_restart() {
    let gate = Gate::new();
    let mut d = TestDaemon::start_with(&gate.config("docker.io/library/bash:5", "bash"));
    apply(&d, "job-pod-failure-policy-ignore.yaml");
    let name = "job-pod-failure-policy-ignore";
    let hello = b"Hello world! I'm going to exit with 0 (success).\n";
    assert!(wait_until(T, || {
        let pods = d.pods_of(name);
        pods.len() == 2
            && pods.iter().all(|p| {
                let n = p["metadata"]["name"].as_str().unwrap_or("");
                d.cli(&["logs", n]).stdout == hello
            })
    }));
    let disrupted: Vec<String> = d
        .pods_of(name)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(d.stop().success());
    d.spawn();
    // The disrupted pods are Failed with DisruptionTarget, and not counted.
    assert!(wait_until(T, || d.pods_of(name).len() >= 4));
    for pod in d.pods_of(name) {
        let n = pod["metadata"]["name"].as_str().unwrap();
        if disrupted.iter().any(|x| x == n) {
            assert_eq!(phase(&pod), "Failed", "{pod}");
            let conditions = pod["status"]["conditions"].as_array().unwrap();
            assert!(
                conditions
                    .iter()
                    .any(|c| c["type"] == "DisruptionTarget" && c["status"] == "True"),
                "{pod}"
            );
        }
    }
    let job = d.job(name).unwrap();
    assert_eq!(job["status"]["failed"].as_i64().unwrap_or(0), 0, "{job}");
    assert!(!has_condition(&job, "Failed"), "{job}");
    gate.open();
    let job = d.wait_condition(name, "Complete", T);
    assert_eq!(job["status"]["succeeded"], 4);
    assert_eq!(job["status"]["failed"].as_i64().unwrap_or(0), 0);
}

/// `controllers/job-success-policy.yaml` (`job.md`, "Success policy"): once index 2
/// succeeds, the rule `succeededIndexes: 0,2-3, succeededCount: 1` is met: the Job gets
/// `SuccessCriteriaMet` with reason `SuccessPolicy`, its lingering pods are terminated, then
/// `Complete`. The other indexes' `python3` waits (a gate that never opens), as pods that are
/// still working when the leader finishes.
#[test]
fn success_policy_completes_on_index_2() {
    let gate = Gate::new();
    gate.let_through(&["2"]);
    let d = TestDaemon::start_with(&gate.config("python", "python3"));
    apply(&d, "job-success-policy.yaml");
    let name = "job-success";
    let job = d.wait_condition(name, "Complete", T);
    assert_eq!(condition_types(&job), ["SuccessCriteriaMet", "Complete"]);
    for type_ in ["SuccessCriteriaMet", "Complete"] {
        let c = condition(&job, type_);
        assert_eq!(
            (&c["reason"], &c["message"]),
            (&"SuccessPolicy".into(), &"Matched rules at index 0".into())
        );
    }
    assert_eq!(job["status"]["completedIndexes"], "2");
    assert_eq!(job["status"]["succeeded"], 1);
    assert_eq!(job["status"]["active"].as_i64().unwrap_or(0), 0);
    // The lingering pods were terminated: nothing runs, and only index 2 succeeded.
    let pods = d.pods_of(name);
    assert!(
        pods.iter()
            .all(|p| ["Succeeded", "Failed"].contains(&phase(p))),
        "{pods:?}"
    );
    let succeeded: Vec<String> = pods
        .iter()
        .filter(|p| phase(p) == "Succeeded")
        .map(index_of)
        .collect();
    assert_eq!(succeeded, ["2"]);
}
