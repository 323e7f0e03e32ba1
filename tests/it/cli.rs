//! The CLI, as an operator who knows kubectl uses it.

use std::time::Duration;

use crate::support::*;

const T: Duration = Duration::from_secs(60);

#[test]
fn quickstart_get_logs_describe_wait() {
    let d = TestDaemon::start();
    d.copy_example("simple-job.yaml");
    let out = d.cli_ok(&[
        "wait",
        "--for=condition=complete",
        "job/simple-job",
        "--timeout",
        "60s",
    ]);
    assert_eq!(out.trim(), "job.batch/simple-job condition met");

    let table = d.cli_ok(&["get", "jobs"]);
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..3], ["simple-job", "Complete", "1/1"]);

    assert_eq!(d.cli_ok(&["logs", "job/simple-job"]), "11\n");
    let pods = d.cli_ok(&["get", "pods"]);
    assert!(
        pods.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .eq(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
        "{pods}"
    );
    assert!(pods.contains("Completed"), "{pods}");

    let describe = d.cli_ok(&["describe", "job", "simple-job"]);
    for want in [
        "Name:",
        "simple-job",
        "Pods Statuses:",
        "1 Succeeded",
        "SuccessfulCreate",
        "Completed",
    ] {
        assert!(describe.contains(want), "{want} missing in:\n{describe}");
    }

    let json = d.cli_ok(&["get", "job", "simple-job", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kind"], "Job");
    let names = d.cli_ok(&["get", "jobs", "-o", "name"]);
    assert_eq!(names.trim(), "job.batch/simple-job");
}

#[test]
fn errors_read_like_kubectl() {
    let d = TestDaemon::start();
    let out = d.cli(&["get", "job", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (NotFound): jobs.batch \"nope\" not found"
    );
    let empty = d.cli(&["get", "jobs"]);
    assert!(empty.status.success());
    assert!(
        String::from_utf8_lossy(&empty.stderr).contains("No resources found in default namespace.")
    );
}

#[test]
fn apply_validate_and_delete() {
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, job_yaml("applied", "Never", &["true"], "")).unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, job_yaml("bad", "Sometimes", &["true"], "")).unwrap();

    let out = d.cli(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("bad.yaml") && err.contains("Unsupported value: \"Sometimes\""),
        "{err}"
    );
    d.cli_ok(&["validate", good.to_str().unwrap()]);

    let out = d.cli(&["apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let applied = d.cli_ok(&["apply", "-f", good.to_str().unwrap()]);
    assert!(applied.contains("job.batch/applied"), "{applied}");
    assert!(
        d.manifests()
            .join("job.batch_default_applied.yaml")
            .exists()
    );
    d.cli_ok(&[
        "wait",
        "--for=condition=complete",
        "job/applied",
        "--timeout",
        "60s",
    ]);

    let deleted = d.cli_ok(&["delete", "job", "applied"]);
    assert_eq!(deleted.trim(), "job.batch \"applied\" deleted");
    assert!(
        !d.manifests()
            .join("job.batch_default_applied.yaml")
            .exists()
    );
    assert!(wait_until(T, || d.job("applied").is_none()));
}

#[test]
fn wait_for_failed_and_timeout() {
    let d = TestDaemon::start();
    d.copy_example("failing-job.yaml");
    d.cli_ok(&[
        "wait",
        "--for=condition=failed",
        "job/failing-job",
        "--timeout",
        "60s",
    ]);
    let out = d.cli(&[
        "wait",
        "--for=condition=complete",
        "job/failing-job",
        "--timeout",
        "300ms",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out waiting for the condition"));
}

#[test]
fn logs_follow_streams_until_the_container_ends() {
    let d = TestDaemon::start();
    d.drop_manifest(
        "f.yaml",
        &job_yaml(
            "f",
            "Never",
            &[
                "sh",
                "-c",
                "for i in 1 2 3; do echo line $i; sleep 0.2; done",
            ],
            "",
        ),
    );
    assert!(wait_until(T, || d
        .pods_of("f")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    let out = d.cli_ok(&["logs", "-f", "job/f"]);
    assert_eq!(out, "line 1\nline 2\nline 3\n");
    let stamped = d.cli_ok(&["logs", "job/f", "--timestamps", "--tail", "1"]);
    let (ts, text) = stamped.trim_end().split_once(' ').unwrap();
    assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{stamped}");
    assert_eq!(text, "line 3");
}

#[test]
fn silent_containers_have_empty_logs_and_no_log_file() {
    let d = TestDaemon::start();
    // `late` is silent for a while, so `logs -f` starts before its log file exists.
    d.drop_manifest("quiet.yaml", &job_yaml("quiet", "Never", &["true"], ""));
    d.drop_manifest(
        "late.yaml",
        &job_yaml("late", "Never", &["sh", "-c", "sleep 0.5; echo late"], ""),
    );
    d.wait_condition("quiet", "Complete", T);
    assert_eq!(d.cli_ok(&["logs", "job/quiet"]), "");
    assert_eq!(d.cli_ok(&["logs", "job/quiet", "--tail", "5"]), "");
    let pod = &d.pods_of("quiet")[0];
    let dir = d.path().join(format!(
        "logs/pods/default_{}_{}",
        pod["metadata"]["name"].as_str().unwrap(),
        pod["metadata"]["uid"].as_str().unwrap()
    ));
    assert!(!dir.exists(), "{} exists", dir.display());
    assert!(wait_until(T, || d
        .pods_of("late")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    assert_eq!(d.cli_ok(&["logs", "-f", "job/late"]), "late\n");
}

#[test]
fn logs_in_crash_loop_back_off_show_the_last_run() {
    // A long container-restart backoff keeps the pod in CrashLoopBackOff while we look.
    let d = TestDaemon::start_with(&FAST_CONFIG.replace(
        "containerRestartBase: 50ms\n  containerRestartMax: 400ms",
        "containerRestartBase: 1m\n  containerRestartMax: 1m",
    ));
    d.drop_manifest(
        "crash.yaml",
        &job_yaml("crash", "OnFailure", &["sh", "-c", "echo boom; exit 1"], ""),
    );
    assert!(wait_until(T, || d.pods_of("crash").iter().any(|p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    })));
    assert_eq!(d.cli_ok(&["logs", "job/crash"]), "boom\n");
}

#[test]
fn get_watch_prints_rows_as_the_job_progresses() {
    use std::io::{BufRead, BufReader};
    let d = TestDaemon::start();
    let mut child = std::process::Command::new(BIN)
        .arg("--root")
        .arg(d.path())
        .args(["get", "jobs", "-w"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    d.drop_manifest("w.yaml", &job_yaml("w", "Never", &["true"], ""));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let done = line.contains("Complete");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("w ") && l.contains("Complete")),
        "{seen:?}"
    );
}

#[test]
fn describe_pod_events_and_manifests() {
    let d = TestDaemon::start();
    d.copy_example("simple-job.yaml");
    d.drop_manifest(
        "broken.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: broken\nspec: {}\n",
    );
    d.cli_ok(&[
        "wait",
        "--for=condition=complete",
        "job/simple-job",
        "--timeout",
        "60s",
    ]);
    let pod = d.pods_of("simple-job")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let describe = d.cli_ok(&["describe", "pod", &pod]);
    for want in [
        "Name:",
        pod.as_str(),
        "Controlled By:",
        "Job/simple-job",
        "Exit Code:",
        "Started",
    ] {
        assert!(describe.contains(want), "{want} missing in:\n{describe}");
    }
    let events = d.cli_ok(&["get", "events"]);
    assert!(
        events.contains("SuccessfulCreate") && events.contains("job/simple-job"),
        "{events}"
    );
    let manifests = d.cli_ok(&["get", "manifests"]);
    assert!(
        manifests.contains("broken.yaml") && manifests.contains("Invalid"),
        "{manifests}"
    );
    assert!(
        manifests.contains("simple-job.yaml") && manifests.contains("Applied"),
        "{manifests}"
    );
    let yaml = d.cli_ok(&["get", "manifests", "-o", "yaml"]);
    assert!(
        yaml.contains("spec.template.spec.containers: Required value"),
        "{yaml}"
    );
}

#[test]
fn namespaces_and_label_selectors() {
    let d = TestDaemon::start();
    let team = job_yaml("team-job", "Never", &["true"], "").replace(
        "  name: team-job\n",
        "  name: team-job\n  namespace: team\n  labels:\n    app: batch\n",
    );
    d.drop_manifest("team.yaml", &team);
    d.drop_manifest("plain.yaml", &job_yaml("plain-job", "Never", &["true"], ""));
    d.cli_ok(&[
        "wait",
        "--for=condition=complete",
        "job/team-job",
        "-n",
        "team",
        "--timeout",
        "60s",
    ]);
    d.cli_ok(&[
        "wait",
        "--for=condition=complete",
        "job/plain-job",
        "--timeout",
        "60s",
    ]);
    let default_ns = d.cli_ok(&["get", "jobs", "-o", "name"]);
    assert_eq!(default_ns.trim(), "job.batch/plain-job");
    let team_ns = d.cli_ok(&["get", "jobs", "-n", "team", "-o", "name"]);
    assert_eq!(team_ns.trim(), "job.batch/team-job");
    let all = d.cli_ok(&["get", "jobs", "-A"]);
    assert!(all.starts_with("NAMESPACE"), "{all}");
    assert!(all.contains("team ") && all.contains("default "), "{all}");
    let selected = d.cli_ok(&["get", "jobs", "-A", "-l", "app=batch", "-o", "name"]);
    assert_eq!(selected.trim(), "job.batch/team-job");
    let pods = d.cli_ok(&[
        "get",
        "pods",
        "-n",
        "team",
        "-l",
        "job-name=team-job",
        "-o",
        "name",
    ]);
    assert!(pods.trim().starts_with("pod/team-job-"), "{pods}");
}

/// `jobvisor cron next …`, offline (no daemon), with `TZ` as given (None: unset).
fn cron_next(args: &[&str], tz: Option<&str>) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["cron", "next"])
        .args(args)
        .stdin(std::process::Stdio::null());
    match tz {
        Some(tz) => cmd.env("TZ", tz),
        None => cmd.env_remove("TZ"),
    };
    let out = cmd.output().expect("running jobvisor cron next");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cron_next_skips_the_spring_gap_and_runs_the_autumn_hour_twice() {
    let ny = ["--tz", "America/New_York", "-n", "3", "--from"];
    let spring = [&ny[..], &["2024-03-09T12:00:00-05:00", "30 2 * * *"]].concat();
    assert_eq!(
        cron_next(&spring, None),
        (
            0,
            "2024-03-11T02:30:00-04:00\n2024-03-12T02:30:00-04:00\n2024-03-13T02:30:00-04:00\n"
                .into(),
            String::new()
        )
    );
    let autumn = [&ny[..], &["2024-11-02T12:00:00-04:00", "0 1 * * *"]].concat();
    assert_eq!(
        cron_next(&autumn, None),
        (
            0,
            "2024-11-03T01:00:00-04:00\n2024-11-03T01:00:00-05:00\n2024-11-04T01:00:00-05:00\n"
                .into(),
            String::new()
        )
    );
}

#[test]
fn cron_next_prints_five_in_the_local_zone_by_default() {
    let (code, out, err) = cron_next(
        &["--from", "2024-01-01T00:00:00Z", "0 0 * * *"],
        Some("Asia/Tokyo"),
    );
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "2024-01-02T00:00:00+09:00\n2024-01-03T00:00:00+09:00\n2024-01-04T00:00:00+09:00\n\
         2024-01-05T00:00:00+09:00\n2024-01-06T00:00:00+09:00\n"
    );
    // --tz wins over the local zone.
    let (_, out, _) = cron_next(
        &[
            "--tz",
            "UTC",
            "-n",
            "1",
            "--from",
            "2024-01-01T00:00:00Z",
            "@daily",
        ],
        Some("Asia/Tokyo"),
    );
    assert_eq!(out, "2024-01-02T00:00:00+00:00\n");
}

#[test]
fn cron_next_starts_from_now() {
    #[allow(clippy::disallowed_methods)] // the test's own reference instant, not a decision
    let before = jiff::Timestamp::now();
    let (code, out, _) = cron_next(&["--tz", "UTC", "-n", "1", "* * * * *"], None);
    assert_eq!(code, 0);
    let next: jiff::Timestamp = out.trim().parse().unwrap();
    // The first whole minute after the command's own "now", which is after `before`.
    assert!(next > before, "{next} <= {before}");
    assert_eq!(next.as_second() % 60, 0);
}

#[test]
fn cron_next_reports_bad_input_as_validation_does() {
    let (code, out, err) = cron_next(&["--tz", "UTC", "0 0 * * 8"], None);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "error: spec.schedule: Invalid value: \"0 0 * * 8\": day of week: end of range (8) above maximum (6)\n"
    );
    let (code, _, err) = cron_next(&["--tz", "Mars/Olympus", "@hourly"], None);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus\n"
    );
    let (code, _, err) = cron_next(&["TZ=UTC 0 * * * *"], None);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead\n"
    );
}

#[test]
fn cron_next_says_when_a_schedule_never_fires_or_stops() {
    let (code, out, err) = cron_next(
        &[
            "--tz",
            "UTC",
            "--from",
            "2024-01-01T00:00:00Z",
            "0 0 30 2 *",
        ],
        None,
    );
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.contains("\"0 0 30 2 *\" never fires"), "{err}");
    // 2100 is no leap year: from 2096 the next leap day is past the 5-year horizon.
    let (code, out, err) = cron_next(
        &[
            "--tz",
            "UTC",
            "--from",
            "2090-01-01T00:00:00Z",
            "0 0 29 2 *",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "2092-02-29T00:00:00+00:00\n2096-02-29T00:00:00+00:00\n"
    );
    assert!(
        err.contains("no fire time within the 5 years after 2096"),
        "{err}"
    );
}

/// The lines of `describe`, each with its runs of spaces made one (the columns' padding).
fn squeezed(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// While the next pod waits out the pod-failure backoff, `describe job` says which attempt
/// it will be and when it comes (beyond kubectl). The backoff is an hour here, so the
/// line stays while the test looks; the barrier is the first failure in the Job's status.
#[test]
fn describe_job_says_attempt_and_next_pod_while_backing_off() {
    let config = FAST_CONFIG.replace("podFailureBase: 50ms", "podFailureBase: 1h");
    let config = config.replace("podFailureMax: 400ms", "podFailureMax: 6h");
    let d = TestDaemon::start_with(&config);
    d.drop_manifest(
        "fails.yaml",
        &job_yaml(
            "fails",
            "Never",
            &["sh", "-c", "exit 3"],
            "  backoffLimit: 2\n",
        ),
    );
    assert!(wait_until(T, || d
        .job("fails")
        .is_some_and(|j| j["status"]["failed"] == 1)));
    let describe = squeezed(&d.cli_ok(&["describe", "job", "fails"]));
    let want = "Pods Statuses: 0 Active (0 Ready) / 0 Succeeded / 1 Failed\nPod Failure Backoff: attempt 2 of 3, next pod in ";
    assert!(describe.contains(want), "{want:?} missing in:\n{describe}");
    let line = describe
        .lines()
        .find(|l| l.starts_with("Pod Failure Backoff:"))
        .unwrap();
    // An hour from the failure, a little of it gone: 60m or 59m, never seconds.
    assert!(
        line.ends_with("in 60m") || line.ends_with("in 59m"),
        "{line}"
    );
    // The daemon's answer, in jobvisor's own group; the Job object carries nothing new.
    let (code, v) = d.get_json("/apis/jobvisor.io/v1/namespaces/default/jobs/fails/backoff");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["pending"]["attempt"], 2);
    assert_eq!(v["pending"]["attempts"], 3);
    assert!(v["pending"]["nextPodAt"].is_string(), "{v}");
    let (code, _) = d.get_json("/apis/jobvisor.io/v1/namespaces/default/jobs/nope/backoff");
    assert_eq!(code, 404);
    // A Job that runs has nothing pending, and describe says nothing of it.
    d.drop_manifest("ok.yaml", &job_yaml("ok", "Never", &["true"], ""));
    d.wait_condition("ok", "Complete", T);
    let (_, v) = d.get_json("/apis/jobvisor.io/v1/namespaces/default/jobs/ok/backoff");
    assert!(v["pending"].is_null(), "{v}");
    let describe = d.cli_ok(&["describe", "job", "ok"]);
    assert!(!describe.contains("Backoff:"), "{describe}");
}

/// A suspended Job as kubectl shows it (spec §6.2, §6.4): STATUS `Suspended`, no start
/// time, `Suspend: true`, and the `Suspended` event in the table.
#[test]
fn get_and_describe_a_suspended_job() {
    let d = TestDaemon::start();
    d.drop_manifest(
        "held.yaml",
        &job_yaml("held", "Never", &["true"], "  suspend: true\n"),
    );
    d.wait_condition("held", "Suspended", T);
    let get = d.cli_ok(&["get", "jobs"]);
    let row: Vec<&str> = get
        .lines()
        .find(|l| l.starts_with("held "))
        .unwrap_or_else(|| panic!("{get}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[..3], ["held", "Suspended", "0/1"], "{get}");
    // Never started: DURATION is empty, so the row is NAME STATUS COMPLETIONS AGE.
    assert_eq!(row.len(), 4, "{get}");
    let describe = squeezed(&d.cli_ok(&["describe", "job", "held"]));
    for want in [
        "Suspend: true\n",
        "Pods Statuses: 0 Active (0 Ready) / 0 Succeeded / 0 Failed\n",
        "Normal Suspended ",
        " job-controller Job suspended",
    ] {
        assert!(describe.contains(want), "{want:?} missing in:\n{describe}");
    }
    assert!(!describe.contains("Start Time:"), "{describe}");
    assert!(!describe.contains("Pod Failure Backoff:"), "{describe}");
}

/// `FailureTarget` shows in STATUS while the failed Job's last pod is still stopping: here a
/// pod that ignores SIGTERM until the test opens a gate, so the state lasts as long as the
/// test looks. Then `Failed`.
#[test]
fn get_jobs_shows_failure_target_while_pods_terminate() {
    let d = TestDaemon::start();
    let gate = tempfile::tempdir().expect("tempdir");
    let g = gate.path().display();
    // The first pod to take the lock fails; the other holds on through SIGTERM (until the
    // gate opens, or goes with a test that failed: `gate` is dropped before `d`).
    let script = format!(
        "trap '' TERM; if mkdir {g}/first 2>/dev/null; then exit 1; fi; \
         while [ -d {g} ] && [ ! -e {g}/open ]; do sleep 0.05; done"
    );
    let yaml = job_yaml(
        "ending",
        "Never",
        &["sh", "-c", &script],
        "  parallelism: 2\n  completions: 2\n  backoffLimit: 0\n",
    )
    .replace(
        "terminationGracePeriodSeconds: 2",
        "terminationGracePeriodSeconds: 3600",
    );
    d.drop_manifest("ending.yaml", &yaml);
    let job = d.wait_condition("ending", "FailureTarget", T);
    assert!(!has_condition(&job, "Failed"), "{job}");
    let status = |d: &TestDaemon| {
        let get = d.cli_ok(&["get", "jobs"]);
        let row = get
            .lines()
            .find(|l| l.starts_with("ending "))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string());
        row.unwrap_or_else(|| panic!("{get}"))
    };
    assert_eq!(status(&d), "FailureTarget");
    std::fs::write(gate.path().join("open"), "").expect("open the gate");
    d.wait_condition("ending", "Failed", T);
    assert_eq!(status(&d), "Failed");
}
