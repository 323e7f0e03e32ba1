//! CronJobs in the daemon: a file's CronJob created or updated in place, deleted with its
//! Jobs, and synced by the pure controller (`controller::cronjob`) whenever it changes, one of
//! its Jobs changes, or its next slot comes (the wall-clock timer, `wall_timer.rs`).
//!
//! Exactly once per slot: the Job a sync creates and the CronJob's new `lastScheduleTime` are
//! changed in the same turn, so they reach the disk in the same journal record; after a crash
//! either both are there or neither. And the Job's name is the slot's, so a slot found again
//! finds its Job instead of making another.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::Daemon;
use super::world::{CronJobRecord, JobRecord, Key, job_store_key, key, store_key};
use serde_json::{Value, json};

use super::requests::{already_exists, bad_request, invalid};
use crate::api::{CronJob, Job, Kind, ObjectReference, Propagation, Status};
use crate::controller::cronjob::{self, Context, DeleteReason};
use crate::manifest::{self, Refused};

/// Each CronJob's next wake-up, and the earliest of all.
#[derive(Default)]
pub(super) struct Wakes {
    by_time: BTreeSet<(Timestamp, Key)>,
    by_key: HashMap<Key, Timestamp>,
}

impl Wakes {
    pub(super) fn set(&mut self, k: &Key, at: Option<Timestamp>) {
        if let Some(old) = self.by_key.remove(k) {
            self.by_time.remove(&(old, k.clone()));
        }
        if let Some(at) = at {
            self.by_key.insert(k.clone(), at);
            self.by_time.insert((at, k.clone()));
        }
    }

