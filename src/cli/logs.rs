//! `jobvisor logs POD|job/NAME`: kubectl's `logs`, streamed as the daemon sends it.
//!
//! The daemon returns the message text (no CRI prefix; with `--timestamps` each line starts
//! with an RFC 3339 time), so the body is copied to stdout chunk by chunk; with `-f` until
//! the daemon closes the stream (the container ended, or the daemon stopped).
//!
//! `job/NAME` picks one of the Job's pods, as kubectl does, but by a simpler rule: a pod
//! that is still running (or pending) beats a finished one, then the most recently created
//! wins. For a Job that retried, that is the attempt that is running or ran last, which is
//! the one whose logs explain the Job's state. The pod is fetched first so that a pod with
//! several containers and no `-c` gets kubectl's client-side error, and the
//! `kubectl.kubernetes.io/default-container` annotation is honoured.

use anyhow::bail;
use serde_json::Value;

use super::table::selector_string;
use super::{Ctx, Kind, NamespaceArg, split_type_name};
use crate::api::{Job, LABEL_JOB_NAME, List, Pod};
use crate::proto;

const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// POD, pod/NAME, or job/NAME for one of the Job's pods.
    #[arg(value_name = "POD|job/NAME")]
    pub target: String,
    /// The container (needed when the pod has several).
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,
    /// Keep streaming new output until the container ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The logs of the previous run of a restarted container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only the last N lines (-1: all).
    #[arg(long, value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Prefix each line with its RFC 3339 time.
    #[arg(long)]
    pub timestamps: bool,
    #[command(flatten)]
    pub ns: NamespaceArg,
}

pub async fn run(ctx: &mut Ctx<'_>, args: LogsArgs) -> anyhow::Result<()> {
    let ns = args.ns.namespace.as_str();
    let pod_name = match split_type_name(&args.target) {
        Some((Kind::Pod, name)) => name.to_string(),
        Some((Kind::Job, name)) => pod_of_job(ctx, ns, name).await?,
        Some((kind, _)) => bail!("cannot get logs from {}", kind.resource()),
        None if args.target.contains('/') => {
            bail!(
                "the server doesn't have a resource type \"{}\"",
                args.target.split('/').next().unwrap_or("")
            )
        }
        None => args.target.clone(),
    };
    let pod: Pod = ctx.client.get_json(&proto::pod_path(ns, &pod_name)).await?;
    let container = match &args.container {
        Some(c) => Some(c.clone()),
        None => default_container(ctx, &pod)?,
    };

    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(c) = container {
        query.push(("container", c));
    }
    if args.follow {
        query.push(("follow", "true".into()));
    }
    if args.previous {
        query.push(("previous", "true".into()));
    }
    if args.tail >= 0 {
        query.push(("tailLines", args.tail.to_string()));
    }
    if args.timestamps {
        query.push(("timestamps", "true".into()));
    }
    let path = proto::with_query(&proto::pod_log_path(ns, &pod_name), &query);
    let mut chunks = ctx.client.stream(&path).await?;
    while let Some(chunk) = chunks.next_chunk().await? {
        ctx.out.write_all(&chunk)?;
        ctx.out.flush()?;
    }
    Ok(())
}

/// The container to read when none was named: the only one, or the annotated default.
fn default_container(ctx: &mut Ctx<'_>, pod: &Pod) -> anyhow::Result<Option<String>> {
    let names: Vec<&str> = pod
        .spec
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    if names.len() <= 1 {
        return Ok(names.first().map(|n| n.to_string()));
    }
    if let Some(default) = pod.metadata.annotations.get(DEFAULT_CONTAINER_ANNOTATION)
        && names.contains(&default.as_str())
    {
        ctx.eprint(&format!(
            "Defaulted container \"{default}\" out of: {}",
            names.join(", ")
        ))?;
        return Ok(Some(default.clone()));
    }
    bail!(
        "a container name must be specified for pod {}, choose one of: [{}]",
        pod.metadata.name(),
        names.join(" ")
    )
}

async fn pod_of_job(ctx: &mut Ctx<'_>, ns: &str, job_name: &str) -> anyhow::Result<String> {
    let job: Job = ctx.client.get_json(&proto::job_path(ns, job_name)).await?;
    let selector = job
        .spec
        .selector
        .as_ref()
        .map(selector_string)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{LABEL_JOB_NAME}={job_name}"));
    let path = proto::with_query(
        &proto::pods_path(Some(ns)),
        &[("labelSelector", selector.as_str())],
    );
    let list: List<Value> = ctx.client.get_json(&path).await?;
    // Pods of this Job only: the server's selector, re-checked by owner where the pod has one.
    let uid = job.metadata.uid();
    let pods: Vec<Pod> = list
        .items
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Pod>(v).ok())
        .filter(|p| {
            let owners = &p.metadata.owner_references;
            uid.is_empty() || owners.is_empty() || owners.iter().any(|o| o.uid == uid)
        })
        .filter(|p| {
            let labels = &p.metadata.labels;
            job.spec.selector.is_some()
                || labels.get(LABEL_JOB_NAME).map(String::as_str) == Some(job_name)
        })
        .collect();
    let Some(pod) = pick_pod(&pods) else {
        bail!("no pods found for job \"{job_name}\" in namespace \"{ns}\"");
    };
    if pods.len() > 1 {
        ctx.eprint(&format!(
            "Found {} pods, using pod/{}",
            pods.len(),
            pod.metadata.name()
        ))?;
    }
    Ok(pod.metadata.name().to_string())
}

