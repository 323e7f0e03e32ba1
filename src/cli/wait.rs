//! `jobvisor wait --for=condition=complete job/NAME`: kubectl's `wait` for Jobs.
//!
//! Done when the Job has the condition with status `True` (or the value given as
//! `condition=Failed=False`); names compare case-insensitively like kubectl's. It follows the
//! watch stream (`?watch=true&fieldSelector=metadata.name=NAME`, which opens with ADDED for
//! the current object), reconnects when the stream ends early (a daemon restart), and falls
//! back to polling the Job every second if the server refuses to watch or sends something
//! that is not a watch stream.
//!
//! Two deliberate choices:
//! - A Job that does not exist yet is waited for, where kubectl fails with NotFound: manifest
//!   files are picked up asynchronously, so right after `apply` the Job may not exist yet.
//! - Waiting for `complete` when the Job fails (or the reverse) keeps waiting until the
//!   timeout, as kubectl does: the other terminal condition is not the one asked for.
//!
//! Only the very first connection failing is an error (the daemon is not running); after
//! that, connection failures are retried until the timeout. `--timeout` takes Go-style
//! durations (`30s`, `5m`, `1h30m`); `0` checks once; a negative value waits a week, as in
//! kubectl.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::{Ctx, Kind, NamespaceArg, split_type_name};
use crate::api::WatchEvent;
use crate::config::parse_duration;
use crate::proto::{self, ApiError};

/// Pause before reconnecting or polling again.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// The Job: job/NAME (or jobs/NAME, job.batch/NAME).
    #[arg(value_name = "job/NAME")]
    pub resource: String,
    /// The condition to wait for: condition=complete or condition=failed.
    #[arg(long = "for", value_name = "condition=NAME")]
    pub for_: String,
    /// How long to wait before giving up (e.g. 30s, 5m, 1h).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30s",
        allow_hyphen_values = true
    )]
    pub timeout: String,
    #[command(flatten)]
    pub ns: NamespaceArg,
}

/// `condition=NAME[=VALUE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    pub value: String,
}

impl Condition {
    pub fn parse(text: &str) -> anyhow::Result<Condition> {
        let Some(rest) = text.strip_prefix("condition=") else {
            bail!(
                "unrecognized condition: \"{text}\" (jobvisor waits for condition=complete or condition=failed)"
            );
        };
        let (type_, value) = rest.split_once('=').unwrap_or((rest, "True"));
        if type_.is_empty() || value.is_empty() {
            bail!("unrecognized condition: \"{text}\"");
        }
        Ok(Condition {
            type_: type_.to_string(),
            value: value.to_string(),
        })
    }

    /// Whether a Job (as JSON, so that any shape the server sends can be checked) has it.
    pub fn met_by(&self, job: &Value) -> bool {
        let Some(conditions) = job.pointer("/status/conditions").and_then(Value::as_array) else {
            return false;
        };
        conditions.iter().any(|c| {
            let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
            field("type").eq_ignore_ascii_case(&self.type_)
                && field("status").eq_ignore_ascii_case(&self.value)
        })
    }
}

/// kubectl's `--timeout`: Go durations, `0` for "check once", negative for "a week".
pub fn parse_timeout(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Ok(Duration::from_secs(7 * 24 * 3600));
    }
    parse_duration(text)
        .map_err(anyhow::Error::msg)
        .context("--timeout")
}

pub async fn run(ctx: &mut Ctx<'_>, args: WaitArgs) -> anyhow::Result<()> {
    let name = match split_type_name(&args.resource) {
        Some((Kind::Job, name)) if !name.is_empty() => name.to_string(),
        Some((kind, _)) if kind != Kind::Job => {
            bail!("jobvisor waits for jobs only, not {}", kind.resource())
        }
        _ => bail!("give the Job as job/NAME, not \"{}\"", args.resource),
    };
    let condition = Condition::parse(&args.for_)?;
    let timeout = parse_timeout(&args.timeout)?;
    let ns = args.ns.namespace.as_str();

    let met = if timeout.is_zero() {
        check_once(ctx, ns, &name, &condition).await?
    } else {
        wait_until(ctx, ns, &name, &condition, Instant::now() + timeout).await?
    };
    if !met {
        bail!("timed out waiting for the condition on jobs/{name}");
    }
    ctx.print(&format!(
        "{}/{name} condition met\n",
        Kind::Job.name_prefix()
    ))?;
    Ok(())
}

