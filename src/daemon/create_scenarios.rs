//! Objects created through the API, on the fake clock: a Job POSTed for a CronJob
//! (`create job --from=cronjob/…`), and `create`'s apply, which refuses what exists.

// A `Status` is the API's answer itself.
#![allow(clippy::result_large_err)]

use serde_json::{Value, json};

use super::requests::Request;
use super::testing::{Harness, cronjob};
use super::world::key;
use crate::api::{Kind, Propagation, Status};
use crate::config::Config;

fn cron_uid(h: &Harness, name: &str) -> String {
    h.daemon.world.cronjobs[&key("default", name)]
        .cronjob
        .metadata
        .uid()
        .to_string()
}

/// What `create job NAME --from=cronjob/CRON` sends (`createJobFromCronJob`).
fn manual_job(name: &str, cron: &str, uid: &str) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cron, "uid": uid, "controller": true}],
        },
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox", "command": ["sleep"]}]}}},
    })
}

fn post(h: &mut Harness, kind: Kind, body: &Value) -> Result<Value, Status> {
    let body = body.to_string();
    h.ask(|reply| Request::Create {
        kind,
        namespace: "default".into(),
        body,
        reply,
    })
}

fn reasons(h: &Harness, involved: &str) -> Vec<String> {
    h.daemon
        .world
        .events
        .iter()
        .filter(|e| e.involved_object.name == involved)
        .map(|e| e.reason.clone())
        .collect()
}

/// A Job POSTed for a CronJob is created as a slot's Job is (no file, owned by the
/// CronJob); the CronJob's controller sees a Job it did not make (`UnexpectedJob`) and counts
/// it neither in `active` nor for `Forbid`; deleting the CronJob deletes it.
#[test]
fn a_posted_job_belongs_to_its_cronjob_but_is_not_one_of_its_runs() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.advance(30);
    h.apply(
        "c.yaml",
        &cronjob("c", "* * * * *", "sleep", "  concurrencyPolicy: Forbid\n"),
    );
    let uid = cron_uid(&h, "c");
    let created = post(&mut h, Kind::Job, &manual_job("manual", "c", &uid)).expect("created");
    assert_eq!(created["metadata"]["name"], "manual");
    assert_eq!(
        created["metadata"]["ownerReferences"][0]["uid"],
        uid.as_str()
    );
    assert_eq!(created["spec"]["backoffLimit"], 6, "Job defaults applied");
    let rec = h
        .daemon
        .world
        .job(&key("default", "manual"))
        .expect("the Job");
    assert_eq!(rec.source, None, "no file defines it");
    assert_eq!(
        rec.job.metadata.uid(),
        created["metadata"]["uid"].as_str().unwrap()
    );
    h.run();
    assert_eq!(h.runtime.starts().len(), 1, "its pod started");
    assert!(
        reasons(&h, "c").contains(&"UnexpectedJob".to_string()),
        "{:?}",
        reasons(&h, "c")
    );
    let status = h.daemon.world.cronjobs[&key("default", "c")]
        .cronjob
        .status
        .clone()
        .unwrap_or_default();
    assert!(status.active.is_empty(), "{status:?}");

    // The slot comes while the manual Job runs: Forbid does not hold it back.
    h.advance_to_next_slot();
    let status = h.daemon.world.cronjobs[&key("default", "c")]
        .cronjob
        .status
        .clone()
        .unwrap_or_default();
    let active: Vec<&str> = status.active.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_ne!(active[0], "manual");
    assert!(!reasons(&h, "c").contains(&"JobAlreadyActive".to_string()));

    h.daemon
        .delete_cronjob(&key("default", "c"), "test", Propagation::Background);
    h.daemon.turn();
    h.run();
    assert!(
        !h.daemon.world.contains_job(&key("default", "manual")),
        "deleted with its CronJob"
    );
}

