//! API requests that change manifest files: `apply` writes one, a `DELETE` of an object a
//! file defines removes that file.
//!
//! The loop decides against its own state (where the object is defined, whether apply may
//! touch that file) and reserves the file; a blocking task does the I/O, so the loop never
//! waits for a disk; the outcome comes back into the loop as a [`FileDone`] and is applied
//! like any change of the file, its answer held until the store has it on disk (durable
//! before visible). Decision and write belong to one request: nothing else reaches the file
//! through the API meanwhile (a second request for it is refused with 409 until it is done).
//!
//! `apply` follows `kubectl apply`, by object identity: an object that exists is updated
//! where it is defined if that file is one apply wrote ([`applied::HEADER`]), and refused
//! (409) otherwise; a new object gets a new file named after its identity. A refused apply
//! writes nothing, and nothing apply did not write is ever replaced.

// A `Status` is the Kubernetes error body itself; it is built once per failed request.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Daemon;
use super::answer::held;
use super::requests::{Applied, Reply, already_exists, bad_request};
use super::world::{Key, key};
use crate::api::{ANNOTATION_SOURCE, Kind, ManifestState, Propagation, Status};
use crate::manifest::declared::validate_update;
use crate::manifest::{ObjectId, applied, invalid_object};
use crate::store::GuardedWriteError;

/// Manifest files written by `apply`: readable by all, like a file in /etc.
const MANIFEST_FILE_MODE: u32 = 0o644;

/// How an apply's request body is named in its messages (it has no file of its own yet).
const REQUEST_BODY: &str = "request body";

/// File operations in flight, and the channel their outcomes come back on.
pub(super) struct Writes {
    tx: mpsc::UnboundedSender<FileDone>,
    rx: Option<mpsc::UnboundedReceiver<FileDone>>,
    busy: HashSet<PathBuf>,
}

impl Writes {
    pub(super) fn new() -> Writes {
        let (tx, rx) = mpsc::unbounded_channel();
        Writes {
            tx,
            rx: Some(rx),
            busy: HashSet::new(),
        }
    }

    /// The loop's end of the channel (taken once, by `run_loop`).
    pub(super) fn take_receiver(&mut self) -> Option<mpsc::UnboundedReceiver<FileDone>> {
        self.rx.take()
    }
}

/// A file operation's outcome, back in the loop.
pub(super) struct FileDone {
    op: Op,
    result: Result<(), Status>,
}

enum Op {
    Apply {
        path: PathBuf,
        text: String,
        id: ObjectId,
        action: &'static str,
        reply: Reply<Applied>,
    },
    /// The file defining `id` (whose uid was `uid`) removed, to delete it.
    Remove {
        path: PathBuf,
        id: ObjectId,
        uid: String,
        propagation: Propagation,
        reply: Reply<Value>,
    },
}

impl Op {
    fn path(&self) -> &Path {
        match self {
            Op::Apply { path, .. } | Op::Remove { path, .. } => path,
        }
    }
}

impl Daemon {
    /// `POST /apis/jobvisor.io/v1/manifests`: one object, YAML or JSON.
    /// With `create`, an object that exists is refused (409 AlreadyExists) instead of
    /// updated: `jobvisor create`, which writes its manifest through here.
    pub(super) fn api_apply(&mut self, body: String, create: bool, reply: Reply<Applied>) {
        match self.plan_apply(&body, create) {
            Ok(Planned::Write {
                path,
                text,
                id,
                action,
            }) => self.start(Op::Apply {
                path,
                text,
                id,
                action,
                reply,
            }),
            Ok(Planned::Unchanged(path, id)) => {
                let answer = self.applied_answer(&path, &id, "unchanged");
                self.answer_when_durable(held(reply, answer));
            }
            Err(status) => self.answer_when_durable(held(reply, Err(status))),
        }
    }

