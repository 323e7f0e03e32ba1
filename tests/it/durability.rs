//! Durable before visible, from outside: a store that cannot write holds new starts and says
//! why; corruption stops start-up with the way out; state is private; atomic writes cannot be
//! redirected. (The crash-at-any-instant trials are in `crash.rs`.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

const T: Duration = Duration::from_secs(60);

/// A small tmpfs for the state directory: a full disk on demand. Unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs at {}", at.display());
        SmallDisk(at.to_path_buf())
    }

    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        // Writes until ENOSPC: the error is the point.
        let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

#[test]
fn a_full_disk_holds_new_starts_fails_health_and_recovers() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a small tmpfs");
        return;
    }
    let disk_dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&disk_dir.path().join("disk"));
    let config = format!(
        "{FAST_CONFIG}paths:\n  state: {}\n",
        disk.0.join("state").display()
    );
    let d = TestDaemon::start_with(&config);
    let marker = d.path().join("ran");
    d.drop_manifest(
        "warm.yaml",
        &job_yaml("warm", "Never", &["sleep", "30"], ""),
    );
    assert!(wait_until(T, || d
        .pods_of("warm")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    assert_eq!(d.http("GET", "/healthz", None), (200, "ok".into()));
    let warm_pod = d.pods_of("warm").remove(0);

    let filler = disk.fill();
    let cmd = format!("echo ran >> {}", marker.display());
    d.drop_manifest(
        "new.yaml",
        &job_yaml("new", "Never", &["sh", "-c", &cmd], ""),
    );
    let mut last = (0, String::new());
    assert!(
        wait_until(T, || {
            last = d.http("GET", "/healthz", None);
            last.0 == 500
        }),
        "healthz never failed: {last:?}"
    );
    assert!(last.1.contains("No space left on device"), "{last:?}");
    let status = d.wait_notify(T, |m| m.starts_with("STATUS=store: "));
    assert!(
        status
            .as_deref()
            .is_some_and(|s| s.contains("No space left")),
        "{status:?}"
    );
    let (code, ready) = d.http("GET", "/readyz", None);
    assert_eq!(code, 500, "{ready}");
    assert!(ready.contains("store: "), "{ready}");
    // The new Job's pod was never recorded, so its container has not run; reads say why.
    assert!(
        !marker.exists(),
        "a container ran before its pod was on disk"
    );
    let (code, body) = d.http("GET", "/apis/batch/v1/namespaces/default/jobs/new", None);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("cannot write"), "{body}");
    // The running container goes on meanwhile.
    let warm_pid = crate::files::container_pid(&warm_pod);
    assert!(crate::files::process_alive(warm_pid));

    std::fs::remove_file(&filler).unwrap();
    assert!(
        wait_until(T, || d.http("GET", "/healthz", None).0 == 200),
        "health never recovered"
    );
    let ready = d.wait_notify(T, |m| m.starts_with("STATUS=ready"));
    assert!(ready.is_some(), "never said it was ready again");
    d.wait_condition("new", "Complete", T);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    let reasons = d.event_reasons();
    assert!(
        reasons.contains(&"StateNotWritten".to_string()),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"StateWritten".to_string()), "{reasons:?}");
}

#[test]
fn a_corrupt_journal_stops_start_up_and_recover_state_keeps_the_good_prefix() {
    let mut d = TestDaemon::start();
    let marker = d.path().join("runs");
    for i in 0..3 {
        let cmd = format!("echo {i} >> {}", marker.display());
        d.drop_manifest(
            &format!("j{i}.yaml"),
            &job_yaml(&format!("j{i}"), "Never", &["sh", "-c", &cmd], ""),
        );
        d.wait_condition(&format!("j{i}"), "Complete", T);
    }
    assert!(d.stop().success());
    let journal = d.path().join("state/journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 4, "{} records", lines.len());
    let bad = lines.len() / 2;
    let garbled = lines[bad].replacen("\"seq\"", "\"s#q\"", 1);
    lines[bad] = &garbled;
    let offset: usize = lines[..bad].iter().map(|l| l.len() + 1).sum();
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    let damaged = std::fs::read(&journal).unwrap();

    let out = Command::new(BIN)
        .args(["daemon", "--root"])
        .arg(d.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started on a corrupt journal: {stderr}"
    );
    assert!(stderr.contains(&format!("offset {offset}")), "{stderr}");
    assert!(stderr.contains("journal.jsonl"), "{stderr}");
    assert!(stderr.contains("jobvisor recover-state"), "{stderr}");
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        damaged,
        "evidence untouched"
    );

    let out = d.cli(&["recover-state"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("kept {bad} good journal record(s)")),
        "{stdout}"
    );
    let aside = d.path().join(format!("state/journal.corrupt-{offset}"));
    assert_eq!(std::fs::read(&aside).unwrap(), damaged);
    d.spawn();
    // The daemon runs again on the good prefix; nothing is lost silently.
    assert!(wait_until(T, || d.job("j0").is_some()));
}

