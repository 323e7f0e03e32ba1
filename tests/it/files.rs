//! A file's objects follow the file; a bad file never hurts anything else.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const T: Duration = Duration::from_secs(60);

pub(crate) fn manifest_entry(d: &TestDaemon, file: &str) -> Value {
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

pub(crate) fn wait_manifest_state(d: &TestDaemon, file: &str, state: &str) -> Value {
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

/// The removal grace counts from the file's LAST disappearance: a file that vanishes, comes
/// back, and vanishes again shortly before the first deadline is not judged on that deadline.
#[test]
fn the_removal_grace_counts_from_the_last_disappearance() {
    let d = TestDaemon::start_with(&FAST_CONFIG.replace("removalGrace: 100ms", "removalGrace: 1s"));
    let marker = d.path().join("runs");
    let cmd = format!("echo run >> {}", marker.display());
    let path = d.drop_manifest(
        "flap.yaml",
        &job_yaml("flap", "Never", &["sh", "-c", &cmd], ""),
    );
    let uid = d.wait_condition("flap", "Complete", T)["metadata"]["uid"].clone();
    let sentinel = d.drop_manifest(
        "sentinel.yaml",
        &job_yaml("sentinel", "Never", &["true"], ""),
    );
    d.wait_condition("sentinel", "Complete", T);
    let aside = d.path().join("flap.yaml.aside");
    std::fs::rename(&path, &aside).unwrap(); // first disappearance: its deadline is at +1s
    std::thread::sleep(Duration::from_millis(100));
    std::fs::rename(&aside, &path).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    // Gone again across the first deadline; the sentinel goes for good at the same moment.
    std::fs::rename(&path, &aside).unwrap();
    std::fs::remove_file(&sentinel).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::rename(&aside, &path).unwrap();
    // The barrier: the sentinel's removal falls due with flap's latest deadline, and timers
    // fire in order, so once the sentinel is gone flap's deadlines have all been judged.
    assert!(wait_until(T, || d.job("sentinel").is_none()));
    let flap = d
        .job("flap")
        .expect("judged on the first deadline: deleted");
    assert_eq!(flap["metadata"]["uid"], uid, "deleted and created anew");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "run\n");
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

/// FAST_CONFIG with one more `watch:` key. `recheckInterval: 1h` keeps the fallback re-check
/// out of a test, so that only the watches (or SIGHUP) can be what re-arms.
fn with_watch_key(key: &str) -> String {
    FAST_CONFIG.replace("watch:\n", &format!("watch:\n  {key}\n"))
}

fn ready_code(d: &TestDaemon) -> (u16, String) {
    d.http("GET", "/readyz", None)
}

#[test]
fn entries_that_are_not_regular_files_are_listed_with_the_reason() {
    let d = TestDaemon::start();
    let m = d.manifests();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(m.join("pipe.yaml"))
            .status()
            .unwrap()
            .success()
    );
    std::fs::create_dir(m.join("dir.yaml")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/x.yaml", m.join("dangling.yaml")).unwrap();
    std::os::unix::fs::symlink("loop.yaml", m.join("loop.yaml")).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(m.join("sock.yaml")).unwrap();
    std::fs::write(
        m.join("latin1.yaml"),
        b"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: caf\xe9\n",
    )
    .unwrap();
    let reason = |file: &str| {
        wait_manifest_state(&d, file, "Ignored")["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(reason("pipe.yaml"), "not a regular file: a FIFO");
    assert_eq!(reason("dir.yaml"), "not a regular file: a directory");
    assert_eq!(reason("sock.yaml"), "not a regular file: a socket");
    assert_eq!(
        reason("dangling.yaml"),
        "dangling symlink to /nonexistent/x.yaml"
    );
    assert_eq!(reason("loop.yaml"), "too many levels of symbolic links");
    let latin1 = wait_manifest_state(&d, "latin1.yaml", "Invalid");
    assert_eq!(
        latin1["errors"][0],
        format!("{}:4:12: invalid UTF-8", m.join("latin1.yaml").display())
    );
    let table = d.cli_ok(&["get", "manifests", "-o", "wide"]);
    assert!(
        table.lines().any(|l| l.contains("pipe.yaml")
            && l.contains("Ignored")
            && l.contains("not a regular file: a FIFO")),
        "{table}"
    );
    // A FIFO replaced by a regular file is applied; a directory removed leaves the list.
    std::fs::remove_file(m.join("pipe.yaml")).unwrap();
    d.drop_manifest("pipe.yaml", &job_yaml("was-a-pipe", "Never", &["true"], ""));
    d.wait_condition("was-a-pipe", "Complete", T);
    wait_manifest_state(&d, "pipe.yaml", "Applied");
    std::fs::remove_dir(m.join("dir.yaml")).unwrap();
    assert!(wait_until(T, || manifest_entry(&d, "dir.yaml").is_null()));
}

#[test]
fn a_passing_read_error_is_retried_and_the_last_good_version_keeps_running() {
    let d = TestDaemon::start();
    let text = job_yaml("eio", "Never", &["true"], "");
    let path = d.drop_manifest("eio.yaml", &text);
    let job = d.wait_condition("eio", "Complete", T);
    // A real EIO: reading /proc/self/mem at offset 0 (unmapped) fails so, in the daemon.
    // The file becomes a symlink to a symlink outside the directory, so that the way back
    // (re-pointing the outer link) makes no inotify event: only the retry can notice it.
    let outside = d.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let target = outside.join("target");
    std::os::unix::fs::symlink("/proc/self/mem", &target).unwrap();
    let tmp = d.manifests().join(".eio.yaml.tmp");
    std::os::unix::fs::symlink(&target, &tmp).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let pending = wait_manifest_state(&d, "eio.yaml", "Pending");
    let msg = pending["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("retrying") && msg.contains("Input/output error"),
        "{pending:#}"
    );
    // Back-off doubles: seeing 400ms means three tries failed, well past the removal grace.
    assert!(wait_until(T, || manifest_entry(&d, "eio.yaml")["message"]
        .as_str()
        .is_some_and(|m| m.contains("retrying in 400ms"))));
    let still = d.job("eio").expect("the last good version keeps running");
    assert_eq!(still["metadata"]["uid"], job["metadata"]["uid"]);
    // The disk recovers: the next retry applies it, the same Job, not re-run.
    let good = outside.join("good.yaml");
    std::fs::write(&good, &text).unwrap();
    let tmp = outside.join("target.tmp");
    std::os::unix::fs::symlink(&good, &tmp).unwrap();
    std::fs::rename(&tmp, &target).unwrap();
    wait_manifest_state(&d, "eio.yaml", "Applied");
    assert_eq!(
        d.job("eio").unwrap()["metadata"]["uid"],
        job["metadata"]["uid"]
    );
    assert_eq!(d.pods_of("eio").len(), 1);
}

#[test]
fn removing_the_directory_deletes_nothing_and_its_return_is_noticed() {
    let d = TestDaemon::start_with(&with_watch_key("recheckInterval: 1h"));
    let text = job_yaml("kept", "Never", &["true"], "");
    d.drop_manifest("kept.yaml", &text);
    let job = d.wait_condition("kept", "Complete", T);
    std::fs::remove_dir_all(d.manifests()).unwrap();
    // Barrier: the removal grace has passed and the daemon decided to keep the Job.
    assert!(
        wait_until(T, || {
            d.daemon_log().contains(
            "still missing after watch.removalGrace, but so is the manifests directory: its objects are kept"
        )
        }),
        "{}",
        tail(&d.daemon_log(), 40)
    );
    let (code, body) = ready_code(&d);
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("is unavailable"), "{body}");
    assert_eq!(d.http("GET", "/healthz", None).0, 200);
    let out = d.cli(&["get", "manifests"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "manifests directory {} is unavailable",
            d.manifests().display()
        )) && stderr.contains("nothing is deleted while it is missing"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Unavailable"));
    assert_eq!(manifest_entry(&d, "kept.yaml")["state"], "Unavailable");
    assert_eq!(
        d.job("kept").unwrap()["metadata"]["uid"],
        job["metadata"]["uid"]
    );
    assert!(!d.manifests().exists(), "the daemon waits for the user");

    // Restored (built aside, renamed into place): watched again and rescanned at once.
    let aside = d.path().join("restore");
    std::fs::create_dir(&aside).unwrap();
    std::fs::write(aside.join("kept.yaml"), &text).unwrap();
    std::fs::write(
        aside.join("new.yaml"),
        job_yaml("new", "Never", &["true"], ""),
    )
    .unwrap();
    std::fs::rename(&aside, d.manifests()).unwrap();
    d.wait_condition("new", "Complete", T);
    wait_manifest_state(&d, "kept.yaml", "Applied");
    assert!(wait_until(T, || ready_code(&d).0 == 200));
    assert_eq!(
        d.job("kept").unwrap()["metadata"]["uid"],
        job["metadata"]["uid"]
    );
    assert_eq!(d.pods_of("kept").len(), 1, "never re-run");
    // And files dropped afterwards are seen: the watch is armed on the new directory.
    d.drop_manifest("later.yaml", &job_yaml("later", "Never", &["true"], ""));
    d.wait_condition("later", "Complete", T);
}

#[test]
fn a_start_without_the_directory_deletes_nothing() {
    let mut d = TestDaemon::start();
    let text = job_yaml("before", "Never", &["true"], "");
    d.drop_manifest("before.yaml", &text);
    let job = d.wait_condition("before", "Complete", T);
    d.stop();
    std::fs::remove_dir_all(d.manifests()).unwrap();
    d.spawn();
    let (code, body) = ready_code(&d);
    assert_eq!(code, 500, "{body}");
    assert_eq!(manifest_entry(&d, "before.yaml")["state"], "Unavailable");
    assert!(!d.manifests().exists(), "not re-created empty");
    std::fs::create_dir(d.manifests()).unwrap();
    d.drop_manifest("before.yaml", &text);
    wait_manifest_state(&d, "before.yaml", "Applied");
    assert_eq!(
        d.job("before").unwrap()["metadata"]["uid"],
        job["metadata"]["uid"]
    );
    assert_eq!(d.pods_of("before").len(), 1);
    assert_eq!(ready_code(&d).0, 200);
}

#[test]
fn a_re_pointed_symlink_is_followed() {
    let mut d = TestDaemon::start_with(&with_watch_key("recheckInterval: 1h"));
    d.stop();
    let (one, two) = (d.path().join("one"), d.path().join("two"));
    std::fs::rename(d.manifests(), &one).unwrap();
    std::fs::create_dir(&two).unwrap();
    std::os::unix::fs::symlink(&one, d.manifests()).unwrap();
    d.spawn();
    d.drop_manifest("a.yaml", &job_yaml("in-one", "Never", &["true"], ""));
    d.wait_condition("in-one", "Complete", T);
    std::fs::write(
        two.join("b.yaml"),
        job_yaml("in-two", "Never", &["true"], ""),
    )
    .unwrap();
    let tmp = d.path().join("link.tmp");
    std::os::unix::fs::symlink(&two, &tmp).unwrap();
    std::fs::rename(&tmp, d.manifests()).unwrap();
    d.wait_condition("in-two", "Complete", T);
    // What the new target lacks goes (after the removal grace), as for any removed file.
    assert!(wait_until(T, || d.job("in-one").is_none()));
    d.drop_manifest("c.yaml", &job_yaml("via-link", "Never", &["true"], ""));
    d.wait_condition("via-link", "Complete", T);
}

/// Setting `paths.manifests` two levels below the root, so replacing the level in between is
/// seen by neither the directory's watch nor its parent's.
fn deep_layout(d: &mut TestDaemon, config: &str) -> std::path::PathBuf {
    d.stop();
    let deep = d.path().join("a/b/manifests");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(
        d.path().join("config.yaml"),
        format!("{config}paths:\n  manifests: {}\n", deep.display()),
    )
    .unwrap();
    d.spawn();
    deep
}

fn swap_grandparent(d: &TestDaemon, deep: &std::path::Path, file: &str, job: &str) {
    std::fs::rename(d.path().join("a"), d.path().join("a.old")).unwrap();
    std::fs::create_dir_all(deep).unwrap();
    std::fs::write(deep.join(file), job_yaml(job, "Never", &["true"], "")).unwrap();
}

#[test]
fn sighup_re_arms_the_watch() {
    let mut d = TestDaemon::start();
    let config = with_watch_key("recheckInterval: 1h");
    let deep = deep_layout(&mut d, &config);
    swap_grandparent(&d, &deep, "x.yaml", "after-hup");
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status();
    d.wait_condition("after-hup", "Complete", T);
    // Re-armed, not just rescanned once: a later drop is seen by itself.
    std::fs::write(
        deep.join("y.yaml"),
        job_yaml("after-after", "Never", &["true"], ""),
    )
    .unwrap();
    d.wait_condition("after-after", "Complete", T);
}

#[test]
fn the_periodic_re_check_finds_a_replaced_ancestor() {
    let mut d = TestDaemon::start();
    let config = with_watch_key("recheckInterval: 100ms");
    let deep = deep_layout(&mut d, &config);
    swap_grandparent(&d, &deep, "x.yaml", "rechecked");
    d.wait_condition("rechecked", "Complete", T);
}

/// `prlimit` on the daemon: the soft open-files limit, set (`Some`) or read.
fn nofile_soft(pid: u32, set: Option<&str>) -> String {
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg("--pid").arg(pid.to_string());
    match set {
        Some(soft) => cmd.arg(format!("--nofile={soft}:")),
        None => cmd.args(["--nofile", "--raw", "--noheadings", "--output", "SOFT"]),
    };
    let out = cmd.output().expect("prlimit");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn running_out_of_fds_is_no_verdict_on_the_directory() {
    let d = TestDaemon::start_with(&with_watch_key("recheckInterval: 1h"));
    d.drop_manifest("fd.yaml", &job_yaml("fd", "Never", &["true"], ""));
    let job = d.wait_condition("fd", "Complete", T);
    let soft = nofile_soft(d.pid(), None);
    // Every open in the daemon now fails with EMFILE; SIGHUP makes it look at the directory.
    nofile_soft(d.pid(), Some("8"));
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status();
    // Barrier: three looks failed (back-off at 400ms), or the directory was given up on.
    let seen = wait_until(T, || {
        let log = d.daemon_log();
        log.contains("looking again in 400ms") || log.contains("manifests directory unavailable")
    });
    nofile_soft(d.pid(), Some(&soft));
    assert!(seen, "{}", tail(&d.daemon_log(), 40));
    let log = d.daemon_log();
    assert!(
        !log.contains("manifests directory unavailable"),
        "{}",
        tail(&log, 40)
    );
    let (code, body) = ready_code(&d);
    assert_eq!(code, 200, "{body}");
    assert_eq!(manifest_entry(&d, "fd.yaml")["state"], "Applied");
    // Still watched: a file dropped now is seen by itself.
    d.drop_manifest("after.yaml", &job_yaml("after-fd", "Never", &["true"], ""));
    d.wait_condition("after-fd", "Complete", T);
    assert_eq!(
        d.job("fd").unwrap()["metadata"]["uid"],
        job["metadata"]["uid"]
    );
}
