//! Daemon configuration: where things live and the delays Kubernetes hard-codes.
//!
//! Read from YAML (`config/jobvisor.yaml` documents every key). Unknown keys and malformed
//! values stop start-up with the file, line and key named. Durations are Kubernetes/Go
//! style strings (`200ms`, `10s`, `6m`, `1h30m`). Defaults are Kubernetes' own values, so a
//! daemon without a config file behaves like a cluster; tests shrink the delays.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// `jobvisor daemon --log-target`: where the daemon's own log goes (`daemon/logging.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogTarget {
    /// journald when `$JOURNAL_STREAM` is stderr (started by systemd), else stderr.
    #[default]
    Auto,
    Stderr,
    Journald,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    pub paths: Paths,
    pub backoff: Backoff,
    pub store: Store,
    pub watch: Watch,
    pub api: Api,
    pub log: Log,
    pub logs: Logs,
    /// What running an image means here, for containers without `command`: the built-in
    /// aliases with the config's entries on top (`src/images.rs`).
    pub images: crate::images::Images,
    // --- supervision (cgroups, limits): see `src/runtime/cgroup.rs` ---
    /// `auto`: use cgroups when the host has them and our subtree is writable; `none`: never.
    pub cgroups: CgroupsSetting,
    /// The kubelet's `podPidsLimit`: the most processes (threads included) a pod may have;
    /// `-1` (the default) or `0` for no limit. Needs cgroups.
    pub pod_pids_limit: i64,
    /// Who may connect to the API socket (`server/access.rs` decides who may write).
    pub socket: Socket,
}

/// The API socket's file mode and group: who can connect at all. Everyone who can connect
/// may read; only root or the daemon's user may write (`server/access.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Socket {
    /// The socket file's mode, an octal string. Default `"0660"`: owner and group.
    #[serde(deserialize_with = "octal_mode")]
    pub mode: u32,
    /// The socket file's group; default `jobvisor` (packaging/systemd/jobvisor.sysusers), so
    /// its members may use the CLI. Left as it is when no such group exists; empty: the
    /// daemon's own group.
    pub group: String,
}

impl Default for Socket {
    fn default() -> Self {
        Socket {
            mode: 0o660,
            group: "jobvisor".into(),
        }
    }
}

/// `"0660"`: a file mode in octal, at most `0777` (no setuid, setgid or sticky bits).
fn octal_mode<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let text = String::deserialize(d)?;
    u32::from_str_radix(text.trim(), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid mode {text:?}: want an octal string from \"0000\" to \"0777\", e.g. \"0660\""
            ))
        })
}

/// The `cgroups` key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupsSetting {
    #[default]
    Auto,
    None,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            paths: Paths::default(),
            backoff: Backoff::default(),
            store: Store::default(),
            watch: Watch::default(),
            api: Api::default(),
            log: Log::default(),
            logs: Logs::default(),
            images: crate::images::Images::default(),
            cgroups: CgroupsSetting::Auto,
            pod_pids_limit: -1,
            socket: Socket::default(),
        }
    }
}

/// How long the logs of deleted pods stay in the spool (`daemon/retention.rs`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Logs {
    /// The logs of a pod removed from the store stay this long after its removal. Default 7
    /// days: the log most asked for in cron tools is last night's, or last weekend's.
    #[serde(deserialize_with = "duration")]
    pub retain_deleted: Duration,
    /// The logs of deleted pods together stay within this many bytes; past it the oldest
    /// deletions go first. Bytes or a quantity (`1Gi`).
    #[serde(deserialize_with = "crate::quantity::deserialize_bytes")]
    pub retain_deleted_bytes: u64,
    // --- Rotation and the spool cap (issue 9, `runtime/logs/rotation.rs`) ---
    /// kubelet `containerLogMaxSize`: a container run's live log is rotated before it would
    /// grow past this. Default 10Mi.
    #[serde(deserialize_with = "crate::quantity::deserialize_bytes")]
    pub container_log_max_size: u64,
    /// kubelet `containerLogMaxFiles`: files kept per container run, the live one counted
    /// (at least 2). Default 5.
    #[serde(deserialize_with = "max_files")]
    pub container_log_max_files: usize,
    /// All logs in the spool together (live pods' and deleted pods'): past this, the logs of
    /// finished pods go, oldest first, each with a `LogsRemoved` event. Default 10Gi.
    #[serde(deserialize_with = "crate::quantity::deserialize_bytes")]
    pub spool_max_size: u64,
}

