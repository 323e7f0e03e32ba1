//! CronJobs through the real daemon: a real slot across a `kill -9`, the CLI's
//! `create` (`cronjob`, `job --image`, `job --from=cronjob/…`), `describe cronjob`, `get`,
//! `delete`, and the API's refusals of Jobs it does not create.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use jobvisor::clock::{Clock, SystemClock};
use serde_json::{Value, json};

use crate::support::*;

const T: Duration = Duration::from_secs(60);

/// A CronJob `name` on `schedule` running `command`; `extra_spec` lines go under `spec:`,
/// `template_meta` lines under `jobTemplate:` (4-space indent).
fn cronjob_yaml(
    name: &str,
    schedule: &str,
    extra_spec: &str,
    template_meta: &str,
    command: &[&str],
) -> String {
    let cmd: Vec<String> = command
        .iter()
        .map(|c| serde_json::to_string(c).expect("json"))
        .collect();
    format!(
        "apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
spec:
  schedule: \"{schedule}\"
{extra_spec}  jobTemplate:
{template_meta}    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 2
          containers:
          - name: main
            image: busybox:1.36
            command: [{}]
",
        cmd.join(", ")
    )
}

fn now() -> Timestamp {
    SystemClock.now()
}

/// Sleeps until the wall clock reads `at` (to place a kill around a slot; nothing is judged
/// by having slept).
fn sleep_until(at: Timestamp) {
    let left = at.duration_since(now());
    if left.is_positive() {
        std::thread::sleep(Duration::try_from(left).unwrap_or_default());
    }
}

fn cronjob(d: &TestDaemon, ns: &str, name: &str) -> Option<Value> {
    let (code, v) = d.get_json(&format!("/apis/batch/v1/namespaces/{ns}/cronjobs/{name}"));
    (code == 200).then_some(v)
}

