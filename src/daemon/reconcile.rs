//! Carrying out controller decisions: pod starts and restarts, pod creation and deletion,
//! status updates, events; and recording what the runtime reports.

use jiff::Timestamp;

use super::launch::{launch, record_exec};
use super::world::{Key, PodRecord, job_store_key, key, pod_store_key};
use super::{Daemon, Kind, Target};
use crate::api::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, Event, EventSource,
    JOB_TRACKING_FINALIZER, ObjectMeta, ObjectReference, Pod,
};
use crate::controller::EventSpec;
use crate::controller::disruption;
use crate::controller::events::{Dedup, dedupe};
use crate::controller::job::{self, PodFailureBackoff};
use crate::controller::job_indexed;
use crate::controller::job_pod::pod_for_job;
use crate::controller::pod::{self, RestartBackoff};
use crate::runtime::{ExitInfo, RuntimeEvent};

/// Rounds of pod → Job → new pod decisions in one turn before the rest waits for the next.
const MAX_ROUNDS: usize = 4;

impl Daemon {
    pub(super) fn reconcile(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if self.dirty_pods.is_empty()
                && self.dirty_jobs.is_empty()
                && self.dirty_cronjobs.is_empty()
            {
                return;
            }
            for k in std::mem::take(&mut self.dirty_pods) {
                self.sync_pod(&k);
            }
            if self.shutting_down {
                self.dirty_jobs.clear();
                self.dirty_cronjobs.clear();
                continue;
            }
            for k in std::mem::take(&mut self.dirty_jobs) {
                self.sync_job(&k);
            }
            for k in std::mem::take(&mut self.dirty_cronjobs) {
                self.sync_cronjob(&k);
            }
        }
    }

    // ------------------------------------------------------------------ pods (kubelet)

    fn sync_pod(&mut self, k: &Key) {
        if self.shutting_down {
            // Nothing starts or restarts any more; pods end as the node shuts down.
            self.mark_node_shutdown(
                k,
                "Pod was terminated in response to imminent node shutdown.",
            );
            return;
        }
        let now = self.clock.now();
        let cfg = RestartBackoff {
            base: self.cfg.backoff.container_restart_base,
            max: self.cfg.backoff.container_restart_max,
        };
        let Some(rec) = self.world.pod(k) else {
            return;
        };
        let runs = &rec.runs;
        let base = |c: &str| runs.get(c).map_or(0, |r| r.backoff_base);
        let d = pod::sync(&rec.pod, &base, now, cfg);
        let launches: Vec<_> = d
            .start
            .iter()
            .filter_map(|s| {
                let c = rec
                    .pod
                    .spec
                    .containers
                    .iter()
                    .find(|c| c.name == s.container)?;
                let mut l = launch(
                    &rec.pod,
                    c,
                    s.restart_count,
                    &self.layout.logs,
                    &self.home,
                    &self.cfg.images,
                );
                l.log_limits = self.cfg.logs.limits();
                l.pids_limit = self.cfg.pids_limit();
                Some(l)
            })
            .collect();
        let involved = pod_ref(&rec.pod);
        let changed = rec.pod.status != d.status;
        // Past activeDeadlineSeconds: the kubelet kills the containers with the pod's grace.
        let kill = d.kill.then(|| {
            let running = running_containers(&rec.pod);
            (
                rec.pod.metadata.uid().to_string(),
                self.grace_of(&rec.pod),
                running,
            )
        });
        drop(rec);
        for e in &d.events {
            self.record_event(involved.clone(), e.clone(), "kubelet");
        }
        if let Some((uid, grace, running)) = kill {
            self.stop_pod_processes(&uid, grace, &involved, running);
        }
        if !self.runtime.enforces_limits() {
            for l in launches.iter().filter(|l| !l.limits.is_empty()) {
                let e = crate::controller::EventSpec::warning(
                    "LimitsNotEnforced",
                    format!(
                        "resources of container {} are not enforced: the daemon runs without cgroups",
                        l.container
                    ),
                );
                self.record_event(involved.clone(), e, "kubelet");
            }
        }
        // A settled pod's sync usually changes nothing: it is unpacked only to change it.
        let starts = launches.iter().any(|l| l.refused.is_none());
        if changed || starts || !d.backoff_resets.is_empty() {
            let Some(rec) = self.world.pod_mut(k) else {
                return;
            };
            // What each run executes goes on the pod, in the same record as its start (which
            // waits for it): the API shows the host command behind an image alias.
            let mut annotated = false;
            for l in launches.iter().filter(|l| l.refused.is_none()) {
                annotated |= record_exec(&mut rec.pod.metadata.annotations, &l.container, &l.argv);
            }
            for (c, base) in &d.backoff_resets {
                rec.runs.entry(c.clone()).or_default().backoff_base = *base;
            }
            if changed {
                rec.pod.status = d.status;
            }
            // Any change can matter to the Job: phase and readiness, but also a restart count
            // (OnFailure's backoffLimit).
            if changed {
                self.job_of_pod_dirty(k);
            }
            if changed || annotated {
                self.pod_changed(k);
            }
        }
        for l in launches {
            self.start_when_recorded(l);
        }
        if let Some(after) = d.requeue_after {
            self.schedule(after, Target::Pod(k.clone()));
        }
        self.maybe_remove_pod(k);
    }

    /// A deleted pod whose processes are gone and which no Job still has to count is removed,
    /// as the API server removes it once its finalizers are gone. Its logs stay for
    /// `logs.retainDeleted` (`retention.rs`).
    fn maybe_remove_pod(&mut self, k: &Key) {
        let Some(rec) = self.world.pod(k) else {
            return;
        };
        let p = &rec.pod;
        if p.metadata.deletion_timestamp.is_none()
            || !p.status.phase.is_terminal()
            || !p.metadata.finalizers.is_empty()
        {
            return;
        }
        drop(rec);
        self.job_of_pod_dirty(k);
        if let Some(rec) = self.world.remove_pod(k) {
            self.store.touch(pod_store_key(k));
            self.retain_logs(&rec.pod);
            self.note_deleted(Kind::Pod, k, &rec.pod);
            if let Some(file) = rec.file {
                self.create_successor(k, file);
            }
            // A file that could not have this pod's name while it was there may have it now.
            if !self.world.conflicts.is_empty() {
                self.retry_conflicts();
            }
        }
    }

    pub(super) fn job_of_pod_dirty(&mut self, k: &Key) {
        if let Some(job) = self.owner_job(k) {
            self.dirty_jobs.insert(job);
        }
    }

    pub(super) fn pod_changed(&mut self, k: &Key) {
        self.store.touch(pod_store_key(k));
        self.note(Kind::Pod, k, "MODIFIED");
    }

    pub(super) fn job_changed(&mut self, k: &Key) {
        self.store.touch(job_store_key(k));
        self.note(Kind::Job, k, "MODIFIED");
        self.cronjob_of_job_dirty(k);
    }

    // ------------------------------------------------------------------ Jobs

    fn sync_job(&mut self, k: &Key) {
        // A Job being deleted in the foreground creates nothing; it goes with its last pod.
        if self.finish_foreground_deletion(k) {
            return;
        }
        let now = self.clock.now();
        let cfg = PodFailureBackoff {
            base: self.cfg.backoff.pod_failure_base,
            max: self.cfg.backoff.pod_failure_max,
        };
        let Some(rec) = self.world.job(k) else {
            return;
        };
        let pods = self.pods_that_matter(rec.job.metadata.uid());
        let refs: Vec<&Pod> = pods.iter().map(|p| &p.pod).collect();
        let d = job::sync(&rec.job, &refs, now, cfg);
        let involved = job_ref(&rec.job);
        // The whole Job (its pod template) is needed only to create pods.
        let template_job = (d.create > 0).then(|| rec.job.clone());
        let status_changed = rec.job.status.as_ref() != Some(&d.status);
        drop(refs);
        drop(pods);
        drop(rec);
        for name in &d.untrack {
            let pk = key(&k.0, name);
            if let Some(p) = self.world.pod_mut(&pk) {
                p.pod
                    .metadata
                    .finalizers
                    .retain(|f| f != JOB_TRACKING_FINALIZER);
                self.world.settle(&pk);
                self.pod_changed(&pk);
                self.dirty_pods.insert(pk);
            }
        }
        for del in &d.delete {
            tracing::info!(namespace = %k.0, job_name = %k.1, pod_name = %del.pod, counted_as_failed = del.count_as_failed, "deleting pod");
            self.delete_pod(&key(&k.0, &del.pod), now);
            self.record_event(
                involved.clone(),
                EventSpec::normal("SuccessfulDelete", format!("Deleted pod: {}", del.pod)),
                "job-controller",
            );
        }
        if let Some(job) = &template_job {
            for i in 0..d.create {
                let name = self.create_pod(job, d.indexes.get(i), now);
                let msg = format!("Created pod: {name}");
                let event = EventSpec::normal("SuccessfulCreate", msg);
                self.record_event(involved.clone(), event, "job-controller");
            }
        }
        for e in d.events {
            self.log_job_event(k, &e);
            self.record_event(involved.clone(), e, "job-controller");
        }
        if let Some(after) = d.requeue_after {
            self.schedule(after, Target::Job(k.clone()));
        }
        if status_changed && let Some(rec) = self.world.job_mut(k) {
            rec.job.status = Some(d.status);
            self.job_changed(k);
        }
        self.expire_job(k, now);
    }

    /// The pods a Job sync must see: all but the successes already counted, plus the latest
    /// of those (it bounds the failure backoff). A Job that ran thousands of pods then costs a
    /// sync in proportion to its unfinished pods, not its history.
    pub(super) fn pods_that_matter(&self, job_uid: &str) -> Vec<std::borrow::Cow<'_, PodRecord>> {
        let pending = self.world.pending_of_job.get(job_uid).into_iter().flatten();
        let last = self.world.last_success_of_job.get(job_uid);
        pending
            .chain(last)
            .filter_map(|pk| self.world.pod(pk))
            .collect()
    }

    fn log_job_event(&self, k: &Key, e: &EventSpec) {
        if e.type_ == crate::api::EventType::Warning {
            tracing::warn!(namespace = %k.0, job_name = %k.1, reason = %e.reason, "{}", e.message);
        } else {
            tracing::info!(namespace = %k.0, job_name = %k.1, reason = %e.reason, "{}", e.message);
        }
    }

    /// A pod from the Job's template, as `manageJob` and the API server would make it.
    /// `index`: an Indexed Job's pod, named `<job>-<index>-xxxxx`.
    fn create_pod(
        &mut self,
        job: &crate::api::Job,
        index: Option<&job_indexed::NewIndex>,
        now: Timestamp,
    ) -> String {
        let meta = &job.metadata;
        let prefix = match index {
            Some(n) => job_indexed::generate_name(meta.name(), n.index),
            None => super::names::generate_name(meta.name()),
        };
        let mut name = self.names.generated(&prefix);
        while self.world.has_pod(&key(meta.namespace(), &name)) {
            name = self.names.generated(&prefix);
        }
        let uid = self.names.uid();
        let mut pod = pod_for_job(job, &name, &uid, &self.node_name, now);
        if let Some(n) = index {
            job_indexed::apply(&mut pod, job, n);
        }
        let k = key(meta.namespace(), &name);
        self.world.insert_pod(PodRecord {
            pod,
            runs: Default::default(),
            file: None,
        });
        self.store.touch(pod_store_key(&k));
        self.note(Kind::Pod, &k, "ADDED");
        self.dirty_pods.insert(k);
        name
    }

    /// Graceful deletion: mark the pod, SIGTERM now, SIGKILL after its grace period.
    pub(super) fn delete_pod(&mut self, k: &Key, now: Timestamp) {
        let grace = match self.world.pod(k) {
            Some(r) if r.pod.metadata.deletion_timestamp.is_none() => self.grace_of(&r.pod),
            _ => return,
        };
        let Some(rec) = self.world.pod_mut(k) else {
            return;
        };
        rec.pod.metadata.deletion_timestamp = Some(now);
        rec.pod.metadata.deletion_grace_period_seconds = Some(grace.as_secs() as i64);
        if !rec.pod.status.phase.is_terminal() {
            let uid = rec.pod.metadata.uid().to_string();
            let involved = pod_ref(&rec.pod);
            let running = running_containers(&rec.pod);
            self.stop_pod_processes(&uid, grace, &involved, running);
        }
        self.pod_changed(k);
        self.dirty_pods.insert(k.clone());
    }

    // ------------------------------------------------------------------ runtime reports

    pub(super) fn on_runtime(&mut self, ev: RuntimeEvent) {
        match ev {
            RuntimeEvent::Started {
                pod_uid,
                container,
                restart_count,
                pid,
                proc_start,
                started_at,
            } => self.on_started(
                &pod_uid,
                &container,
                restart_count,
                (pid, proc_start),
                started_at,
            ),
            RuntimeEvent::Exited {
                pod_uid,
                container,
                restart_count,
                exit,
            } => {
                self.on_exited(&pod_uid, &container, restart_count, exit);
                self.check_spool();
            }
            RuntimeEvent::LogLost {
                pod_uid,
                container,
                restart_count,
                bytes,
                lines,
                error,
            } => self.on_log_write_failed(
                &pod_uid,
                &container,
                restart_count,
                Some((bytes, lines)),
                &error,
            ),
            RuntimeEvent::LogWriteFailing {
                pod_uid,
                container,
                restart_count,
                error,
            } => self.on_log_write_failed(&pod_uid, &container, restart_count, None, &error),
        }
    }

    /// A Warning `LogWriteFailed` event on the pod (if it is still there): its container's
    /// output is being dropped (`lost: None`), or this much of it was (`Some((bytes, lines))`).
    fn on_log_write_failed(
        &mut self,
        uid: &str,
        container: &str,
        restart_count: i32,
        lost: Option<(u64, u64)>,
        error: &str,
    ) {
        let Some(k) = self.world.pod_by_uid.get(uid).cloned() else {
            return;
        };
        let Some(rec) = self.world.pod(&k) else {
            return;
        };
        let involved = pod_ref(&rec.pod);
        drop(rec);
        let pod = format!("{}/{}", k.0, k.1);
        let message = match lost {
            None => {
                tracing::warn!(
                    pod,
                    container,
                    restart_count,
                    error,
                    "container output is being dropped"
                );
                format!(
                    "cannot write the log of container \"{container}\" (run {restart_count}): {error}; its output is dropped and counted until a write works again"
                )
            }
            Some((bytes, lines)) => {
                tracing::warn!(
                    pod,
                    container,
                    restart_count,
                    bytes,
                    lines,
                    error,
                    "container output lost"
                );
                format!(
                    "lost {lines} lines ({bytes} bytes) of the output of container \"{container}\" (run {restart_count}): {error}"
                )
            }
        };
        self.record_event(
            involved,
            EventSpec::warning("LogWriteFailed", message),
            "kubelet",
        );
    }

    /// The pod a runtime report is about and its container's index, if the report concerns
    /// the current run: a late report for an earlier run or a removed pod is ignored.
    fn reported_run(
        &mut self,
        uid: &str,
        container: &str,
        restart_count: i32,
    ) -> Option<(Key, &mut PodRecord, usize)> {
        let k = self.world.pod_by_uid.get(uid)?.clone();
        let rec = self.world.pod_mut(&k)?;
        let statuses = &rec.pod.status.container_statuses;
        let i = statuses
            .iter()
            .position(|c| c.name == container && c.restart_count == restart_count)?;
        Some((k, rec, i))
    }

    fn on_started(
        &mut self,
        uid: &str,
        container: &str,
        restart_count: i32,
        (pid, proc_start): (u32, Option<u64>),
        at: Timestamp,
    ) {
        let Some((k, rec, i)) = self.reported_run(uid, container, restart_count) else {
            return;
        };
        let cs = &mut rec.pod.status.container_statuses[i];
        if cs.state.terminated.is_some() {
            return;
        }
        cs.state = ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(at),
            }),
            ..Default::default()
        };
        cs.ready = true;
        cs.started = Some(true);
        cs.container_id = Some(format!("jobvisor://{pid}"));
        let run = rec.runs.entry(container.to_string()).or_default();
        run.pid = Some(pid);
        run.proc_start = proc_start;
        let involved = pod_ref(&rec.pod);
        let span = super::logging::pod_span(&rec.pod);
        self.record_event(
            involved,
            EventSpec::normal("Started", format!("Started container {container}")),
            "kubelet",
        );
        span.in_scope(|| tracing::info!(container, pid, "container started"));
        self.pod_changed(&k);
        self.job_of_pod_dirty(&k);
        self.dirty_pods.insert(k);
    }

    fn on_exited(&mut self, uid: &str, container: &str, restart_count: i32, exit: ExitInfo) {
        let Some((k, rec, i)) = self.reported_run(uid, container, restart_count) else {
            return;
        };
        let span = super::logging::pod_span(&rec.pod);
        let cs = &mut rec.pod.status.container_statuses[i];
        let container_id = cs.container_id.clone();
        cs.state = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: exit.exit_code,
                signal: exit.signal,
                reason: Some(exit.reason.clone()),
                message: exit.message.clone(),
                started_at: Some(exit.started_at),
                finished_at: Some(exit.finished_at),
                container_id,
            }),
            ..Default::default()
        };
        cs.ready = false;
        cs.started = Some(false);
        if let Some(run) = rec.runs.get_mut(container) {
            run.pid = None;
            run.proc_start = None;
        }
        if exit.reason == crate::api::TerminatedReason::StartError {
            let involved = pod_ref(&rec.pod);
            let msg = format!(
                "Error: {}",
                exit.message.as_deref().unwrap_or("failed to start")
            );
            self.record_event(involved, EventSpec::warning("Failed", msg), "kubelet");
        }
        span.in_scope(|| tracing::info!(container, exit_code = exit.exit_code, reason = %exit.reason, "container exited"));
        if self.shutting_down {
            self.mark_node_shutdown(
                &k,
                "Pod was terminated in response to imminent node shutdown.",
            );
        }
        self.pod_changed(&k);
        self.job_of_pod_dirty(&k);
        self.dirty_pods.insert(k);
    }

    // ------------------------------------------------------------------ start-up and shutdown

    /// Pods a previous daemon left unfinished cannot be re-attached: their processes are no
    /// longer our children. Kill what is left of them and fail the pods, as a node that went
    /// away would; the Job controller then counts and replaces them.
    pub(super) fn recover(&mut self) {
        let unfinished: Vec<Key> = self
            .world
            .unsettled_pods()
            .filter(|(_, r)| !r.pod.status.phase.is_terminal())
            .map(|(k, _)| k.clone())
            .collect();
        for k in unfinished {
            if let Some(rec) = self.world.pod(&k) {
                for run in rec.runs.values() {
                    if let Some(pid) = run.pid {
                        self.runtime.kill_leftover(pid, run.proc_start);
                    }
                }
            }
            let now = self.clock.now();
            let restart = self.restarts_in_place(&k);
            if let Some(rec) = self.world.pod_mut(&k) {
                let status = if restart {
                    Some(disruption::interrupted(&rec.pod.status, now))
                } else {
                    disruption::lost_container_exit(&rec.pod.status, now)
                };
                if let Some(status) = status {
                    rec.pod.status = status;
                }
                for run in rec.runs.values_mut() {
                    run.pid = None;
                }
                self.pod_changed(&k);
            }
            if restart {
                tracing::warn!(namespace = %k.0, pod_name = %k.1, "pod was running when the daemon stopped; its containers start again");
                continue;
            }
            tracing::warn!(namespace = %k.0, pod_name = %k.1, "pod was running when the daemon stopped; marked failed");
        }
        self.release_orphans();
        // Look at everything once: Jobs converge, and pods deleted before the crash go. A
        // settled pod (ended, counted, not deleted) has nothing left for a sync to do, and
        // unpacking 100,000 of them doubled a restart's time.
        let jobs: Vec<Key> = self.world.job_keys().cloned().collect();
        self.dirty_jobs.extend(jobs);
        let pods: Vec<Key> = self
            .world
            .unsettled_pods()
            .map(|(k, _)| k.clone())
            .collect();
        self.dirty_pods.extend(pods);
        // And every CronJob: slots missed while the daemon was down are found now.
        let cronjobs: Vec<Key> = self.world.cronjobs.keys().cloned().collect();
        self.dirty_cronjobs.extend(cronjobs);
    }

    /// A pod that still carries the Job tracking finalizer while no Job with its owner's uid
    /// exists is released, as the Job controller releases orphan pods: nothing else would
    /// ever remove it (the Job was deleted before its pods' release was recorded).
    fn release_orphans(&mut self) {
        let jobs = self.world.job_uids();
        let orphans: Vec<Key> = self
            .world
            .unsettled_pods()
            .filter(|(_, r)| {
                r.pod
                    .metadata
                    .finalizers
                    .iter()
                    .any(|f| f == JOB_TRACKING_FINALIZER)
                    && !r
                        .pod
                        .metadata
                        .owner_references
                        .iter()
                        .any(|o| jobs.contains(o.uid.as_str()))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in orphans {
            if let Some(r) = self.world.pod_mut(&k) {
                r.pod
                    .metadata
                    .finalizers
                    .retain(|f| f != JOB_TRACKING_FINALIZER);
            }
            self.pod_changed(&k);
        }
    }

    /// A bare Pod is the kubelet's static pod: after the daemon stops (or crashes), its
    /// containers start again in place if its restartPolicy restarts what was interrupted
    /// (Always; OnFailure, as an interrupted container ended with 137 or 143), instead of
    /// the pod being failed for good. A Job's pods are failed and replaced by their Job.
    pub(super) fn restarts_in_place(&self, k: &Key) -> bool {
        self.world.pod(k).is_some_and(|r| {
            r.file.is_some()
                && r.pod.metadata.deletion_timestamp.is_none()
                && r.pod.spec.restart_policy().restarts(137)
        })
    }

    /// Failed with Kubernetes' graceful-node-shutdown reason and a DisruptionTarget condition.
    fn mark_node_shutdown(&mut self, k: &Key, message: &str) {
        if self.restarts_in_place(k) {
            // Left as it is: its containers start again when the daemon does.
            return;
        }
        let now = self.clock.now();
        let Some(rec) = self.world.pod(k) else {
            return;
        };
        let Some(status) = disruption::disrupted(&rec.pod.status, message, now) else {
            return;
        };
        drop(rec);
        if let Some(rec) = self.world.pod_mut(k) {
            rec.pod.status = status;
            self.pod_changed(k);
        }
    }

    pub(super) fn stop_all_pods(&mut self) {
        let live: Vec<(String, std::time::Duration)> = self
            .world
            .unsettled_pods()
            .filter(|(_, r)| !r.pod.status.phase.is_terminal())
            .map(|(_, r)| (r.pod.metadata.uid().to_string(), self.grace_of(&r.pod)))
            .collect();
        for (uid, grace) in live {
            self.runtime.stop_pod(&uid, grace);
        }
        // Pods whose containers never started are done already (settled ones were before).
        let keys: Vec<Key> = self
            .world
            .unsettled_pods()
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.mark_node_shutdown(
                &k,
                "Pod was terminated in response to imminent node shutdown.",
            );
        }
    }

    // ------------------------------------------------------------------ events and watchers

    pub(super) fn record_event(
        &mut self,
        involved: ObjectReference,
        e: EventSpec,
        component: &str,
    ) {
        let now = self.clock.now();
        if let Dedup::Repeat {
            index,
            count,
            last_timestamp,
        } = dedupe(&self.world.events, &involved, &e, now)
        {
            if let Some(repeated) = self.world.events.get_mut(index) {
                repeated.count = count;
                repeated.last_timestamp = Some(last_timestamp);
            }
            return;
        }
        let name = format!("{}.{}", involved.name, self.names.event_suffix());
        let event = Event {
            api_version: "v1".into(),
            kind: "Event".into(),
            metadata: ObjectMeta {
                name: Some(name),
                // Events about cluster-scoped objects (the node) live in `default`, as kubelet's do.
                namespace: Some(if involved.namespace.is_empty() {
                    "default".to_string()
                } else {
                    involved.namespace.clone()
                }),
                uid: Some(self.names.uid()),
                creation_timestamp: Some(now),
                ..Default::default()
            },
            involved_object: involved,
            reason: e.reason,
            message: e.message,
            type_: e.type_,
            source: EventSource {
                component: component.into(),
            },
            first_timestamp: Some(now),
            last_timestamp: Some(now),
            count: 1,
        };
        if self.changes.watched(Kind::Event)
            && let Ok(v) = serde_json::to_value(&event)
        {
            let ns = event.metadata.namespace().to_string();
            self.publish(super::Change::new(
                Kind::Event,
                ns,
                Default::default(),
                "ADDED",
                v,
            ));
        }
        self.world.push_event(event);
    }

    pub(super) fn note(&mut self, kind: Kind, k: &Key, type_: &'static str) {
        if self.changes.watched(kind) {
            self.pending_changes.push((kind, k.clone(), type_));
        }
    }

    pub(super) fn note_deleted<T: serde::Serialize>(&mut self, kind: Kind, k: &Key, object: &T) {
        if !self.changes.watched(kind) {
            return;
        }
        if let Ok(v) = serde_json::to_value(object) {
            let labels = labels_of(&v);
            self.publish(super::Change::new(kind, k.0.clone(), labels, "DELETED", v));
        }
    }

    /// Sends each object changed this turn once, as it is now.
    pub(super) fn publish_changes(&mut self) {
        let mut seen = std::collections::BTreeSet::new();
        for (kind, k, type_) in std::mem::take(&mut self.pending_changes) {
            if !seen.insert((kind, k.clone())) {
                continue;
            }
            let value = self.world.served(kind, &k).map(serde_json::to_value);
            if let Some(Ok(v)) = value {
                let labels = labels_of(&v);
                self.publish(super::Change::new(kind, k.0.clone(), labels, type_, v));
            }
        }
    }
}

