//! `jobvisor delete cronjob|job|pod NAME…`: kubectl's `delete`.
//!
//! The daemon removes the CronJob, Job or bare Pod and the manifest file that defines it,
//! because an object whose file stayed would come straight back; what an object owns goes
//! with it (a CronJob's Jobs, a Job's pods) by `--cascade`; a pod a Job created is deleted
//! (and replaced by its Job) and a Job a CronJob created is deleted, as in Kubernetes.
//! When that file defines other objects too, the daemon refuses with 409 Conflict and says
//! which; its message is printed as-is. Several names are deleted one by one like kubectl:
//! a failure is printed and the others still go ahead; the exit code is 1 if any failed.
//!
//! `delete -f FILE|DIR|-` deletes the objects a manifest names, by kind, namespace and name,
//! the same way; only what names them is read, so a file that no longer validates still
//! names what to delete.

use std::path::PathBuf;

use anyhow::bail;

use super::{Ctx, Kind, NamespaceArg, Reported, manifest_texts, split_type_name};
use crate::manifest::ObjectId;

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// `cronjob` (cj, cronjobs), `job` (jobs, jobs.batch), `pod` (po, pods), or TYPE/NAME.
    #[arg(value_name = "TYPE", required_unless_present = "files")]
    pub resource: Option<String>,
    /// The objects to delete.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Delete the objects a manifest file names (a directory's *.yaml, *.yml, *.json; `-`
    /// for standard input).
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR|-",
        conflicts_with = "resource"
    )]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub ns: NamespaceArg,
    /// kubectl's `--cascade`: `background` (the default: the object goes at once, what it
    /// owns after it), `foreground` (it waits for what it owns to go first) or `orphan`
    /// (what it owns is left running, no longer owned).
    #[arg(long, value_name = "MODE", default_value = "background", value_parser = ["background", "foreground", "orphan"])]
    pub cascade: String,
}

/// `--cascade` as the API's `propagationPolicy`.
fn propagation(cascade: &str) -> &'static str {
    match cascade {
        "foreground" => "Foreground",
        "orphan" => "Orphan",
        _ => "Background",
    }
}

pub async fn run(ctx: &mut Ctx<'_>, args: DeleteArgs) -> anyhow::Result<()> {
    if !args.files.is_empty() {
        return delete_files(ctx, &args.files, propagation(&args.cascade)).await;
    }
    let Some(resource) = &args.resource else {
        bail!("you must specify the type of resource to delete");
    };
    // kubectl also takes `delete job/a job/b`.
    let mut names = Vec::new();
    let mut kind = None;
    for word in std::iter::once(resource).chain(&args.names) {
        match split_type_name(word) {
            Some((k, name)) => {
                kind.get_or_insert(k);
                if kind != Some(k) {
                    bail!("delete takes one kind at a time");
                }
                names.push(name.to_string());
            }
            None if kind.is_none() && names.is_empty() => kind = Some(Kind::parse_or_err(word)?),
            None => names.push(word.clone()),
        }
    }
    let kind = match kind {
        Some(k @ (Kind::CronJob | Kind::Job | Kind::Pod)) => k,
        Some(k) if crate::manifest::declared::is_declared(k) => k,
        Some(Kind::Manifest) => {
            bail!(
                "manifests are deleted by deleting their objects (or removing the file from the manifests directory)"
            )
        }
        Some(other) => bail!("{} cannot be deleted", other.resource()),
        None => bail!("you must specify the type of resource to delete"),
    };
    if names.is_empty() {
        bail!("resource(s) were provided, but no name was specified");
    }
    let ns = &args.ns.namespace;
    let ids: Vec<ObjectId> = names
        .into_iter()
        .map(|name| ObjectId {
            kind,
            namespace: ns.clone(),
            name,
        })
        .collect();
    // One name: its error is the command's, printed as kubectl prints it.
    let single = ids.len() == 1;
    let failed = delete_each(ctx, &ids, propagation(&args.cascade), single, false).await?;
    if failed { Err(Reported.into()) } else { Ok(()) }
}

/// Deletes each object, printing `<kind> "<name>" deleted` or the error, as kubectl does;
/// the others still go ahead. True when any failed. With `single`, the one error is
/// returned instead; with `stop_when_unreachable`, a daemon that is not there (which fails
/// every object alike) stops at once.
async fn delete_each(
    ctx: &mut Ctx<'_>,
    ids: &[ObjectId],
    propagation: &str,
    single: bool,
    stop_when_unreachable: bool,
) -> anyhow::Result<bool> {
    let mut failed = false;
    for id in ids {
        let path = crate::proto::with_query(
            &id.kind.object_path(&id.namespace, &id.name),
            &[("propagationPolicy", propagation)],
        );
        match ctx.client.delete(&path).await {
            Ok(_) => ctx.print(&format!(
                "{} \"{}\" deleted\n",
                id.kind.name_prefix(),
                id.name
            ))?,
            Err(e) if single => return Err(e.into()),
            Err(e @ crate::proto::ApiError::Connect { .. }) if stop_when_unreachable => {
                return Err(e.into());
            }
            Err(e) => {
                failed = true;
                let mut line = Vec::new();
                super::report(&e.into(), &mut line);
                ctx.err.write_all(&line)?;
            }
        }
    }
    Ok(failed)
}