    pub(super) fn earliest(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The CronJob that looks at its schedule first, and when.
    pub(super) fn first(&self) -> Option<(Timestamp, &Key)> {
        self.by_time.first().map(|(at, k)| (*at, k))
    }

    /// The CronJobs whose wake-up is at or before `now`, taken out.
    pub(super) fn take_due(&mut self, now: Timestamp) -> Vec<Key> {
        let mut due = Vec::new();
        while let Some((at, k)) = self.by_time.first().cloned() {
            if at > now {
                break;
            }
            self.by_time.remove(&(at, k.clone()));
            self.by_key.remove(&k);
            due.push(k);
        }
        due
    }
}

/// The reference a CronJob's events point at.
pub(super) fn cronjob_ref(cj: &CronJob) -> ObjectReference {
    ObjectReference {
        kind: "CronJob".into(),
        namespace: cj.metadata.namespace().into(),
        name: cj.metadata.name().into(),
        uid: cj.metadata.uid().into(),
        api_version: Some("batch/v1".into()),
    }
}

/// The uid of the object that controls `job`, if any.
pub(super) fn controller_uid(job: &Job) -> Option<&str> {
    job.metadata
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

impl Daemon {
    /// Why a CronJob from `path` cannot take the name `k`: another file defines it.
    pub(super) fn cronjob_conflict(&self, path: &Path, k: &Key) -> Option<String> {
        let rec = self.world.cronjobs.get(k)?;
        // The file that defined it is gone, or no longer defines it: this one takes it over.
        if rec.source == path || !self.file_defines(&rec.source, Kind::CronJob, k) {
            return None;
        }
        let by = format!("is already defined in {}", rec.source.display());
        Some(super::apply::conflict_message(path, Kind::CronJob, k, &by))
    }

    /// A CronJob as its file says now. Every spec field of a CronJob is mutable: an edit
    /// updates it in place (its Jobs keep running) and it is synced at once.
    pub(super) fn upsert_cronjob(&mut self, path: &Path, k: &Key, applied: CronJob) {
        let now = self.clock.now();
        match self.world.cronjobs.get_mut(k) {
            Some(rec) => {
                let moved = rec.source != path;
                rec.source = path.to_path_buf();
                let cj = &mut rec.cronjob;
                let same = cj.spec == applied.spec
                    && cj.metadata.labels == applied.metadata.labels
                    && cj.metadata.annotations == applied.metadata.annotations;
                if same {
                    if moved {
                        // Taken over by another file: the new owner is recorded.
                        self.store.touch(store_key(Kind::CronJob, k));
                    }
                    return;
                }
                if cj.spec != applied.spec {
                    cj.metadata.generation = Some(cj.metadata.generation.unwrap_or(1) + 1);
                }
                cj.spec = applied.spec;
                cj.metadata.labels = applied.metadata.labels;
                cj.metadata.annotations = applied.metadata.annotations;
                tracing::info!(namespace = %k.0, cronjob_name = %k.1, file = %path.display(), "cronjob updated in place");
                self.cronjob_changed(k);
            }
            None => {
                let uid = self.names.uid();
                let cj = manifest::admit_cronjob(&applied, &uid, now);
                self.world.cronjobs.insert(
                    k.clone(),
                    Box::new(CronJobRecord {
                        cronjob: cj,
                        source: path.to_path_buf(),
                    }),
                );
                tracing::info!(namespace = %k.0, cronjob_name = %k.1, file = %path.display(), "cronjob created");
                self.store.touch(store_key(Kind::CronJob, k));
                self.note(Kind::CronJob, k, "ADDED");
            }
        }
        self.dirty_cronjobs.insert(k.clone());
    }

    /// The file `path` no longer defines the CronJob `k`: it goes, with its Jobs (as
    /// Kubernetes' garbage collector deletes them), unless another file defines it now.
    pub(super) fn delete_file_cronjob(&mut self, path: &Path, k: &Key, why: &str) {
        if self.world.cronjobs.get(k).is_some_and(|r| r.source == path) {
            self.delete_cronjob(k, why, Propagation::Background);
        }
    }

    fn cronjob_changed(&mut self, k: &Key) {
        self.store.touch(store_key(Kind::CronJob, k));
        self.note(Kind::CronJob, k, "MODIFIED");
    }

    /// Deletes the CronJob `k` and, unless orphaned, its Jobs (`propagation` for each of
    /// them, as the garbage collector would).
    pub(super) fn delete_cronjob(&mut self, k: &Key, why: &str, propagation: Propagation) {
        let Some(rec) = self.world.cronjobs.remove(k) else {
            return;
        };
        tracing::info!(namespace = %k.0, cronjob_name = %k.1, ?propagation, "cronjob deleted: {why}");
        let uid = rec.cronjob.metadata.uid().to_string();
        for jk in self.jobs_controlled_by(&k.0, &uid) {
            match propagation {
                Propagation::Orphan => self.orphan_job(&jk, &uid),
                _ => self.delete_job_with(&jk, "its CronJob was deleted", propagation),
            }
        }
        self.cron_wakes.set(k, None);
        self.dirty_cronjobs.remove(k);
        self.store.touch(store_key(Kind::CronJob, k));
        self.note_deleted(Kind::CronJob, k, &rec.cronjob);
    }

    /// The Job no longer belongs to the CronJob `owner_uid`; it stays, a Job of its own.
    fn orphan_job(&mut self, jk: &Key, owner_uid: &str) {
        if let Some(rec) = self.world.job_mut(jk) {
            rec.job
                .metadata
                .owner_references
                .retain(|o| o.uid != owner_uid);
            self.job_changed(jk);
        }
    }

    /// The Jobs in `ns` whose controller reference is `owner_uid`.
    pub(super) fn jobs_controlled_by(&self, ns: &str, owner_uid: &str) -> Vec<Key> {
        self.world
            .jobs_of_owner(owner_uid)
            .into_iter()
            .filter(|k| k.0 == ns)
            .filter(|k| {
                self.world
                    .job(k)
                    .is_some_and(|r| controller_uid(&r.job) == Some(owner_uid))
            })
            .collect()
    }

    /// A Job changed: the CronJob that controls it looks again (a finished Job leaves
    /// `active`, a Forbid slot may run).
    pub(super) fn cronjob_of_job_dirty(&mut self, jk: &Key) {
        let Some(owner) = self
            .world
            .job(jk)
            .as_deref()
            .and_then(|r| {
                r.job
                    .metadata
                    .owner_references
                    .iter()
                    .find(|o| o.controller == Some(true) && o.kind == "CronJob")
            })
            .map(|o| key(&jk.0, &o.name))
        else {
            return;
        };
        if self.world.cronjobs.contains_key(&owner) {
            self.dirty_cronjobs.insert(owner);
        }
    }

    /// The wall-clock timer fired (or the clock was set): every CronJob whose slot has come
    /// syncs; after a clock step, all of them.
    pub(super) fn on_wall_timer(&mut self, wake: super::wall_timer::Wake) {
        match wake {
            super::wall_timer::Wake::Due => {
                let now = self.clock.now();
                let due = self.cron_wakes.take_due(now);
                self.dirty_cronjobs.extend(due);
            }
            super::wall_timer::Wake::ClockChanged => {
                tracing::info!(
                    "the wall clock was set: every CronJob's schedule is looked at again"
                );
                let all: Vec<Key> = self.world.cronjobs.keys().cloned().collect();
                self.dirty_cronjobs.extend(all);
            }
        }
    }

    /// The zone a CronJob's schedule runs in: `spec.timeZone`, else the daemon's own.
    fn zone_of(&self, cj: &CronJob) -> Result<TimeZone, String> {
        match &cj.spec.time_zone {
            Some(name) => crate::schedule::time_zone(name),
            None => Ok(self.local_zone.clone()),
        }
    }

    /// A Job that a CronJob owns enters the world as the API server creates one: no file,
    /// deleted through the API or with its CronJob.
    pub(super) fn insert_owned_job(&mut self, jk: &Key, job: Job) {
        self.world.insert_job(
            jk.clone(),
            JobRecord {
                applied: job.clone(),
                job,
                source: None,
            },
        );
        self.store.touch(job_store_key(jk));
        self.note(Kind::Job, jk, "ADDED");
        self.dirty_jobs.insert(jk.clone());
    }

    /// `POST` of a Job (`kubectl create job NAME --from=cronjob/CRON`): created owned by the
    /// CronJob its controller reference names, which must exist with that uid, exactly as a
    /// slot's Job is (no file; deleted with the CronJob). The CronJob's controller then sees
    /// a Job it did not create: `UnexpectedJob`, never in `status.active`.
    #[allow(clippy::result_large_err)] // a Status is the API's answer itself
    pub(super) fn create_cronjob_job(&mut self, ns: &str, body: &str) -> Result<Value, Status> {
        if self.shutting_down {
            return Err(Status::failure(
                503,
                "ServiceUnavailable",
                "the jobvisor daemon is shutting down",
            ));
        }
        let job = match manifest::load_api_job(body, ns, Some(&self.cfg.images)) {
            Ok(job) => job,
            Err(Refused::BadRequest(why)) => return Err(bad_request(why)),
            Err(Refused::Invalid { name, causes }) => {
                return Err(invalid(Kind::Job, &name, &causes));
            }
            Err(Refused::NotOwnedByCronJob { name }) => {
                let mut s = Status::failure(
                    403,
                    "Forbidden",
                    format!(
                        "jobs.batch {} is forbidden: jobvisor creates Jobs from manifest files: use `jobvisor apply -f FILE` or `jobvisor create job {name} --image=IMAGE -- COMMAND`; through the API it creates only a Job that a CronJob owns (`jobvisor create job {name} --from=cronjob/NAME`)",
                        serde_json::to_string(&name).unwrap_or_default()
                    ),
                );
                s.details = Some(json!({"name": name, "group": "batch", "kind": "jobs"}));
                return Err(s);
            }
        };
        let name = job.metadata.name().to_string();
        let Some(owner) = job.metadata.owner_references.first().cloned() else {
            return Err(Status::failure(
                500,
                "InternalError",
                "the Job lost its owner",
            ));
        };
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let cause = match self.world.cronjobs.get(&key(ns, &owner.name)) {
            Some(rec) if rec.cronjob.metadata.uid() == owner.uid => None,
            Some(_) => Some(format!(
                "metadata.ownerReferences[0].uid: Invalid value: {}: not the uid of CronJob {} in namespace {}",
                quote(&owner.uid),
                quote(&owner.name),
                quote(ns)
            )),
            None => Some(format!(
                "metadata.ownerReferences[0].name: Invalid value: {}: no CronJob of that name in namespace {}",
                quote(&owner.name),
                quote(ns)
            )),
        };
        if let Some(cause) = cause {
            return Err(invalid(Kind::Job, &name, &[cause]));
        }
        let jk = key(ns, &name);
        if self.world.contains_job(&jk) {
            return Err(already_exists(Kind::Job, &name));
        }
        let uid = self.names.uid();
        let job = manifest::admit_cronjob_job(job, &uid, self.clock.now());
        let answer = serde_json::to_value(&job)
            .map_err(|e| Status::failure(500, "InternalError", e.to_string()));
        tracing::info!(namespace = %ns, job_name = %name, cronjob_name = %owner.name, "job created through the API for its CronJob");
        // Its first sync changes it, and a changed Job wakes its CronJob (`job_changed`).
        self.insert_owned_job(&jk, job);
        answer
    }

    pub(super) fn sync_cronjob(&mut self, k: &Key) {
        let now = self.clock.now();
        let Some(rec) = self.world.cronjobs.get(k) else {
            self.cron_wakes.set(k, None);
            return;
        };
        let cj = &rec.cronjob;
        let uid = cj.metadata.uid().to_string();
        let owned_keys = self.jobs_controlled_by(&k.0, &uid);
        let owned_records: Vec<_> = owned_keys
            .iter()
            .filter_map(|jk| self.world.job(jk))
            .collect();
        let owned: Vec<&Job> = owned_records.iter().map(|r| &r.job).collect();
        let zone = self.zone_of(cj);
        let ns = k.0.clone();
        let world = &self.world;
        let name_taken = |name: &str| {
            world
                .job(&key(&ns, name))
                .is_some_and(|r| controller_uid(&r.job) != Some(uid.as_str()))
        };
        let cx = Context {
            jobs: &owned,
            zone: zone.as_ref().map_err(Clone::clone),
            name_taken: &name_taken,
            now,
        };
        let d = cronjob::sync(cj, &cx);
        let involved = cronjob_ref(cj);
        let status_changed = cj.status.as_ref().unwrap_or(&Default::default()) != &d.status;
        drop(owned);
        for del in &d.delete {
            let why = match del.why {
                DeleteReason::Replace => "concurrencyPolicy Replace: a new slot came",
                DeleteReason::History => "beyond its CronJob's history limit",
            };
            self.delete_job_with(&key(&k.0, &del.name), why, Propagation::Background);
        }
        let mut status = d.status;
        if let Some(new) = d.create {
            let job_uid = self.names.uid();
            let name = new.job.metadata.name().to_string();
            let job = manifest::admit_cronjob_job(new.job, &job_uid, now);
            for r in status.active.iter_mut().filter(|r| r.name == name) {
                r.uid = job_uid.clone();
            }
            let jk = key(&k.0, &name);
            tracing::info!(namespace = %k.0, cronjob_name = %k.1, job_name = %name, scheduled = %new.scheduled, "job created for a slot");
            self.insert_owned_job(&jk, job);
        }
        for e in d.events {
            self.record_event(involved.clone(), e, "cronjob-controller");
        }
        self.cron_wakes.set(k, d.wake_at);
        if status_changed && let Some(rec) = self.world.cronjobs.get_mut(k) {
            rec.cronjob.status = Some(status);
            self.cronjob_changed(k);
        }
    }
}