    fn plan_apply(&self, body: &str, create: bool) -> Result<Planned, Status> {
        self.may_write()?;
        // JSON is YAML, so one reading takes both, as the API server takes either.
        let report = crate::manifest::load(Path::new(REQUEST_BODY), body, Some(&self.cfg.images));
        if !report.errors.is_empty() {
            return Err(Status::failure(422, "Invalid", report.errors.join("\n")));
        }
        let (id, object) = match <[_; 1]>::try_from(report.objects) {
            Ok([one]) => one,
            Err(objects) => {
                return Err(bad_request(format!(
                    "apply takes one object per request; the {REQUEST_BODY} holds {}",
                    objects.len()
                )));
            }
        };
        let k = key(&id.namespace, &id.name);
        let exists = match id.kind {
            Kind::Job => self.world.contains_job(&k),
            Kind::CronJob => self.world.cronjobs.contains_key(&k),
            Kind::Pod => self.world.contains_pod(&k),
            declared => self.world.declared(declared, &k).is_some(),
        };
        if create && exists {
            return Err(already_exists(id.kind, &id.name));
        }
        let path = self.apply_target(&id)?;
        if self.writes.busy.contains(&path) {
            return Err(busy(&id, &path));
        }
        let text = applied::file_text(&object);
        // kubectl's words: the object as it will read from `path`, against what is running.
        let source = path.display().to_string();
        let mut refused = None;
        let same = match id.kind {
            Kind::Job => report.jobs.into_iter().next().and_then(|mut job| {
                job.metadata
                    .annotations
                    .insert(ANNOTATION_SOURCE.into(), source);
                let k = key(&id.namespace, &id.name);
                self.world.job(&k).map(|r| r.applied == job)
            }),
            Kind::CronJob => report.cronjobs.into_iter().next().and_then(|mut cj| {
                cj.metadata
                    .annotations
                    .insert(ANNOTATION_SOURCE.into(), source);
                let k = key(&id.namespace, &id.name);
                // What a file's edit compares (`upsert_cronjob`): spec, labels, annotations.
                self.world.cronjobs.get(&k).map(|r| {
                    let on = &r.cronjob;
                    on.spec == cj.spec
                        && on.metadata.labels == cj.metadata.labels
                        && on.metadata.annotations == cj.metadata.annotations
                })
            }),
            Kind::Pod => report.pods.into_iter().next().and_then(|mut pod| {
                pod.metadata
                    .annotations
                    .insert(ANNOTATION_SOURCE.into(), source);
                let k = key(&id.namespace, &id.name);
                let rec = self.world.pod(&k)?;
                rec.file.as_ref().map(|f| *f.applied == pod)
            }),
            declared => report.declared.into_iter().next().and_then(|mut d| {
                let source = serde_json::Value::String(source);
                if let Some(a) = d
                    .object
                    .pointer_mut("/metadata/annotations")
                    .and_then(Value::as_object_mut)
                {
                    a.insert(ANNOTATION_SOURCE.into(), source);
                }
                let k = key(&id.namespace, &id.name);
                let r = self.world.declared(declared, &k)?;
                let causes = validate_update(declared, &r.applied, &d.object);
                if !causes.is_empty() {
                    let message = invalid_object("", declared, &id.name, &causes);
                    refused = Some(Status::failure(422, "Invalid", message));
                }
                Some(r.applied == d.object)
            }),
        };
        // An update its kind refuses (an immutable ConfigMap's data) is refused before the
        // file is written, as the API server refuses it: 422, nothing changed.
        if let Some(refused) = refused {
            return Err(refused);
        }
        let action = match same {
            None => "created",
            Some(true) => "unchanged",
            Some(false) => "configured",
        };
        let on_record = self.world.manifests.get(&path);
        if same == Some(true) && on_record.is_some_and(|m| m.content == text) {
            return Ok(Planned::Unchanged(path, id));
        }
        Ok(Planned::Write {
            path,
            text,
            id,
            action,
        })
    }

    /// Where `id` goes: the apply-written file that defines it, or a new file named after it.
    /// Refused when a file apply did not write defines it, or has the name.
    fn apply_target(&self, id: &ObjectId) -> Result<PathBuf, Status> {
        let k = key(&id.namespace, &id.name);
        let defined: Option<Option<PathBuf>> = match id.kind {
            Kind::Job => self.world.job(&k).map(|r| r.source.clone()),
            Kind::Pod => self
                .world
                .pod(&k)
                .map(|r| r.source().map(Path::to_path_buf)),
            Kind::CronJob => self.world.cronjobs.get(&k).map(|r| Some(r.source.clone())),
            declared if crate::manifest::declared::is_declared(declared) => self
                .world
                .declared(declared, &k)
                .map(|r| Some(r.source.clone())),
            other => {
                return Err(bad_request(format!(
                    "{} cannot be applied",
                    other.resource().qualified()
                )));
            }
        };
        let resource = id.kind.resource().qualified();
        let source = match defined {
            // Owned by another object (a Job's pod, say), not by a file: not apply's.
            Some(None) => {
                return Err(Status::failure(
                    409,
                    "AlreadyExists",
                    format!(
                        "{resource} \"{}\" already exists and no manifest defines it (another object owns it); apply cannot change it",
                        id.name
                    ),
                ));
            }
            // Defined by a file still there: updated in place, if apply wrote that file.
            Some(Some(source)) if self.world.manifests.contains_key(&source) => source,
            // New, or its file is gone for good (a new file takes it over, as any file would).
            _ => {
                let path = self.layout.manifests.join(id.file_name());
                if let Some(m) = self.world.manifests.get(&path) {
                    if !applied::is_written_by_apply(&m.content) {
                        return Err(Status::failure(
                            409,
                            "Conflict",
                            format!(
                                "cannot create {resource} \"{}\": {} exists and was not written by apply, so apply does not replace it",
                                id.name,
                                path.display()
                            ),
                        ));
                    }
                    self.defines_only(&path, id)?;
                }
                return Ok(path);
            }
        };
        let written = self
            .world
            .manifests
            .get(&source)
            .is_some_and(|m| applied::is_written_by_apply(&m.content));
        if !written {
            return Err(Status::failure(
                409,
                "AlreadyExists",
                format!(
                    "{resource} \"{}\" already exists, defined in {}, a file apply did not write: edit that file instead (apply changes only the files it wrote)",
                    id.name,
                    source.display()
                ),
            ));
        }
        self.defines_only(&source, id)?;
        Ok(source)
    }