impl Default for Logs {
    fn default() -> Self {
        let limits = crate::runtime::logs::LogLimits::default();
        Logs {
            retain_deleted: Duration::from_secs(7 * 24 * 3600),
            retain_deleted_bytes: 1 << 30,
            container_log_max_size: limits.max_size,
            container_log_max_files: limits.max_files,
            spool_max_size: 10 << 30,
        }
    }
}

impl Logs {
    pub fn limits(&self) -> crate::runtime::logs::LogLimits {
        crate::runtime::logs::LogLimits {
            max_size: self.container_log_max_size,
            max_files: self.container_log_max_files,
        }
    }
}

/// `containerLogMaxFiles`: the kubelet refuses fewer than 2 (the live file and one rotated).
fn max_files<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n < 2 {
        return Err(serde::de::Error::custom(format!(
            "containerLogMaxFiles must be at least 2, got {n}"
        )));
    }
    Ok(n)
}

/// The API socket's limits, so that clients that hold connections (or never send a request)
/// cannot take the daemon's file descriptors, or its memory, away from its own work.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Api {
    /// Connections served at once, watches and `logs -f` streams included. Past it a new
    /// connection gets `429 TooManyRequests` (a small reserve still answers `/healthz` and
    /// `/readyz`), or is closed at once when the reserve is taken too. Default 400, the
    /// kube-apiserver's `--max-requests-inflight` (which counts requests, not connections,
    /// and leaves watches out; ours counts every connection, since each costs a descriptor).
    pub max_connections: usize,
    /// A connection must have sent a whole request head this long after it was opened (or
    /// after its first byte, on a kept-alive connection), else it is closed. Default 32s, the
    /// kube-apiserver's `ReadHeaderTimeout` (k8s.io/apiserver/pkg/server/secure_serving.go,
    /// "just shy of requestTimeoutUpperBound").
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request in progress is closed after this long. A
    /// watch or `logs -f` is a request in progress however quiet it is, so it is never cut by
    /// this. Default 90s, the kube-apiserver's `IdleTimeout` (same file; it matches Go's
    /// `http.DefaultTransport` keep-alive).
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// A request must be answered (its body read, the answer computed) within this, else it
    /// gets `504 Timeout`: a client that sends a head and then never its body cannot hold a
    /// connection forever. Watches and `logs -f` are answered at once; their streaming bodies
    /// are not limited. Default 60s, the kube-apiserver's
    /// `--request-timeout` for non-long-running requests.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Changes a watch stream may fall behind by. A watcher further behind (its client stopped
    /// reading) is ended the way the API server ends it: an `ERROR` event with a 410 `Expired`
    /// Status, so the client lists again. The daemon never waits for a watcher.
    pub watch_backlog: usize,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            max_connections: 400,
            header_read_timeout: Duration::from_secs(32),
            idle_timeout: Duration::from_secs(90),
            request_timeout: Duration::from_secs(60),
            watch_backlog: 4096,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Watch {
    /// A manifest file that disappears, or a Job a file stops defining, counts only if that
    /// still holds after this long (editors save by renaming the old file away and writing a
    /// new one; a file can be read half-written).
    #[serde(deserialize_with = "duration")]
    pub removal_grace: Duration,
    /// A fallback: how often the daemon checks that the manifests path still leads to the
    /// directory it watches. Removing, re-creating or re-pointing the directory (or a symlink
    /// to it) is seen at once through watches on it and its parent; this catches the rest (a
    /// grandparent removed and restored).
    #[serde(deserialize_with = "duration")]
    pub recheck_interval: Duration,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            removal_grace: Duration::from_secs(1),
            recheck_interval: Duration::from_secs(10),
        }
    }
}

