//! The daemon as a system service: the trust model (manifest files and the socket's peers),
//! systemd's notify protocol, the journal, reloading the config.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::files::wait_manifest_state;
use crate::support::*;

const T: Duration = Duration::from_secs(60);

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips a test that needs root, saying so.
macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (the trust model applies to a daemon running as root)");
            return;
        }
    };
}

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A root daemon refuses a manifest others may write, says why, and runs it once it is
/// `chmod go-w` (a chmod alone has it read again).
#[test]
fn a_manifest_writable_by_others_is_refused() {
    need_root!();
    let d = TestDaemon::start();
    let tmp = d.manifests().join(".w.tmp");
    std::fs::write(&tmp, job_yaml("w", "Never", &["true"], "")).expect("write");
    chmod(&tmp, 0o666);
    std::fs::rename(&tmp, d.manifests().join("w.yaml")).expect("rename");
    let entry = wait_manifest_state(&d, "w.yaml", "Invalid");
    let msg = entry["errors"][0].as_str().expect("an error");
    assert!(
        msg.ends_with(
            "w.yaml: refused: file is writable by group and others (mode 0666); files run as root must be owned by root and writable only by their owner (chmod go-w)"
        ),
        "{msg}"
    );
    assert!(d.job("w").is_none(), "an untrusted file was run");
    chmod(&d.manifests().join("w.yaml"), 0o644);
    d.wait_condition("w", "Complete", T);
}

/// Runs the CLI as uid/gid 65534 (`nobody`) against `d`.
fn cli_as_nobody(d: &TestDaemon, args: &[&str]) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            BIN,
        ])
        .arg("--root")
        .arg(d.path())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running setpriv")
}

