//! Bare Pods from the manifests directory: the kubelet's static pods, supervised like
//! services with `restartPolicy: Always`.

use std::time::Duration;

use serde_json::Value;

use crate::files::process_alive;
use crate::support::*;

const T: Duration = Duration::from_secs(60);

/// Back-off long enough that a poll reliably sees `CrashLoopBackOff`, short enough to wait out.
const SLOW_BACKOFF: &str = "\
backoff:
  containerRestartBase: 1s
  containerRestartMax: 2s
watch:
  removalGrace: 100ms
log:
  level: debug
";

fn pod(d: &TestDaemon, name: &str) -> Option<Value> {
    let (code, v) = d.get_json(&format!("/api/v1/namespaces/default/pods/{name}"));
    (code == 200).then_some(v)
}

fn wait_pod(d: &TestDaemon, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let ok = wait_until(T, || {
        last = pod(d, name).unwrap_or(Value::Null);
        cond(&last)
    });
    assert!(
        ok,
        "pod {name} never {what}: {last:#}\n--- daemon log ---\n{}",
        tail(&d.daemon_log(), 40)
    );
    last
}

fn restarts(p: &Value) -> i64 {
    p["status"]["containerStatuses"][0]["restartCount"]
        .as_i64()
        .unwrap_or(-1)
}

fn pid(p: &Value) -> Option<u32> {
    p["status"]["containerStatuses"][0]["containerID"]
        .as_str()?
        .strip_prefix("jobvisor://")?
        .parse()
        .ok()
}

/// `jobvisor get pods NAME` as (STATUS, RESTARTS).
fn get_pods_row(d: &TestDaemon, name: &str) -> (String, String) {
    let out = d.cli_ok(&["get", "pods", name]);
    let row = out.lines().nth(1).unwrap_or_default().to_string();
    let cols: Vec<&str> = row.split_whitespace().collect();
    // NAME READY STATUS RESTARTS [(Xs ago)] AGE
    let restarts = match cols.get(4) {
        Some(c) if c.starts_with('(') => cols[3..6].join(" "),
        _ => cols.get(3).unwrap_or(&"").to_string(),
    };
    (cols.get(2).unwrap_or(&"").to_string(), restarts)
}