/// Every location the daemon touches. `None` means "derived from --root or the defaults".
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Paths {
    pub manifests: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub logs: Option<PathBuf>,
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Backoff {
    /// Job controller: delay before replacing the n-th failed pod is base·2^(n−1) (K8s 10s).
    #[serde(deserialize_with = "duration")]
    pub pod_failure_base: Duration,
    /// Cap on that delay (K8s 10m).
    #[serde(deserialize_with = "duration")]
    pub pod_failure_max: Duration,
    /// Kubelet: CrashLoopBackOff base for OnFailure restarts (K8s 10s).
    #[serde(deserialize_with = "duration")]
    pub container_restart_base: Duration,
    /// Cap on the CrashLoopBackOff delay (K8s 5m).
    #[serde(deserialize_with = "duration")]
    pub container_restart_max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            pod_failure_base: Duration::from_secs(10),
            pod_failure_max: Duration::from_secs(600),
            container_restart_base: Duration::from_secs(10),
            container_restart_max: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Store {
    /// Obsolete since batches are written as soon as the writer is free (group commit); still
    /// accepted so an older config keeps starting, and ignored with a warning.
    #[serde(deserialize_with = "optional_duration")]
    pub flush_interval: Option<Duration>,
    /// The journal is folded into a fresh snapshot once it grows past this many bytes.
    /// Bytes or a quantity (`64Mi`).
    #[serde(deserialize_with = "crate::quantity::deserialize_bytes")]
    pub compact_bytes: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            flush_interval: None,
            compact_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Log {
    /// tracing filter: `info`, `debug`, `info,jobvisor::runtime=debug`. Env JOBVISOR_LOG wins.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
        }
    }
}

/// Parses a Kubernetes-style duration: `200ms`, `10s`, `6m`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed: jiff::SignedDuration = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: want e.g. \"200ms\", \"10s\", \"6m\""))?;
    Duration::try_from(parsed)
        .map_err(|_| format!("invalid duration {text:?}: must not be negative"))
}

fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

impl Config {
    /// The pod cgroup's `pids.max`, if any: as the kubelet, only a positive `podPidsLimit`
    /// sets one (`if m.podPidsLimit > 0` in `pkg/kubelet/cm/pod_container_manager_linux.go`);
    /// `0`, like `-1`, is no limit, where `pids.max` 0 would let no container start a process.
    pub fn pids_limit(&self) -> Option<i64> {
        (self.pod_pids_limit > 0).then_some(self.pod_pids_limit)
    }

    pub fn from_yaml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// The config a daemon started with `--root`/`--config` reads: `explicit`, else the
    /// layout's default file; a default file that does not exist means all defaults (an
    /// explicit one must exist). `jobvisor validate` finds it the same way.
    pub fn find(root: Option<&Path>, explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let file = explicit.map_or_else(|| Layout::default_config_file(root), Path::to_path_buf);
        match Config::load(&file) {
            Err(ConfigError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && explicit.is_none() =>
            {
                Ok(Config::default())
            }
            other => other,
        }
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml(path, &text)
    }
}

/// Where one daemon keeps everything, resolved from `--root`, the config and the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub manifests: PathBuf,
    pub state: PathBuf,
    pub logs: PathBuf,
    pub socket: PathBuf,
}

impl Layout {
    /// Everything under one folder: `DIR/manifests`, `DIR/state`, `DIR/logs`, `DIR/jobvisor.sock`.
    pub fn under_root(root: &Path) -> Layout {
        Layout {
            manifests: root.join("manifests"),
            state: root.join("state"),
            logs: root.join("logs"),
            socket: root.join("jobvisor.sock"),
        }
    }