/// A pod still running (or pending) first, then the most recently created, then by name so
/// the choice is stable.
pub fn pick_pod(pods: &[Pod]) -> Option<&Pod> {
    pods.iter().max_by(|a, b| {
        let key = |p: &Pod| (!p.status.phase.is_terminal(), p.metadata.creation_timestamp);
        key(a)
            .cmp(&key(b))
            .then_with(|| b.metadata.name().cmp(a.metadata.name()))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::{Container, PodPhase, Status};
    use crate::cli::testing::{reported, serve};
    use axum::Router;
    use axum::extract::{Path, RawQuery};
    use axum::http::StatusCode;
    use axum::routing::get;
    use serde_json::json;

    fn pod(name: &str, phase: PodPhase, created: &str, containers: &[&str]) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.creation_timestamp = Some(created.parse().unwrap());
        p.metadata.labels.insert(LABEL_JOB_NAME.into(), "pi".into());
        p.status.phase = phase;
        p.spec.containers = containers
            .iter()
            .map(|c| Container {
                name: c.to_string(),
                ..Default::default()
            })
            .collect();
        p
    }

    #[test]
    fn picks_the_running_then_newest_pod() {
        use PodPhase::*;
        let pods = vec![
            pod("a", Failed, "2024-01-15T09:00:00Z", &["c"]),
            pod("b", Running, "2024-01-15T08:00:00Z", &["c"]),
            pod("c", Failed, "2024-01-15T09:30:00Z", &["c"]),
        ];
        assert_eq!(pick_pod(&pods).unwrap().metadata.name(), "b");
        assert_eq!(pick_pod(&pods[..1]).unwrap().metadata.name(), "a");
        let finished = [pods[0].clone(), pods[2].clone()];
        assert_eq!(pick_pod(&finished).unwrap().metadata.name(), "c");
        assert!(pick_pod(&[]).is_none());
    }

    fn router() -> Router {
        Router::new()
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}",
                get(|Path((_ns, name)): Path<(String, String)>| async move {
                    let p = match name.as_str() {
                        "multi" => pod(
                            "multi",
                            PodPhase::Running,
                            "2024-01-15T09:00:00Z",
                            &["a", "b"],
                        ),
                        "pi-new" | "pi-old" => {
                            pod(&name, PodPhase::Running, "2024-01-15T09:00:00Z", &["main"])
                        }
                        _ => {
                            let s = Status::failure(
                                404,
                                "NotFound",
                                format!("pods \"{name}\" not found"),
                            );
                            return (
                                StatusCode::NOT_FOUND,
                                axum::Json(serde_json::to_value(s).unwrap()),
                            );
                        }
                    };
                    (StatusCode::OK, axum::Json(serde_json::to_value(p).unwrap()))
                }),
            )
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}/log",
                get(
                    |Path((_ns, name)): Path<(String, String)>, RawQuery(q): RawQuery| async move {
                        format!("logs of {name}\nquery {}\n", q.unwrap_or_default())
                    },
                ),
            )
            .route(
                "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
                get(|| async {
                    let mut job = Job::default();
                    job.metadata.name = Some("pi".into());
                    axum::Json(job)
                }),
            )
            .route(
                "/api/v1/namespaces/{ns}/pods",
                get(|RawQuery(q): RawQuery| async move {
                    assert_eq!(
                        q.as_deref(),
                        Some("labelSelector=batch.kubernetes.io%2Fjob-name%3Dpi")
                    );
                    let items = [
                        pod(
                            "pi-old",
                            PodPhase::Failed,
                            "2024-01-15T08:00:00Z",
                            &["main"],
                        ),
                        pod(
                            "pi-new",
                            PodPhase::Failed,
                            "2024-01-15T09:00:00Z",
                            &["main"],
                        ),
                    ];
                    axum::Json(json!({"apiVersion": "v1", "kind": "PodList", "items": items}))
                }),
            )
    }

    fn args(target: &str) -> LogsArgs {
        LogsArgs {
            target: target.into(),
            container: None,
            follow: false,
            previous: false,
            tail: -1,
            timestamps: false,
            ns: NamespaceArg {
                namespace: "default".into(),
            },
        }
    }

    #[tokio::test]
    async fn logs_of_a_job_pick_a_pod_and_pass_options() {
        let mut h = serve(router());
        let mut a = args("job/pi");
        a.follow = true;
        a.tail = 5;
        a.timestamps = true;
        run(&mut h.ctx(), a).await.unwrap();
        assert_eq!(
            h.out(),
            "logs of pi-new\nquery container=main&follow=true&tailLines=5&timestamps=true\n"
        );
        assert_eq!(h.err(), "Found 2 pods, using pod/pi-new\n");
    }

    #[tokio::test]
    async fn several_containers_need_a_name() {
        let mut h = serve(router());
        let err = run(&mut h.ctx(), args("multi")).await.unwrap_err();
        assert_eq!(
            reported(&err),
            "error: a container name must be specified for pod multi, choose one of: [a b]\n"
        );
        let mut a = args("pod/multi");
        a.container = Some("b".into());
        a.previous = true;
        run(&mut h.ctx(), a).await.unwrap();
        assert_eq!(h.out(), "logs of multi\nquery container=b&previous=true\n");
        let err = run(&mut h.ctx(), args("gone")).await.unwrap_err();
        assert_eq!(
            reported(&err),
            "Error from server (NotFound): pods \"gone\" not found\n"
        );
    }
}