    /// Refused (409) when the file at `path` defines objects besides `id`: replacing or
    /// removing it would take those along.
    fn defines_only(&self, path: &Path, id: &ObjectId) -> Result<(), Status> {
        let k = key(&id.namespace, &id.name);
        let others: Vec<String> = self
            .world
            .manifests
            .get(path)
            .map(|m| {
                m.defines
                    .iter()
                    .filter(|(kind, o)| (*kind, *o) != (id.kind, &k))
                    .map(|(kind, o)| format!("{}/{}", kind.resource().singular, o.1))
                    .collect()
            })
            .unwrap_or_default();
        if others.is_empty() {
            return Ok(());
        }
        Err(Status::failure(
            409,
            "Conflict",
            format!(
                "{} \"{}\" is defined in {} together with {}; edit or remove that file instead",
                id.kind.resource().qualified(),
                id.name,
                path.display(),
                others.join(", ")
            ),
        ))
    }

    /// Files are not written while the daemon stops, or while the directory is not there.
    fn may_write(&self) -> Result<(), Status> {
        if self.shutting_down {
            return Err(Status::failure(
                503,
                "ServiceUnavailable",
                "the jobvisor daemon is shutting down",
            ));
        }
        if let Some(why) = &self.problems.manifests {
            return Err(Status::failure(503, "ServiceUnavailable", why.clone()));
        }
        Ok(())
    }

    /// `DELETE` of an object its file defines: the file goes (it would bring the object
    /// back), then the object. `uid` is the object's, so a successor of the same name is
    /// left alone.
    pub(super) fn delete_with_file(
        &mut self,
        id: ObjectId,
        path: PathBuf,
        uid: String,
        propagation: Propagation,
        reply: Reply<Value>,
    ) {
        let checked = self
            .may_write()
            .and_then(|()| self.defines_only(&path, &id))
            .and_then(|()| match self.writes.busy.contains(&path) {
                true => Err(busy(&id, &path)),
                false => Ok(()),
            });
        match checked {
            Ok(()) => self.start(Op::Remove {
                path,
                id,
                uid,
                propagation,
                reply,
            }),
            Err(status) => self.answer_when_durable(held(reply, Err(status))),
        }
    }

