//! The logs of deleted pods: kept `logs.retainDeleted` after the deletion, across a crash,
//! then removed with a `LogsRemoved` event.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const T: Duration = Duration::from_secs(60);

const RETAIN_SECS: i64 = 5;

fn ts(v: &Value) -> jiff::Timestamp {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

/// Makes the directory as old as can be: a daemon that lost the deletion time and took the
/// directory's instead would remove it at once.
fn age(dir: &Path) {
    let file = std::fs::File::open(dir).expect("the pod's log directory");
    file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .expect("setting its mtime");
}

fn logs_removed_event(d: &TestDaemon, uid: &str) -> Option<Value> {
    let (_, events) = d.get_json("/api/v1/namespaces/default/events");
    events["items"]
        .as_array()?
        .iter()
        .find(|e| e["reason"] == "LogsRemoved" && e["involvedObject"]["uid"] == uid)
        .cloned()
}

#[test]
fn a_deleted_pods_logs_stay_in_the_spool_across_a_crash_then_go_with_an_event() {
    let config = format!("{FAST_CONFIG}logs:\n  retainDeleted: {RETAIN_SECS}s\n");
    let mut d = TestDaemon::start_with(&config);
    d.drop_manifest(
        "nightly.yaml",
        &job_yaml("nightly", "Never", &["echo", "last night's report"], ""),
    );
    d.wait_condition("nightly", "Complete", T);
    let pod = d.pods_of("nightly").remove(0);
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let finished = ts(&pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]);
    let dir = d.path().join(format!("logs/pods/default_{name}_{uid}"));
    let log = dir.join("main/0.log");
    let text = std::fs::read_to_string(&log).expect("the container's log");
    assert!(text.contains(" stdout F last night's report\n"), "{text}");

    let (code, body) = d.http(
        "DELETE",
        // Background: a Job's default through the API is Orphan, as in Kubernetes.
        "/apis/batch/v1/namespaces/default/jobs/nightly?propagationPolicy=Background",
        None,
    );
    assert_eq!(code, 200, "{body}");
    let pod_path = format!("/api/v1/namespaces/default/pods/{name}");
    assert!(
        wait_until(T, || d.get_json(&pod_path).0 == 404),
        "the pod is removed"
    );
    // The API serves no log of a pod it no longer has; the spool still holds it.
    let (code, _) = d.http("GET", &format!("{pod_path}/log"), None);
    assert_eq!(code, 404);
    assert_eq!(
        std::fs::read_to_string(&log).expect("kept after the deletion"),
        text
    );

    age(&dir);
    d.kill9();
    d.spawn();

    let mut event = None;
    assert!(
        wait_until(T, || {
            event = logs_removed_event(&d, &uid);
            event.is_some()
        }),
        "no LogsRemoved event\n{}",
        tail(&d.daemon_log(), 40)
    );
    let event = event.unwrap();
    assert!(
        !dir.exists(),
        "reported removed, yet {} is there",
        dir.display()
    );
    assert_eq!(event["type"], "Normal");
    assert_eq!(
        event["message"],
        format!("retained {RETAIN_SECS}s after the pod was deleted")
    );
    assert_eq!(event["involvedObject"]["kind"], "Pod");
    assert_eq!(event["involvedObject"]["name"], name.as_str());
    // Deleted after it finished, so removed no sooner than the retention after that.
    let removed = ts(&event["firstTimestamp"]);
    let kept = removed.duration_since(finished);
    assert!(
        kept >= jiff::SignedDuration::from_secs(RETAIN_SECS),
        "removed {kept:#} after the pod finished: the crash lost the deletion time"
    );
}
