//! Deleting an object with what it owns, as Kubernetes' garbage collector does
//! (`pkg/controller/garbagecollector`): every object has one owner — a manifest file, or
//! another object through `metadata.ownerReferences` — and deleting an owner deletes its
//! dependents by the `propagationPolicy` of the delete:
//!
//! - `Background` (the default): the owner goes at once, its dependents are deleted after it;
//! - `Foreground`: the owner stays, with a `deletionTimestamp` and the `foregroundDeletion`
//!   finalizer, until every dependent is gone;
//! - `Orphan`: the dependents stay, their owner references (and the Job's tracking
//!   finalizer) removed.
//!
//! Today the owners with dependents are Jobs (their pods); the same rules will take a
//! CronJob's Jobs.

use super::Daemon;
use super::world::{Key, TtlDeleted, job_store_key, key, manifest_store_key};
use crate::api::{JOB_TRACKING_FINALIZER, Kind, Propagation, TtlDeletedJob};
use crate::controller::ttl::{self, Ttl};

/// The finalizer that holds an owner deleted in the foreground until its dependents are gone.
pub const FOREGROUND_DELETION: &str = "foregroundDeletion";

impl Daemon {
    /// Deletes the Job `k`: its pods are terminated gracefully (and removed once ended), or
    /// orphaned, as `propagation` says. Their logs stay (see the logs' retention rule).
    pub(super) fn delete_job_with(&mut self, k: &Key, why: &str, propagation: Propagation) {
        let Some(rec) = self.world.job(k) else {
            return;
        };
        if rec.job.metadata.deletion_timestamp.is_some() {
            // Already being deleted in the foreground: it goes when its pods have.
            return;
        }
        let uid = rec.job.metadata.uid().to_string();
        drop(rec);
        tracing::info!(namespace = %k.0, job_name = %k.1, ?propagation, "job deleted: {why}");
        let now = self.clock.now();
        let pods = self.world.pod_keys_of(&uid);
        match propagation {
            Propagation::Orphan => {
                for pk in &pods {
                    self.orphan_pod(pk, &uid);
                }
            }
            Propagation::Background | Propagation::Foreground => {
                for pk in &pods {
                    if let Some(p) = self.world.pod_mut(pk) {
                        // Nothing will count them any more: they go once they have stopped.
                        p.pod
                            .metadata
                            .finalizers
                            .retain(|f| f != JOB_TRACKING_FINALIZER);
                    }
                    // Recorded even for a pod that was terminating already (which
                    // `delete_pod` leaves alone), so a crash cannot bring the finalizer back.
                    self.pod_changed(pk);
                    self.dirty_pods.insert(pk.clone());
                    self.delete_pod(pk, now);
                }
            }
        }
        if propagation == Propagation::Foreground && !pods.is_empty() {
            if let Some(rec) = self.world.job_mut(k) {
                let meta = &mut rec.job.metadata;
                meta.deletion_timestamp = Some(now);
                meta.deletion_grace_period_seconds = Some(0);
                if !meta.finalizers.iter().any(|f| f == FOREGROUND_DELETION) {
                    meta.finalizers.push(FOREGROUND_DELETION.into());
                }
            }
            self.job_changed(k);
            return;
        }
        self.remove_job(k);
    }

    /// The TTL-after-finished controller: a finished Job whose `ttlSecondsAfterFinished` has
    /// passed is deleted with its pods (background propagation), or looked at again when it
    /// will have. A Job its file still defines is noted on the file's record first, in the
    /// same store batch as the deletion, so neither a re-read of the file nor a restart runs
    /// it again; only a changed spec in the file does (`apply.rs`).
    pub(super) fn expire_job(&mut self, k: &Key, now: jiff::Timestamp) {
        let Some(rec) = self.world.job(k) else {
            return;
        };
        let finished = match ttl::decide(&rec.job, now) {
            Ttl::Keep => return,
            Ttl::WakeAfter(after) => {
                drop(rec);
                self.schedule(after, super::Target::Job(k.clone()));
                return;
            }
            Ttl::Delete { finished } => finished,
        };
        let uid = rec.job.metadata.uid().to_string();
        let spec = rec.applied.spec.clone();
        let source = rec.source.clone();
        let cronjob = rec
            .job
            .metadata
            .owner_references
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "CronJob")
            .map(|o| key(&k.0, &o.name));
        drop(rec);
        if let Some(owner) = cronjob {
            // Its CronJob sees it finished before it goes (`lastSuccessfulTime`), as the
            // CronJob controller sees the Job's update before the TTL controller's delete.
            self.sync_cronjob(&owner);
        }
        if let Some(path) = source
            && let Some(m) = self.world.manifests.get_mut(&path)
            && m.defined(Kind::Job).contains(k)
        {
            m.ttl_deleted.retain(|t| t.key != *k);
            m.ttl_deleted.push(TtlDeleted {
                key: k.clone(),
                spec,
            });
            m.file
                .ttl_deleted
                .retain(|t| (&t.namespace, &t.name) != (&k.0, &k.1));
            m.file.ttl_deleted.push(TtlDeletedJob {
                namespace: k.0.clone(),
                name: k.1.clone(),
                uid,
                finished_time: finished,
                deletion_time: now,
            });
            self.store.touch(manifest_store_key(&path));
        }
        self.delete_job(k, "ttlSecondsAfterFinished passed since it finished");
    }

    /// A Job deleted in the foreground goes once no pod of it is left.
    pub(super) fn finish_foreground_deletion(&mut self, k: &Key) -> bool {
        let Some(rec) = self.world.job(k) else {
            return false;
        };
        if rec.job.metadata.deletion_timestamp.is_none() {
            return false;
        }
        let gone = self.world.pod_keys_of(rec.job.metadata.uid()).is_empty();
        drop(rec);
        if gone {
            self.remove_job(k);
        }
        true
    }

    fn remove_job(&mut self, k: &Key) {
        self.cronjob_of_job_dirty(k);
        if let Some(rec) = self.world.remove_job(k) {
            self.store.touch(job_store_key(k));
            self.note_deleted(Kind::Job, k, &rec.job);
            if rec.job.metadata.deletion_timestamp.is_some() {
                // Re-applied while it was terminating: the files that define it make it anew.
                self.reapply_definers_of(Kind::Job, k);
            }
        }
    }

    /// The pod no longer belongs to the Job `owner_uid`: its owner reference and the Job's
    /// tracking finalizer go; it runs on (and ends) as a pod of its own.
    fn orphan_pod(&mut self, pk: &Key, owner_uid: &str) {
        let Some(mut rec) = self.world.remove_pod(pk) else {
            return;
        };
        let meta = &mut rec.pod.metadata;
        meta.owner_references.retain(|o| o.uid != owner_uid);
        meta.finalizers.retain(|f| f != JOB_TRACKING_FINALIZER);
        self.world.insert_pod(rec);
        self.pod_changed(pk);
        self.dirty_pods.insert(pk.clone());
    }

    /// The Job that owns the pod `pk` through its controller reference, if any.
    pub(super) fn owner_job(&self, pk: &Key) -> Option<Key> {
        let rec = self.world.pod(pk)?;
        let owner = rec
            .pod
            .metadata
            .owner_references
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "Job")?;
        Some(key(&pk.0, &owner.name))
    }
}
