//! Answers to API requests, read from and written to the loop's own state.

// A `Status` is the Kubernetes error body itself; it is built once per failed request.
#![allow(clippy::result_large_err)]

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::Daemon;
use super::requests::{Filter, Kind, ListReply, LogTarget, Request, bad_request, not_found};
use super::world::{Key, key};
use crate::api::{ContainerStatus, Status};

/// Items from which a list's memory is worth a trim once it was sent.
const LARGE_LIST: usize = 1000;

impl Daemon {
    /// The PodMetricsList metrics-server would give for the running pods: per container, CPU
    /// in nanocores (over the window since the previous look, or since the container
    /// started) and the memory working set in bytes, from the container cgroups.
    fn pod_metrics(&self, namespace: Option<&str>) -> Result<Value, Status> {
        let unavailable = || {
            Status::failure(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request (get pods.metrics.k8s.io): \
                 the daemon runs without cgroups, so there are no metrics",
            )
        };
        if !self.runtime.enforces_limits() {
            return Err(unavailable());
        }
        let now = self.clock.now();
        let mut items = Vec::new();
        for (_, rec) in self.world.unsettled_pods() {
            let pod = &rec.pod;
            if namespace.is_some_and(|ns| ns != pod.metadata.namespace())
                || pod.status.phase.is_terminal()
            {
                continue;
            }
            let mut containers = Vec::new();
            let mut window = None;
            for cs in &pod.status.container_statuses {
                if cs.state.running.is_none() {
                    continue;
                }
                let Some(u) = self.runtime.usage(pod.metadata.uid(), &cs.name) else {
                    return Err(unavailable());
                };
                window = window.or(u.window);
                containers.push(json!({
                    "name": cs.name,
                    "usage": {
                        "cpu": format!("{}n", u.cpu_nanocores.unwrap_or(0)),
                        "memory": format!("{}Ki", u.memory_bytes.unwrap_or(0) / 1024),
                    },
                }));
            }
            if containers.is_empty() {
                continue;
            }
            let window_s = window.map_or(0.0, |w: std::time::Duration| w.as_secs_f64());
            items.push(json!({
                "metadata": {
                    "name": pod.metadata.name(),
                    "namespace": pod.metadata.namespace(),
                    "labels": pod.metadata.labels,
                    "creationTimestamp": now.to_string(),
                },
                "timestamp": now.to_string(),
                "window": format!("{window_s:.3}s"),
                "containers": containers,
            }));
        }
        Ok(json!({
            "kind": "PodMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": items,
        }))
    }

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
                let watch = watch.then(|| self.changes.subscribe(kind));
                let after = self.gate.last_change_id();
                // A list of thousands of objects is megabytes, freed once sent: given back
                // when the loop is quiet, as after a burst of changes (`heap.rs`).
                if items.len() >= LARGE_LIST {
                    self.quiet.changed(tokio::time::Instant::now());
                    self.schedule(super::heap::QUIET, super::Target::Trim);
                }
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
                delete,
                reply,
            } => {
                let k = key(&namespace, &name);
                match kind {
                    Kind::Job | Kind::CronJob | Kind::Pod => {
                        self.api_delete(kind, &k, delete, reply)
                    }
                    declared if crate::manifest::declared::is_declared(declared) => {
                        self.api_delete(declared, &k, delete, reply)
                    }
                    _ => {
                        let refused = Status::failure(
                            405,
                            "MethodNotAllowed",
                            format!("{} cannot be deleted", kind.resource().plural),
                        );
                        self.answer_when_durable(held(reply, Err(refused)));
                    }
                }
            }
            Request::PodMetrics { namespace, reply } => {
                let answer = self.pod_metrics(namespace.as_deref());
                let _ = reply.send(answer);
            }
            Request::JobBackoff {
                namespace,
                name,
                reply,
            } => {
                let answer = self.job_backoff(&key(&namespace, &name));
                self.answer_when_durable(held(reply, answer));
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
            Request::Apply {
                body,
                create,
                reply,
            } => self.api_apply(body, create, reply),
            Request::Create {
                kind,
                namespace,
                body,
                reply,
            } => {
                let answer = match kind {
                    Kind::Job => self.create_cronjob_job(&namespace, &body),
                    Kind::Event | Kind::Manifest => Err(Status::failure(
                        405,
                        "MethodNotAllowed",
                        format!("{} cannot be created", kind.resource().plural),
                    )),
                    // CronJobs, Pods and the declared kinds (ConfigMaps…).
                    _ => {
                        let r = kind.resource();
                        let how = match kind {
                            Kind::CronJob => {
                                "`jobvisor apply -f FILE` or `jobvisor create cronjob NAME --image=IMAGE --schedule=SCHEDULE -- COMMAND`"
                            }
                            _ => "`jobvisor apply -f FILE`",
                        };
                        Err(Status::failure(
                            403,
                            "Forbidden",
                            format!(
                                "{} is forbidden: jobvisor creates {} from manifest files: use {how}",
                                r.qualified(),
                                r.plural
                            ),
                        ))
                    }
                };
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
            .filter_map(|o| listed(filter, &o))
            .collect()
    }

    /// The Job controller's own view of the pod-failure backoff, from the pods its sync
    /// looks at, the config's delays and now (`controller::job_backoff`).
    fn job_backoff(&self, k: &Key) -> Result<crate::proto::JobBackoff, Status> {
        let Some(rec) = self.world.job(k) else {
            return Err(not_found(Kind::Job, &k.1));
        };
        let cfg = crate::controller::job::PodFailureBackoff {
            base: self.cfg.backoff.pod_failure_base,
            max: self.cfg.backoff.pod_failure_max,
        };
        let pods = self.pods_that_matter(rec.job.metadata.uid());
        let refs: Vec<&crate::api::Pod> = pods.iter().map(|p| &p.pod).collect();
        let pending =
            crate::controller::job_backoff::pending(&rec.job, &refs, self.clock.now(), cfg).map(
                |p| crate::proto::PendingBackoff {
                    index: p.index,
                    attempt: p.attempt,
                    attempts: p.attempts,
                    next_pod_at: p.next_pod_at,
                },
            );
        Ok(crate::proto::JobBackoff { pending })
    }

    fn get(&self, kind: Kind, k: &Key) -> Result<Value, Status> {
        match self.world.served(kind, k).map(serde_json::to_value) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(Status::failure(500, "InternalError", e.to_string())),
            None => Err(not_found(kind, &k.1)),
        }
    }

    /// Deleting a Job deletes the file that defines it, so the two never disagree, and so
    /// does deleting a bare Pod; a file that defines more than this object is left for the
    /// user to edit (409). The file goes off the loop (`writes.rs`), then the object. A pod a
    /// Job created is deleted (its Job replaces it); a Job an object owns has no file.
    fn api_delete(
        &mut self,
        kind: Kind,
        k: &Key,
        delete: super::requests::Deletion,
        reply: super::requests::Reply<Value>,
    ) {
        let propagation = delete.propagation;
        let found = match kind {
            Kind::Job => self
                .world
                .job(k)
                .map(|r| (r.source.clone(), r.job.metadata.uid().to_string())),
            Kind::CronJob => self
                .world
                .cronjobs
                .get(k)
                .map(|r| (Some(r.source.clone()), r.cronjob.metadata.uid().to_string())),
            Kind::Pod => self.world.pod(k).map(|r| {
                let source = r.source().map(std::path::Path::to_path_buf);
                (source, r.pod.metadata.uid().to_string())
            }),
            declared => self
                .world
                .declared(declared, k)
                .map(|r| (Some(r.source.clone()), r.metadata.uid().to_string())),
        };
        match found {
            None => self.answer_when_durable(held(reply, Err(not_found(kind, &k.1)))),
            Some((_, uid)) if delete.uid.as_ref().is_some_and(|want| *want != uid) => {
                let message = format!(
                    "Precondition failed: UID in precondition: {}, UID in object meta: {uid}",
                    delete.uid.unwrap_or_default()
                );
                let refused = Status::failure(409, "Conflict", message);
                self.answer_when_durable(held(reply, Err(refused)));
            }
            Some((_, uid)) if delete.dry_run => {
                // Nothing is changed, nothing written: the answer a real delete would give.
                let answer = Ok(json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": k.1, "group": kind.resource().group, "kind": kind.resource().plural, "uid": uid}
                }));
                self.answer_when_durable(held(reply, answer));
            }
            Some((Some(source), uid)) => {
                let id = crate::manifest::ObjectId {
                    kind,
                    namespace: k.0.clone(),
                    name: k.1.clone(),
                };
                self.delete_with_file(id, source, uid, propagation, reply);
            }
            Some((None, uid)) => {
                let answer = self.delete_object(kind, k, &uid, propagation);
                self.answer_when_durable(held(reply, answer));
            }
        }
    }

    /// Deletes the object `k` whose uid is `uid` (a successor of the same name stays), once
    /// no file defines it any more.
    pub(super) fn delete_object(
        &mut self,
        kind: Kind,
        k: &Key,
        uid: &str,
        propagation: crate::api::Propagation,
    ) -> Result<Value, Status> {
        match kind {
            Kind::Job => {
                if self
                    .world
                    .job(k)
                    .is_some_and(|r| r.job.metadata.uid() == uid)
                {
                    self.delete_job_with(k, "deleted through the API", propagation);
                }
            }
            Kind::CronJob => {
                if self
                    .world
                    .cronjobs
                    .get(k)
                    .is_some_and(|r| r.cronjob.metadata.uid() == uid)
                {
                    self.delete_cronjob(k, "deleted through the API", propagation);
                }
            }
            Kind::Pod => {
                if self
                    .world
                    .pod(k)
                    .is_some_and(|r| r.pod.metadata.uid() == uid)
                {
                    let now = self.clock.now();
                    self.delete_pod(k, now);
                    self.job_of_pod_dirty(k);
                }
            }
            declared => {
                if self
                    .world
                    .declared(declared, k)
                    .is_some_and(|r| r.metadata.uid() == uid)
                {
                    self.delete_declared(declared, k, "deleted through the API");
                }
            }
        }
        self.deleted_answer(kind, k, uid)
    }

    /// What a DELETE answers: the object as it is now if it is still there (terminating: a
    /// pod stopping, a Job deleted in the foreground), else a success Status.
    pub(super) fn deleted_answer(&self, kind: Kind, k: &Key, uid: &str) -> Result<Value, Status> {
        let there = match kind {
            Kind::Job => self
                .world
                .job(k)
                .is_some_and(|r| r.job.metadata.uid() == uid),
            Kind::CronJob => self
                .world
                .cronjobs
                .get(k)
                .is_some_and(|r| r.cronjob.metadata.uid() == uid),
            Kind::Pod => self
                .world
                .pod(k)
                .is_some_and(|r| r.pod.metadata.uid() == uid),
            declared => self
                .world
                .declared(declared, k)
                .is_some_and(|r| r.metadata.uid() == uid),
        };
        if there {
            self.get(kind, k)
        } else {
            Ok(success(kind, &k.1, uid))
        }
    }

    fn log_target(
        &self,
        k: &Key,
        container: Option<&str>,
        previous: bool,
    ) -> Result<LogTarget, Status> {
        let rec = self
            .world
            .pod(k)
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
                .and_then(|c| c.waiting_reason())
                .map_or("ContainerCreating", |r| r.as_str());
            return Err(bad_request(format!(
                "container \"{name}\" in pod \"{}\" is waiting to start: {reason}",
                k.1
            )));
        }
        Ok(LogTarget { path, running })
    }
}

/// An object of a list as JSON text, if the filter keeps it. Only a field selector needs the
/// object as a `Value`; labels are checked on the typed object (a packed one's are decoded
/// only when a selector asks).
fn listed(filter: &Filter, object: &super::world::Served<'_>) -> Option<Box<RawValue>> {
    if filter.is_empty() {
        return serde_json::value::to_raw_value(object).ok();
    }
    let labels = object.labels();
    if !filter.labels.matches(&labels) {
        return None;
    }
    if filter.fields.is_empty() {
        return serde_json::value::to_raw_value(object).ok();
    }
    let v = serde_json::to_value(object).ok()?;
    filter
        .matches(&labels, &v)
        .then(|| serde_json::value::to_raw_value(&v).ok())?
}

/// An answer that waits for the disk: sent as computed, or replaced by the store's error.
pub(super) fn held<T: Send + 'static>(
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

pub(super) fn success(kind: Kind, name: &str, uid: &str) -> Value {
    let (group, resource) = (kind.resource().group, kind.resource().plural);
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "group": group, "kind": resource, "uid": uid}
    })
}
