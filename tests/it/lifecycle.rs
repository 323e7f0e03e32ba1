//! Restarts, crashes and deletion: nothing is lost and nothing runs twice.

use std::time::Duration;

use crate::files::{container_pid, process_alive};
use crate::support::*;

const T: Duration = Duration::from_secs(60);

#[test]
fn restart_keeps_finished_jobs_finished_and_running_jobs_going() {
    let mut d = TestDaemon::start();
    d.drop_manifest("done.yaml", &job_yaml("done", "Never", &["true"], ""));
    let done = d.wait_condition("done", "Complete", T);
    d.drop_manifest(
        "long.yaml",
        &job_yaml(
            "long",
            "Never",
            &["sh", "-c", "sleep 1"],
            "  completions: 3\n  backoffLimit: 6\n",
        ),
    );
    assert!(wait_until(T, || d
        .pods_of("long")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));

    let status = d.stop();
    assert!(status.success(), "clean exit: {status:?}");
    d.spawn();

    let again = d.job("done").expect("finished job survives");
    assert_eq!(again["metadata"]["uid"], done["metadata"]["uid"]);
    assert_eq!(again["status"], done["status"], "status unchanged");
    assert_eq!(
        d.pods_of("done").len(),
        1,
        "a finished Job never runs again"
    );
    let long = d.wait_condition("long", "Complete", T);
    assert_eq!(long["status"]["succeeded"], 3);
    // The pod interrupted by the stop ended as a node shutdown ends pods.
    let interrupted: Vec<_> = d
        .pods_of("long")
        .into_iter()
        .filter(|p| p["status"]["reason"] == "Terminated")
        .collect();
    assert_eq!(interrupted.len(), 1, "{:#?}", d.pods_of("long"));
    assert_eq!(interrupted[0]["status"]["phase"], "Failed");
}

#[test]
fn kill_dash_nine_loses_nothing_and_leaves_no_process_behind() {
    let mut d = TestDaemon::start();
    d.drop_manifest("done.yaml", &job_yaml("done", "Never", &["true"], ""));
    d.wait_condition("done", "Complete", T);
    d.drop_manifest(
        "crash.yaml",
        &job_yaml("crash", "Never", &["sleep", "30"], "  backoffLimit: 3\n"),
    );
    assert!(wait_until(T, || d
        .pods_of("crash")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    // Reported Running means the pid is on disk: nothing is reported before it is durable.
    let pid = container_pid(&d.pods_of("crash")[0]);

    d.kill9();
    d.spawn();

    assert!(
        wait_until(T, || !process_alive(pid)),
        "the orphaned container {pid} was killed"
    );
    assert_eq!(d.pods_of("done").len(), 1);
    assert!(has_condition(&d.job("done").unwrap(), "Complete"));
    // The lost pod is failed and replaced.
    assert!(
        wait_until(T, || d.pods_of("crash").len() == 2),
        "{:#?}",
        d.pods_of("crash")
    );
    let job = d.job("crash").unwrap();
    assert_eq!(job["status"]["failed"], 1);
}

#[test]
fn deleting_a_job_stops_its_pods_and_removes_its_file() {
    let d = TestDaemon::start();
    let path = d.drop_manifest("del.yaml", &job_yaml("del", "Never", &["sleep", "60"], ""));
    assert!(wait_until(T, || d
        .pods_of("del")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    let pid = container_pid(&d.pods_of("del")[0]);
    let (code, body) = d.http("DELETE", "/apis/batch/v1/namespaces/default/jobs/del", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"status\":\"Success\""), "{body}");
    assert!(!path.exists(), "the manifest file is removed");
    assert!(d.job("del").is_none());
    assert!(wait_until(T, || !process_alive(pid)));
    let (code, body) = d.http("DELETE", "/apis/batch/v1/namespaces/default/jobs/del", None);
    assert_eq!(code, 404, "{body}");
}

#[test]
fn deleting_one_job_of_a_shared_file_is_refused() {
    let d = TestDaemon::start();
    let two = format!(
        "{}---\n{}",
        job_yaml("one", "Never", &["true"], ""),
        job_yaml("two", "Never", &["true"], "")
    );
    let path = d.drop_manifest("pair.yaml", &two);
    d.wait_condition("one", "Complete", T);
    let (code, body) = d.http("DELETE", "/apis/batch/v1/namespaces/default/jobs/one", None);
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("pair.yaml") && body.contains("job/two"),
        "{body}"
    );
    assert!(path.exists() && d.job("one").is_some());
}

#[test]
fn sigterm_stops_pods_gracefully_and_records_them() {
    let mut d = TestDaemon::start();
    d.drop_manifest("g.yaml", &job_yaml("g", "Never", &["sleep", "60"], ""));
    assert!(wait_until(T, || d
        .pods_of("g")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    let pid = container_pid(&d.pods_of("g")[0]);
    assert!(d.stop().success());
    assert!(!process_alive(pid));
    d.spawn();
    let pod = d.pods_of("g").into_iter().next().unwrap();
    assert_eq!(pod["status"]["phase"], "Failed");
    assert_eq!(pod["status"]["reason"], "Terminated");
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        143
    );
}

#[test]
fn a_bad_config_stops_start_up_naming_the_key() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("config.yaml"),
        "backoff:\n  podFailureBse: 1s\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["daemon", "--root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.yaml") && err.contains("podFailureBse"),
        "{err}"
    );
}

#[test]
fn repeated_kill_dash_nine_never_double_counts() {
    let mut d = TestDaemon::start();
    d.drop_manifest(
        "many.yaml",
        &job_yaml(
            "many",
            "Never",
            &["sh", "-c", "sleep 0.05"],
            "  completions: 40\n  parallelism: 8\n  backoffLimit: 100\n",
        ),
    );
    for round in 0..4 {
        // Crash at a different point of the run each time.
        std::thread::sleep(Duration::from_millis(150 + 70 * round));
        d.kill9();
        d.spawn();
    }
    let job = d.wait_condition("many", "Complete", T);
    let pods = d.pods_of("many");
    let succeeded = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .count();
    let failed = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Failed")
        .count();
    assert_eq!(job["status"]["succeeded"], 40);
    assert_eq!(succeeded, 40, "each success counted once");
    assert_eq!(
        job["status"]["failed"].as_u64().unwrap() as usize,
        failed,
        "each failed pod counted once"
    );
    let again = d.job("many").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        d.pods_of("many").len(),
        pods.len(),
        "a finished Job starts nothing more"
    );
    assert_eq!(again["status"], d.job("many").unwrap()["status"]);
}
