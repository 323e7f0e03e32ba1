//! A file's objects follow the file; a bad file never hurts anything else.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const T: Duration = Duration::from_secs(60);

fn manifest_entry(d: &TestDaemon, file: &str) -> Value {
    let (_, v) = d.get_json("/apis/jobvisor.io/v1/manifests");
    v["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|m| m["path"].as_str().is_some_and(|p| p.ends_with(file)))
                .cloned()
        })
        .unwrap_or(Value::Null)
}

fn wait_manifest_state(d: &TestDaemon, file: &str, state: &str) -> Value {
    let mut last = Value::Null;
    let ok = wait_until(T, || {
        last = manifest_entry(d, file);
        last["state"] == state
    });
    assert!(ok, "{file} never reached {state}: {last:#}");
    last
}

#[test]
fn bad_files_are_reported_and_never_stop_the_others() {
    let d = TestDaemon::start();
    d.drop_manifest(
        "syntax.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x\n",
    );
    d.drop_manifest(
        "typo.yaml",
        &job_yaml("typo", "Never", &["true"], "").replace("restartPolicy", "restartPolcy"),
    );
    d.drop_manifest(
        "invalid.yaml",
        &job_yaml("invalid", "Always", &["true"], "  backoffLimit: -1\n"),
    );
    d.drop_manifest("good.yaml", &job_yaml("good", "Never", &["true"], ""));
    d.wait_condition("good", "Complete", T);

    let syntax = wait_manifest_state(&d, "syntax.yaml", "Invalid");
    let msg = syntax["errors"][0].as_str().unwrap();
    assert!(
        msg.contains("syntax.yaml:"),
        "names the file with a line: {msg}"
    );

    let typo = wait_manifest_state(&d, "typo.yaml", "Invalid");
    let msg = typo["errors"][0].as_str().unwrap();
    assert!(
        msg.contains("typo.yaml:") && msg.contains("unknown field") && msg.contains("restartPolcy"),
        "{msg}"
    );

    let invalid = wait_manifest_state(&d, "invalid.yaml", "Invalid");
    let msg = invalid["errors"][0].as_str().unwrap();
    assert!(msg.contains("The Job \"invalid\" is invalid"), "{msg}");
    assert!(
        msg.contains("spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"),
        "{msg}"
    );
    assert!(
        msg.contains("spec.template.spec.restartPolicy: Required value"),
        "{msg}"
    );
    assert!(d.job("typo").is_none() && d.job("invalid").is_none());
    let (code, _) = d.http("GET", "/healthz", None);
    assert_eq!(code, 200, "still serving");
}

#[test]
fn a_bad_edit_keeps_the_last_good_version() {
    let d = TestDaemon::start();
    d.drop_manifest("j.yaml", &job_yaml("keep", "Never", &["true"], ""));
    let before = d.wait_condition("keep", "Complete", T);
    d.drop_manifest(
        "j.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: keep\nspec: [\n",
    );
    wait_manifest_state(&d, "j.yaml", "Invalid");
    let after = d.job("keep").expect("job still there");
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
}

#[test]
fn touching_a_file_never_reruns_a_finished_job() {
    let d = TestDaemon::start();
    let path = d.drop_manifest("once.yaml", &job_yaml("once", "Never", &["true"], ""));
    let job = d.wait_condition("once", "Complete", T);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text).unwrap(); // close-after-write with the same content
    d.drop_manifest("once.yaml", &text); // and an atomic rename of the same content
    std::thread::sleep(Duration::from_millis(300));
    let again = d.job("once").unwrap();
    assert_eq!(again["metadata"]["uid"], job["metadata"]["uid"]);
    assert_eq!(d.pods_of("once").len(), 1);
}

