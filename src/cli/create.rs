//! `jobvisor create cronjob|job NAME …`: kubectl's imperative `create` (`create_cronjob.go`,
//! `create_job.go`).
//!
//! With `--image`, the manifest is the one `kubectl create … --dry-run=client -o yaml` prints
//! (one container named NAME running the words after `--`; `restartPolicy` `OnFailure` for a
//! CronJob unless `--restart` says otherwise, `Never` for a Job; the Job template named NAME)
//! minus the empty fields kubectl prints that would not load cleanly here
//! (`creationTimestamp: null`, `resources: {}`, `status: {}`). It is checked with the
//! daemon's own loader, then written into the manifests directory through the apply path
//! (`POST /apis/jobvisor.io/v1/manifests?create=true`): a file marked as apply's, as `apply`
//! writes. Unlike apply, an object that exists already is refused (409 AlreadyExists).
//!
//! `create job NAME --from=cronjob/CRON` builds the Job as kubectl's `createJobFromCronJob`
//! does (the template's labels, annotations and spec, the annotation
//! `cronjob.kubernetes.io/instantiate: manual`, a controller reference to the CronJob) and
//! POSTs it to the jobs collection: the daemon creates it owned by the CronJob, with no file,
//! and deletes it with the CronJob.
//!
//! `--dry-run=client` prints what would be created and creates nothing. Errors read like
//! kubectl's: `error: failed to create cronjob: cronjobs.batch "x" already exists`.

use std::path::Path;

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

use super::format::{to_json, to_yaml};
use super::{Ctx, Kind, split_type_name};
use crate::api::{
    ANNOTATION_INSTANTIATE, CRONJOB_API_VERSION, CronJob, JOB_API_VERSION, Job, Labels, ObjectMeta,
    OwnerReference,
};
use crate::manifest::{self, ObjectId};
use crate::proto::{self, ApiError};

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(subcommand)]
    pub what: Create,
}

#[derive(Debug, clap::Subcommand)]
pub enum Create {
    /// Create a cronjob with the given name and schedule (its manifest is written into the
    /// manifests directory, as apply writes one).
    #[command(visible_alias = "cj")]
    Cronjob(CronJobArgs),
    /// Create a job with the given name: from --image (its manifest is written into the
    /// manifests directory), or from a cronjob's template (--from=cronjob/NAME).
    Job(JobArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    jobvisor create cronjob my-job --image=busybox --schedule=\"*/1 * * * *\" -- date\n  \
    jobvisor create cronjob nightly --image=busybox --schedule=\"30 21 * * *\" --restart=Never -- sh -c 'echo hi'")]
pub struct CronJobArgs {
    /// The CronJob's name (also its container's and its Job template's).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The image (recorded and shown; jobvisor runs the command on the host).
    #[arg(long, value_name = "IMAGE", required = true)]
    pub image: String,
    /// A cron schedule, e.g. "*/5 * * * *" or "@daily".
    #[arg(long, value_name = "SCHEDULE", required = true)]
    pub schedule: String,
    /// The pods' restartPolicy: OnFailure or Never.
    #[arg(long, value_name = "POLICY", default_value = "OnFailure")]
    pub restart: String,
    #[command(flatten)]
    pub common: CommonArgs,
    /// The command to run and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    jobvisor create job my-job --image=busybox -- date\n  \
    jobvisor create job test-job --from=cronjob/a-cronjob")]
pub struct JobArgs {
    /// The Job's name (also its container's, with --image).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The image (recorded and shown; jobvisor runs the command on the host).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The cronjob whose Job template to instantiate: cronjob/NAME.
    #[arg(long, value_name = "cronjob/NAME")]
    pub from: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// The command to run and its arguments, after `--` (with --image).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The namespace (default: default).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
    /// `client`: only print the object that would be created.
    #[arg(long, value_name = "STRATEGY", default_value = "none", value_parser = ["none", "client", "server"])]
    pub dry_run: String,
    /// Print the object created (json, yaml) or its name, instead of `… created`.
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT")]
    pub output: Option<Output>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Json,
    Yaml,
    Name,
}

impl CommonArgs {
    fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    fn dry_run(&self) -> anyhow::Result<bool> {
        match self.dry_run.as_str() {
            "client" => Ok(true),
            "server" => {
                bail!("--dry-run=server is not supported by jobvisor; use --dry-run=client")
            }
            _ => Ok(false),
        }
    }
}

pub async fn run(ctx: &mut Ctx<'_>, args: CreateArgs) -> anyhow::Result<()> {
    match args.what {
        Create::Cronjob(a) => {
            let object = cronjob_manifest(&a);
            create_from_manifest(ctx, Kind::CronJob, &a.name, object, &a.common).await
        }
        Create::Job(a) => match (&a.image, &a.from) {
            (Some(image), None) => {
                let object =
                    job_manifest(&a.name, a.common.namespace.as_deref(), image, &a.command);
                create_from_manifest(ctx, Kind::Job, &a.name, object, &a.common).await
            }
            (None, Some(from)) if a.command.is_empty() => from_cronjob(ctx, &a, from).await,
            (None, Some(_)) => bail!("cannot specify --from and command"),
            _ => bail!("either --image or --from must be specified"),
        },
    }
}

/// `metadata` as kubectl writes it: the name, and the namespace only when `-n` gave one.
fn metadata(name: &str, namespace: Option<&str>) -> Value {
    let mut meta = json!({ "name": name });
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    meta
}

/// The one container of `kubectl create`: named after the object, the image, the command.
fn container(name: &str, image: &str, command: &[String]) -> Value {
    let mut c = json!({ "name": name, "image": image });
    if !command.is_empty() {
        c["command"] = json!(command);
    }
    c
}

/// kubectl's `createCronJob`.
pub fn cronjob_manifest(a: &CronJobArgs) -> Value {
    json!({
        "apiVersion": CRONJOB_API_VERSION,
        "kind": "CronJob",
        "metadata": metadata(&a.name, a.common.namespace.as_deref()),
        "spec": {
            "jobTemplate": {
                "metadata": { "name": a.name },
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [container(&a.name, &a.image, &a.command)],
                            "restartPolicy": a.restart,
                        }
                    }
                }
            },
            "schedule": a.schedule,
        }
    })
}

