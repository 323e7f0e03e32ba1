//! Answers to API requests, read from and written to the loop's own state.

// A `Status` is the Kubernetes error body itself; it is built once per failed request.
#![allow(clippy::result_large_err)]

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::Daemon;
use super::requests::{Filter, Kind, ListReply, LogTarget, Request, bad_request, not_found};
use super::world::{Key, key};
use crate::api::{ContainerStatus, Status};

/// Manifest files written by `apply`: readable by all, like a file in /etc.
const MANIFEST_FILE_MODE: u32 = 0o644;

impl Daemon {
    pub(super) fn on_request(&mut self, req: Request) {
        match req {
            Request::List {
                kind,
                namespace,
                filter,
                watch,
                table,
                reply,
            } => {
                let items = if table {
                    self.table_rows(kind, namespace.as_deref(), &filter)
                } else {
                    self.list(kind, namespace.as_deref(), &filter)
                };
                let watch = watch.then(|| self.changes.of(kind).subscribe());
                let after = self.gate.last_change_id();
                let answer = Ok(ListReply {
                    items,
                    watch,
                    after,
                });
                self.answer_when_durable(held(reply, answer));
            }
            Request::Get {
                kind,
                namespace,
                name,
                reply,
            } => {
                let answer = self.get(kind, &key(&namespace, &name));
                self.answer_when_durable(held(reply, answer));
            }
            Request::Delete {
                kind,
                namespace,
                name,
                propagation,
                reply,
            } => {
                let k = key(&namespace, &name);
                let result = match kind {
                    Kind::Job => self.api_delete_job(&k, propagation),
                    Kind::Pod => self.api_delete_pod(&k),
                    Kind::Event | Kind::Manifest => Err(Status::failure(
                        405,
                        "MethodNotAllowed",
                        format!("{} cannot be deleted", kind.resource().plural),
                    )),
                };
                self.answer_when_durable(held(reply, result));
            }
            Request::Manifests { reply } => {
                let unavailable = &self.problems.manifests;
                let items: Vec<Value> = self
                    .world
                    .manifests
                    .values()
                    .filter_map(|m| {
                        // While the directory is unavailable no file can be read, so none is
                        // shown as in any other state; the record underneath stays as it was.
                        let mut file = m.file.clone();
                        if let Some(why) = unavailable {
                            file.state = crate::api::ManifestState::Unavailable;
                            file.message = Some(why.clone());
                        }
                        serde_json::to_value(&file).ok()
                    })
                    .collect();
                let mut source = json!({
                    "path": self.layout.manifests.display().to_string(),
                    "state": if unavailable.is_some() { "Unavailable" } else { "Available" },
                });
                if let Some(why) = unavailable {
                    source["message"] = json!(why);
                }
                let answer = Ok(
                    json!({"apiVersion": "jobvisor.io/v1", "kind": "ManifestList", "metadata": {}, "source": source, "items": items}),
                );
                self.answer_when_durable(held(reply, answer));
            }
            Request::Health { reply } => {
                let _ = reply.send(Ok(self.problems.clone()));
            }
            Request::PutManifest {
                filename,
                body,
                reply,
            } => {
                let answer = self.put_manifest(&filename, body);
                self.answer_when_durable(held(reply, answer));
            }
            Request::Log {
                namespace,
                pod,
                container,
                previous,
                reply,
            } => {
                let _ = reply.send(self.log_target(
                    &key(&namespace, &pod),
                    container.as_deref(),
                    previous,
                ));
            }
        }
    }

    fn list(&self, kind: Kind, ns: Option<&str>, filter: &Filter) -> Vec<Box<RawValue>> {
        self.world
            .served_all(kind, ns)
            .filter_map(|o| listed(filter, &o.meta().labels, &o))
            .collect()
    }

