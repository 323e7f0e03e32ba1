//! `jobvisor apply -f FILE|DIR|-`: kubectl's apply, by object identity.
//!
//! Each object of each file is sent on its own (`POST /apis/jobvisor.io/v1/manifests`, the
//! object as JSON, as kubectl sends it): the daemon looks it up by kind, namespace and name
//! and updates it in the file apply wrote for it, or writes a new file named after it, or
//! refuses (409) when a file apply did not write defines it (see `daemon/writes.rs`).
//!
//! Every file is checked here first with the daemon's own loader, so its errors name the
//! file, line and column. A file with an error sends nothing (a file is all or nothing for
//! the watcher too); the other files go ahead, and the exit code is 1 if anything failed, as
//! with kubectl. Output is kubectl's: `job.batch/x created`, `configured` or `unchanged`.
//! Only whether a container without `command` has an image alias is left to the daemon,
//! whose config holds the table (its refusal comes back as a 422 Invalid).

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde_json::Value;

use super::{Ctx, Reported, manifest_texts};
use crate::manifest::{self, ObjectId};
use crate::proto;

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A manifest file, a directory of them (its *.yaml, *.yml, *.json; not recursive), or
    /// `-` for standard input.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR|-",
        required = true
    )]
    pub files: Vec<PathBuf>,
}

pub async fn run(ctx: &mut Ctx<'_>, args: ApplyArgs) -> anyhow::Result<()> {
    let mut failed = false;
    let mut objects = 0usize;
    for (path, text) in manifest_texts(&args.files)? {
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                ctx.eprint(&format!("error: {}: {e}", path.display()))?;
                failed = true;
                continue;
            }
        };
        let Some(checked) = check(ctx, &path, &text)? else {
            failed = true;
            continue;
        };
        for (id, object) in checked {
            objects += 1;
            if !apply_one(ctx, &id, &object).await? {
                failed = true;
            }
        }
    }
    if objects == 0 && !failed {
        bail!("no objects passed to apply");
    }
    if failed { Err(Reported.into()) } else { Ok(()) }
}

/// The file's objects, or `None` after printing its errors. Warnings are printed either way.
fn check(
    ctx: &mut Ctx<'_>,
    path: &Path,
    text: &str,
) -> anyhow::Result<Option<Vec<(ObjectId, Value)>>> {
    // The daemon judges containers without `command` against its own image table.
    let report = manifest::load(path, text, None);
    for warning in &report.warnings {
        ctx.eprint(&format!("Warning: {warning}"))?;
    }
    for error in &report.errors {
        ctx.eprint(&format!("error: {error}"))?;
    }
    Ok(report.errors.is_empty().then_some(report.objects))
}

/// Sends one object and prints what became of it; `false` when the daemon refused it.
async fn apply_one(ctx: &mut Ctx<'_>, id: &ObjectId, object: &Value) -> anyhow::Result<bool> {
    let body = serde_json::to_string(object)?;
    match ctx
        .client
        .post_text::<Value>(&proto::manifests_path(), body)
        .await
    {
        Ok(answer) => {
            ctx.print(&format!("{id} {}\n", action(&answer, id)))?;
            Ok(true)
        }
        // A daemon that is not there fails every object the same way: stop at once.
        Err(e @ proto::ApiError::Connect { .. }) => Err(e.into()),
        Err(e) => {
            let mut line = Vec::new();
            super::report(&e.into(), &mut line);
            ctx.err.write_all(&line)?;
            Ok(false)
        }
    }
}

