//! The daemon's side of its two outward channels: the API socket and systemd's notify socket.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;
use tokio::net::UnixListener;

/// Binds the API socket with `socket.mode` and `socket.group` (0660, `jobvisor`): who may
/// connect. A socket file nobody answers on is stale and replaced; one that answers belongs
/// to a running daemon, and we refuse to start.
pub fn bind(path: &Path, cfg: &crate::config::Socket) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another jobvisor daemon is already serving {}",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    set_access(path, cfg)?;
    Ok(listener)
}

/// Gives the socket file its mode and group (at bind, and again on a reload).
pub fn set_access(path: &Path, cfg: &crate::config::Socket) -> anyhow::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(cfg.mode))
        .with_context(|| format!("setting mode {:04o} on {}", cfg.mode, path.display()))?;
    if cfg.group.is_empty() {
        // The daemon's own group, which a reload may have to give back (a bound socket
        // already has it).
        let gid = nix::unistd::getegid();
        nix::unistd::chown(path, None, Some(gid))
            .with_context(|| format!("giving {} to the daemon's group", path.display()))?;
        return Ok(());
    }
    match nix::unistd::Group::from_name(&cfg.group) {
        Ok(Some(group)) => nix::unistd::chown(path, None, Some(group.gid))
            .with_context(|| format!("giving {} to group {}", path.display(), cfg.group))?,
        // The default group exists only where the package made it.
        _ if cfg.group == crate::config::Socket::default().group => {}
        _ => {
            tracing::warn!(group = %cfg.group, socket = %path.display(), "socket.group: no such group; the socket keeps the daemon's group")
        }
    }
    Ok(())
}

/// `sd_notify`: one datagram to `$NOTIFY_SOCKET` when systemd (or a test) asked for it.
/// Ten lines do not justify a crate.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// `socket.group: ""` means the daemon's own group, on a reload too: a socket another
    /// group was given gets the daemon's back (its members could still connect otherwise).
    #[test]
    fn an_empty_group_gives_the_socket_back_to_the_daemons_group() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (chown to another group)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        std::fs::write(&path, "").unwrap();
        let other = nix::unistd::Gid::from_raw(65534);
        nix::unistd::chown(&path, None, Some(other)).unwrap();
        let cfg = crate::config::Socket {
            mode: 0o660,
            group: String::new(),
        };
        set_access(&path, &cfg).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.gid(), nix::unistd::getegid().as_raw());
        assert_eq!(meta.mode() & 0o777, 0o660);
    }
}
