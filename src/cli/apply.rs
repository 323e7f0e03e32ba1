//! `jobvisor apply -f FILE|DIR`: install manifest files into the daemon's manifests directory.
//!
//! Files are the unit, not objects: the daemon runs what its manifests directory holds, so
//! apply uploads each file whole (`PUT /apis/jobvisor.io/v1/manifests/{file name}`) and the
//! daemon validates it again and writes it atomically. Everything is validated here first
//! with [`crate::manifest::load`], on the very text that is then sent, and nothing is sent
//! if any file has an error: a half-applied set of files is worse than none.
//!
//! Output is kubectl's `job.batch/NAME configured` for each object of an applied file. The
//! daemon's answer is the file's `ManifestFile`; an object entry may carry an `action`
//! (`created`, `configured`, `unchanged`) which is printed instead when present. A file the
//! daemon reports `Invalid` or `Conflict` prints its errors and makes the exit code 1.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use serde_json::Value;

use super::{Ctx, Reported, has_manifest_extension, manifest_files};
use crate::api::ManifestFile;
use crate::manifest;
use crate::proto;

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A manifest file, or a directory of them (its *.yaml, *.yml, *.json; not recursive).
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR",
        required = true
    )]
    pub files: Vec<PathBuf>,
}

/// One file, read and checked locally.
struct Checked {
    path: PathBuf,
    file_name: String,
    text: String,
    /// `job.batch/NAME` for each object, in file order.
    objects: Vec<String>,
}

pub async fn run(ctx: &mut Ctx<'_>, args: ApplyArgs) -> anyhow::Result<()> {
    let files = manifest_files(&args.files)?;
    if files.is_empty() {
        bail!("no objects passed to apply");
    }
    let checked = check_all(ctx, &files)?;

    let mut failed = false;
    for file in &checked {
        let path = proto::manifest_path(&file.file_name);
        match ctx.client.put_text::<Value>(&path, file.text.clone()).await {
            Ok(answer) => {
                if !print_answer(ctx, file, &answer)? {
                    failed = true;
                }
            }
            Err(e) => {
                // A daemon that is not there fails every file the same way: stop at once.
                if matches!(e, proto::ApiError::Connect { .. }) {
                    return Err(e.into());
                }
                failed = true;
                let mut line = Vec::new();
                super::report(&e.into(), &mut line);
                ctx.err.write_all(&line)?;
            }
        }
    }
    if failed { Err(Reported.into()) } else { Ok(()) }
}

/// Reads and validates every file, printing all warnings and errors; fails if any error.
fn check_all(ctx: &mut Ctx<'_>, files: &[PathBuf]) -> anyhow::Result<Vec<Checked>> {
    let mut checked = Vec::new();
    let mut errors = 0usize;
    let mut names: HashMap<String, &Path> = HashMap::new();
    for path in files {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !has_manifest_extension(path) {
            ctx.eprint(&format!(
                "error: {}: a manifest file must end in .yaml, .yml or .json",
                path.display()
            ))?;
            errors += 1;
            continue;
        }
        // The daemon keeps files by name in one directory: two with one name would clash.
        if let Some(other) = names.insert(file_name.clone(), path) {
            ctx.eprint(&format!(
                "error: {} and {} have the same file name; the manifests directory can hold only one",
                other.display(),
                path.display()
            ))?;
            errors += 1;
            continue;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                ctx.eprint(&format!("error: {}: {e}", path.display()))?;
                errors += 1;
                continue;
            }
        };
        let report = manifest::load(path, &text);
        for warning in &report.warnings {
            ctx.eprint(&format!("Warning: {warning}"))?;
        }
        for error in &report.errors {
            ctx.eprint(&format!("error: {error}"))?;
        }
        errors += report.errors.len();
        let objects = report
            .jobs
            .iter()
            .map(|j| format!("job.batch/{}", j.metadata.name()))
            .collect();
        checked.push(Checked {
            path: path.clone(),
            file_name,
            text,
            objects,
        });
    }
    if errors > 0 {
        return Err(Reported.into());
    }
    Ok(checked)
}

/// `job.batch`, `cronjob.batch`; other kinds by their lowercase name.
fn kind_prefix(kind: &str) -> String {
    match kind {
        "Job" => "job.batch".to_string(),
        "CronJob" => "cronjob.batch".to_string(),
        other => other.to_lowercase(),
    }
}

