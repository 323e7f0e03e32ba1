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