/// kubectl's word for what the daemon did with `id`: its entry's `action` in the answer.
fn action<'a>(answer: &'a Value, id: &ObjectId) -> &'a str {
    answer
        .get("objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|o| {
            o["kind"] == id.kind.resource().name
                && o["name"] == id.name.as_str()
                && o["namespace"] == id.namespace.as_str()
        })
        .and_then(|o| o["action"].as_str())
        .unwrap_or("configured")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::Status;
    use crate::cli::testing::{reported, serve};
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;
    use serde_json::json;

    /// A daemon that creates anything but a Job named `taken`, and counts what it was sent.
    fn router(sent: std::sync::Arc<std::sync::Mutex<Vec<Value>>>) -> Router {
        Router::new().route(
            "/apis/jobvisor.io/v1/manifests",
            post(move |body: String| async move {
                let object: Value = serde_json::from_str(&body).unwrap();
                sent.lock().unwrap().push(object.clone());
                let name = object["metadata"]["name"].as_str().unwrap_or("").to_string();
                if name == "taken" {
                    let s = Status::failure(
                        409,
                        "AlreadyExists",
                        "jobs.batch \"taken\" already exists, defined in /m/taken.yaml, a file apply did not write: edit that file instead (apply changes only the files it wrote)",
                    );
                    return (StatusCode::CONFLICT, axum::Json(serde_json::to_value(s).unwrap()));
                }
                let answer = json!({
                    "path": format!("/m/job.batch_default_{name}.yaml"), "state": "Applied",
                    "objects": [{"kind": "Job", "namespace": "default", "name": name, "action": "created"}]
                });
                (StatusCode::CREATED, axum::Json(answer))
            }),
        )
    }

    fn job(name: &str) -> String {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n        command: [\"true\"]\n"
        )
    }

    fn args(files: &[&Path]) -> ApplyArgs {
        ApplyArgs {
            files: files.iter().map(|p| p.to_path_buf()).collect(),
        }
    }

    #[tokio::test]
    async fn each_valid_object_is_sent_and_each_invalid_file_reported() {
        let sent = std::sync::Arc::default();
        let mut h = serve(router(std::sync::Arc::clone(&sent)));
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.yaml"), format!("{}---\n{}", job("a1"), job("a2"))).unwrap();
        std::fs::write(
            d.join("b.yml"),
            job("b").replace("spec:\n  template", "spec:\n  backoffLimit: -1\n  template"),
        )
        .unwrap();
        std::fs::write(d.join("c.json"), r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"c"},"spec":{"completions":"3"}}"#).unwrap();
        std::fs::write(d.join("d.yaml"), job("taken")).unwrap();
        std::fs::write(d.join(".hidden.yaml"), job("h")).unwrap();
        std::fs::write(d.join("notes.txt"), "x").unwrap();
        let err = run(&mut h.ctx(), args(&[d])).await.unwrap_err();
        assert!(err.downcast_ref::<Reported>().is_some());
        assert_eq!(
            h.out(),
            "job.batch/a1 created\njob.batch/a2 created\n",
            "the valid objects are applied"
        );
        let stderr = h.err();
        let b = d.join("b.yml").display().to_string();
        let c = d.join("c.json").display().to_string();
        assert_eq!(
            stderr,
            format!(
                "error: {b}: The Job \"b\" is invalid: spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0\n\
                 error: {c}:1:87: spec.completions: cannot unmarshal string into a field of type int32\n\
                 Error from server (AlreadyExists): jobs.batch \"taken\" already exists, defined in /m/taken.yaml, a file apply did not write: edit that file instead (apply changes only the files it wrote)\n"
            )
        );
        // Sent as written, as JSON: no defaults filled in.
        let sent = sent.lock().unwrap();
        let names: Vec<&str> = sent
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a1", "a2", "taken"]);
        assert!(sent[0]["spec"].get("backoffLimit").is_none());
    }

    #[tokio::test]
    async fn nothing_is_sent_for_a_path_that_is_not_there() {
        let sent = std::sync::Arc::default();
        let mut h = serve(router(std::sync::Arc::clone(&sent)));
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.yaml");
        std::fs::write(&good, job("g")).unwrap();
        let err = run(
            &mut h.ctx(),
            args(&[&good, &dir.path().join("missing.yaml")]),
        )
        .await
        .unwrap_err();
        assert!(
            reported(&err).contains("does not exist"),
            "{}",
            reported(&err)
        );
        assert!(sent.lock().unwrap().is_empty());

        let empty = dir.path().join("empty.yaml");
        std::fs::write(&empty, "# nothing\n").unwrap();
        let err = run(&mut h.ctx(), args(&[&empty])).await.unwrap_err();
        assert_eq!(reported(&err), "error: no objects passed to apply\n");
    }
}
