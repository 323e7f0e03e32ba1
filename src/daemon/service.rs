//! What the daemon tells its service manager beyond `READY=1`/`STOPPING=1`
//! (`sd_notify(3)`), and reloading its config on SIGHUP.
//!
//! - `STATUS=`: a one-line summary (`ready: 2 pods running; next CronJob default/backup at
//!   2026-11-28T02:00:00Z`, or what keeps it from its job first), sent when it changes and at
//!   most once a second ([`STATUS_EVERY`]): counting the pods costs a pass over the live ones,
//!   so it is computed at most that often, and a timer brings the loop back for the last
//!   change of a burst.
//! - `WATCHDOG=1`: when systemd set `WATCHDOG_USEC` (the unit's `WatchdogSec=`) for this
//!   process (`WATCHDOG_PID` unset or ours), sent at half that interval by the loop itself,
//!   after a turn: a loop that is stuck stops pinging and systemd restarts the daemon.
//! - `RELOADING=1` with `MONOTONIC_USEC=` on SIGHUP, then `READY=1` once the config is
//!   reloaded and the rescan asked for.
//!
//! Config reload ([`reload_plan`]): the keys read where they are used take effect at once;
//! those fixed at start (paths, the store, the API server's limits) keep their old value,
//! with a warning that they need a restart. A config file that does not load is refused, with
//! its error (file, line), and the old config stays.

use std::time::Duration;

use tokio::time::Instant;

use super::health::Problems;
use super::world::Key;
use crate::config::Config;

/// The least time between two `STATUS=` summaries.
pub(super) const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Pure: the `STATUS=` line.
pub(super) fn status_line(
    problems: &Problems,
    running: usize,
    next_cron: Option<(jiff::Timestamp, &Key)>,
    reload_error: Option<&str>,
) -> String {
    let pods = match running {
        1 => "1 pod running".to_string(),
        n => format!("{n} pods running"),
    };
    let head = match problems.ready() {
        Ok(()) => format!("ready: {pods}"),
        Err(why) => format!("{why}; {pods}"),
    };
    let head = match next_cron {
        Some((at, (ns, name))) => format!("{head}; next CronJob {ns}/{name} at {at:.0}"),
        None => head,
    };
    match reload_error {
        Some(e) => format!("{head}; config not reloaded: {e}"),
        None => head,
    }
}

/// systemd's watchdog, when it asked for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Watchdog {
    /// Half of `WATCHDOG_USEC`, as `sd_watchdog_enabled(3)` advises.
    pub every: Duration,
}

impl Watchdog {
    /// Pure: from `WATCHDOG_USEC` and `WATCHDOG_PID` as found in the environment.
    pub(super) fn from_env(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Self> {
        let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
        if let Some(pid) = pid
            && pid.trim().parse::<u32>().ok() != Some(own_pid)
        {
            // Meant for another process (a parent that exec'd us without clearing it).
            return None;
        }
        Some(Watchdog {
            every: Duration::from_micros(usec / 2).max(Duration::from_millis(1)),
        })
    }
}

/// What was told, and when the next word is due.
#[derive(Debug, Default)]
pub(super) struct Notifier {
    /// The last `STATUS=` sent, and when it was computed.
    status: String,
    status_at: Option<Instant>,
    /// A timer is set to look at the status again.
    status_timer: bool,
    pub(super) watchdog: Option<Watchdog>,
    last_ping: Option<Instant>,
    /// Why the last reload refused the config file, until one succeeds (in `STATUS=`).
    pub(super) reload_error: Option<String>,
}

impl Notifier {
    pub(super) fn from_env() -> Notifier {
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        let watchdog = Watchdog::from_env(usec.as_deref(), pid.as_deref(), std::process::id());
        if let Some(w) = watchdog {
            tracing::info!(every = ?w.every, "systemd watchdog enabled: pinging from the main loop");
        }
        Notifier {
            watchdog,
            ..Notifier::default()
        }
    }

    /// Whether the status may be computed now; else when (a timer should be set, unless one
    /// is).
    pub(super) fn status_due(&mut self, now: Instant) -> Result<(), Option<Duration>> {
        match self.status_at {
            Some(at) if now < at + STATUS_EVERY => {
                let wait = at + STATUS_EVERY - now;
                if std::mem::replace(&mut self.status_timer, true) {
                    Err(None)
                } else {
                    Err(Some(wait))
                }
            }
            _ => Ok(()),
        }
    }