    /// Reserves the file and runs the I/O on the blocking pool; its outcome comes back as a
    /// [`FileDone`]. Without a runtime (unit tests of the loop) it runs here.
    fn start(&mut self, op: Op) {
        self.writes.busy.insert(op.path().to_path_buf());
        let tx = self.writes.tx.clone();
        let work = move || {
            let result = file_io(&op);
            // The loop is gone only when the daemon has stopped: nobody is left to answer.
            let _ = tx.send(FileDone { op, result });
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(work);
            }
            Err(_) => {
                work();
                if let Some(done) = self.writes.rx.as_mut().and_then(|rx| rx.try_recv().ok()) {
                    self.on_file_done(done);
                }
            }
        }
    }

    /// A file operation has ended: apply what it changed, then answer (once durable).
    pub(super) fn on_file_done(&mut self, done: FileDone) {
        let FileDone { op, result } = done;
        self.writes.busy.remove(op.path());
        if result.is_ok() {
            // A read that began before the write would apply the file as it was: a removed
            // Job's file would bring it back.
            self.reads.superseded(op.path());
        }
        match op {
            Op::Apply {
                path,
                text,
                id,
                action,
                reply,
            } => {
                let answer = result.and_then(|()| {
                    self.apply_text(&path, text, true);
                    self.applied_answer(&path, &id, action)
                });
                self.answer_when_durable(held(reply, answer));
            }
            Op::Remove {
                path,
                id,
                uid,
                propagation,
                reply,
            } => {
                let answer = result.and_then(|()| self.removed(&path, &id, &uid, propagation));
                self.answer_when_durable(held(reply, answer));
            }
        }
    }

    /// The answer to an apply: the file's `ManifestFile`, its object marked with kubectl's
    /// word for what happened. A 409 if the object did not come from `path` after all (a
    /// file defining it appeared meanwhile; the new file waits, `Conflict`, as any would).
    fn applied_answer(
        &self,
        path: &Path,
        id: &ObjectId,
        action: &'static str,
    ) -> Result<Applied, Status> {
        let m = self.world.manifests.get(path).ok_or_else(|| {
            Status::failure(500, "InternalError", "the applied file has no record")
        })?;
        let k = key(&id.namespace, &id.name);
        let from_here = m.defined(id.kind).contains(&k);
        if !from_here || m.file.state != ManifestState::Applied {
            let why = match m.file.errors.as_slice() {
                [] => format!("{} is {}", path.display(), m.file.state),
                errors => errors.join("; "),
            };
            return Err(Status::failure(409, "Conflict", why));
        }
        let mut body = serde_json::to_value(&m.file)
            .map_err(|e| Status::failure(500, "InternalError", e.to_string()))?;
        if let Some(objects) = body.get_mut("objects").and_then(Value::as_array_mut) {
            for o in objects {
                if o["kind"] == id.kind.resource().name && o["name"] == id.name.as_str() {
                    o["action"] = json!(action);
                }
            }
        }
        Ok(Applied {
            created: action == "created",
            body,
        })
    }

    /// After the file of `id` was removed: `id` goes, and what else the file defined.
    fn removed(
        &mut self,
        path: &Path,
        id: &ObjectId,
        uid: &str,
        propagation: Propagation,
    ) -> Result<Value, Status> {
        let k: Key = key(&id.namespace, &id.name);
        if matches!(id.kind, Kind::Job | Kind::CronJob) {
            // The object first, with the request's propagation policy: dropping the file's
            // record would delete it (and what it owns) with the default one.
            let _ = self.delete_object(id.kind, &k, uid, propagation);
            self.file_removed(path);
            return self.deleted_answer(id.kind, &k, uid);
        }
        self.file_removed(path);
        self.delete_object(id.kind, &k, uid, propagation)
    }
}

/// What an apply comes to before any I/O.
enum Planned {
    Write {
        path: PathBuf,
        text: String,
        id: ObjectId,
        action: &'static str,
    },
    /// The object and its file are as applied already: nothing to write.
    Unchanged(PathBuf, ObjectId),
}

/// The API server's answer to a write that lost a race: try again.
fn busy(id: &ObjectId, path: &Path) -> Status {
    Status::failure(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{}\": {} is being written by another request; please try again",
            id.kind.resource().qualified(),
            id.name,
            path.display()
        ),
    )
}

/// The blocking part: runs off the loop.
fn file_io(op: &Op) -> Result<(), Status> {
    match op {
        Op::Apply { path, text, id, .. } => crate::store::write_atomic_guarded(
            path,
            text.as_bytes(),
            MANIFEST_FILE_MODE,
            |existing| applied::is_written_by_apply(&String::from_utf8_lossy(existing)),
        )
        .map_err(|e| match e {
            GuardedWriteError::Refused => Status::failure(
                409,
                "Conflict",
                format!(
                    "cannot apply {} \"{}\": {} was not written by apply, so apply does not replace it",
                    id.kind.resource().qualified(),
                    id.name,
                    path.display()
                ),
            ),
            GuardedWriteError::Failed(e) => Status::failure(500, "InternalError", e.to_string()),
        }),
        Op::Remove { path, .. } => crate::store::remove_durably(path)
            .map_err(|e| Status::failure(500, "InternalError", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::testing::{daemon_in, job};
    use super::*;
    use crate::config::Config;

    /// A read of a file that began before the loop removed that file found it as it was:
    /// applied when it comes back, it would bring the deleted Job straight back.
    #[tokio::test]
    async fn a_read_in_flight_does_not_undo_a_removal() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, _clock, _runtime) = daemon_in(root.path(), Config::default());
        let path = d.layout.manifests.join("j.yaml");
        std::fs::write(&path, job("j", "Never", "true", "")).unwrap();
        d.apply_file(&path); // inline: applied at once
        let k = key("default", "j");
        let uid = d.world.job(&k).unwrap().job.metadata.uid().to_string();

        let mut reads = d.reads.on_pool();
        d.apply_file(&path);
        // Read, not applied yet: the file as it was before the removal.
        let stale = reads.recv().await.unwrap();
        let (reply, _answer) = tokio::sync::oneshot::channel();
        let id = ObjectId {
            kind: Kind::Job,
            namespace: k.0.clone(),
            name: k.1.clone(),
        };
        d.delete_with_file(id, path.clone(), uid, Propagation::Background, reply);
        let done = d.writes.rx.as_mut().unwrap().recv().await.unwrap();
        d.on_file_done(done);
        assert!(!path.exists());
        assert!(!d.world.has_job(&k));

        d.on_read(stale);
        assert!(!d.world.has_job(&k), "the deleted Job came back");
    }
}
