//! The shipped examples behave as the README promises.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const T: Duration = Duration::from_secs(60);

fn ts(v: &Value) -> jiff::Timestamp {
    v.as_str().and_then(|s| s.parse().ok()).expect("timestamp")
}

/// (started, finished) of a pod's only container.
fn run_span(pod: &Value) -> (jiff::Timestamp, jiff::Timestamp) {
    let t = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    (ts(&t["startedAt"]), ts(&t["finishedAt"]))
}

#[test]
fn simple_job_logs_eleven() {
    let d = TestDaemon::start();
    d.copy_example("simple-job.yaml");
    let job = d.wait_condition("simple-job", "Complete", T);
    assert_eq!(condition_types(&job), ["SuccessCriteriaMet", "Complete"]);
    assert_eq!(job["status"]["succeeded"], 1);
    assert_eq!(
        job["status"]["conditions"][1]["reason"],
        "CompletionsReached"
    );
    assert!(job["status"]["completionTime"].is_string());
    let pods = d.pods_of("simple-job");
    let pod = pods[0]["metadata"]["name"].as_str().unwrap();
    let (code, body) = d.http(
        "GET",
        &format!("/api/v1/namespaces/default/pods/{pod}/log"),
        None,
    );
    assert_eq!((code, body.as_str()), (200, "11\n"));
}

#[test]
fn sequential_job_runs_pods_one_after_another() {
    let d = TestDaemon::start();
    d.copy_example("sequential-job.yaml");
    let job = d.wait_condition("sequential-job", "Complete", T);
    assert_eq!(job["status"]["succeeded"], 3);
    let mut spans: Vec<_> = d.pods_of("sequential-job").iter().map(run_span).collect();
    assert_eq!(spans.len(), 3);
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "pods overlapped: {spans:?}");
    }
}

#[test]
fn parallel_job_runs_pods_at_once() {
    let d = TestDaemon::start();
    d.copy_example("parallel-job.yaml");
    let job = d.wait_condition("parallel-job", "Complete", T);
    assert_eq!(job["status"]["succeeded"], 3);
    let spans: Vec<_> = d.pods_of("parallel-job").iter().map(run_span).collect();
    assert_eq!(spans.len(), 3);
    let latest_start = spans.iter().map(|s| s.0).max().unwrap();
    let earliest_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(
        latest_start < earliest_end,
        "all three should run at the same time: {spans:?}"
    );
}

#[test]
fn flaky_job_replaces_failed_pods_until_three_succeed() {
    let d = TestDaemon::start();
    d.copy_example("flaky-job.yaml");
    let job = d.wait_condition("flaky-job", "Complete", T);
    let pods = d.pods_of("flaky-job");
    let failed = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Failed")
        .count();
    let succeeded = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .count();
    assert_eq!(job["status"]["succeeded"], 3);
    assert_eq!(succeeded, 3);
    assert_eq!(job["status"]["failed"], failed as i64);
}