/// The names of the Jobs in `default` whose controller is the object of uid `owner`.
fn jobs_owned_by(d: &TestDaemon, owner: &str) -> Vec<String> {
    let (_, list) = d.get_json("/apis/batch/v1/namespaces/default/jobs");
    let mut names: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|j| {
            j["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["controller"] == true && o["uid"] == owner)
        })
        .filter_map(|j| j["metadata"]["name"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

/// The events about the CronJob `name`, as (reason, message), oldest first.
fn cronjob_events(d: &TestDaemon, name: &str) -> Vec<(String, String)> {
    let (_, events) = d.get_json("/api/v1/namespaces/default/events");
    events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["kind"] == "CronJob" && e["involvedObject"]["name"] == name)
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The `Next Schedules:` block of a `describe cronjob`, one time per line.
fn next_schedules(describe: &str) -> Vec<String> {
    let mut lines = describe
        .lines()
        .skip_while(|l| !l.starts_with("Next Schedules:"));
    let Some(first) = lines.next() else {
        return vec![];
    };
    let mut out = vec![
        first
            .trim_start_matches("Next Schedules:")
            .trim()
            .to_string(),
    ];
    out.extend(
        lines
            .take_while(|l| l.starts_with(' '))
            .map(|l| l.trim().to_string()),
    );
    out
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A daily schedule at the minute of `at` in the daemon's zone (the system's): the only slot
/// it has within the hours a test runs.
fn pinned_to(at: Timestamp) -> String {
    let z = at.to_zoned_datetime(TimeZone::system());
    format!("{} {} * * *", z.minute(), z.hour())
}

/// One real slot. The daemon is killed (SIGKILL) before the slot and started again just
/// after it: the slot's Job is created exactly once, by the restarted daemon, which says it
/// ran a missed schedule. A Job made with `create job --from` runs meanwhile; with
/// `concurrencyPolicy: Forbid` it holds nothing back, being no run of the CronJob's. The only
/// slow test here: up to 20 s past the next minute of wall time.
///
/// The schedule names the slot's minute, set once the rest is in place and seen served
/// before the kill: with `* * * * *`, a minute boundary falling while a loaded machine sets
/// up would run a slot before the kill.
#[test]
fn a_real_slot_runs_once_across_a_kill_before_it_and_a_restart_after_it() {
    let mut d = TestDaemon::start();
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("runs");
    let script = format!(
        "echo \"$HOSTNAME\" >> {}; case \"$HOSTNAME\" in manual-*) exec sleep 300;; esac",
        marker.display()
    );
    let tick = |schedule: &str| {
        cronjob_yaml(
            "tick",
            schedule,
            "  concurrencyPolicy: Forbid\n",
            "",
            &["sh", "-c", &script],
        )
    };
    // Half a day away until the slot is chosen.
    d.drop_manifest(
        "tick.yaml",
        &tick(&pinned_to(now() + SignedDuration::from_hours(12))),
    );
    let mut cj = Value::Null;
    assert!(wait_until(T, || {
        cj = cronjob(&d, "default", "tick").unwrap_or(Value::Null);
        !cj.is_null()
    }));
    let uid = cj["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(
        d.cli_ok(&["create", "job", "manual", "--from=cronjob/tick"]),
        "job.batch/manual created\n"
    );
    let ran = |prefix: &str| -> usize {
        std::fs::read_to_string(&marker)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .count()
    };
    assert!(wait_until(T, || ran("manual-") >= 1), "the manual Job runs");

    // The first minute at least 20 s away: room for the daemon to take the new schedule
    // (a one-line update, seen served below) and be killed before the slot.
    let t = now().as_second();
    let slot = Timestamp::from_second(t + 20 + (60 - (t + 20).rem_euclid(60)) % 60).unwrap();
    let job = format!("tick-{}", slot.as_second() / 60);
    let schedule = pinned_to(slot);
    d.drop_manifest("tick.yaml", &tick(&schedule));
    assert!(wait_until(T, || {
        cronjob(&d, "default", "tick").is_some_and(|cj| cj["spec"]["schedule"] == schedule)
    }));
    assert!(d.job(&job).is_none(), "the slot has not come yet");
    d.kill9();
    let killed = now();
    assert!(
        killed < slot,
        "the daemon took the schedule and was killed only at {killed}, after the slot {slot}"
    );
    // Started again over a second after the slot, so the slot counts as missed (a sleep never
    // ends early); nothing is judged by the time.
    sleep_until(slot + SignedDuration::from_millis(1200));
    d.respawn();

    let done = d.wait_condition(&job, "Complete", T);
    assert_eq!(done["status"]["succeeded"], 1);
    assert_eq!(done["status"]["failed"].as_i64().unwrap_or(0), 0);
    assert_eq!(ran(&format!("{job}-")), 1, "its pod ran once");
    assert_eq!(
        done["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        slot.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    assert_eq!(done["metadata"]["ownerReferences"][0]["uid"], uid.as_str());
    assert_eq!(jobs_owned_by(&d, &uid), ["manual".to_string(), job.clone()]);
    assert!(
        d.job("manual")
            .is_some_and(|m| !has_condition(&m, "Complete")),
        "the manual Job still runs"
    );

    // Seen finished: the CronJob's active list is empty, and never held the manual Job.
    assert!(wait_until(T, || {
        cj = cronjob(&d, "default", "tick").unwrap_or(Value::Null);
        cj["status"]["active"].as_array().is_none_or(Vec::is_empty)
            && cj["status"]["lastSuccessfulTime"].is_string()
    }));
    assert_eq!(
        cj["status"]["lastScheduleTime"],
        slot.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    let local = |t: Timestamp| {
        t.to_zoned_datetime(TimeZone::system())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    let events = cronjob_events(&d, "tick");
    let created: Vec<&(String, String)> = events
        .iter()
        .filter(|(r, _)| r == "SuccessfulCreate")
        .collect();
    assert_eq!(
        created,
        [&("SuccessfulCreate".to_string(), format!("Created job {job}"))],
        "{events:#?}"
    );
    let missed = format!(
        "Missed 1 schedule between {0} and {0}; ran the one at {0}",
        local(slot)
    );
    assert!(
        events.contains(&("MissedSchedules".to_string(), missed.clone())),
        "want {missed:?} in {events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "UnexpectedJob" && m.ends_with(": manual")),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|(r, _)| r == "JobAlreadyActive"),
        "{events:#?}"
    );

    let describe = d.cli_ok(&["describe", "cronjob", "tick"]);
    for want in [
        "Concurrency Policy:            Forbid",
        "Active Jobs:         <none>",
        "MissedSchedules",
        &missed,
    ] {
        assert!(describe.contains(want), "{want:?} in\n{describe}");
    }
    let jobs = d.cli_ok(&["get", "jobs"]);
    assert!(jobs.contains(&job) && jobs.contains("manual"), "{jobs}");

    // Deleting the CronJob deletes its file and both of its Jobs, the running one too.
    assert_eq!(
        d.cli_ok(&["delete", "cronjob", "tick"]),
        "cronjob.batch \"tick\" deleted\n"
    );
    assert!(!d.manifests().join("tick.yaml").exists());
    assert!(wait_until(T, || d.job(&job).is_none() && d.job("manual").is_none()));
}

/// `create job NAME --from=cronjob/CRON`: the Job runs, owned by the CronJob and marked as
/// made by hand; no file defines it; the CronJob reports it as unexpected and does not count
/// it as one of its runs; it goes with the CronJob. And `describe cronjob` shows the next
/// schedules in the CronJob's time zone.
#[test]
fn a_job_created_from_a_cronjob_runs_as_its_own_and_goes_with_it() {
    let d = TestDaemon::start();
    d.drop_manifest(
        "nightly.yaml",
        &cronjob_yaml(
            "nightly",
            "30 21 * * *",
            "  timeZone: Asia/Tokyo\n",
            "    metadata:\n      labels: {app: nightly}\n      annotations: {team: a}\n",
            &["sh", "-c", "echo from the template"],
        ),
    );
    let mut cj = Value::Null;
    assert!(wait_until(T, || {
        cj = cronjob(&d, "default", "nightly").unwrap_or(Value::Null);
        !cj.is_null()
    }));
    let uid = cj["metadata"]["uid"].as_str().unwrap().to_string();

    assert_eq!(
        d.cli_ok(&["create", "job", "manual", "--from=cronjob/nightly"]),
        "job.batch/manual created\n"
    );
    let job = d.wait_condition("manual", "Complete", T);
    assert_eq!(
        job["metadata"]["ownerReferences"],
        json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": uid, "controller": true}])
    );
    assert_eq!(
        job["metadata"]["annotations"],
        json!({"cronjob.kubernetes.io/instantiate": "manual", "team": "a"})
    );
    assert_eq!(job["metadata"]["labels"]["app"], "nightly");
    assert_eq!(d.cli_ok(&["logs", "job/manual"]), "from the template\n");
    assert_eq!(d.manifest_names(), ["nightly.yaml"], "no file defines it");
    let jobs = d.cli_ok(&["get", "jobs"]);
    assert!(jobs.lines().any(|l| l.starts_with("manual ")), "{jobs}");

    // Not one of the CronJob's runs: never active; its success is still the CronJob's last.
    assert!(wait_until(T, || {
        cj = cronjob(&d, "default", "nightly").unwrap_or(Value::Null);
        cj["status"]["lastSuccessfulTime"] == job["status"]["completionTime"]
    }));
    assert!(cj["status"]["active"].is_null(), "{cj:#}");
    assert!(cj["status"]["lastScheduleTime"].is_null(), "{cj:#}");

    let mut describe = String::new();
    let before = now();
    assert!(wait_until(T, || {
        describe = d.cli_ok(&["describe", "cronjob", "nightly"]);
        describe.contains("UnexpectedJob")
    }));
    assert!(
        describe.contains("Saw a job that the controller did not create or forgot: manual"),
        "{describe}"
    );
    assert!(
        describe.contains("Active Jobs:         <none>"),
        "{describe}"
    );
    // The next three 21:30 in Tokyo, one a day, the first within a day.
    let next = next_schedules(&describe);
    assert_eq!(next.len(), 3, "{describe}");
    let times: Vec<Timestamp> = next.iter().map(|t| t.parse().unwrap()).collect();
    for (text, t) in next.iter().zip(&times) {
        assert!(text.ends_with("T21:30:00+09:00"), "{text}");
        assert!(*t > before, "{text}");
    }
    assert!(times[0] <= before + SignedDuration::from_hours(24) + SignedDuration::from_mins(1));
    assert_eq!(
        times[1].duration_since(times[0]),
        SignedDuration::from_hours(24)
    );

    let again = d.cli(&["create", "job", "manual", "--from=cronjob/nightly"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        stderr(&again),
        "error: failed to create job: jobs.batch \"manual\" already exists\n"
    );

    assert_eq!(
        d.cli_ok(&["delete", "cj", "nightly"]),
        "cronjob.batch \"nightly\" deleted\n"
    );
    assert!(d.manifest_names().is_empty());
    assert!(
        wait_until(T, || d.job("manual").is_none()),
        "deleted with its CronJob"
    );
}

/// Reads `child`'s stdout lines on a thread.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// `create cronjob` and `create job --image`: kubectl's manifests, written into the
/// manifests directory as marked files (apply's), served with the flags' values, refused
/// when they exist; `--dry-run=client` prints and writes nothing; `get -w` sees an edit;
/// `delete -f` removes the CronJob and its file.
#[test]
fn create_writes_marked_files_and_the_objects_follow_them() {
    let d = TestDaemon::start();
    let created = d.cli(&[
        "create",
        "cronjob",
        "nightly",
        "--image=busybox:1.36",
        "--schedule=30 21 * * *",
        "--restart=Never",
        "-n",
        "team",
        "--",
        "sh",
        "-c",
        "echo hi",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    assert_eq!(
        String::from_utf8_lossy(&created.stdout),
        "cronjob.batch/nightly created\n"
    );
    assert_eq!(stderr(&created), "", "no warning");
    let file = d.manifests().join("cronjob.batch_team_nightly.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# Written by jobvisor apply;"),
        "marked as apply's: {text}"
    );
    let validated = d.cli(&["validate", file.to_str().unwrap()]);
    assert!(validated.status.success());
    assert_eq!(
        String::from_utf8_lossy(&validated.stdout),
        format!("{}: ok (1 object)\n", file.display())
    );
    assert_eq!(
        stderr(&validated),
        "",
        "the manifest loads without warnings"
    );

    let cj = cronjob(&d, "team", "nightly").expect("served");
    assert_eq!(cj["spec"]["schedule"], "30 21 * * *");
    assert_eq!(cj["spec"]["jobTemplate"]["metadata"]["name"], "nightly");
    let pod = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["containers"][0]["name"], "nightly");
    assert_eq!(pod["containers"][0]["image"], "busybox:1.36");
    assert_eq!(
        pod["containers"][0]["command"],
        json!(["sh", "-c", "echo hi"])
    );

    let wide = d.cli_ok(&["get", "cj", "-n", "team", "-o", "wide"]);
    let row: Vec<&str> = wide.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        [&row[..6], &row[row.len() - 3..]].concat(),
        [
            "nightly",
            "30",
            "21",
            "*",
            "*",
            "*",
            "nightly",
            "busybox:1.36",
            "<none>"
        ],
        "{wide}"
    );
    assert_eq!(
        d.cli_ok(&["get", "cronjobs", "-A", "-o", "name"]),
        "cronjob.batch/nightly\n"
    );
    let json: Value =
        serde_json::from_str(&d.cli_ok(&["get", "cj", "nightly", "-n", "team", "-o", "json"]))
            .unwrap();
    assert_eq!(
        (json["kind"].as_str(), json["metadata"]["uid"].as_str()),
        (Some("CronJob"), cj["metadata"]["uid"].as_str())
    );
    assert!(
        d.cli_ok(&["get", "cj", "nightly", "-n", "team", "-o", "yaml"])
            .starts_with("apiVersion: batch/v1\nkind: CronJob\n")
    );
    let (code, list) = d.get_json("/apis/batch/v1/cronjobs");
    assert_eq!((code, list["kind"].as_str()), (200, Some("CronJobList")));
    assert_eq!(list["items"][0]["metadata"]["name"], "nightly");

    // Exists: refused, the file untouched.
    let again = d.cli(&[
        "create",
        "cronjob",
        "nightly",
        "--image=busybox",
        "--schedule=@daily",
        "-n",
        "team",
        "--",
        "true",
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        stderr(&again),
        "error: failed to create cronjob: cronjobs.batch \"nightly\" already exists\n"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    // The tutorial's command, no `command`: the image's alias runs (see README "Images").
    assert_eq!(
        d.cli_ok(&[
            "create",
            "cronjob",
            "throw-dice-cron-job",
            "--image=kodekloud/throw-dice",
            "--schedule=30 21 * * *",
        ]),
        "cronjob.batch/throw-dice-cron-job created\n"
    );
    let dice = cronjob(&d, "default", "throw-dice-cron-job").expect("served");
    assert_eq!(dice["spec"]["schedule"], "30 21 * * *");
    assert_eq!(
        dice["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
        "kodekloud/throw-dice"
    );
    // An image without an alias and no command: refused, naming the image and the config key.
    let bare = d.cli(&[
        "create",
        "cronjob",
        "bare",
        "--image=nginx",
        "--schedule=@daily",
    ]);
    assert_eq!(bare.status.code(), Some(1));
    assert!(
        stderr(&bare).contains(
            "spec.jobTemplate.spec.template.spec.containers[0].command: Required value: "
        ) && stderr(&bare).contains("docker.io/library/nginx:latest")
            && stderr(&bare).contains("images:"),
        "{}",
        stderr(&bare)
    );
    assert!(cronjob(&d, "default", "bare").is_none());

    let preview = d.cli_ok(&[
        "create",
        "cronjob",
        "preview",
        "--image=busybox",
        "--schedule=@hourly",
        "--dry-run=client",
        "-o",
        "yaml",
        "--",
        "date",
    ]);
    assert!(
        preview.starts_with("apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: preview\n"),
        "{preview}"
    );
    assert!(preview.ends_with("  schedule: \"@hourly\"\n"), "{preview}");
    assert!(cronjob(&d, "default", "preview").is_none());
    assert_eq!(
        d.manifest_names(),
        [
            "cronjob.batch_default_throw-dice-cron-job.yaml",
            "cronjob.batch_team_nightly.yaml"
        ],
        "nothing written but what was created"
    );

    assert_eq!(
        d.cli_ok(&[
            "create",
            "job",
            "once",
            "--image=busybox",
            "--",
            "sh",
            "-c",
            "echo hi"
        ]),
        "job.batch/once created\n"
    );
    d.wait_condition("once", "Complete", T);
    assert_eq!(d.cli_ok(&["logs", "job/once"]), "hi\n");
    let once = std::fs::read_to_string(d.manifests().join("job.batch_default_once.yaml")).unwrap();
    assert!(once.starts_with("# Written by jobvisor apply;"), "{once}");
    // `-o json`: the object as the daemon created it.
    let second: Value = serde_json::from_str(&d.cli_ok(&[
        "create",
        "job",
        "second",
        "--image=busybox",
        "-o",
        "json",
        "--",
        "true",
    ]))
    .unwrap();
    assert_eq!(second["kind"], "Job");
    assert!(second["metadata"]["uid"].is_string(), "{second:#}");

    // A watch of the CronJobs sees the edit that suspends it.
    let mut watch = Command::new(BIN)
        .arg("--root")
        .arg(d.path())
        .args(["get", "cronjobs", "-n", "team", "-w"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut watch);
    let first = lines.recv_timeout(T).unwrap();
    assert!(first.starts_with("NAME"), "{first}");
    let row = lines.recv_timeout(T).unwrap();
    assert_eq!(row.split_whitespace().nth(7), Some("False"), "{row}");
    let edited = dir_with(&text.replace("  schedule:", "  suspend: true\n  schedule:"));
    assert_eq!(
        d.cli_ok(&["apply", "-f", edited.1.to_str().unwrap()]),
        "cronjob.batch/nightly configured\n"
    );
    let suspend = |row: &str| row.split_whitespace().nth(7).map(String::from);
    loop {
        let row = lines.recv_timeout(T).expect("a row for the edit");
        if suspend(&row).as_deref() == Some("True") {
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let describe = d.cli_ok(&["describe", "cronjob", "nightly", "-n", "team"]);
    assert!(
        describe.contains("\nSuspend:                       True\n"),
        "{describe}"
    );
    assert_eq!(next_schedules(&describe), ["<none>"], "{describe}");

    // `delete -f` of the CronJob's manifest: the CronJob and its file go.
    assert_eq!(
        d.cli_ok(&["delete", "-f", edited.1.to_str().unwrap()]),
        "cronjob.batch \"nightly\" deleted\n"
    );
    assert!(!file.exists());
    assert!(cronjob(&d, "team", "nightly").is_none());
}

/// A temporary directory holding `text` as `manifest.yaml`.
fn dir_with(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The jobs collection takes only a Job a CronJob owns, and says why it refuses others.
#[test]
fn the_api_creates_only_jobs_that_a_cronjob_owns() {
    let d = TestDaemon::start();
    d.drop_manifest("c.yaml", &cronjob_yaml("c", "@yearly", "", "", &["true"]));
    let mut cj = Value::Null;
    assert!(wait_until(T, || {
        cj = cronjob(&d, "default", "c").unwrap_or(Value::Null);
        !cj.is_null()
    }));
    let uid = cj["metadata"]["uid"].as_str().unwrap();
    let job = |owner: Value| {
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "x", "ownerReferences": owner},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}})
        .to_string()
    };
    let path = "/apis/batch/v1/namespaces/default/jobs";

    let (code, body) = d.http("POST", path, Some(&job(json!([]))));
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, s["reason"].as_str()), (403, Some("Forbidden")));
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("jobs.batch \"x\" is forbidden: jobvisor creates Jobs from manifest files: use `jobvisor apply -f FILE` or `jobvisor create job x --image=IMAGE -- COMMAND`"),
        "{s:#}"
    );

    let owner = |uid: &str| json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "c", "uid": uid, "controller": true}]);
    let (code, body) = d.http("POST", path, Some(&job(owner("another"))));
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(
        s["details"]["causes"][0]["field"],
        "metadata.ownerReferences[0].uid"
    );

    let (code, body) = d.http(
        "POST",
        "/apis/batch/v1/namespaces/default/cronjobs",
        Some("{}"),
    );
    assert_eq!(code, 403, "{body}");
    assert!(d.job("x").is_none());

    let (code, body) = d.http("POST", path, Some(&job(owner(uid))));
    assert_eq!(code, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["metadata"]["name"], "x");
    d.wait_condition("x", "Complete", T);
    let (code, body) = d.http("POST", path, Some(&job(owner(uid))));
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("jobs.batch \\\"x\\\" already exists"),
        "{body}"
    );
}

/// The timer of a running daemon fires the slot, not before it: an `@every 2s` CronJob's first
/// slot is its creation second + 2 s (robfig's `@every` drops the sub-second part), and its
/// pod's container starts at or after that instant.
#[test]
fn the_wall_clock_timer_fires_a_slot_at_its_instant() {
    let d = TestDaemon::start();
    d.drop_manifest(
        "soon.yaml",
        &cronjob_yaml("soon", "@every 2s", "", "", &["true"]),
    );
    let mut cj = Value::Null;
    assert!(wait_until(T, || {
        cj = cronjob(&d, "default", "soon").unwrap_or(Value::Null);
        !cj.is_null()
    }));
    let created: Timestamp = cj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("creationTimestamp");
    let slot = Timestamp::from_second(created.as_second() + 2).expect("slot");
    let job = format!("soon-{}", slot.as_second() / 60);
    let done = d.wait_condition(&job, "Complete", T);
    assert_eq!(
        done["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        slot.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    let (_, pods) = d.get_json("/api/v1/namespaces/default/pods");
    let started: Vec<Timestamp> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["labels"]["job-name"] == job.as_str())
        .filter_map(|p| {
            p["status"]["containerStatuses"][0]["state"]["terminated"]["startedAt"]
                .as_str()
                .and_then(|s| s.parse().ok())
        })
        .collect();
    assert_eq!(started.len(), 1, "{pods}");
    assert!(
        started[0] >= slot,
        "started {} before its slot {slot}",
        started[0]
    );
}