    /// The status timer fired.
    pub(super) fn status_timer_fired(&mut self) {
        self.status_timer = false;
    }

    /// Records the status computed at `now`; true when it differs from the last sent.
    pub(super) fn status_changed(&mut self, now: Instant, line: String) -> bool {
        self.status_at = Some(now);
        if line == self.status {
            return false;
        }
        self.status = line;
        true
    }

    pub(super) fn status(&self) -> &str {
        &self.status
    }

    /// When the loop must wake for the next ping, if there is a watchdog.
    pub(super) fn next_ping(&self) -> Option<Instant> {
        let w = self.watchdog?;
        Some(self.last_ping.map_or_else(Instant::now, |at| at + w.every))
    }

    /// Pings if one is due at `now`; true when it did.
    pub(super) fn ping_due(&mut self, now: Instant) -> bool {
        let Some(w) = self.watchdog else {
            return false;
        };
        if self.last_ping.is_some_and(|at| now < at + w.every) {
            return false;
        }
        self.last_ping = Some(now);
        true
    }
}

/// `MONOTONIC_USEC=` for `RELOADING=1`: CLOCK_MONOTONIC in microseconds, as systemd reads it.
pub(super) fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0) / 1_000
        }
        Err(_) => 0,
    }
}

/// What a reload does with a newly read config.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ReloadPlan {
    /// The config to run with: the new one, but the old value of every key that needs a
    /// restart.
    pub config: Config,
    /// Keys that changed and apply now.
    pub live: Vec<&'static str>,
    /// Keys that changed but keep their old value until a restart.
    pub restart: Vec<&'static str>,
}

/// Pure: the keys of `new` that can change in a running daemon, over `old`. Live: every key
/// read where it is used (`backoff.*`, `watch.*`, `logs.*`, `log.level`, `images`,
/// `socket.*`). Restart: `paths.*` (the store is locked, the directory watched, the socket
/// bound where they are), `store.compactBytes` (the store's writer has it), `api.*` (the
/// server and the watch rings are sized at start). A key not named here is live.
pub(super) fn reload_plan(old: &Config, new: &Config) -> ReloadPlan {
    let mut config = new.clone();
    let mut restart = Vec::new();
    if new.paths != old.paths {
        restart.push("paths");
        config.paths = old.paths.clone();
    }
    if new.store != old.store {
        restart.push("store");
        config.store = old.store.clone();
    }
    if new.api != old.api {
        restart.push("api");
        config.api = old.api.clone();
    }
    // The cgroup layout is detected and made once, at start (`runtime/cgroup.rs`).
    if new.cgroups != old.cgroups {
        restart.push("cgroups");
        config.cgroups = old.cgroups;
    }
    let mut live = Vec::new();
    for (key, changed) in [
        ("backoff", config.backoff != old.backoff),
        ("watch", config.watch != old.watch),
        ("logs", config.logs != old.logs),
        ("log", config.log != old.log),
        ("images", config.images != old.images),
        ("socket", config.socket != old.socket),
        ("podPidsLimit", config.pod_pids_limit != old.pod_pids_limit),
    ] {
        if changed {
            live.push(key);
        }
    }
    if live.is_empty() && config != *old {
        // A section added to `Config` and not listed above: live, unnamed.
        live.push("other keys");
    }
    ReloadPlan {
        config,
        live,
        restart,
    }
}

impl super::Daemon {
    /// After a turn: `STATUS=` if the summary changed, at most once a second.
    pub(super) fn tell_status(&mut self) {
        let now = Instant::now();
        match self.notifier.status_due(now) {
            Ok(()) => {}
            Err(Some(wait)) => return self.schedule(wait, super::Target::Status),
            Err(None) => return,
        }
        let running = self
            .world
            .unsettled_pods()
            .filter(|(_, r)| r.pod.status.phase == crate::api::PodPhase::Running)
            .count();
        let line = status_line(
            &self.problems,
            running,
            self.cron_wakes.first(),
            self.notifier.reload_error.as_deref(),
        );
        if self.notifier.status_changed(now, line) {
            super::serve::notify(&format!("STATUS={}", self.notifier.status()));
        }
    }

    /// After a turn: `WATCHDOG=1` when the next ping is due.
    pub(super) fn feed_watchdog(&mut self) {
        if self.notifier.ping_due(Instant::now()) {
            super::serve::notify("WATCHDOG=1");
        }
    }