fn labels_of(v: &serde_json::Value) -> crate::api::Labels {
    v.pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

pub(super) fn pod_ref(p: &Pod) -> ObjectReference {
    ObjectReference {
        kind: "Pod".into(),
        namespace: p.metadata.namespace().into(),
        name: p.metadata.name().into(),
        uid: p.metadata.uid().into(),
        api_version: Some("v1".into()),
    }
}

pub(super) fn job_ref(j: &crate::api::Job) -> ObjectReference {
    ObjectReference {
        kind: "Job".into(),
        namespace: j.metadata.namespace().into(),
        name: j.metadata.name().into(),
        uid: j.metadata.uid().into(),
        api_version: Some("batch/v1".into()),
    }
}

/// The names of a pod's containers that are running now.
impl Daemon {
    /// SIGTERM to the pod's processes now, SIGKILL after `grace`, and the kubelet's
    /// `Killing` event for each container that was running.
    fn stop_pod_processes(
        &mut self,
        uid: &str,
        grace: std::time::Duration,
        involved: &ObjectReference,
        running: Vec<String>,
    ) {
        self.runtime.stop_pod(uid, grace);
        for name in running {
            let msg = format!("Stopping container {name}");
            self.record_event(
                involved.clone(),
                EventSpec::normal("Killing", msg),
                "kubelet",
            );
        }
    }
}

fn running_containers(pod: &crate::api::Pod) -> Vec<String> {
    pod.status
        .container_statuses
        .iter()
        .filter(|c| c.state.running.is_some())
        .map(|c| c.name.clone())
        .collect()
}