#[test]
fn a_posted_job_is_refused_unless_a_cronjob_of_that_uid_owns_it() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("c.yaml", &cronjob("c", "@yearly", "true", ""));
    h.apply("j.yaml", &super::testing::job("taken", "Never", "true", ""));
    let uid = cron_uid(&h, "c");

    let mut unowned = manual_job("x", "c", &uid);
    unowned["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    let s = post(&mut h, Kind::Job, &unowned).unwrap_err();
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert!(
        s.message.starts_with("jobs.batch \"x\" is forbidden: jobvisor creates Jobs from manifest files: use `jobvisor apply -f FILE` or `jobvisor create job x --image=IMAGE -- COMMAND`"),
        "{}",
        s.message
    );

    let s = post(&mut h, Kind::Job, &manual_job("x", "c", "not-its-uid")).unwrap_err();
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        s.message,
        "Job.batch \"x\" is invalid: metadata.ownerReferences[0].uid: Invalid value: \"not-its-uid\": not the uid of CronJob \"c\" in namespace \"default\""
    );
    let details = s.details.unwrap();
    assert_eq!(
        details["causes"][0]["field"],
        "metadata.ownerReferences[0].uid"
    );
    assert_eq!(details["causes"][0]["reason"], "FieldValueInvalid");

    let s = post(&mut h, Kind::Job, &manual_job("x", "gone", &uid)).unwrap_err();
    assert_eq!(s.code, 422);
    assert!(
        s.message.contains("no CronJob of that name"),
        "{}",
        s.message
    );

    let mut bad = manual_job("x", "c", &uid);
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    bad["spec"]["backoffLimit"] = json!(-1);
    let s = post(&mut h, Kind::Job, &bad).unwrap_err();
    assert_eq!(s.code, 422);
    assert_eq!(
        s.message,
        "Job.batch \"x\" is invalid: [spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0, spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"]"
    );
    let causes = s.details.unwrap()["causes"].clone();
    assert_eq!(causes.as_array().map(Vec::len), Some(2));
    assert_eq!(causes[1]["reason"], "FieldValueRequired");
    assert_eq!(causes[1]["field"], "spec.template.spec.restartPolicy");

    let mut unknown = manual_job("x", "c", &uid);
    unknown["spec"]["parallel"] = json!(2);
    let s = post(&mut h, Kind::Job, &unknown).unwrap_err();
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert!(
        s.message.ends_with(": spec: unknown field \"parallel\""),
        "{}",
        s.message
    );

    let mut elsewhere = manual_job("x", "c", &uid);
    elsewhere["metadata"]["namespace"] = json!("team");
    let s = post(&mut h, Kind::Job, &elsewhere).unwrap_err();
    assert_eq!(s.code, 400);
    assert!(
        s.message.contains("does not match the namespace"),
        "{}",
        s.message
    );

    let s = post(&mut h, Kind::Job, &manual_job("taken", "c", &uid)).unwrap_err();
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(s.message, "jobs.batch \"taken\" already exists");

    let s = post(&mut h, Kind::CronJob, &json!({})).unwrap_err();
    assert_eq!(s.code, 403);
    assert!(
        s.message.contains("jobvisor create cronjob"),
        "{}",
        s.message
    );

    assert!(!h.daemon.world.contains_job(&key("default", "x")));
    assert!(h.runtime.starts().len() <= 1, "only the file's Job ran");
}

fn apply(h: &mut Harness, body: &str, create: bool) -> Result<Value, Status> {
    let body = body.to_string();
    h.ask(|reply| Request::Apply {
        body,
        create,
        reply,
    })
    .map(|a| a.body)
}

