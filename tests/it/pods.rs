//! Containers as processes: restarts, exec failures, signals, environment, logs on disk.

use std::time::Duration;

use serde_json::Value;

use crate::files::process_alive;
use crate::support::*;

const T: Duration = Duration::from_secs(60);

fn only_pod(d: &TestDaemon, job: &str) -> Value {
    let pods = d.pods_of(job);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    pods.into_iter().next().unwrap()
}

#[test]
fn on_failure_restarts_the_container_in_the_same_pod() {
    let d = TestDaemon::start();
    let marker = d.path().join("ran-once");
    let script = format!(
        "test -e {0} && echo second || {{ touch {0}; echo first; exit 3; }}",
        marker.display()
    );
    d.drop_manifest(
        "of.yaml",
        &job_yaml("of", "OnFailure", &["sh", "-c", &script], ""),
    );
    let job = d.wait_condition("of", "Complete", T);
    assert_eq!(
        job["status"]["failed"], 0,
        "container restarts are not pod failures"
    );
    let pod = only_pod(&d, "of");
    let cs = &pod["status"]["containerStatuses"][0];
    assert_eq!(cs["restartCount"], 1);
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 3);
    let name = pod["metadata"]["name"].as_str().unwrap();
    let (_, now) = d.http(
        "GET",
        &format!("/api/v1/namespaces/default/pods/{name}/log"),
        None,
    );
    let (_, prev) = d.http(
        "GET",
        &format!("/api/v1/namespaces/default/pods/{name}/log?previous=true"),
        None,
    );
    assert_eq!((now.as_str(), prev.as_str()), ("second\n", "first\n"));
}