/// kubectl's `createJob`.
pub fn job_manifest(name: &str, namespace: Option<&str>, image: &str, command: &[String]) -> Value {
    json!({
        "apiVersion": JOB_API_VERSION,
        "kind": "Job",
        "metadata": metadata(name, namespace),
        "spec": {
            "template": {
                "spec": {
                    "containers": [container(name, image, command)],
                    "restartPolicy": "Never",
                }
            }
        }
    })
}

/// kubectl's `createJobFromCronJob`: the template's labels and spec; its annotations over
/// `cronjob.kubernetes.io/instantiate: manual`; a controller reference to the CronJob.
pub fn job_from_cronjob(cj: &CronJob, name: &str, namespace: &str) -> Job {
    let template = &cj.spec.job_template;
    let mut annotations = Labels::default();
    annotations.insert(ANNOTATION_INSTANTIATE.into(), "manual".into());
    for (k, v) in template.metadata.annotations.iter() {
        annotations.insert(k.clone(), v.clone());
    }
    Job {
        api_version: JOB_API_VERSION.into(),
        kind: "Job".into(),
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: template.metadata.labels.clone(),
            annotations,
            owner_references: vec![OwnerReference {
                api_version: CRONJOB_API_VERSION.into(),
                kind: "CronJob".into(),
                name: cj.metadata.name().into(),
                uid: cj.metadata.uid().into(),
                controller: Some(true),
                block_owner_deletion: None,
            }],
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// `create cronjob`, `create job --image`: checked here with the daemon's loader, then
/// written through the apply path, refused if the object exists.
async fn create_from_manifest(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    name: &str,
    object: Value,
    common: &CommonArgs,
) -> anyhow::Result<()> {
    let id = ObjectId {
        kind,
        namespace: common.namespace().to_string(),
        name: name.to_string(),
    };
    if common.dry_run()? {
        return print(ctx, &id, &object, common.output, true);
    }
    check(ctx, kind, &object)?;
    let path = proto::with_query(&proto::manifests_path(), &[("create", "true")]);
    ctx.client
        .post_text::<Value>(&path, serde_json::to_string(&object)?)
        .await
        .map_err(|e| failed(kind, e))?;
    match common.output {
        Some(Output::Json | Output::Yaml) => {
            let created: Value = ctx
                .client
                .get_json(&kind.object_path(&id.namespace, &id.name))
                .await?;
            print(ctx, &id, &created, common.output, false)
        }
        _ => print(ctx, &id, &object, common.output, false),
    }
}

/// How the manifest is named in the loader's messages; cut off again before printing.
const SOURCE: &str = "jobvisor create";

/// The object as the daemon will judge it: its errors refuse it, its warnings are printed.
fn check(ctx: &mut Ctx<'_>, kind: Kind, object: &Value) -> anyhow::Result<()> {
    let report = manifest::load(Path::new(SOURCE), &serde_json::to_string(object)?, None);
    let prefix = format!("{SOURCE}: ");
    let bare = |m: &String| m.strip_prefix(&prefix).unwrap_or(m).to_string();
    for warning in &report.warnings {
        ctx.eprint(&format!("Warning: {}", bare(warning)))?;
    }
    if report.errors.is_empty() {
        return Ok(());
    }
    let errors: Vec<String> = report.errors.iter().map(bare).collect();
    bail!(
        "failed to create {}: {}",
        kind.resource().singular,
        errors.join("\n")
    )
}

/// kubectl's `failed to create job: <the server's message>`.
fn failed(kind: Kind, e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Status(s) => anyhow!(
            "failed to create {}: {}",
            kind.resource().singular,
            s.message
        ),
        other => other.into(),
    }
}

/// `create job NAME --from=cronjob/CRON`.
async fn from_cronjob(ctx: &mut Ctx<'_>, a: &JobArgs, from: &str) -> anyhow::Result<()> {
    let ns = a.common.namespace();
    let cron = match split_type_name(from) {
        Some((Kind::CronJob, name)) if !name.is_empty() => name,
        _ => bail!("from must be an existing cronjob: want --from=cronjob/NAME, got {from:?}"),
    };
    let cj: CronJob = ctx
        .client
        .get_json(&Kind::CronJob.object_path(ns, cron))
        .await?;
    let object = serde_json::to_value(job_from_cronjob(&cj, &a.name, ns))?;
    let id = ObjectId {
        kind: Kind::Job,
        namespace: ns.to_string(),
        name: a.name.clone(),
    };
    if a.common.dry_run()? {
        return print(ctx, &id, &object, a.common.output, true);
    }
    let created: Value = ctx
        .client
        .post_text(
            &Kind::Job.collection_path(Some(ns)),
            serde_json::to_string(&object)?,
        )
        .await
        .map_err(|e| failed(Kind::Job, e))?;
    print(ctx, &id, &created, a.common.output, false)
}

/// What kubectl prints for a created object: `cronjob.batch/x created` (` (dry run)`), its
/// name, or the object.
fn print(
    ctx: &mut Ctx<'_>,
    id: &ObjectId,
    object: &Value,
    output: Option<Output>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let text = match output {
        Some(Output::Json) => to_json(object),
        Some(Output::Yaml) => to_yaml(object),
        Some(Output::Name) => format!("{id}\n"),
        None if dry_run => format!("{id} created (dry run)\n"),
        None => format!("{id} created\n"),
    };
    ctx.print(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::api::Status;
    use crate::cli::testing::{reported, serve};
    use crate::cli::{Cli, Command};
    use axum::Router;
    use axum::extract::{Path as UrlPath, RawQuery};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use clap::Parser;

    fn args(words: &[&str]) -> CreateArgs {
        let cli = Cli::try_parse_from(["jobvisor", "create"].iter().chain(words)).unwrap();
        match cli.command {
            Command::Create(a) => a,
            other => panic!("{other:?}"),
        }
    }

    /// What `kubectl create cronjob hello --image=busybox:1.28 --schedule="*/1 * * * *"
    /// --dry-run=client -o yaml -- date` prints, without `creationTimestamp: null`,
    /// `resources: {}` and `status: {}`; it loads with no error and no warning.
    #[test]
    fn the_manifests_are_kubectls() {
        let Create::Cronjob(a) = args(&[
            "cronjob",
            "hello",
            "--image=busybox:1.28",
            "--schedule=*/1 * * * *",
            "--",
            "date",
        ])
        .what
        else {
            panic!("a cronjob")
        };
        let object = cronjob_manifest(&a);
        assert_eq!(
            to_yaml(&object),
            "apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  jobTemplate:
    metadata:
      name: hello
    spec:
      template:
        spec:
          containers:
          - command:
            - date
            image: busybox:1.28
            name: hello
          restartPolicy: OnFailure
  schedule: \"*/1 * * * *\"
"
        );
        let report = manifest::load(Path::new("c.yaml"), &object.to_string(), None);
        assert_eq!((report.errors, report.warnings), (vec![], vec![]));

        let object = job_manifest(
            "once",
            Some("team"),
            "busybox",
            &["sh".into(), "-c".into(), "echo hi".into()],
        );
        assert_eq!(
            object,
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": "team"},
                "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                    {"name": "once", "image": "busybox", "command": ["sh", "-c", "echo hi"]}]}}}})
        );
        let report = manifest::load(Path::new("j.yaml"), &object.to_string(), None);
        assert_eq!((report.errors, report.warnings), (vec![], vec![]));
    }

    fn cronjob() -> CronJob {
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default", "uid": "c-1"},
            "spec": {"schedule": "@daily", "jobTemplate": {
                "metadata": {"labels": {"app": "hello"}, "annotations": {"a": "1", ANNOTATION_INSTANTIATE: "template"}},
                "spec": {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [
                    {"name": "c", "image": "busybox", "command": ["true"]}]}}}
            }}
        }))
        .unwrap()
    }

    /// `createJobFromCronJob`: the template's labels, annotations (over `instantiate:
    /// manual`) and spec, and a controller reference to the CronJob.
    #[test]
    fn a_job_from_a_cronjob_is_kubectls() {
        let mut cj = cronjob();
        let job = job_from_cronjob(&cj, "manual", "default");
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(
            v["metadata"],
            json!({"name": "manual", "namespace": "default", "labels": {"app": "hello"},
                "annotations": {"a": "1", "cronjob.kubernetes.io/instantiate": "template"},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello", "uid": "c-1", "controller": true}]})
        );
        assert_eq!(job.spec, cj.spec.job_template.spec);
        cj.spec.job_template.metadata.annotations = Labels::default();
        let job = job_from_cronjob(&cj, "manual", "default");
        assert_eq!(
            job.metadata
                .annotations
                .get(ANNOTATION_INSTANTIATE)
                .map(String::as_str),
            Some("manual")
        );
    }

    /// A daemon with the CronJob `hello` that creates any Job but `taken`, recording the
    /// bodies it was sent.
    fn jobs_router(sent: Arc<Mutex<Vec<Value>>>) -> Router {
        Router::new()
            .route(
                "/apis/batch/v1/namespaces/{ns}/cronjobs/{name}",
                get(
                    |UrlPath((_ns, name)): UrlPath<(String, String)>| async move {
                        if name == "hello" {
                            (
                                StatusCode::OK,
                                axum::Json(serde_json::to_value(cronjob()).unwrap()),
                            )
                        } else {
                            let s = Status::failure(
                                404,
                                "NotFound",
                                format!("cronjobs.batch \"{name}\" not found"),
                            );
                            (
                                StatusCode::NOT_FOUND,
                                axum::Json(serde_json::to_value(s).unwrap()),
                            )
                        }
                    },
                ),
            )
            .route(
                "/apis/batch/v1/namespaces/{ns}/jobs",
                post(move |body: String| async move {
                    let job: Value = serde_json::from_str(&body).unwrap();
                    sent.lock().unwrap().push(job.clone());
                    if job["metadata"]["name"] == "taken" {
                        let s = Status::failure(
                            409,
                            "AlreadyExists",
                            "jobs.batch \"taken\" already exists",
                        );
                        return (
                            StatusCode::CONFLICT,
                            axum::Json(serde_json::to_value(s).unwrap()),
                        );
                    }
                    (StatusCode::CREATED, axum::Json(job))
                }),
            )
    }

    #[tokio::test]
    async fn create_job_from_a_cronjob_posts_it_to_the_jobs() {
        let sent = Arc::default();
        let mut h = serve(jobs_router(Arc::clone(&sent)));
        run(
            &mut h.ctx(),
            args(&["job", "manual", "--from=cronjob/hello"]),
        )
        .await
        .unwrap();
        assert_eq!(h.out(), "job.batch/manual created\n");
        {
            let sent = sent.lock().unwrap();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0]["metadata"]["ownerReferences"][0]["uid"], "c-1");
            assert_eq!(sent[0]["spec"]["backoffLimit"], 2);
        }

        let err = run(&mut h.ctx(), args(&["job", "taken", "--from=cj/hello"]))
            .await
            .unwrap_err();
        assert_eq!(
            reported(&err),
            "error: failed to create job: jobs.batch \"taken\" already exists\n"
        );
        let err = run(&mut h.ctx(), args(&["job", "x", "--from=cronjob/nope"]))
            .await
            .unwrap_err();
        assert_eq!(
            reported(&err),
            "Error from server (NotFound): cronjobs.batch \"nope\" not found\n"
        );

        h.out.clear();
        let dry = args(&[
            "job",
            "m",
            "--from=cronjob/hello",
            "--dry-run=client",
            "-o",
            "name",
        ]);
        run(&mut h.ctx(), dry).await.unwrap();
        assert_eq!(h.out(), "job.batch/m\n");
        assert_eq!(sent.lock().unwrap().len(), 2, "nothing sent for a dry run");

        for (words, want) in [
            (
                &["job", "x", "--from=job/hello"][..],
                "error: from must be an existing cronjob: want --from=cronjob/NAME, got \"job/hello\"\n",
            ),
            (
                &["job", "x", "--from=cronjob/hello", "--", "date"][..],
                "error: cannot specify --from and command\n",
            ),
            (
                &["job", "x", "--from=cronjob/hello", "--image=busybox"][..],
                "error: either --image or --from must be specified\n",
            ),
            (
                &["job", "x"][..],
                "error: either --image or --from must be specified\n",
            ),
            (
                &["job", "x", "--image=b", "--dry-run=server"][..],
                "error: --dry-run=server is not supported by jobvisor; use --dry-run=client\n",
            ),
        ] {
            let err = run(&mut h.ctx(), args(words)).await.unwrap_err();
            assert_eq!(reported(&err), want, "{words:?}");
        }
    }

    /// Each request's query and body.
    type Sent = Arc<Mutex<Vec<(Option<String>, Value)>>>;

    /// A daemon whose apply creates anything but `exists`, recording bodies and queries.
    fn apply_router(sent: Sent) -> Router {
        Router::new().route(
            "/apis/jobvisor.io/v1/manifests",
            post(move |RawQuery(q): RawQuery, body: String| async move {
                let object: Value = serde_json::from_str(&body).unwrap();
                sent.lock().unwrap().push((q, object.clone()));
                if object["metadata"]["name"] == "exists" {
                    let s = Status::failure(
                        409,
                        "AlreadyExists",
                        "cronjobs.batch \"exists\" already exists",
                    );
                    return (
                        StatusCode::CONFLICT,
                        axum::Json(serde_json::to_value(s).unwrap()),
                    );
                }
                (StatusCode::CREATED, axum::Json(json!({"state": "Applied"})))
            }),
        )
    }

    #[tokio::test]
    async fn create_cronjob_writes_through_apply_and_refuses_what_exists() {
        let sent = Arc::default();
        let mut h = serve(apply_router(Arc::clone(&sent)));
        let words = [
            "cronjob",
            "nightly",
            "--image=busybox",
            "--schedule=30 21 * * *",
            "--restart=Never",
            "-n",
            "team",
            "--",
            "sh",
            "-c",
            "echo hi",
        ];
        run(&mut h.ctx(), args(&words)).await.unwrap();
        assert_eq!(h.out(), "cronjob.batch/nightly created\n");
        {
            let sent = sent.lock().unwrap();
            let (query, object) = &sent[0];
            assert_eq!(query.as_deref(), Some("create=true"));
            assert_eq!(
                object["metadata"],
                json!({"name": "nightly", "namespace": "team"})
            );
            assert_eq!(object["spec"]["schedule"], "30 21 * * *");
            let pod = &object["spec"]["jobTemplate"]["spec"]["template"]["spec"];
            assert_eq!(pod["restartPolicy"], "Never");
            assert_eq!(
                pod["containers"][0]["command"],
                json!(["sh", "-c", "echo hi"])
            );
        }

        let err = run(
            &mut h.ctx(),
            args(&[
                "cj",
                "exists",
                "--image=b",
                "--schedule=@daily",
                "--",
                "true",
            ]),
        )
        .await
        .unwrap_err();
        assert_eq!(
            reported(&err),
            "error: failed to create cronjob: cronjobs.batch \"exists\" already exists\n"
        );

        // Refused here, with the validation's words, before anything is sent.
        let err = run(
            &mut h.ctx(),
            args(&["cronjob", "bare", "--image=busybox", "--schedule=0 0 * * 8"]),
        )
        .await
        .unwrap_err();
        assert_eq!(
            reported(&err),
            "error: failed to create cronjob: The CronJob \"bare\" is invalid: spec.schedule: Invalid value: \"0 0 * * 8\": day of week: end of range (8) above maximum (6)\n"
        );
        assert_eq!(sent.lock().unwrap().len(), 2);

        h.out.clear();
        let dry = [
            "job",
            "once",
            "--image=busybox",
            "--dry-run=client",
            "--",
            "echo",
            "hi",
        ];
        run(&mut h.ctx(), args(&dry)).await.unwrap();
        assert_eq!(h.out(), "job.batch/once created (dry run)\n");
        assert_eq!(sent.lock().unwrap().len(), 2, "nothing sent for a dry run");
    }
}
