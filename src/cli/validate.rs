//! `jobvisor validate FILE|DIR…`: check manifest files offline, exactly as the daemon will.
//!
//! Uses the daemon's own loader ([`crate::watch::load_path`]), so "ok" here means the
//! daemon accepts the file. Directories expand like `apply -f DIR`. Warnings go to stderr as
//! `Warning: …` and do not fail; any error makes the exit code 1 after every file is checked.
//! Containers without `command` are judged against the image table of the config the daemon
//! would read: `--config FILE`, else `DIR/config.yaml` with `--root DIR`, else the system
//! one; a default file that does not exist means the built-in table.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Ctx, Reported, manifest_files};
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files, or directories of them (their *.yaml, *.yml, *.json).
    #[arg(value_name = "FILE|DIR", required = true)]
    pub paths: Vec<PathBuf>,
    /// The daemon's config file, for its `images:` table (default: as the daemon finds it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The global `--root`, which `main` copies here: the daemon's config is under it.
    #[arg(skip)]
    pub root: Option<PathBuf>,
}

pub fn run(ctx: &mut Ctx<'_>, args: ValidateArgs) -> anyhow::Result<()> {
    let config = Config::find(args.root.as_deref(), args.config.as_deref())
        .context("reading the daemon's config for its images: table")?;
    let files = manifest_files(&args.paths)?;
    if files.is_empty() {
        bail!("no manifest files found (looked for *.yaml, *.yml and *.json)");
    }
    let mut failed = false;
    for path in &files {
        let report = crate::watch::load_path(path, Some(&config.images));
        for warning in &report.warnings {
            ctx.eprint(&format!("Warning: {warning}"))?;
        }
        for error in &report.errors {
            ctx.eprint(&format!("error: {error}"))?;
        }
        if report.errors.is_empty() {
            let n = report.jobs.len() + report.pods.len() + report.cronjobs.len();
            let noun = if n == 1 { "object" } else { "objects" };
            ctx.print(&format!("{}: ok ({n} {noun})\n", path.display()))?;
        } else {
            failed = true;
        }
    }
    if failed { Err(Reported.into()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::cli::testing::serve;

    #[tokio::test]
    async fn reports_each_file() {
        let mut h = serve(axum::Router::new());
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.yaml");
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, command: [\"true\"]}]\n";
        let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: i, command: [\"true\"]}]\n";
        let cronjob = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj}\nspec:\n  schedule: \"@daily\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: c, image: i, command: [\"true\"]}]\n";
        std::fs::write(&good, format!("{pod}---\n{job}---\n{cronjob}")).unwrap();
        run(
            &mut h.ctx(),
            ValidateArgs {
                paths: vec![dir.path().to_path_buf()],
                config: None,
                root: Some(dir.path().to_path_buf()),
            },
        )
        .unwrap();
        // Jobs, Pods and CronJobs alike are counted.
        assert_eq!(h.out(), format!("{}: ok (3 objects)\n", good.display()));

        let missing = dir.path().join("missing.yaml");
        let err = run(
            &mut h.ctx(),
            ValidateArgs {
                paths: vec![good, missing],
                config: None,
                root: Some(dir.path().to_path_buf()),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    /// A container without `command` is judged against the image table of the config the
    /// daemon would read: `--root`'s, else `--config`'s; none means the built-in table.
    #[tokio::test]
    async fn images_come_from_the_config_the_daemon_reads() {
        let mut h = serve(axum::Router::new());
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("web.yaml");
        let job = |image: &str| {
            format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: c, image: {image}}}]\n"
            )
        };
        let args = |config: Option<PathBuf>, root: Option<PathBuf>| ValidateArgs {
            paths: vec![file.clone()],
            config,
            root,
        };
        let root_dir = Some(root.path().to_path_buf());
        // busybox is built in.
        std::fs::write(&file, job("busybox")).unwrap();
        run(&mut h.ctx(), args(None, root_dir.clone())).unwrap();
        std::fs::write(&file, job("nginx")).unwrap();
        assert!(run(&mut h.ctx(), args(None, root_dir.clone())).is_err());
        assert_eq!(
            h.err(),
            format!(
                "error: {}: The Job \"j\" is invalid: spec.template.spec.containers[0].command: Required value: image \"docker.io/library/nginx:latest\" has no entry under images: in the daemon config; set command, or add the image there\n",
                file.display()
            )
        );
        std::fs::write(
            root.path().join("config.yaml"),
            "images:\n  nginx: {cmd: [nginx]}\n",
        )
        .unwrap();
        run(&mut h.ctx(), args(None, root_dir.clone())).unwrap();
        // --config wins over the root's file, and must exist.
        let other = root.path().join("other.yaml");
        std::fs::write(&other, "").unwrap();
        assert!(run(&mut h.ctx(), args(Some(other), root_dir.clone())).is_err());
        let missing = root.path().join("missing.yaml");
        let err = run(&mut h.ctx(), args(Some(missing), root_dir)).unwrap_err();
        assert!(format!("{err:#}").contains("missing.yaml"), "{err:#}");
    }
}