#[test]
fn state_is_private_and_logs_stay_readable_by_the_group() {
    let mut d = TestDaemon::start();
    d.drop_manifest("p.yaml", &job_yaml("p", "Never", &["echo", "hi"], ""));
    d.wait_condition("p", "Complete", T);
    assert!(d.stop().success());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let state = d.path().join("state");
    assert_eq!(mode(&state), 0o700);
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn apply_never_writes_through_a_planted_symlink() {
    let d = TestDaemon::start();
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    // Where a guessable temp file of apply's would go.
    std::os::unix::fs::symlink(
        &victim,
        d.manifests().join(".job.batch_default_t2.yaml.tmp"),
    )
    .unwrap();
    let src = d.path().join("t2.yaml");
    std::fs::write(&src, job_yaml("t2", "Never", &["true"], "")).unwrap();
    d.cli_ok(&["apply", "-f", src.to_str().unwrap()]);
    d.wait_condition("t2", "Complete", T);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// systemd re-applies `StateDirectoryMode=` and the tmpfiles entry at every start: both must
/// keep the state private, or they would undo what the daemon does.
#[test]
fn packaging_keeps_the_state_directory_private() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd");
    let unit = std::fs::read_to_string(dir.join("jobvisor.service")).unwrap();
    assert!(unit.lines().any(|l| l == "StateDirectoryMode=0700"), "unit");
    let tmpfiles = std::fs::read_to_string(dir.join("jobvisor.tmpfile")).unwrap();
    let entry = tmpfiles
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("/var/lib/jobvisor"))
        .unwrap();
    assert_eq!(entry.split_whitespace().nth(2), Some("0700"), "{entry}");
}

/// A root restored or moved elsewhere: the records follow the manifests directory, nothing
/// conflicts with its own old record, and nothing runs again.
#[test]
fn a_moved_root_keeps_its_jobs_and_runs_nothing_again() {
    let mut d = TestDaemon::start();
    for name in ["m1", "m2"] {
        d.drop_manifest(
            &format!("{name}.yaml"),
            &job_yaml(name, "Never", &["true"], ""),
        );
        d.wait_condition(name, "Complete", T);
    }
    let uid = d.job("m1").unwrap()["metadata"]["uid"].clone();
    assert!(d.stop().success());
    let moved = tempfile::Builder::new()
        .prefix("jobvisor-it-moved-")
        .tempdir()
        .unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", d.path().display()))
        .arg(moved.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    drop(d);
    let mut m = TestDaemon::adopt(moved);
    m.spawn();
    let listed = m.cli_ok(&["get", "manifests"]);
    assert!(!listed.contains("Conflict"), "{listed}");
    let (_, list) = m.get_json("/apis/jobvisor.io/v1/manifests");
    let paths: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["path"].as_str())
        .collect();
    let dir = m.manifests().display().to_string();
    assert!(
        paths.len() == 2 && paths.iter().all(|p| p.starts_with(&dir)),
        "{paths:?}"
    );
    assert_eq!(m.job("m1").unwrap()["metadata"]["uid"], uid);
    for name in ["m1", "m2"] {
        assert!(has_condition(&m.job(name).unwrap(), "Complete"));
        assert_eq!(m.pods_of(name).len(), 1, "{name} ran again");
    }
    // The records live on under the new path: deleting the file deletes the Job.
    std::fs::remove_file(m.manifests().join("m2.yaml")).unwrap();
    assert!(
        wait_until(T, || m.job("m2").is_none()),
        "{}",
        m.cli_ok(&["get", "manifests"])
    );
}

/// `(pid, start time)` of a process, from `/proc/<pid>/stat` (field 22).
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// A daemon killed between a spawn and the record of its pid leaves a process that no
/// pod names: the spawn ledger names it, and the next daemon kills it at start. A pid
/// whose start time differs (a reused pid) is left alone.
#[test]
fn processes_spawned_but_never_recorded_are_killed_at_the_next_start() {
    let mut d = TestDaemon::start();
    d.stop();
    let spawn = |arg: &str| {
        // No inherited output: a process the test failed to see killed must not keep the
        // harness waiting on its pipes.
        Command::new("setsid")
            .args(["sleep", arg])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("setsid sleep")
    };
    let (mut lost, mut other) = (spawn("1012"), spawn("1013"));
    let (lost_pid, other_pid) = (lost.id(), other.id());
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{lost_pid}/cmdline"))
            .is_ok_and(|c| c.starts_with("sleep"))
    }));
    let ledger = format!(
        "{lost_pid} {}\n{other_pid} {}\n",
        start_time(lost_pid),
        start_time(other_pid) + 1
    );
    std::fs::write(d.path().join("state/spawned"), ledger).unwrap();
    d.respawn();
    assert!(
        wait_until(Duration::from_secs(10), || lost
            .try_wait()
            .unwrap()
            .is_some()),
        "the unrecorded process survived"
    );
    assert!(
        other.try_wait().unwrap().is_none(),
        "a reused pid was killed"
    );
    let _ = other.kill();
    let _ = other.wait();
    assert!(
        d.daemon_log()
            .contains("killed processes a previous daemon left running")
    );
}
