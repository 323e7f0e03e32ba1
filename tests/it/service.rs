//! The daemon as a system service: the trust model (manifest files and the socket's peers),
//! systemd's notify protocol, the journal, reloading the config.

use std::os::unix::fs::PermissionsExt;
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