    /// SIGHUP (`systemctl reload`): the config file read again and its live keys applied,
    /// the manifests watch re-armed and the directory rescanned.
    pub(super) fn reload(&mut self) {
        super::serve::notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        tracing::info!(
            "SIGHUP: reloading the config, re-arming the manifests watch and rescanning"
        );
        self.reload_config();
        self.look_at_source(true, super::source::AfterLook::Nothing);
        super::serve::notify("READY=1");
    }

    fn reload_config(&mut self) {
        let opts = &self.opts;
        // A `log.level` the filter cannot take refuses the file like a key that does not
        // parse: nothing of it applied, rather than every key but that one.
        let new = Config::find(opts.root.as_deref(), opts.config.as_deref())
            .map_err(|e| e.to_string())
            .and_then(|c| match super::logging::check_level(&c.log.level) {
                Ok(()) => Ok(c),
                Err(e) => Err(crate::config::ConfigError::Parse {
                    path: opts.config.clone().unwrap_or_else(|| {
                        crate::config::Layout::default_config_file(opts.root.as_deref())
                    }),
                    message: e,
                }
                .to_string()),
            });
        let new = match new {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("config not reloaded, the running one stays: {e}");
                // One line for systemctl status: the parser's message may span several.
                let first = e.lines().next().unwrap_or_default().to_string();
                self.notifier.reload_error = Some(first);
                return;
            }
        };
        self.notifier.reload_error = None;
        let plan = reload_plan(&self.cfg, &new);
        if !plan.restart.is_empty() {
            tracing::warn!(
                keys = %plan.restart.join(", "),
                "config changed in keys that take effect only at a restart; they keep their old values"
            );
        }
        if plan.live.is_empty() {
            tracing::info!("config reloaded: no live key changed");
            return;
        }
        if plan.config.log != self.cfg.log
            && let Some(log) = &self.log
            && let Err(e) = log.set_level(&plan.config.log.level)
        {
            tracing::error!("{e}; the log filter stays as it was");
        }
        let mut config = plan.config;
        if config.socket != self.cfg.socket
            && let Err(e) = super::serve::set_access(&self.layout.socket, &config.socket)
        {
            tracing::error!("socket: {e:#}; the next reload tries again");
            // Not in effect, so not recorded: the next reload sees the change again.
            config.socket = self.cfg.socket.clone();
        }
        self.cfg = config;
        tracing::info!(keys = %plan.live.join(", "), "config reloaded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str) -> Key {
        (ns.into(), name.into())
    }

    #[test]
    fn the_status_line() {
        let mut p = Problems::default();
        assert_eq!(status_line(&p, 0, None, None), "ready: 0 pods running");
        assert_eq!(status_line(&p, 1, None, None), "ready: 1 pod running");
        let at: jiff::Timestamp = "2026-11-28T02:00:00Z".parse().unwrap();
        let k = key("default", "backup");
        assert_eq!(
            status_line(&p, 3, Some((at, &k)), None),
            "ready: 3 pods running; next CronJob default/backup at 2026-11-28T02:00:00Z"
        );
        p.manifests = Some("directory /x is missing".into());
        assert_eq!(
            status_line(&p, 2, None, None),
            "manifests: directory /x is missing; 2 pods running"
        );
        assert_eq!(
            status_line(
                &p,
                0,
                None,
                Some("config /c.yaml: unknown field `x` at line 2")
            ),
            "manifests: directory /x is missing; 0 pods running; config not reloaded: config /c.yaml: unknown field `x` at line 2"
        );
    }

    #[test]
    fn the_watchdog_from_the_environment() {
        let w = |usec, pid| Watchdog::from_env(usec, pid, 42).map(|w| w.every);
        assert_eq!(w(Some("30000000"), None), Some(Duration::from_secs(15)));
        assert_eq!(
            w(Some("30000000"), Some("42")),
            Some(Duration::from_secs(15))
        );
        assert_eq!(w(Some("30000000"), Some("43")), None, "another process's");
        assert_eq!(w(Some("0"), None), None);
        assert_eq!(w(Some("x"), None), None);
        assert_eq!(w(None, Some("42")), None);
        assert_eq!(w(Some("1"), None), Some(Duration::from_millis(1)));
    }

