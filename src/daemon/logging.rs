//! The daemon's own log: to journald with structured fields, or to stderr.
//!
//! `--log-target=auto` (the default) picks journald when `$JOURNAL_STREAM` names stderr
//! (systemd sets it to the `dev:inode` of the stream it connected stderr to; comparing it with
//! stderr's `fstat` is systemd's documented check, so a daemon whose stderr was redirected
//! elsewhere logs there). `journald` forces the journal; `stderr` forces stderr.
//!
//! In the journal, each event's fields become journal fields named as they are, uppercased
//! (`tracing-journald` with no field prefix): the daemon's statements about objects carry
//! `namespace`, `job_name`, `pod_name`, `container`, hence `NAMESPACE=`, `JOB_NAME=`,
//! `POD_NAME=`, `CONTAINER=`, so `journalctl -u jobvisor JOB_NAME=backup` finds a Job's
//! lines. `SYSLOG_IDENTIFIER=jobvisor` whatever the binary is called. If the journal's socket
//! cannot be reached, the log goes to stderr with a warning there.
//!
//! The filter (`log.level`, or `$JOBVISOR_LOG`, which wins) can be changed by a reload.

use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{Registry, reload};

pub use crate::config::LogTarget;

/// Pure: whether `auto` means the journal, from `$JOURNAL_STREAM` (`dev:inode`, decimal) and
/// stderr's device and inode.
pub fn journal_is_stderr(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(stream), Some((dev, ino))) = (journal_stream, stderr) else {
        return false;
    };
    let Some((d, i)) = stream.trim().split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

fn stderr_dev_ino() -> Option<(u64, u64)> {
    let st = nix::sys::stat::fstat(std::io::stderr()).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// Changes the filter of the running log.
pub struct LogHandle {
    filter: reload::Handle<Targets, Registry>,
    /// `$JOBVISOR_LOG` was set: it wins over `log.level`, on a reload too.
    from_env: bool,
}

impl LogHandle {
    /// Applies a new `log.level`; an invalid one is refused with the reason.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        if self.from_env {
            tracing::info!("log.level changed, but $JOBVISOR_LOG is set and wins");
            return Ok(());
        }
        let targets = parse(level)?;
        self.filter
            .reload(targets)
            .map_err(|e| format!("changing the log filter: {e}"))
    }
}

/// Whether `level` is a filter the log can take (a reload refuses a file whose is not).
pub fn check_level(level: &str) -> Result<(), String> {
    parse(level).map(|_| ())
}

fn parse(spec: &str) -> Result<Targets, String> {
    Targets::from_str(spec).map_err(|e| format!("log.level {spec:?}: {e}"))
}

/// syslog's meaning of the levels (info 6, debug 7), as `journalctl -p` and the daemon's
/// own stderr lines read them; tracing-journald's default shifts each one up (info 5).
fn priorities() -> tracing_journald::PriorityMappings {
    use tracing_journald::Priority;
    tracing_journald::PriorityMappings {
        error: Priority::Error,
        warn: Priority::Warning,
        info: Priority::Informational,
        debug: Priority::Debug,
        trace: Priority::Debug,
    }
}

/// Sets up the daemon's log once; `None` if a subscriber was already set (in-process tests).
pub fn init(level: &str, target: LogTarget) -> Option<LogHandle> {
    use std::io::IsTerminal;
    let env = std::env::var("JOBVISOR_LOG").ok();
    let spec = env.as_deref().unwrap_or(level);
    let (targets, bad) = match parse(spec) {
        Ok(t) => (t, None),
        Err(e) => (Targets::new().with_default(tracing::Level::INFO), Some(e)),
    };
    let (filter, handle) = reload::Layer::new(targets);
    let journal = match target {
        LogTarget::Stderr => false,
        LogTarget::Journald => true,
        LogTarget::Auto => journal_is_stderr(
            std::env::var("JOURNAL_STREAM").ok().as_deref(),
            stderr_dev_ino(),
        ),
    };
    let (journald, journal_error) = if journal {
        match tracing_journald::layer() {
            Ok(l) => (
                Some(
                    l.with_field_prefix(None)
                        .with_syslog_identifier("jobvisor".into())
                        .with_priority_mappings(priorities()),
                ),
                None,
            ),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let fmt = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(fmt)
        .try_init()
        .ok()?;
    if let Some(e) = journal_error {
        tracing::warn!(error = %e, "cannot reach journald (/run/systemd/journal/socket); logging to stderr");
    }
    if let Some(e) = bad {
        tracing::warn!("{e}; logging at info");
    }
    Some(LogHandle {
        filter: handle,
        from_env: env.is_some(),
    })
}

/// A span whose fields every log line about a pod carries (`NAMESPACE=`, `POD_NAME=`, and
/// `JOB_NAME=` for a Job's pod, in the journal).
pub(crate) fn pod_span(pod: &crate::api::Pod) -> tracing::Span {
    let job = pod
        .metadata
        .owner_references
        .iter()
        .find(|o| o.kind == "Job")
        .map(|o| o.name.as_str());
    let span = tracing::info_span!(
        "pod",
        namespace = %pod.metadata.namespace(),
        pod_name = %pod.metadata.name(),
        job_name = tracing::field::Empty,
    );
    if let Some(job) = job {
        span.record("job_name", job);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_stderr() {
        let me = Some((2049, 123456));
        assert!(journal_is_stderr(Some("2049:123456"), me));
        assert!(journal_is_stderr(Some("2049:123456\n"), me));
        assert!(
            !journal_is_stderr(Some("2049:123457"), me),
            "another stream"
        );
        assert!(!journal_is_stderr(Some("2050:123456"), me));
        assert!(!journal_is_stderr(None, me));
        assert!(!journal_is_stderr(Some("garbage"), me));
        assert!(!journal_is_stderr(Some("2049:123456"), None));
    }
}