    /// The system layout for root, the XDG one for anyone else.
    pub fn system_default() -> Layout {
        if nix::unistd::geteuid().is_root() {
            return Layout {
                manifests: "/etc/jobvisor/manifests.d".into(),
                state: "/var/lib/jobvisor".into(),
                logs: "/var/log/jobvisor".into(),
                socket: "/run/jobvisor/jobvisor.sock".into(),
            };
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| ".".into());
        let xdg = |var: &str, fallback: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| home.join(fallback))
        };
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| xdg("XDG_STATE_HOME", ".local/state"));
        Layout {
            manifests: xdg("XDG_CONFIG_HOME", ".config").join("jobvisor/manifests.d"),
            state: xdg("XDG_STATE_HOME", ".local/state").join("jobvisor"),
            logs: xdg("XDG_STATE_HOME", ".local/state").join("jobvisor/logs"),
            socket: runtime.join("jobvisor/jobvisor.sock"),
        }
    }

    /// Default config file location for this layout.
    pub fn default_config_file(root: Option<&Path>) -> PathBuf {
        match root {
            Some(r) => r.join("config.yaml"),
            None if nix::unistd::geteuid().is_root() => "/etc/jobvisor/config.yaml".into(),
            None => std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                .unwrap_or_else(|| ".".into())
                .join("jobvisor/config.yaml"),
        }
    }

    /// Every path made absolute, so a daemon started from another directory (or with
    /// `--root ./x` one day and `--root x` the next) sees the same files as the same files.
    pub fn absolute(self) -> std::io::Result<Layout> {
        Ok(Layout {
            manifests: std::path::absolute(&self.manifests)?,
            state: std::path::absolute(&self.state)?,
            logs: std::path::absolute(&self.logs)?,
            socket: std::path::absolute(&self.socket)?,
        })
    }

    /// Config keys win over the root/system default, one by one.
    pub fn with_overrides(mut self, paths: &Paths) -> Layout {
        let pick = |slot: &mut PathBuf, over: &Option<PathBuf>| {
            if let Some(p) = over {
                *slot = p.clone();
            }
        };
        pick(&mut self.manifests, &paths.manifests);
        pick(&mut self.state, &paths.state);
        pick(&mut self.logs, &paths.logs);
        pick(&mut self.socket, &paths.socket);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_positive_pod_pids_limit_limits() {
        for (value, want) in [(-1, None), (0, None), (1, Some(1)), (4096, Some(4096))] {
            let cfg = Config {
                pod_pids_limit: value,
                ..Config::default()
            };
            assert_eq!(cfg.pids_limit(), want, "podPidsLimit {value}");
        }
    }

    #[test]
    fn durations_parse_like_kubernetes() {
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("6m").unwrap(), Duration::from_secs(360));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn keys_have_kubernetes_defaults_and_unknown_keys_fail() {
        let p = Path::new("c.yaml");
        let c = Config::from_yaml(p, "backoff:\n  podFailureBase: 50ms\n").unwrap();
        assert_eq!(c.backoff.pod_failure_base, Duration::from_millis(50));
        assert_eq!(c.backoff.pod_failure_max, Duration::from_secs(600));
        assert_eq!(c.backoff.container_restart_base, Duration::from_secs(10));
        assert_eq!(c.backoff.container_restart_max, Duration::from_secs(300));
        let err = Config::from_yaml(p, "backoff:\n  podFailureBse: 1s\n").unwrap_err();
        assert!(err.to_string().contains("podFailureBse"), "{err}");
        let err = Config::from_yaml(p, "backoff:\n  podFailureBase: soon\n").unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
    }

    #[test]
    fn log_rotation_keys_have_the_kubelet_s_names_and_defaults() {
        let p = Path::new("c.yaml");
        let c = Config::default();
        assert_eq!(c.logs.container_log_max_size, 10 << 20);
        assert_eq!(c.logs.container_log_max_files, 5);
        assert_eq!(c.logs.spool_max_size, 10 << 30);
        let c = Config::from_yaml(
            p,
            "logs:\n  containerLogMaxSize: 1Mi\n  containerLogMaxFiles: 2\n  spoolMaxSize: 1Gi\n",
        )
        .unwrap();
        let l = c.logs.limits();
        assert_eq!((l.max_size, l.max_files), (1 << 20, 2));
        assert_eq!(c.logs.spool_max_size, 1 << 30);
        let err = Config::from_yaml(p, "logs:\n  containerLogMaxFiles: 1\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("containerLogMaxFiles must be at least 2"),
            "{err}"
        );
    }

    #[test]
    fn log_retention_takes_a_duration_and_bytes_or_a_quantity() {
        let p = Path::new("c.yaml");
        let c = Config::default();
        assert_eq!(c.logs.retain_deleted, Duration::from_secs(168 * 3600));
        assert_eq!(c.logs.retain_deleted_bytes, 1 << 30);
        let c = Config::from_yaml(
            p,
            "logs:\n  retainDeleted: 1s\n  retainDeletedBytes: 512Mi\n",
        )
        .unwrap();
        assert_eq!(c.logs.retain_deleted, Duration::from_secs(1));
        assert_eq!(c.logs.retain_deleted_bytes, 512 << 20);
        let c = Config::from_yaml(p, "store:\n  compactBytes: 64Mi\n").unwrap();
        assert_eq!(c.store.compact_bytes, 64 << 20);
        let c = Config::from_yaml(p, "logs:\n  retainDeletedBytes: 4096\n").unwrap();
        assert_eq!(c.logs.retain_deleted_bytes, 4096);
        let c = Config::from_yaml(p, "logs:\n  retainDeletedBytes: \"2Ki\"\n").unwrap();
        assert_eq!(c.logs.retain_deleted_bytes, 2048);
        for bad in [
            "retainDeletedBytes: 1GB",
            "retainDeletedBytes: -1",
            "retainDeleted: 7d",
        ] {
            let err = Config::from_yaml(p, &format!("logs:\n  {bad}\n")).unwrap_err();
            assert!(err.to_string().contains("retainDeleted"), "{bad}: {err}");
        }
    }

    #[test]
    fn images_add_to_the_builtins_and_bad_entries_fail_with_the_key_named() {
        use crate::images::Reference;
        let p = Path::new("c.yaml");
        let c = Config::from_yaml(
            p,
            "images:\n  python:\n    entrypoint: [python3]\n    env: [\"A=1\"]\n    workingDir: /srv\n",
        )
        .unwrap();
        let python = Reference::normalized("python:3.12").unwrap();
        let entry = c.images.lookup(&python).expect("the config's entry");
        assert_eq!(entry.entrypoint, ["python3"]);
        assert_eq!(entry.working_dir.as_deref(), Some("/srv"));
        let busybox = Reference::normalized("busybox").unwrap();
        assert!(c.images.lookup(&busybox).is_some(), "built-ins stay");
        assert!(Config::default().images.lookup(&busybox).is_some());
        for (bad, named) in [
            ("images:\n  Python:\n    cmd: [x]\n", "\"Python\""),
            ("images:\n  python:\n    comand: [x]\n", "comand"),
            (
                "images:\n  python:\n    env: [A]\n",
                "\"A\" is not NAME=value",
            ),
            (
                "images:\n  python: {cmd: [x]}\n  library/python: {cmd: [y]}\n",
                "name the same image",
            ),
        ] {
            let err = Config::from_yaml(p, bad).unwrap_err().to_string();
            assert!(err.contains(named), "{bad}: {err}");
            assert!(err.contains("images"), "{bad}: {err}");
        }
    }

    #[test]
    fn find_reads_the_root_config_or_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::find(Some(dir.path()), None).unwrap(),
            Config::default()
        );
        let missing = dir.path().join("nope.yaml");
        assert!(
            Config::find(None, Some(&missing)).is_err(),
            "an explicit file must exist"
        );
        std::fs::write(
            dir.path().join("config.yaml"),
            "images:\n  nginx: {cmd: [nginx]}\n",
        )
        .unwrap();
        let nginx = crate::images::Reference::normalized("nginx").unwrap();
        let c = Config::find(Some(dir.path()), None).unwrap();
        assert!(c.images.lookup(&nginx).is_some());
        let other = dir.path().join("other.yaml");
        std::fs::write(&other, "").unwrap();
        let c = Config::find(Some(dir.path()), Some(&other)).unwrap();
        assert!(
            c.images.lookup(&nginx).is_none(),
            "--config wins over the root's file"
        );
    }

    #[test]
    fn layouts_root_system_and_overrides() {
        let l = Layout::under_root(Path::new("/r"));
        assert_eq!(l.manifests, Path::new("/r/manifests"));
        assert_eq!(l.state, Path::new("/r/state"));
        assert_eq!(l.logs, Path::new("/r/logs"));
        assert_eq!(l.socket, Path::new("/r/jobvisor.sock"));
        let paths = Paths {
            socket: Some("/elsewhere.sock".into()),
            ..Paths::default()
        };
        let o = l.with_overrides(&paths);
        assert_eq!(o.socket, Path::new("/elsewhere.sock"));
        assert_eq!(
            o.manifests,
            Path::new("/r/manifests"),
            "other paths unchanged"
        );
        if nix::unistd::geteuid().is_root() {
            let sys = Layout::system_default();
            assert_eq!(sys.manifests, Path::new("/etc/jobvisor/manifests.d"));
            assert_eq!(sys.state, Path::new("/var/lib/jobvisor"));
            assert_eq!(sys.logs, Path::new("/var/log/jobvisor"));
            assert_eq!(sys.socket, Path::new("/run/jobvisor/jobvisor.sock"));
            assert_eq!(
                Layout::default_config_file(None),
                Path::new("/etc/jobvisor/config.yaml")
            );
        }
        assert_eq!(
            Layout::default_config_file(Some(Path::new("/r"))),
            Path::new("/r/config.yaml")
        );
    }

    #[test]
    fn shipped_default_config_matches_code_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/jobvisor.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = Config::from_yaml(&path, &text).unwrap();
        assert_eq!(parsed, Config::default());
    }
}

#[cfg(test)]
mod socket_tests {
    use super::*;

    #[test]
    fn socket_mode_is_an_octal_string() {
        let c = Config::from_yaml(Path::new("c.yaml"), "socket:\n  mode: \"0666\"\n").unwrap();
        assert_eq!(c.socket.mode, 0o666);
        assert_eq!(c.socket.group, "jobvisor");
        for bad in ["\"0999\"", "\"4755\"", "\"rw\""] {
            let e = Config::from_yaml(Path::new("c.yaml"), &format!("socket:\n  mode: {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("c.yaml") && e.contains("invalid mode"), "{e}");
        }
    }
}