    /// Instants are given, never read from the clock.
    #[test]
    fn pings_at_the_interval_and_statuses_at_most_once_a_second() {
        let mut n = Notifier {
            watchdog: Some(Watchdog {
                every: Duration::from_secs(5),
            }),
            ..Notifier::default()
        };
        let t0 = Instant::now();
        assert!(n.ping_due(t0), "the first ping is due at once");
        assert!(!n.ping_due(t0 + Duration::from_secs(4)));
        assert_eq!(n.next_ping(), Some(t0 + Duration::from_secs(5)));
        assert!(n.ping_due(t0 + Duration::from_secs(5)));

        assert_eq!(n.status_due(t0), Ok(()));
        assert!(n.status_changed(t0, "ready: 0 pods running".into()));
        let soon = t0 + Duration::from_millis(300);
        assert_eq!(n.status_due(soon), Err(Some(Duration::from_millis(700))));
        assert_eq!(n.status_due(soon), Err(None), "one timer at a time");
        n.status_timer_fired();
        let later = t0 + STATUS_EVERY;
        assert_eq!(n.status_due(later), Ok(()));
        assert!(!n.status_changed(later, "ready: 0 pods running".into()));
        assert!(n.status_changed(later, "ready: 1 pod running".into()));
        assert_eq!(n.status(), "ready: 1 pod running");
    }

    /// A file whose `log.level` does not parse is refused whole, like one that does not load:
    /// none of its keys applied, the running config kept, the reason in `STATUS=`.
    #[tokio::test]
    async fn a_bad_log_level_refuses_the_whole_reload() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, _clock, _rt) = super::super::testing::daemon_in(root.path(), Config::default());
        let file = root.path().join("reload.yaml");
        std::fs::write(
            &file,
            "backoff:\n  podFailureBase: 1s\nlog:\n  level: \"info,x=loud\"\n",
        )
        .unwrap();
        d.opts.config = Some(file);
        let before = d.cfg.clone();
        d.reload_config();
        assert_eq!(d.cfg, before, "a refused file was applied in part");
        let why = d.notifier.reload_error.clone().unwrap_or_default();
        assert!(
            why.contains("log.level") && why.contains("info,x=loud"),
            "{why:?}"
        );
        // Fixed, it applies.
        std::fs::write(
            d.opts.config.as_ref().unwrap(),
            "backoff:\n  podFailureBase: 1s\nlog:\n  level: debug\n",
        )
        .unwrap();
        d.reload_config();
        assert_eq!(d.cfg.backoff.pod_failure_base, Duration::from_secs(1));
        assert_eq!(d.cfg.log.level, "debug");
        assert_eq!(d.notifier.reload_error, None);
    }

    /// A socket mode or group that could not be set is not recorded as in effect: the next
    /// reload tries it again instead of seeing no change.
    #[tokio::test]
    async fn a_socket_access_that_failed_is_tried_again() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, _clock, _rt) = super::super::testing::daemon_in(root.path(), Config::default());
        // No socket is bound in-process: setting its mode fails.
        assert!(!d.layout.socket.exists());
        let file = root.path().join("reload.yaml");
        std::fs::write(&file, "socket:\n  mode: \"0600\"\n").unwrap();
        d.opts.config = Some(file);
        d.reload_config();
        assert_eq!(
            d.cfg.socket,
            Config::default().socket,
            "recorded as applied"
        );
        // Once there, the same file applies it.
        std::fs::write(&d.layout.socket, "").unwrap();
        d.reload_config();
        assert_eq!(d.cfg.socket.mode, 0o600);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&d.layout.socket).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn reload_applies_live_keys_and_keeps_restart_keys() {
        let old = Config::default();
        let mut new = Config::default();
        new.backoff.pod_failure_base = Duration::from_secs(1);
        new.log.level = "debug".into();
        new.api.max_connections = 5;
        new.paths.socket = Some("/elsewhere.sock".into());
        new.cgroups = crate::config::CgroupsSetting::None;
        new.pod_pids_limit = 20;
        let plan = reload_plan(&old, &new);
        assert_eq!(plan.live, ["backoff", "log", "podPidsLimit"]);
        assert_eq!(plan.restart, ["paths", "api", "cgroups"]);
        assert_eq!(
            plan.config.cgroups, old.cgroups,
            "the cgroup layout is made at start"
        );
        assert_eq!(plan.config.pod_pids_limit, 20);
        assert_eq!(plan.config.backoff.pod_failure_base, Duration::from_secs(1));
        assert_eq!(plan.config.log.level, "debug");
        assert_eq!(plan.config.api, old.api, "api keys need a restart");
        assert_eq!(plan.config.paths, old.paths);
        let same = reload_plan(&old, &old.clone());
        assert!(same.live.is_empty() && same.restart.is_empty());
    }
}