/// `delete -f`: every object the files name, one by one; a file that names nothing readable
/// is reported and the others still go ahead.
async fn delete_files(
    ctx: &mut Ctx<'_>,
    files: &[PathBuf],
    propagation: &str,
) -> anyhow::Result<()> {
    let mut failed = false;
    let mut ids: Vec<ObjectId> = Vec::new();
    for (path, text) in manifest_texts(files)? {
        let named = text
            .map_err(|e| vec![format!("{}: {e}", path.display())])
            .and_then(|text| crate::manifest::identities(&path, &text));
        match named {
            Ok(named) => ids.extend(named),
            Err(errors) => {
                failed = true;
                for e in errors {
                    ctx.eprint(&format!("error: {e}"))?;
                }
            }
        }
    }
    if ids.is_empty() && !failed {
        bail!("no objects passed to delete");
    }
    failed |= delete_each(ctx, &ids, propagation, false, true).await?;
    if failed { Err(Reported.into()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::Status;
    use crate::cli::testing::{reported, serve};
    use axum::Router;
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::routing::delete;

    fn router() -> Router {
        Router::new().route(
            "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
            delete(|Path((_ns, name)): Path<(String, String)>| async move {
                let (code, status) = match name.as_str() {
                    "a" | "b" => (StatusCode::OK, Status {
                        kind: "Status".into(),
                        api_version: "v1".into(),
                        status: "Success".into(),
                        details: Some(serde_json::json!({"name": name, "group": "batch", "kind": "jobs"})),
                        ..Default::default()
                    }),
                    "shared" => (
                        StatusCode::CONFLICT,
                        Status::failure(
                            409,
                            "Conflict",
                            "jobs.batch \"shared\" is defined in /m/all.yaml together with job/other: edit the file instead",
                        ),
                    ),
                    _ => (
                        StatusCode::NOT_FOUND,
                        Status::failure(404, "NotFound", format!("jobs.batch \"{name}\" not found")),
                    ),
                };
                (code, axum::Json(status))
            }),
        )
    }

    fn args(words: &[&str]) -> DeleteArgs {
        DeleteArgs {
            resource: Some(words[0].into()),
            names: words[1..].iter().map(|w| w.to_string()).collect(),
            files: Vec::new(),
            ns: NamespaceArg {
                namespace: "default".into(),
            },
            cascade: "background".into(),
        }
    }

    #[tokio::test]
    async fn deletes_and_reports_like_kubectl() {
        let mut h = serve(router());
        run(&mut h.ctx(), args(&["job", "a"])).await.unwrap();
        run(&mut h.ctx(), args(&["jobs/b"])).await.unwrap();
        assert_eq!(
            h.out(),
            "job.batch \"a\" deleted\njob.batch \"b\" deleted\n"
        );

        let err = run(&mut h.ctx(), args(&["job", "shared"]))
            .await
            .unwrap_err();
        assert_eq!(
            reported(&err),
            "Error from server (Conflict): jobs.batch \"shared\" is defined in /m/all.yaml together with job/other: edit the file instead\n"
        );

        h.out.clear();
        let err = run(&mut h.ctx(), args(&["job", "x", "a"]))
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<Reported>().is_some());
        assert_eq!(
            h.err(),
            "Error from server (NotFound): jobs.batch \"x\" not found\n"
        );
        assert_eq!(h.out(), "job.batch \"a\" deleted\n");

        let err = run(&mut h.ctx(), args(&["events", "e"])).await.unwrap_err();
        assert_eq!(reported(&err), "error: events cannot be deleted\n");
    }

    /// A CronJob is deleted like a Job, at its own path, with the cascade asked for (its
    /// Jobs go with it unless orphaned).
    #[tokio::test]
    async fn deletes_cronjobs() {
        let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
        let record = std::sync::Arc::clone(&seen);
        let router = Router::new().route(
            "/apis/batch/v1/namespaces/{ns}/cronjobs/{name}",
            delete(
                move |Path((_ns, name)): Path<(String, String)>,
                      axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                    record.lock().unwrap().push(format!("{name}?{}", q.unwrap_or_default()));
                    axum::Json(serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
                },
            ),
        );
        let mut h = serve(router);
        run(&mut h.ctx(), args(&["cronjob", "hello"]))
            .await
            .unwrap();
        let mut orphan = args(&["cj/nightly"]);
        orphan.cascade = "orphan".into();
        run(&mut h.ctx(), orphan).await.unwrap();
        assert_eq!(
            h.out(),
            "cronjob.batch \"hello\" deleted\ncronjob.batch \"nightly\" deleted\n"
        );
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "hello?propagationPolicy=Background",
                "nightly?propagationPolicy=Orphan"
            ]
        );
    }

    /// `delete -f`: each object the files name, by identity, even from a file that no longer
    /// validates; a file naming nothing readable is reported, the rest still go.
    #[tokio::test]
    async fn delete_f_deletes_what_the_files_name() {
        let mut h = serve(router());
        let dir = tempfile::tempdir().unwrap();
        let jobs = dir.path().join("jobs.yaml");
        // `completions: "3"` makes it invalid; its names still count.
        std::fs::write(
            &jobs,
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: a}\nspec: {completions: \"3\"}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\n",
        )
        .unwrap();
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, "kind: [\n").unwrap();
        let mut a = args(&["ignored"]);
        a.resource = None;
        a.files = vec![jobs, broken.clone()];
        let err = run(&mut h.ctx(), a).await.unwrap_err();
        assert!(err.downcast_ref::<Reported>().is_some());
        assert_eq!(h.out(), "job.batch \"a\" deleted\n");
        assert_eq!(
            h.err(),
            format!(
                "error: {}:1:7: unclosed bracket '['\nError from server (NotFound): jobs.batch \"x\" not found\n",
                broken.display()
            )
        );
        let empty = dir.path().join("empty.yaml");
        std::fs::write(&empty, "").unwrap();
        let mut a = args(&["ignored"]);
        a.resource = None;
        a.files = vec![empty];
        let err = run(&mut h.ctx(), a).await.unwrap_err();
        assert_eq!(reported(&err), "error: no objects passed to delete\n");
    }
}