#[test]
fn on_failure_backoff_limit_counts_restarts() {
    let d = TestDaemon::start();
    d.drop_manifest(
        "ofl.yaml",
        &job_yaml("ofl", "OnFailure", &["false"], "  backoffLimit: 2\n"),
    );
    let job = d.wait_condition("ofl", "Failed", T);
    assert_eq!(
        job["status"]["conditions"][1]["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(job["status"]["failed"], 1, "one pod, counted once");
    // As in Kubernetes, the Job controller deleted the still-running pod when the Job failed.
    assert!(wait_until(T, || d.pods_of("ofl").is_empty()));
    let reasons = d.event_reasons();
    let created = reasons.iter().filter(|r| *r == "SuccessfulCreate").count();
    assert_eq!(created, 1, "restarts happen in the same pod: {reasons:?}");
    assert!(
        reasons.iter().any(|r| r == "BackOff") && reasons.iter().any(|r| r == "SuccessfulDelete"),
        "{reasons:?}"
    );
}

#[test]
fn exec_failure_is_start_error_128() {
    let d = TestDaemon::start();
    d.drop_manifest(
        "se.yaml",
        &job_yaml("se", "Never", &["/no/such/binary"], "  backoffLimit: 0\n"),
    );
    d.wait_condition("se", "Failed", T);
    let pod = only_pod(&d, "se");
    let t = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 128);
    assert_eq!(t["reason"], "StartError");
    assert!(
        t["message"]
            .as_str()
            .unwrap()
            .contains("no such file or directory"),
        "{t}"
    );
}

#[test]
fn env_working_dir_and_cri_log_format() {
    let d = TestDaemon::start();
    let yaml = job_yaml("env", "Never", &["sh", "-c", "echo \"$GREETING from $(pwd)\"; echo oops >&2"], "").replace(
        "        command:",
        "        workingDir: /tmp\n        env:\n        - name: WHO\n          value: world\n        - name: GREETING\n          value: hello $(WHO)\n        command:",
    );
    d.drop_manifest("env.yaml", &yaml);
    d.wait_condition("env", "Complete", T);
    let pod = only_pod(&d, "env");
    let (ns, name, uid) = (
        pod["metadata"]["namespace"].as_str().unwrap(),
        pod["metadata"]["name"].as_str().unwrap(),
        pod["metadata"]["uid"].as_str().unwrap(),
    );
    let file = d
        .path()
        .join(format!("logs/pods/{ns}_{name}_{uid}/main/0.log"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let mut streams = Vec::new();
    for line in &lines {
        let mut parts = line.splitn(4, ' ');
        let (ts, stream, tag, msg) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert!(
            ts.parse::<jiff::Timestamp>().is_ok() && ts.ends_with('Z'),
            "{line}"
        );
        assert_eq!(tag, "F");
        streams.push((stream, msg));
    }
    streams.sort();
    assert_eq!(
        streams,
        [("stderr", "oops"), ("stdout", "hello world from /tmp")]
    );
}

#[test]
fn grace_period_then_sigkill_and_no_leftover_processes() {
    let d = TestDaemon::start();
    // Ignores SIGTERM and leaves a grandchild: both must be gone after the grace period.
    let yaml = job_yaml(
        "stubborn",
        "Never",
        &[
            "sh",
            "-c",
            "trap '' TERM; sleep 300 & echo $! > grandchild; while :; do sleep 0.1; done",
        ],
        "",
    )
    .replace(
        "terminationGracePeriodSeconds: 2",
        "terminationGracePeriodSeconds: 1",
    )
    .replace(
        "        command:",
        &format!(
            "        workingDir: {}\n        command:",
            d.path().display()
        ),
    );
    let path = d.drop_manifest("stubborn.yaml", &yaml);
    assert!(wait_until(T, || d
        .pods_of("stubborn")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    let grandchild_file = d.path().join("grandchild");
    assert!(wait_until(T, || std::fs::read_to_string(&grandchild_file)
        .is_ok_and(|s| s.trim().parse::<u32>().is_ok())));
    let grandchild: u32 = std::fs::read_to_string(&grandchild_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pod_name = d.pods_of("stubborn")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = d.http(
        "DELETE",
        &format!("/api/v1/namespaces/default/pods/{pod_name}"),
        None,
    );
    assert_eq!(code, 200);
    let pod_ended = || {
        let (code, v) = d.get_json(&format!("/api/v1/namespaces/default/pods/{pod_name}"));
        code == 404 || v["status"]["phase"] == "Failed"
    };
    assert!(wait_until(T, pod_ended));
    assert!(
        wait_until(T, || !process_alive(grandchild)),
        "grandchild {grandchild} leaked"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn containers_get_only_stdin_stdout_and_stderr() {
    let d = TestDaemon::start();
    // ls's own fds: 0-2, plus 3 for the directory it is reading. Anything more leaked in.
    d.drop_manifest(
        "fds.yaml",
        &job_yaml("fds", "Never", &["ls", "/proc/self/fd"], ""),
    );
    d.wait_condition("fds", "Complete", T);
    let out = d.cli_ok(&["logs", "job/fds"]);
    assert_eq!(
        out, "0\n1\n2\n3\n",
        "the daemon's own descriptors leaked into the container"
    );
}

#[test]
fn on_failure_start_errors_still_respect_backoff_limit() {
    let d = TestDaemon::start();
    d.drop_manifest(
        "nob.yaml",
        &job_yaml(
            "nob",
            "OnFailure",
            &["/nonexistent-binary"],
            "  backoffLimit: 2\n",
        ),
    );
    let job = d.wait_condition("nob", "Failed", T);
    assert_eq!(
        job["status"]["conditions"][1]["reason"],
        "BackoffLimitExceeded"
    );
}

#[test]
fn an_enormous_grace_period_does_not_break_shutdown() {
    let mut d = TestDaemon::start();
    let yaml = job_yaml("huge", "Never", &["sleep", "60"], "").replace(
        "terminationGracePeriodSeconds: 2",
        "terminationGracePeriodSeconds: 9223372036854775807",
    );
    d.drop_manifest("huge.yaml", &yaml);
    assert!(wait_until(T, || d
        .pods_of("huge")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    assert!(d.stop().success(), "{}", tail(&d.daemon_log(), 20));
}