/// The tutorial's first pod: `expr 8 + 3` with restartPolicy unset (Always). It prints 11,
/// exits 0, and is restarted anyway, backing off: CrashLoopBackOff, RESTARTS growing.
#[test]
fn simple_pod_crash_loops_like_on_a_cluster() {
    let d = TestDaemon::start_with(SLOW_BACKOFF);
    d.copy_example("simple-pod.yaml");
    let p = wait_pod(&d, "simple-pod", "backed off", |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    assert_eq!(p["spec"]["restartPolicy"], "Always");
    assert_eq!(p["status"]["phase"], "Running");
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(
        (last["exitCode"].as_i64(), last["reason"].as_str()),
        (Some(0), Some("Completed"))
    );
    let (status, restarts_col) = get_pods_row(&d, "simple-pod");
    assert_eq!(status, "CrashLoopBackOff");
    assert!(restarts_col.contains("s ago)"), "{restarts_col}");
    let (code, log) = d.http(
        "GET",
        "/api/v1/namespaces/default/pods/simple-pod/log",
        None,
    );
    assert_eq!((code, log.as_str()), (200, "11\n"));
    // And it goes on: the back-off ends, it runs again.
    let before = restarts(&p);
    wait_pod(&d, "simple-pod", "restarted again", |p| {
        restarts(p) > before
    });
    assert!(d.event_reasons().contains(&"BackOff".to_string()));
}

/// With restartPolicy Never it runs once and stays Completed.
#[test]
fn run_once_pod_stays_completed() {
    let d = TestDaemon::start();
    d.copy_example("run-once-pod.yaml");
    let p = wait_pod(&d, "run-once-pod", "succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    });
    assert_eq!(restarts(&p), 0);
    assert_eq!(
        get_pods_row(&d, "run-once-pod"),
        ("Completed".into(), "0".into())
    );
    let ready: Vec<(String, String)> = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (t, s) in [
        ("Initialized", "True"),
        ("Ready", "False"),
        ("ContainersReady", "False"),
        ("PodScheduled", "True"),
    ] {
        assert!(
            ready.contains(&(t.into(), s.into())),
            "{t}={s} in {ready:?}"
        );
    }
    assert!(p["status"]["startTime"].is_string());
    assert!(
        p["metadata"]["ownerReferences"].is_null(),
        "a bare Pod has no owner object"
    );
}

fn long_pod(name: &str, policy: &str, arg: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\", \"{arg}\"]\n"
    )
}

/// Removing the file deletes the pod gracefully; editing its spec replaces it.
#[test]
fn the_file_owns_the_pod() {
    let d = TestDaemon::start();
    let file = d.drop_manifest("svc.yaml", &long_pod("svc", "Always", "1001"));
    let p = wait_pod(&d, "svc", "ran", |p| {
        pid(p).is_some() && p["status"]["phase"] == "Running"
    });
    let (uid, first) = (p["metadata"]["uid"].clone(), pid(&p).unwrap());

    // A changed spec: a new pod of the same name, the old process gone.
    d.drop_manifest("svc.yaml", &long_pod("svc", "Always", "1002"));
    let p = wait_pod(&d, "svc", "was replaced", |p| {
        p["metadata"]["uid"] != uid && pid(p).is_some()
    });
    assert_eq!(p["spec"]["containers"][0]["command"][1], "1002");
    assert!(
        wait_until(T, || !process_alive(first)),
        "old process {first} survived"
    );
    assert!(d.event_reasons().contains(&"Replacing".to_string()));

    // Only a label changed: the same pod, updated in place.
    let uid = p["metadata"]["uid"].clone();
    let labelled = long_pod("svc", "Always", "1002")
        .replace("  name: svc\n", "  name: svc\n  labels: {tier: web}\n");
    d.drop_manifest("svc.yaml", &labelled);
    let p = wait_pod(&d, "svc", "got its label", |p| {
        p["metadata"]["labels"]["tier"] == "web"
    });
    assert_eq!(p["metadata"]["uid"], uid);

    let second = pid(&p).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(
        wait_until(T, || pod(&d, "svc").is_none()),
        "pod outlived its file"
    );
    assert!(!process_alive(second));
}

/// `delete pod` of a bare Pod removes its file, as `delete job` does for a Job.
#[test]
fn deleting_a_bare_pod_removes_its_file() {
    let d = TestDaemon::start();
    let file = d.drop_manifest("one.yaml", &long_pod("one", "Always", "1003"));
    wait_pod(&d, "one", "ran", |p| pid(p).is_some());
    let out = d.cli_ok(&["delete", "pod", "one"]);
    assert_eq!(out, "pod \"one\" deleted\n");
    assert!(!file.exists());
    assert!(wait_until(T, || pod(&d, "one").is_none()));
}

/// A second file defining the same Pod conflicts, and takes over once the first is gone.
#[test]
fn two_files_one_pod_conflict() {
    let d = TestDaemon::start();
    let a = d.drop_manifest("a.yaml", &long_pod("same", "Always", "1004"));
    wait_pod(&d, "same", "ran", |p| pid(p).is_some());
    d.drop_manifest("b.yaml", &long_pod("same", "Never", "1005"));
    let ok = wait_until(T, || {
        d.cli_ok(&["get", "manifests"])
            .lines()
            .any(|l| l.contains("b.yaml") && l.contains("Conflict"))
    });
    assert!(ok, "{}", d.cli_ok(&["get", "manifests"]));
    std::fs::remove_file(a).unwrap();
    wait_pod(&d, "same", "taken over by b.yaml", |p| {
        p["spec"]["restartPolicy"] == "Never" && pid(p).is_some()
    });
}

/// A static pod survives the daemon: after a crash (or a stop) its containers start again
/// in place, `restartCount` + 1 with the interruption in `lastState`, never left Failed.
/// A `Never` pod is failed with DisruptionTarget, as a Job's pods are.
#[test]
fn static_pods_restart_in_place_after_a_crash_and_a_stop() {
    let mut d = TestDaemon::start();
    d.drop_manifest("always.yaml", &long_pod("always", "Always", "1006"));
    d.drop_manifest("never.yaml", &long_pod("never", "Never", "1007"));
    let p = wait_pod(&d, "always", "ran", |p| pid(p).is_some());
    let first = pid(&p).unwrap();
    wait_pod(&d, "never", "ran", |p| pid(p).is_some());

    d.kill9();
    d.respawn();
    let p = wait_pod(&d, "always", "restarted in place", |p| {
        restarts(p) == 1 && pid(p).is_some()
    });
    assert_eq!(p["status"]["phase"], "Running");
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "{p:#}");
    // SIGKILL takes effect asynchronously: on a loaded machine the process may still be
    // listed for a moment after the new daemon sent it.
    assert!(
        wait_until(T, || !process_alive(first)),
        "the crashed daemon's process was left running"
    );
    let n = wait_pod(&d, "never", "failed", |p| p["status"]["phase"] == "Failed");
    let disrupted = n["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "DisruptionTarget");
    assert!(disrupted, "{n:#}");

    // A clean stop: stopped with the daemon, started again with it.
    let second = pid(&p).unwrap();
    d.stop();
    assert!(!process_alive(second));
    d.respawn();
    let p = wait_pod(&d, "always", "restarted after the stop", |p| {
        restarts(p) == 2 && pid(p).is_some()
    });
    assert_eq!(p["status"]["phase"], "Running");
}

/// Renaming a manifest (as reordering `10-x.yaml` files does) hands its objects to the new
/// name: a Complete Job does not run again, a service keeps its pod.
#[test]
fn renaming_a_manifest_keeps_its_objects() {
    let d = TestDaemon::start();
    let runs = d.path().join("runs");
    let script = format!("echo run >> {}", runs.display());
    let job = job_yaml("once", "Never", &["sh", "-c", &script], "");
    let old_job = d.drop_manifest("once.yaml", &job);
    d.wait_condition("once", "Complete", T);
    let old_pod = d.drop_manifest("svc.yaml", &long_pod("svc", "Always", "1008"));
    let p = wait_pod(&d, "svc", "ran", |p| pid(p).is_some());
    let (uid, job_uid) = (
        p["metadata"]["uid"].clone(),
        d.job("once").unwrap()["metadata"]["uid"].clone(),
    );

    std::fs::rename(&old_job, d.manifests().join("10-once.yaml")).unwrap();
    std::fs::rename(&old_pod, d.manifests().join("10-svc.yaml")).unwrap();
    let moved = wait_until(T, || {
        let out = d.cli_ok(&["get", "manifests"]);
        // The header and the two renamed files: the old names are gone.
        out.lines()
            .filter(|l| l.contains("/10-") && l.contains("Applied"))
            .count()
            == 2
            && out.lines().count() == 3
    });
    assert!(moved, "{}", d.cli_ok(&["get", "manifests"]));
    assert_eq!(
        d.job("once").unwrap()["metadata"]["uid"],
        job_uid,
        "the Job was recreated"
    );
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap(),
        "run\n",
        "the Job ran again"
    );
    assert_eq!(
        pod(&d, "svc").unwrap()["metadata"]["uid"],
        uid,
        "the pod was replaced"
    );
}

/// A Pod file whose name a Job's pod has is `Conflict` until that pod is gone, then applies
/// by itself.
#[test]
fn a_pod_file_waiting_for_a_jobs_pod_applies_when_it_is_gone() {
    let d = TestDaemon::start();
    d.drop_manifest("j.yaml", &job_yaml("j", "Never", &["sleep", "1009"], ""));
    let mut name = String::new();
    assert!(wait_until(T, || {
        name = d
            .pods_of("j")
            .first()
            .and_then(|p| p["metadata"]["name"].as_str().map(String::from))
            .unwrap_or_default();
        !name.is_empty()
    }));
    d.drop_manifest("clash.yaml", &long_pod(&name, "Never", "1010"));
    assert!(wait_until(T, || d
        .cli_ok(&["get", "manifests"])
        .lines()
        .any(|l| l.contains("clash.yaml") && l.contains("Conflict"))));
    d.cli_ok(&["delete", "job", "j"]);
    wait_pod(&d, &name, "taken over by clash.yaml", |p| {
        p["metadata"]["ownerReferences"].is_null() && pid(p).is_some()
    });
}