    fn get(&self, kind: Kind, k: &Key) -> Result<Value, Status> {
        match self.world.served(kind, k).map(serde_json::to_value) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(Status::failure(500, "InternalError", e.to_string())),
            None => Err(not_found(kind, &k.1)),
        }
    }

    /// Deleting a Job deletes the file that defines it, so the two never disagree; a file that
    /// defines more than this Job is left for the user to edit.
    fn api_delete_job(
        &mut self,
        k: &Key,
        _propagation: crate::api::Propagation,
    ) -> Result<Value, Status> {
        let rec = self
            .world
            .jobs
            .get(k)
            .ok_or_else(|| not_found(Kind::Job, &k.1))?;
        let source = rec.source.clone();
        let uid = rec.job.metadata.uid().to_string();
        self.remove_definition(Kind::Job, k, &source)?;
        // The file is gone, so its Job is too; a file that lost a name clash to it may have
        // taken the name over since, and that Job stays.
        if self
            .world
            .jobs
            .get(k)
            .is_some_and(|r| r.job.metadata.uid() == uid)
        {
            self.delete_job(k, "deleted through the API");
        }
        Ok(success(Kind::Job, &k.1, &uid))
    }

    /// Removes the manifest file that defines the object `k` of `kind`, and what it defined.
    /// Refused (409) when the file defines other objects too: those are the user's to keep.
    fn remove_definition(
        &mut self,
        kind: Kind,
        k: &Key,
        source: &std::path::Path,
    ) -> Result<(), Status> {
        let others: Vec<String> = self
            .world
            .manifests
            .get(source)
            .map(|m| {
                let jobs = m.jobs.iter().map(|o| (Kind::Job, o));
                let pods = m.pods.iter().map(|o| (Kind::Pod, o));
                jobs.chain(pods)
                    .filter(|(kd, o)| (*kd, *o) != (kind, k))
                    .map(|(kd, o)| format!("{}/{}", kd.resource().singular, o.1))
                    .collect()
            })
            .unwrap_or_default();
        if !others.is_empty() {
            return Err(Status::failure(
                409,
                "Conflict",
                format!(
                    "{} \"{}\" is defined in {} together with {}; edit or remove that file instead",
                    kind.resource().qualified(),
                    k.1,
                    source.display(),
                    others.join(", ")
                ),
            ));
        }
        match std::fs::remove_file(source) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Status::failure(
                    500,
                    "InternalError",
                    format!("removing {}: {e}", source.display()),
                ));
            }
        }
        self.file_removed(source);
        Ok(())
    }

    /// A pod a Job created is deleted (its Job replaces it); a bare Pod is deleted with the
    /// file that defines it, as a Job is, since it would come straight back from the file.
    fn api_delete_pod(&mut self, k: &Key) -> Result<Value, Status> {
        let rec = self
            .world
            .pods
            .get(k)
            .ok_or_else(|| not_found(Kind::Pod, &k.1))?;
        if let Some(source) = rec.source().map(std::path::Path::to_path_buf) {
            self.remove_definition(Kind::Pod, k, &source)?;
        }
        let now = self.clock.now();
        self.delete_pod(k, now);
        self.job_of_pod_dirty(k);
        // The pod as it is now: terminating, with its deletionTimestamp.
        self.get(Kind::Pod, k)
    }

    /// `jobvisor apply`: validate, then write the file atomically into the manifests directory.
    fn put_manifest(&mut self, filename: &str, body: String) -> Result<Value, Status> {
        if filename.contains('/') || !crate::watch::is_manifest_name(filename) {
            return Err(bad_request(format!(
                "invalid manifest file name {filename:?}: want a plain *.yaml, *.yml or *.json name"
            )));
        }
        let path = self.layout.manifests.join(filename);
        let report = crate::manifest::load(&path, &body);
        if !report.errors.is_empty() {
            return Err(Status::failure(422, "Invalid", report.errors.join("\n")));
        }
        crate::store::write_atomic(&path, body.as_bytes(), MANIFEST_FILE_MODE)
            .map_err(|e| Status::failure(500, "InternalError", e.to_string()))?;
        let before: Vec<(Key, crate::api::Job)> = report
            .jobs
            .iter()
            .filter_map(|j| {
                let k = key(j.metadata.namespace(), j.metadata.name());
                self.world.jobs.get(&k).map(|r| (k, r.applied.clone()))
            })
            .collect();
        self.apply_text(&path, body, true);
        let m = self
            .world
            .manifests
            .get(&path)
            .ok_or_else(|| Status::failure(500, "InternalError", "manifest vanished"))?;
        let mut v = serde_json::to_value(&m.file)
            .map_err(|e| Status::failure(500, "InternalError", e.to_string()))?;
        // kubectl's words per object: created, configured or unchanged.
        for (i, k) in m.jobs.iter().enumerate() {
            let action = match before.iter().find(|(b, _)| b == k) {
                None => "created",
                Some((_, old)) if self.world.jobs.get(k).is_some_and(|r| r.applied == *old) => {
                    "unchanged"
                }
                Some(_) => "configured",
            };
            v["objects"][i]["action"] = json!(action);
        }
        Ok(v)
    }

    fn log_target(
        &self,
        k: &Key,
        container: Option<&str>,
        previous: bool,
    ) -> Result<LogTarget, Status> {
        let rec = self
            .world
            .pods
            .get(k)
            .ok_or_else(|| not_found(Kind::Pod, &k.1))?;
        let pod = &rec.pod;
        let names: Vec<&str> = pod
            .spec
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let name = match container {
            Some(c) if names.contains(&c) => c,
            Some(c) => {
                return Err(bad_request(format!(
                    "container {c} is not valid for pod {}",
                    k.1
                )));
            }
            None if names.len() == 1 => names[0],
            None => {
                return Err(bad_request(format!(
                    "a container name must be specified for pod {}, choose one of: [{}]",
                    k.1,
                    names.join(" ")
                )));
            }
        };
        let cs: Option<&ContainerStatus> = pod
            .status
            .container_statuses
            .iter()
            .find(|c| c.name == name);
        let restarts = cs.map_or(0, |c| c.restart_count);
        let run = if previous {
            if restarts == 0 {
                return Err(bad_request(format!(
                    "previous terminated container \"{name}\" in pod \"{}\" not found",
                    k.1
                )));
            }
            restarts - 1
        } else {
            restarts
        };
        let running = !previous
            && cs.is_some_and(|c| c.state.terminated.is_none())
            && !pod.status.phase.is_terminal();
        let path = crate::runtime::logs::container_log_path(
            self.logs_root(),
            &k.0,
            &k.1,
            pod.metadata.uid(),
            name,
            run,
        );
        // Not the file: it appears with the first output, and a silent container has none.
        // Waiting after a run (CrashLoopBackOff) shows that run's log, as kubelet does.
        let started = previous
            || cs.is_some_and(|c| {
                c.state.running.is_some()
                    || c.state.terminated.is_some()
                    || c.last_state.terminated.is_some()
            });
        if !started {
            let reason = cs
                .and_then(|c| c.state.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                .unwrap_or("ContainerCreating");
            return Err(bad_request(format!(
                "container \"{name}\" in pod \"{}\" is waiting to start: {reason}",
                k.1
            )));
        }
        Ok(LogTarget { path, running })
    }
}

/// An object of a list as JSON text, if the filter keeps it. Only a field selector needs the
/// object as a `Value`; labels are checked on the typed object.
fn listed<T: serde::Serialize>(
    filter: &Filter,
    labels: &crate::api::Labels,
    object: &T,
) -> Option<Box<RawValue>> {
    if !filter.labels.matches(labels) {
        return None;
    }
    if filter.fields.is_empty() {
        return serde_json::value::to_raw_value(object).ok();
    }
    let v = serde_json::to_value(object).ok()?;
    filter
        .matches(labels, &v)
        .then(|| serde_json::value::to_raw_value(&v).ok())?
}

/// An answer that waits for the disk: sent as computed, or replaced by the store's error.
fn held<T: Send + 'static>(
    reply: super::requests::Reply<T>,
    answer: Result<T, Status>,
) -> super::durable::HeldAnswer {
    Box::new(move |failed| {
        let _ = reply.send(match failed {
            Some(status) => Err(status),
            None => answer,
        });
    })
}

fn success(kind: Kind, name: &str, uid: &str) -> Value {
    let (group, resource) = (kind.resource().group, kind.resource().plural);
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "group": group, "kind": resource, "uid": uid}
    })
}
