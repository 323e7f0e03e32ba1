//! `jobvisor validate FILE|DIR…`: check manifest files offline, exactly as the daemon will.
//!
//! Uses the daemon's own loader ([`crate::manifest::load_path`]), so "ok" here means the
//! daemon accepts the file. Directories expand like `apply -f DIR`. Warnings go to stderr as
//! `Warning: …` and do not fail; any error makes the exit code 1 after every file is checked.

use anyhow::bail;

use super::{Ctx, Reported, manifest_files};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files, or directories of them (their *.yaml, *.yml, *.json).
    #[arg(value_name = "FILE|DIR", required = true)]
    pub paths: Vec<std::path::PathBuf>,
}

pub fn run(ctx: &mut Ctx<'_>, args: ValidateArgs) -> anyhow::Result<()> {
    let files = manifest_files(&args.paths)?;
    if files.is_empty() {
        bail!("no manifest files found (looked for *.yaml, *.yml and *.json)");
    }
    let mut failed = false;
    for path in &files {
        let report = crate::watch::load_path(path);
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
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