async fn check_once(
    ctx: &mut Ctx<'_>,
    ns: &str,
    name: &str,
    condition: &Condition,
) -> anyhow::Result<bool> {
    match ctx
        .client
        .get_json::<Value>(&proto::job_path(ns, name))
        .await
    {
        Ok(job) => Ok(condition.met_by(&job)),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `true` once the condition is met, `false` at the deadline.
async fn wait_until(
    ctx: &mut Ctx<'_>,
    ns: &str,
    name: &str,
    condition: &Condition,
    deadline: Instant,
) -> anyhow::Result<bool> {
    let path = proto::with_query(
        &proto::jobs_path(Some(ns)),
        &[
            ("fieldSelector", format!("metadata.name={name}")),
            ("watch", "true".to_string()),
        ],
    );
    let mut connected = false;
    let mut poll = false;
    let mut resume = false;
    loop {
        if poll {
            match timeout_at(deadline, check_once(ctx, ns, name, condition)).await {
                Err(_) => return Ok(false),
                Ok(Ok(true)) => return Ok(true),
                Ok(Ok(false)) => connected = true,
                Ok(Err(e)) if !connected => return Err(e),
                Ok(Err(_)) => {}
            }
        } else {
            match timeout_at(deadline, ctx.client.stream_lines(&path)).await {
                Err(_) => return Ok(false),
                Ok(Err(e @ ApiError::Connect { .. })) if !connected => return Err(e.into()),
                // The server answered but will not watch: poll instead.
                Ok(Err(e)) if e.code().is_some() => poll = true,
                Ok(Err(_)) => {}
                Ok(Ok(mut lines)) => {
                    connected = true;
                    loop {
                        match timeout_at(deadline, lines.next_json::<WatchEvent<Value>>()).await {
                            Err(_) => return Ok(false),
                            // The server ended the watch because this watcher fell behind
                            // (410 Expired): watch again at once; it starts with the Job
                            // as it is now.
                            Ok(Ok(Some(event)))
                                if event.type_ == "ERROR"
                                    && event.object.get("code") == Some(&Value::from(410)) =>
                            {
                                resume = true;
                                break;
                            }
                            Ok(Ok(Some(event))) => {
                                let this_job = event
                                    .object
                                    .pointer("/metadata/name")
                                    .and_then(Value::as_str)
                                    == Some(name);
                                let live = matches!(event.type_.as_str(), "ADDED" | "MODIFIED");
                                if live && this_job && condition.met_by(&event.object) {
                                    return Ok(true);
                                }
                            }
                            // Not a watch stream (a server that ignores `watch=true`
                            // sends the list): poll instead.
                            Ok(Err(ApiError::Decode { .. })) => {
                                poll = true;
                                break;
                            }
                            // The stream ended or broke: reconnect after a pause.
                            Ok(Ok(None)) | Ok(Err(_)) => break,
                        }
                    }
                }
            }
            if poll || std::mem::take(&mut resume) {
                continue;
            }
        }
        let next = (Instant::now() + RETRY).min(deadline);
        sleep_until(next).await;
        if Instant::now() >= deadline {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::Status;
    use crate::cli::testing::{reported, serve};
    use axum::Router;
    use axum::extract::{Path, RawQuery};
    use axum::http::StatusCode;
    use axum::routing::get;
    use serde_json::json;

    fn job(name: &str, conditions: &[(&str, &str)]) -> Value {
        let conds: Vec<Value> = conditions
            .iter()
            .map(|(t, s)| json!({"type": t, "status": s}))
            .collect();
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "status": {"conditions": conds}})
    }

    #[test]
    fn conditions_parse_and_match() {
        let c = Condition::parse("condition=complete").unwrap();
        assert_eq!(
            c,
            Condition {
                type_: "complete".into(),
                value: "True".into()
            }
        );
        assert!(c.met_by(&job(
            "a",
            &[("SuccessCriteriaMet", "True"), ("Complete", "True")]
        )));
        assert!(!c.met_by(&job("a", &[("Complete", "False")])));
        assert!(!c.met_by(&job("a", &[("Failed", "True")])));
        assert!(!c.met_by(&json!({"metadata": {}})));
        let f = Condition::parse("condition=Failed=False").unwrap();
        assert!(f.met_by(&job("a", &[("Failed", "False")])));
        assert!(Condition::parse("delete").is_err());
        assert!(Condition::parse("condition=").is_err());
    }

    #[test]
    fn timeouts_parse_like_kubectl() {
        assert_eq!(parse_timeout("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_timeout("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_timeout("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_timeout("-1s").unwrap(), Duration::from_secs(604800));
        assert!(parse_timeout("soon").is_err());
    }

    static EXPIRED_OPENS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// Watch: the current object (running), then it fails, then (in another job) completes.
    fn router() -> Router {
        Router::new()
            .route(
                "/apis/batch/v1/namespaces/{ns}/jobs",
                get(|RawQuery(q): RawQuery| async move {
                    let q = q.unwrap_or_default();
                    if q.contains("metadata.name%3Dpolled") {
                        let s = Status::failure(400, "BadRequest", "watch not supported");
                        return (StatusCode::BAD_REQUEST, serde_json::to_string(&s).unwrap());
                    }
                    let events = if q.contains("metadata.name%3Dpi") {
                        vec![
                            json!({"type": "ADDED", "object": job("pi", &[])}),
                            json!({"type": "MODIFIED", "object": job("other", &[("Complete", "True")])}),
                            json!({"type": "MODIFIED", "object": job("pi", &[("Complete", "True")])}),
                        ]
                    } else if q.contains("metadata.name%3Dexpired") {
                        // The first watch falls behind and is ended with 410; the next one
                        // starts with the Job as it is now.
                        if EXPIRED_OPENS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                            let s = Status::failure(410, "Expired", "too old resource version");
                            vec![json!({"type": "ERROR", "object": s})]
                        } else {
                            vec![json!({"type": "ADDED", "object": job("expired", &[("Complete", "True")])})]
                        }
                    } else if q.contains("metadata.name%3Dbad") {
                        vec![json!({"type": "MODIFIED", "object": job("bad", &[("FailureTarget", "True"), ("Failed", "True")])})]
                    } else {
                        vec![]
                    };
                    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
                    (StatusCode::OK, body)
                }),
            )
            .route(
                "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
                get(|Path((_ns, name)): Path<(String, String)>| async move {
                    if name == "polled" {
                        return (StatusCode::OK, axum::Json(job("polled", &[("Failed", "True")])));
                    }
                    let s = Status::failure(404, "NotFound", format!("jobs.batch \"{name}\" not found"));
                    (StatusCode::NOT_FOUND, axum::Json(serde_json::to_value(s).unwrap()))
                }),
            )
    }

    fn args(resource: &str, for_: &str, timeout: &str) -> WaitArgs {
        WaitArgs {
            resource: resource.into(),
            for_: for_.into(),
            timeout: timeout.into(),
            ns: NamespaceArg {
                namespace: "default".into(),
            },
        }
    }

    /// A watch ended with ERROR 410 is opened again at once, not after the 1 s retry pause
    /// (which this timeout is shorter than).
    #[tokio::test]
    async fn a_watch_ended_with_410_is_opened_again_at_once() {
        let mut h = serve(router());
        run(
            &mut h.ctx(),
            args("job/expired", "condition=Complete", "800ms"),
        )
        .await
        .unwrap();
        assert_eq!(h.out(), "job.batch/expired condition met\n");
        assert_eq!(EXPIRED_OPENS.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn met_through_the_watch() {
        let mut h = serve(router());
        run(&mut h.ctx(), args("job/pi", "condition=Complete", "5s"))
            .await
            .unwrap();
        assert_eq!(h.out(), "job.batch/pi condition met\n");
        h.out.clear();
        run(
            &mut h.ctx(),
            args("jobs.batch/bad", "condition=failed", "5s"),
        )
        .await
        .unwrap();
        assert_eq!(h.out(), "job.batch/bad condition met\n");
    }

    #[tokio::test]
    async fn the_other_outcome_or_a_missing_job_times_out() {
        let mut h = serve(router());
        let started = Instant::now();
        let err = run(&mut h.ctx(), args("job/bad", "condition=complete", "300ms"))
            .await
            .unwrap_err();
        assert_eq!(
            reported(&err),
            "error: timed out waiting for the condition on jobs/bad\n"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        let err = run(
            &mut h.ctx(),
            args("job/ghost", "condition=complete", "300ms"),
        )
        .await
        .unwrap_err();
        assert_eq!(
            reported(&err),
            "error: timed out waiting for the condition on jobs/ghost\n"
        );
        let err = run(&mut h.ctx(), args("job/ghost", "condition=complete", "0"))
            .await
            .unwrap_err();
        assert_eq!(
            reported(&err),
            "error: timed out waiting for the condition on jobs/ghost\n"
        );
    }

    #[tokio::test]
    async fn falls_back_to_polling() {
        let mut h = serve(router());
        run(&mut h.ctx(), args("job/polled", "condition=failed", "5s"))
            .await
            .unwrap();
        assert_eq!(h.out(), "job.batch/polled condition met\n");
    }

    #[tokio::test]
    async fn no_daemon_is_an_error_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = serve(Router::new());
        h.client = crate::proto::Client::new(dir.path().join("none.sock"));
        let err = run(&mut h.ctx(), args("job/pi", "condition=complete", "30s"))
            .await
            .unwrap_err();
        assert!(
            reported(&err).starts_with("The connection to the server "),
            "{}",
            reported(&err)
        );
        let err = run(&mut h.ctx(), args("pod/pi", "condition=complete", "30s"))
            .await
            .unwrap_err();
        assert!(reported(&err).contains("jobs only"));
    }
}