#[test]
fn mutable_fields_apply_in_place_and_a_template_change_recreates() {
    let d = TestDaemon::start();
    d.drop_manifest(
        "m.yaml",
        &job_yaml(
            "m",
            "Never",
            &["sleep", "30"],
            "  parallelism: 1\n  completions: 4\n",
        ),
    );
    assert!(wait_until(T, || d
        .pods_of("m")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    let first = d.job("m").unwrap();

    d.drop_manifest(
        "m.yaml",
        &job_yaml(
            "m",
            "Never",
            &["sleep", "30"],
            "  parallelism: 2\n  completions: 4\n",
        ),
    );
    assert!(wait_until(T, || d.job("m").is_some_and(
        |j| j["spec"]["parallelism"] == 2 && j["status"]["active"] == 2
    )));
    let updated = d.job("m").unwrap();
    assert_eq!(
        updated["metadata"]["uid"], first["metadata"]["uid"],
        "same Job, updated in place"
    );
    assert_eq!(updated["metadata"]["generation"], 2);

    d.drop_manifest(
        "m.yaml",
        &job_yaml(
            "m",
            "Never",
            &["true"],
            "  parallelism: 2\n  completions: 4\n",
        ),
    );
    let recreated = d.wait_condition("m", "Complete", T);
    assert_ne!(
        recreated["metadata"]["uid"], first["metadata"]["uid"],
        "a new Job"
    );
    let reasons = d.event_reasons();
    assert!(reasons.iter().any(|r| r == "Recreated"), "{reasons:?}");
    // The old Job's pods were terminated and are gone.
    assert!(wait_until(T, || d.pods_of("m").iter().all(
        |p| p["metadata"]["labels"]["controller-uid"] == recreated["metadata"]["uid"]
    )));
}

#[test]
fn removing_the_file_deletes_the_job_and_stops_its_pods() {
    let d = TestDaemon::start();
    let path = d.drop_manifest("r.yaml", &job_yaml("r", "Never", &["sleep", "60"], ""));
    assert!(wait_until(T, || d
        .pods_of("r")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    let pid = container_pid(&d.pods_of("r")[0]);
    std::fs::remove_file(path).unwrap();
    assert!(wait_until(T, || d.job("r").is_none()));
    assert!(
        wait_until(T, || d.pods_of("r").is_empty()),
        "pods removed once terminated"
    );
    assert!(
        wait_until(T, || !process_alive(pid)),
        "process {pid} terminated"
    );
}

#[test]
fn the_same_job_in_two_files_is_rejected_naming_both() {
    let d = TestDaemon::start();
    d.drop_manifest("a.yaml", &job_yaml("twice", "Never", &["true"], ""));
    d.wait_condition("twice", "Complete", T);
    d.drop_manifest("b.yaml", &job_yaml("twice", "Never", &["false"], ""));
    let b = wait_manifest_state(&d, "b.yaml", "Conflict");
    let msg = b["errors"][0].as_str().unwrap();
    assert!(msg.contains("b.yaml") && msg.contains("a.yaml"), "{msg}");
    assert!(
        d.job("twice").unwrap()["metadata"]["annotations"]["jobvisor.io/source"]
            .as_str()
            .unwrap()
            .ends_with("a.yaml")
    );
}

#[test]
fn multi_document_files_and_editor_leftovers() {
    let d = TestDaemon::start();
    let two = format!(
        "{}---\n{}",
        job_yaml("doc-one", "Never", &["true"], ""),
        job_yaml("doc-two", "Never", &["true"], "")
    );
    d.drop_manifest("two.yaml", &two);
    std::fs::write(
        d.manifests().join("ignored.yaml~"),
        job_yaml("backup", "Never", &["true"], ""),
    )
    .unwrap();
    std::fs::write(
        d.manifests().join(".hidden.yaml"),
        job_yaml("hidden", "Never", &["true"], ""),
    )
    .unwrap();
    std::fs::write(d.manifests().join("x.json"), r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"from-json"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox","command":["true"]}]}}}}"#).unwrap();
    d.wait_condition("doc-one", "Complete", T);
    d.wait_condition("doc-two", "Complete", T);
    d.wait_condition("from-json", "Complete", T);
    assert!(d.job("backup").is_none() && d.job("hidden").is_none());
}

pub fn container_pid(pod: &Value) -> u32 {
    pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .and_then(|id| id.strip_prefix("jobvisor://"))
        .and_then(|p| p.parse().ok())
        .expect("container pid")
}

pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie is dead but not yet reaped; that counts as gone here.
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn an_editor_save_by_rename_never_reruns_a_finished_job() {
    let d = TestDaemon::start();
    let path = d.drop_manifest("vim.yaml", &job_yaml("vim", "Never", &["true"], ""));
    let job = d.wait_condition("vim", "Complete", T);
    // vim: rename the file away, write the new one, remove the backup.
    let backup = d.manifests().join("vim.yaml~");
    std::fs::rename(&path, &backup).unwrap();
    std::fs::write(&path, std::fs::read_to_string(&backup).unwrap()).unwrap();
    std::fs::remove_file(&backup).unwrap();
    std::thread::sleep(Duration::from_millis(400)); // past watch.removalGrace
    let again = d.job("vim").expect("still there");
    assert_eq!(again["metadata"]["uid"], job["metadata"]["uid"]);
    assert_eq!(d.pods_of("vim").len(), 1);
}

#[test]
fn a_conflicting_file_takes_over_when_the_first_lets_go() {
    let d = TestDaemon::start();
    d.drop_manifest("a.yaml", &job_yaml("shared", "Never", &["true"], ""));
    d.wait_condition("shared", "Complete", T);
    d.drop_manifest(
        "b.yaml",
        &job_yaml("shared", "Never", &["sh", "-c", "echo from-b"], ""),
    );
    wait_manifest_state(&d, "b.yaml", "Conflict");
    // a.yaml stops defining the Job by an edit: b.yaml applies by itself.
    d.drop_manifest("a.yaml", &job_yaml("other", "Never", &["true"], ""));
    wait_manifest_state(&d, "b.yaml", "Applied");
    d.wait_condition("shared", "Complete", T);
    assert_eq!(d.cli_ok(&["logs", "job/shared"]), "from-b\n");
    // Deleting it removes b.yaml; nothing else claims the name.
    d.cli_ok(&["delete", "job", "shared"]);
    assert!(!d.manifests().join("b.yaml").exists());
    assert!(wait_until(T, || d.job("shared").is_none()));
}

#[test]
fn a_fifo_or_directory_named_like_a_manifest_is_ignored() {
    let d = TestDaemon::start();
    let fifo = d.manifests().join("pipe.yaml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::create_dir(d.manifests().join("dir.yaml")).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status();
    d.drop_manifest("ok.yaml", &job_yaml("ok", "Never", &["true"], ""));
    d.wait_condition("ok", "Complete", T);
    let (code, _) = d.http("GET", "/healthz", None);
    assert_eq!(code, 200);
}

#[test]
fn a_manual_selector_with_chosen_labels_runs_normally() {
    let d = TestDaemon::start();
    let yaml = job_yaml("manual", "Never", &["true"], "  completions: 2\n  manualSelector: true\n  selector:\n    matchLabels:\n      controller-uid: mine\n")
        .replace("  template:\n    spec:", "  template:\n    metadata:\n      labels:\n        controller-uid: mine\n    spec:");
    d.drop_manifest("manual.yaml", &yaml);
    let job = d.wait_condition("manual", "Complete", T);
    assert_eq!(job["status"]["succeeded"], 2);
    assert_eq!(d.pods_of("manual").len(), 2, "exactly the pods it needed");
}