/// Anyone who can connect may read; only root or the daemon's user may delete: others get
/// the API server's 403 Forbidden, and the Job stays.
#[test]
fn a_non_root_client_can_get_but_not_delete() {
    need_root!();
    if std::process::Command::new("setpriv")
        .arg("--help")
        .output()
        .is_err()
    {
        eprintln!("skipped: needs setpriv (util-linux) to run the CLI as another user");
        return;
    }
    let d = TestDaemon::start_with(&format!("{FAST_CONFIG}socket:\n  mode: \"0666\"\n"));
    // The root is a private tempdir: let others through to the socket.
    chmod(d.path(), 0o711);
    d.drop_manifest("j.yaml", &job_yaml("j", "Never", &["true"], ""));
    d.wait_condition("j", "Complete", T);

    let got = cli_as_nobody(&d, &["get", "jobs", "j", "-o", "name"]);
    assert!(
        got.status.success(),
        "get as nobody failed: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "job.batch/j");

    let deleted = cli_as_nobody(&d, &["delete", "job", "j"]);
    assert!(!deleted.status.success(), "delete as nobody succeeded");
    let err = String::from_utf8_lossy(&deleted.stderr);
    assert!(
        err.contains(
            "Error from server (Forbidden): jobs.batch \"j\" is forbidden: User \"uid 65534\" cannot delete resource \"jobs\" in API group \"batch\" in the namespace \"default\""
        ),
        "{err}"
    );
    assert!(d.job("j").is_some(), "the Job was deleted");

    // The wire answer is a Kubernetes Status.
    let (code, body) = raw_as_nobody(&d, "DELETE", "/apis/batch/v1/namespaces/default/jobs/j");
    assert_eq!(code, 403, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("a Status");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(status["code"], 403);

    // Nor apply (a POST of a new object).
    let manifest = d.path().join("new.yaml");
    std::fs::write(&manifest, job_yaml("new", "Never", &["true"], "")).expect("write");
    chmod(&manifest, 0o644);
    let applied = cli_as_nobody(&d, &["apply", "-f", manifest.to_str().expect("utf-8")]);
    assert!(!applied.status.success(), "apply as nobody succeeded");
    let err = String::from_utf8_lossy(&applied.stderr);
    assert!(
        err.contains("manifests.jobvisor.io is forbidden: User \"uid 65534\" cannot create resource \"manifests\""),
        "{err}"
    );
    assert!(d.job("new").is_none());

    // Root (the test's uid, and the daemon's) may.
    d.cli_ok(&["delete", "job", "j"]);
}

/// One HTTP request from `curl` run as uid 65534, so the peer's credentials say 65534.
fn raw_as_nobody(d: &TestDaemon, method: &str, path: &str) -> (u16, String) {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args([
            "curl",
            "-s",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
            "--unix-socket",
        ])
        .arg(d.socket())
        .arg(format!("http://localhost{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// systemd's notify socket gets `STATUS=` summaries and `WATCHDOG=1` pings (the unit's
/// `WatchdogSec=`, here 200 ms: a ping every 100 ms from the loop).
#[test]
fn status_and_watchdog_arrive_on_the_notify_socket() {
    let d = TestDaemon::start_with_env(FAST_CONFIG, &[("WATCHDOG_USEC", "200000")]);
    let status = d.wait_notify(T, |m| m.starts_with("STATUS="));
    assert_eq!(status.as_deref(), Some("STATUS=ready: 0 pods running"));
    for _ in 0..3 {
        assert!(
            d.wait_notify(T, |m| m == "WATCHDOG=1").is_some(),
            "no watchdog ping"
        );
    }
    d.drop_manifest(
        "c.yaml",
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            image: busybox\n            command: [\"true\"]\n",
    );
    let status = d.wait_notify(T, |m| m.contains("next CronJob"));
    let status = status.expect("no status naming the CronJob");
    assert!(
        status.starts_with("STATUS=ready: 0 pods running; next CronJob default/nightly at "),
        "{status}"
    );
}

/// SIGHUP: `RELOADING=1` with `MONOTONIC_USEC`, the config read again (a live key applied:
/// the socket's mode), then `READY=1`. A config that does not load is refused naming its
/// file and line, and the running one stays.
#[test]
fn sighup_reloads_the_config_and_says_so() {
    let d = TestDaemon::start();
    let hup = || {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &d.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -HUP failed");
    };
    assert_eq!(mode_of(&d.socket()), 0o660);
    std::fs::write(
        d.path().join("config.yaml"),
        format!("{FAST_CONFIG}socket:\n  mode: \"0600\"\napi:\n  maxConnections: 3\n"),
    )
    .expect("config");
    hup();
    let reloading = d
        .wait_notify(T, |m| m.starts_with("RELOADING=1"))
        .expect("no RELOADING=1");
    let usec: u64 = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC: {reloading:?}"));
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    assert!(
        usec > 0 && usec / 1_000_000 <= now.tv_sec() as u64,
        "{usec}"
    );
    assert!(
        d.wait_notify(T, |m| m == "READY=1").is_some(),
        "no READY=1 after the reload"
    );
    assert_eq!(mode_of(&d.socket()), 0o600, "socket.mode not applied live");
    let log = d.daemon_log();
    assert!(
        log.contains("take effect only at a restart") && log.contains("keys=api"),
        "{log}"
    );

    std::fs::write(
        d.path().join("config.yaml"),
        format!("{FAST_CONFIG}socket:\n  mode: \"0644\"\n  bogus: 1\n"),
    )
    .expect("config");
    hup();
    let status = d
        .wait_notify(T, |m| m.contains("config not reloaded"))
        .expect("no STATUS= about the refused config");
    assert!(
        status.starts_with("STATUS=ready: 0 pods running; config not reloaded: config ")
            && status.contains("config.yaml"),
        "{status}"
    );
    assert_eq!(mode_of(&d.socket()), 0o600, "a bad config was applied");
    let log = d.daemon_log();
    let refused = log
        .lines()
        .find(|l| l.contains("config not reloaded"))
        .unwrap_or_else(|| panic!("no refusal in the log:\n{log}"));
    assert!(
        refused.contains("config.yaml") && refused.contains("bogus") && refused.contains("line"),
        "{refused}"
    );
    // Still serving.
    assert_eq!(d.http("GET", "/healthz", None).0, 200);
}

/// One journal entry sent with the native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL):
/// `NAME=value\n`, or `NAME\n` + 64-bit little-endian length + value + `\n`.
fn decode_journal(mut data: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
            panic!(
                "a field without a newline: {:?}",
                String::from_utf8_lossy(data)
            );
        };
        let line = &data[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            data = &data[nl + 1..];
        } else {
            let name = String::from_utf8_lossy(line).into_owned();
            let rest = &data[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().expect("length")) as usize;
            let value = &rest[8..8 + len];
            assert_eq!(rest[8 + len], b'\n', "no newline after {name}'s value");
            fields.push((name, String::from_utf8_lossy(value).into_owned()));
            data = &rest[8 + len + 1..];
        }
    }
    fields
}

/// The next journal datagram: its payload, or the memfd's contents when it came as one
/// (`SCM_RIGHTS`, for entries too large for a datagram). `None` on timeout.
fn recv_journal(sock: &UnixDatagram) -> Option<(Vec<u8>, bool)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::io::{Read, Seek};
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = vec![0u8; 1 << 20];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .ok()?;
    let n = msg.bytes;
    for c in msg.cmsgs().expect("control messages") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just gave us this descriptor; nobody else owns it.
            let mut memfd = unsafe { std::fs::File::from_raw_fd(fds[0]) };
            memfd.rewind().expect("rewind the memfd");
            let mut data = Vec::new();
            memfd.read_to_end(&mut data).expect("read the memfd");
            return Some((data, true));
        }
    }
    Some((buf[..n].to_vec(), false))
}

/// `--log-target=journald`: tracing-journald writes to the fixed path
/// `/run/systemd/journal/socket`, so the daemon runs in a private mount namespace where that
/// path is this test's datagram socket. Entries about a Job's pod carry `JOB_NAME`,
/// `POD_NAME`, `NAMESPACE` and `CONTAINER`, `SYSLOG_IDENTIFIER=jobvisor`; an entry too large
/// for a datagram (a 970 KB validation error) arrives as a sealed memfd.
#[test]
fn the_journal_gets_structured_fields() {
    need_root!();
    let tmp = tempfile::Builder::new()
        .prefix("jobvisor-journal-")
        .tempdir()
        .expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("manifests")).expect("root");
    std::fs::write(
        root.join("config.yaml"),
        FAST_CONFIG.replace("level: debug", "level: info"),
    )
    .expect("config");
    let journal_dir = tmp.path().join("journal");
    std::fs::create_dir(&journal_dir).expect("journal dir");
    let journal = UnixDatagram::bind(journal_dir.join("socket")).expect("journal socket");
    journal
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let notify = UnixDatagram::bind(tmp.path().join("notify.sock")).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let log = std::fs::File::create(tmp.path().join("daemon.log")).expect("log");
    let script = "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal \
                  && mount --bind \"$0\" /run/systemd/journal && exec \"$@\"";
    let child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(&journal_dir)
        .arg(BIN)
        .args(["daemon", "--log-target=journald", "--root"])
        .arg(&root)
        .env("NOTIFY_SOCKET", tmp.path().join("notify.sock"))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn();
    let Ok(child) = child else {
        eprintln!("skipped: cannot run unshare (util-linux)");
        return;
    };
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(child);
    let mut buf = [0u8; 256];
    loop {
        match notify.recv(&mut buf) {
            Ok(n) if buf[..n].starts_with(b"READY=1") => break,
            Ok(_) => continue,
            Err(e) => {
                let status = child.0.try_wait();
                let log =
                    std::fs::read_to_string(tmp.path().join("daemon.log")).unwrap_or_default();
                if matches!(status, Ok(Some(_))) && log.contains("unshare") {
                    eprintln!("skipped: no private mount namespace here: {log}");
                    return;
                }
                panic!("daemon never became ready: {e}\n{log}");
            }
        }
    }
    let manifest = root.join("manifests").join("j.yaml");
    std::fs::write(&manifest, job_yaml("jl", "Never", &["true"], "")).expect("manifest");

    let field = |entry: &[(String, String)], name: &str| {
        entry
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut started = None;
    while started.is_none() {
        let (data, _) = recv_journal(&journal).expect("no journal entry for the container");
        let entry = decode_journal(&data);
        if field(&entry, "MESSAGE").as_deref() == Some("container started") {
            started = Some(entry);
        }
    }
    let entry = started.expect("an entry");
    assert_eq!(
        field(&entry, "SYSLOG_IDENTIFIER").as_deref(),
        Some("jobvisor")
    );
    assert_eq!(field(&entry, "NAMESPACE").as_deref(), Some("default"));
    assert_eq!(field(&entry, "JOB_NAME").as_deref(), Some("jl"));
    let pod = field(&entry, "POD_NAME").expect("POD_NAME");
    assert!(pod.starts_with("jl-"), "{pod}");
    assert_eq!(field(&entry, "CONTAINER").as_deref(), Some("main"));
    assert_eq!(field(&entry, "PRIORITY").as_deref(), Some("6"));

    // A 970 KB message cannot go as one datagram: tracing-journald sends a memfd.
    let labels: String = (0..3000)
        .map(|i| format!("    \"-{i}{}\": v\n", "x".repeat(40)))
        .collect();
    std::fs::write(
        root.join("manifests").join("big.yaml"),
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: big\n  labels:\n{labels}spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n        command: [\"true\"]\n"
        ),
    )
    .expect("big manifest");
    loop {
        let (data, via_memfd) = recv_journal(&journal).expect("no journal entry for big.yaml");
        let entry = decode_journal(&data);
        let message = field(&entry, "MESSAGE").unwrap_or_default();
        if message.contains("The Job \"big\" is invalid") {
            assert!(via_memfd, "a {} byte entry came as a datagram", data.len());
            assert!(message.len() > 900_000, "{}", message.len());
            assert_eq!(field(&entry, "PRIORITY").as_deref(), Some("3"));
            break;
        }
    }
}

/// The owner counts, not only the mode; a symlink is judged by its target and by who made
/// it, and by the directories that could swap the target.
#[test]
fn a_manifest_owned_by_another_user_or_reached_through_an_untrusted_symlink_is_refused() {
    need_root!();
    let d = TestDaemon::start();
    let chown = |path: &std::path::Path, uid: u32| {
        std::os::unix::fs::lchown(path, Some(uid), None).expect("chown");
    };
    // A file owned by uid 1000, mode 0644.
    let tmp = d.manifests().join(".o.tmp");
    std::fs::write(&tmp, job_yaml("o", "Never", &["true"], "")).expect("write");
    chown(&tmp, 1000);
    std::fs::rename(&tmp, d.manifests().join("o.yaml")).expect("rename");
    let entry = wait_manifest_state(&d, "o.yaml", "Invalid");
    let msg = entry["errors"][0].as_str().expect("an error");
    assert!(
        msg.contains("o.yaml: refused: file is owned by uid 1000"),
        "{msg}"
    );

    // A symlink to a root-owned 0644 file in a directory others may write.
    let elsewhere = d.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    chmod(&elsewhere, 0o777);
    let target = elsewhere.join("t.yaml");
    std::fs::write(&target, job_yaml("t", "Never", &["true"], "")).expect("write");
    chmod(&target, 0o644);
    std::os::unix::fs::symlink(&target, d.manifests().join("t.yaml")).expect("symlink");
    let entry = wait_manifest_state(&d, "t.yaml", "Invalid");
    let msg = entry["errors"][0].as_str().expect("an error");
    assert!(
        msg.contains(&format!(
            "t.yaml: refused: directory {} is writable by group and others (mode 0777)",
            elsewhere.display()
        )),
        "{msg}"
    );

    // A symlink made by another user, to a trusted file.
    chmod(&elsewhere, 0o755);
    let link = d.manifests().join(".u.tmp");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    chown(&link, 1000);
    std::fs::rename(&link, d.manifests().join("u.yaml")).expect("rename");
    let entry = wait_manifest_state(&d, "u.yaml", "Invalid");
    let msg = entry["errors"][0].as_str().expect("an error");
    assert!(
        msg.contains("u.yaml: refused: symlink is owned by uid 1000"),
        "{msg}"
    );
    assert!(
        d.job("o").is_none() && d.job("t").is_none(),
        "an untrusted file ran"
    );
}

/// Under the unit's `UMask=0007`, the manifests directory the daemon creates on a first start
/// is still one a root daemon trusts (not group-writable), so the files put in it run.
#[test]
fn the_manifests_directory_created_under_umask_0007_is_trusted() {
    need_root!();
    let d = TestDaemon::start_with_umask(FAST_CONFIG, 0o007);
    let mode = mode_of(&d.manifests());
    assert_eq!(
        mode & 0o022,
        0,
        "created writable by group or others: {mode:04o}"
    );
    let tmp = d.manifests().join(".m.tmp");
    std::fs::write(&tmp, job_yaml("m", "Never", &["true"], "")).expect("write");
    chmod(&tmp, 0o644);
    std::fs::rename(&tmp, d.manifests().join("m.yaml")).expect("rename");
    d.wait_condition("m", "Complete", T);
}