/// `create cronjob` writes through apply: a marked file of its own; a second create of the
/// same object is refused, where apply would leave it unchanged.
#[test]
fn create_writes_a_cronjob_file_and_refuses_one_that_exists() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = cronjob("nightly", "30 21 * * *", "true", "");
    // Without a runtime the file is written inline, within the request.
    let created = apply(&mut h, &text, true).expect("created");
    let path = h
        .daemon
        .layout
        .manifests
        .join("cronjob.batch_default_nightly.yaml");
    assert_eq!(created["path"], path.display().to_string());
    assert_eq!(created["objects"][0]["action"], "created");
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(crate::manifest::applied::is_written_by_apply(&written));
    assert!(
        h.daemon
            .world
            .cronjobs
            .contains_key(&key("default", "nightly"))
    );

    let s = apply(&mut h, &text, true).unwrap_err();
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(s.message, "cronjobs.batch \"nightly\" already exists");
    let same = apply(&mut h, &text, false).expect("apply of the same");
    assert_eq!(same["objects"][0]["action"], "unchanged");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
}

fn delete(
    h: &mut Harness,
    kind: Kind,
    name: &str,
    propagation: Propagation,
) -> Result<Value, Status> {
    let delete = super::requests::Deletion {
        propagation,
        ..Default::default()
    };
    h.ask(|reply| Request::Delete {
        kind,
        namespace: "default".into(),
        name: name.into(),
        delete,
        reply,
    })
}

/// `delete cronjob --cascade=orphan` of a CronJob its file defines: the file and the
/// CronJob go, its Jobs stay, no longer owned; the default cascade takes them along.
#[test]
fn deleting_a_cronjob_removes_its_file_and_cascades_as_asked() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.advance(30);
    for name in ["kept", "gone"] {
        h.apply(
            &format!("{name}.yaml"),
            &cronjob(name, "* * * * *", "true", ""),
        );
        std::fs::write(
            h.daemon.layout.manifests.join(format!("{name}.yaml")),
            cronjob(name, "* * * * *", "true", ""),
        )
        .unwrap();
    }
    h.advance_to_next_slot();
    let job_of = |h: &Harness, name: &str| {
        h.daemon
            .world
            .all_jobs()
            .into_iter()
            .find(|r| r.job.metadata.name().starts_with(&format!("{name}-")))
            .map(|r| r.job.clone())
    };
    assert!(job_of(&h, "kept").is_some() && job_of(&h, "gone").is_some());

    delete(&mut h, Kind::CronJob, "kept", Propagation::Orphan).expect("deleted");
    assert!(!h.daemon.layout.manifests.join("kept.yaml").exists());
    assert!(
        !h.daemon
            .world
            .cronjobs
            .contains_key(&key("default", "kept"))
    );
    let orphan = job_of(&h, "kept").expect("its Job stays");
    assert!(orphan.metadata.owner_references.is_empty(), "{orphan:?}");

    delete(&mut h, Kind::CronJob, "gone", Propagation::Background).expect("deleted");
    h.run();
    assert!(!h.daemon.layout.manifests.join("gone.yaml").exists());
    assert!(job_of(&h, "gone").is_none(), "its Job went with it");
}

/// A file that defines a CronJob besides the object deleted is not removed: 409, naming it.
#[test]
fn a_file_that_also_defines_a_cronjob_is_not_deleted_with_another_object() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = format!(
        "{}---\n{}",
        super::testing::job("j", "Never", "true", ""),
        cronjob("c", "@yearly", "true", "")
    );
    h.apply("both.yaml", &text);
    std::fs::write(h.daemon.layout.manifests.join("both.yaml"), &text).unwrap();
    let s = delete(&mut h, Kind::Job, "j", Propagation::Background).unwrap_err();
    assert_eq!(s.code, 409);
    assert!(
        s.message
            .ends_with("together with cronjob/c; edit or remove that file instead"),
        "{}",
        s.message
    );
    assert!(h.daemon.layout.manifests.join("both.yaml").exists());
    let s = delete(&mut h, Kind::CronJob, "c", Propagation::Background).unwrap_err();
    assert!(
        s.message
            .ends_with("together with job/j; edit or remove that file instead"),
        "{}",
        s.message
    );
}