/// Prints what became of one file; `false` when the daemon did not take it.
fn print_answer(ctx: &mut Ctx<'_>, file: &Checked, answer: &Value) -> anyhow::Result<bool> {
    let manifest: ManifestFile = serde_json::from_value(answer.clone()).unwrap_or_default();
    if matches!(
        manifest.state,
        crate::api::ManifestState::Invalid | crate::api::ManifestState::Conflict
    ) {
        if manifest.errors.is_empty() {
            ctx.eprint(&format!(
                "error: {}: {}",
                file.path.display(),
                manifest.state
            ))?;
        }
        for error in &manifest.errors {
            ctx.eprint(&format!("error: {error}"))?;
        }
        return Ok(false);
    }
    let actions: Vec<Option<&str>> = answer
        .get("objects")
        .and_then(Value::as_array)
        .map(|objects| {
            objects
                .iter()
                .map(|o| o.get("action").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut lines = String::new();
    if manifest.objects.is_empty() {
        for object in &file.objects {
            lines.push_str(&format!("{object} configured\n"));
        }
    } else {
        for (i, object) in manifest.objects.iter().enumerate() {
            let action = actions.get(i).copied().flatten().unwrap_or("configured");
            lines.push_str(&format!(
                "{}/{} {action}\n",
                kind_prefix(&object.kind),
                object.name
            ));
        }
    }
    if lines.is_empty() {
        // A file with no objects (only comments, say) was still installed.
        lines = format!("manifest.jobvisor.io/{} configured\n", file.file_name);
    }
    ctx.print(&lines)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::Status;
    use crate::cli::testing::{reported, serve};
    use axum::Router;
    use axum::extract::Path as AxPath;
    use axum::http::StatusCode;
    use axum::routing::put;
    use serde_json::json;

    fn router() -> Router {
        Router::new().route(
            "/apis/jobvisor.io/v1/manifests/{file}",
            put(|AxPath(file): AxPath<String>, body: String| async move {
                let answer = match file.as_str() {
                    "bad.yaml" => {
                        let s = Status::failure(
                            422,
                            "Invalid",
                            format!("{file}: spec.template: Required value"),
                        );
                        return (
                            StatusCode::UNPROCESSABLE_ENTITY,
                            axum::Json(serde_json::to_value(s).unwrap()),
                        );
                    }
                    "conflict.yaml" => json!({
                        "path": format!("/m/{file}"), "state": "Conflict", "objects": [],
                        "errors": ["job \"a\" is already defined by /m/other.yaml"]
                    }),
                    _ => json!({
                        "path": format!("/m/{file}"), "state": "Applied",
                        "objects": [
                            {"kind": "Job", "name": format!("from-{}", job_name(&body))},
                            {"kind": "Job", "name": "second", "action": "unchanged"}
                        ]
                    }),
                };
                (StatusCode::OK, axum::Json(answer))
            }),
        )
    }

    /// A valid Job manifest named `name` (the client validates before it uploads).
    fn job(name: &str) -> String {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n        command: [\"true\"]\n"
        )
    }

    fn job_name(text: &str) -> String {
        text.lines()
            .find_map(|l| l.trim().strip_prefix("name: "))
            .unwrap_or("")
            .to_string()
    }

    fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, job(text)).unwrap();
        p
    }

    #[tokio::test]
    async fn uploads_each_file_of_a_directory() {
        let mut h = serve(router());
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", "a");
        write(dir.path(), "b.yml", "b");
        write(dir.path(), ".hidden.yaml", "h");
        write(dir.path(), "readme.md", "r");
        run(
            &mut h.ctx(),
            ApplyArgs {
                files: vec![dir.path().to_path_buf()],
            },
        )
        .await
        .unwrap();
        assert_eq!(
            h.out(),
            "job.batch/from-a configured\njob.batch/second unchanged\njob.batch/from-b configured\njob.batch/second unchanged\n"
        );
    }

    #[tokio::test]
    async fn server_refusals_are_printed_and_fail() {
        let mut h = serve(router());
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "bad.yaml", "x");
        let conflict = write(dir.path(), "conflict.yaml", "x");
        let good = write(dir.path(), "good.yaml", "g");
        let err = run(
            &mut h.ctx(),
            ApplyArgs {
                files: vec![bad, conflict, good],
            },
        )
        .await
        .unwrap_err();
        assert!(err.downcast_ref::<Reported>().is_some());
        assert_eq!(
            h.err(),
            "Error from server (Invalid): bad.yaml: spec.template: Required value\nerror: job \"a\" is already defined by /m/other.yaml\n"
        );
        assert_eq!(
            h.out(),
            "job.batch/from-g configured\njob.batch/second unchanged\n"
        );
    }

    #[tokio::test]
    async fn local_problems_stop_before_anything_is_sent() {
        let mut h = serve(Router::new()); // any request would 404
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let one = write(dir.path(), "same.yaml", "a");
        let two = write(&sub, "same.yaml", "b");
        let txt = write(dir.path(), "notes.txt", "c");
        let err = run(
            &mut h.ctx(),
            ApplyArgs {
                files: vec![one, two, txt],
            },
        )
        .await
        .unwrap_err();
        assert!(err.downcast_ref::<Reported>().is_some());
        let stderr = h.err();
        assert!(stderr.contains("have the same file name"), "{stderr}");
        assert!(
            stderr.contains("must end in .yaml, .yml or .json"),
            "{stderr}"
        );
        assert_eq!(h.out(), "");

        let err = run(
            &mut h.ctx(),
            ApplyArgs {
                files: vec![dir.path().join("missing.yaml")],
            },
        )
        .await
        .unwrap_err();
        assert!(reported(&err).contains("does not exist"));
    }
}