#[test]
fn failing_job_stops_at_backoff_limit() {
    let d = TestDaemon::start();
    d.copy_example("failing-job.yaml");
    let job = d.wait_condition("failing-job", "Failed", T);
    assert_eq!(condition_types(&job), ["FailureTarget", "Failed"]);
    assert_eq!(
        job["status"]["conditions"][1]["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(
        job["status"]["conditions"][1]["message"],
        "Job has reached the specified backoff limit"
    );
    let limit = job["spec"]["backoffLimit"].as_i64().unwrap();
    assert_eq!(job["status"]["failed"].as_i64(), Some(limit + 1));
    assert_eq!(d.pods_of("failing-job").len() as i64, limit + 1);
    assert!(job["status"]["completionTime"].is_null());
}

/// The Kubernetes documentation's CronJob, run now with `create job --from` (the schedule's
/// own firing is covered in `cronjobs.rs`): its Job is the CronJob's and logs the greeting.
#[test]
fn hello_cronjob_runs_now_from_its_template() {
    let d = TestDaemon::start();
    d.copy_example("hello-cronjob.yaml");
    assert!(wait_until(T, || d
        .get_json("/apis/batch/v1/namespaces/default/cronjobs/hello")
        .0
        == 200));
    assert_eq!(
        d.cli_ok(&["create", "job", "hello-now", "--from=cronjob/hello"]),
        "job.batch/hello-now created\n"
    );
    d.wait_condition("hello-now", "Complete", T);
    let logs = d.cli_ok(&["logs", "job/hello-now"]);
    assert!(
        logs.ends_with("Hello from the Kubernetes cluster\n"),
        "{logs}"
    );
}

/// The tutorial's CronJob, `image: kodekloud/throw-dice` and no command: run now, its pods
/// throw until a six, and only the last one's log is a six.
#[test]
fn throw_dice_cronjob_runs_until_a_six() {
    let d = TestDaemon::start();
    d.copy_example("throw-dice-cronjob.yaml");
    assert!(wait_until(T, || d
        .get_json("/apis/batch/v1/namespaces/default/cronjobs/throw-dice-cron-job")
        .0
        == 200));
    assert_eq!(
        d.cli_ok(&[
            "create",
            "job",
            "dice-now",
            "--from=cronjob/throw-dice-cron-job"
        ]),
        "job.batch/dice-now created\n"
    );
    let job = d.wait_condition("dice-now", "Complete", T);
    assert_eq!(job["status"]["succeeded"], 1);
    // restartPolicy OnFailure: one pod, its container restarted until the six.
    let logs = d.cli_ok(&["logs", "job/dice-now"]);
    assert_eq!(logs, "6\n", "the run that succeeded threw a six");
    let previous = d.cli(&["logs", "job/dice-now", "--previous"]);
    if previous.status.success() {
        let thrown = String::from_utf8_lossy(&previous.stdout).trim().to_string();
        assert!(
            ["1", "2", "3", "4", "5"].contains(&thrown.as_str()),
            "a failed throw: {thrown}"
        );
    }
}

/// The Indexed example through its file, the CLI and the socket: one pod per index named
/// `<job>-<index>-xxxxx`, `$JOB_COMPLETION_INDEX` and `$HOSTNAME` in the process, index 2
/// failing twice (backoffLimitPerIndex 1) and the Job failing with `FailedIndexes`.
#[test]
fn indexed_job_fails_its_failing_index_only() {
    let d = TestDaemon::start();
    d.copy_example("job-indexed.yaml");
    let job = d.wait_condition("job-indexed", "Failed", T);
    assert_eq!(condition_types(&job), ["FailureTarget", "Failed"]);
    assert_eq!(job["status"]["conditions"][1]["reason"], "FailedIndexes");
    assert_eq!(
        job["status"]["conditions"][1]["message"],
        "Job has failed indexes"
    );
    assert_eq!(job["status"]["completedIndexes"], "0,1,3,4");
    assert_eq!(job["status"]["failedIndexes"], "2");
    assert_eq!(job["status"]["succeeded"], 4);
    assert_eq!(job["status"]["failed"], 2);

    let pods = d.pods_of("job-indexed");
    assert_eq!(pods.len(), 6, "{pods:#?}");
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let index = pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap();
        assert!(
            name.starts_with(&format!("job-indexed-{index}-")) && name.len() == 19,
            "{name}"
        );
        assert_eq!(pod["spec"]["hostname"], format!("job-indexed-{index}"));
        let (code, log) = d.http(
            "GET",
            &format!("/api/v1/namespaces/default/pods/{name}/log"),
            None,
        );
        assert_eq!(code, 200);
        assert_eq!(log, format!("index {index} on job-indexed-{index}\n"));
        let failures =
            &pod["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"];
        if index != "2" {
            assert_eq!(failures, "0", "{name}");
        }
    }
    let twos: Vec<&str> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "2")
        .map(|p| {
            p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(twos, ["0", "1"]);

    let table = d.cli_ok(&["get", "jobs"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..3], ["job-indexed", "Failed", "4/5"], "{table}");
    let names = d.cli_ok(&["get", "pods", "-o", "name"]);
    for index in 0..5 {
        assert!(
            names.contains(&format!("pod/job-indexed-{index}-")),
            "{names}"
        );
    }
    let describe = d.cli_ok(&["describe", "job", "job-indexed"]);
    assert!(
        describe.contains("Completion Mode:    Indexed\n"),
        "{describe}"
    );
    assert!(
        describe.contains("Backoff Limit:      2147483647\n"),
        "{describe}"
    );
    assert!(
        describe.contains("Pods Statuses:      0 Active (0 Ready) / 4 Succeeded / 2 Failed\nCompleted Indexes:  0,1,3,4\n"),
        "{describe}"
    );
    assert!(describe.contains("Warning  FailedIndexes"), "{describe}");
}
