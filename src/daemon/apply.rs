//! A manifest file's objects follow the file: created, updated in place, recreated or
//! deleted as its content says. Decided by content, never by the event that woke us.

use std::path::{Path, PathBuf};

use super::world::{
    DeclaredRecord, Defined, JobRecord, Key, ManifestRecord, job_store_key, key,
    manifest_store_key, store_key,
};
use super::{Daemon, Kind};
use crate::api::{ANNOTATION_EXEC, Job, ManifestState, ObjectReference};
use crate::controller::EventSpec;
use crate::controller::job_update::{self, JobUpdate};
use crate::manifest;

/// How a Job from a file relates to the one already running.
enum Delta {
    Same,
    /// Only mutable fields changed: apply in place.
    Mutable,
    /// The pod template or another immutable field (`field`) changed: a new Job replaces
    /// the old.
    Immutable {
        field: &'static str,
    },
}

fn delta(old: &Job, new: &Job) -> Delta {
    match job_update::classify(old, new) {
        JobUpdate::Same => Delta::Same,
        JobUpdate::InPlace => Delta::Mutable,
        JobUpdate::Recreate { field } => Delta::Immutable { field },
    }
}

impl Daemon {
    /// Brings the world in line with one file as it is on disk now. Anything that would take
    /// objects away waits out `watch.removalGrace` first (see [`Self::file_missing`]).
    pub(super) fn apply_file(&mut self, path: &Path) {
        self.apply_file_as(path, false);
    }

    /// `confirmed`: the removal grace has passed, so missing files and dropped objects count.
    /// The file is read off the loop (`reads.rs`); what was read comes back to
    /// [`Self::apply_entry`].
    fn apply_file_as(&mut self, path: &Path, confirmed: bool) {
        self.read_file(path, confirmed);
    }

    /// Brings the world in line with what reading `path` found.
    /// `look`: what the manifests path led to right after the read (from the pool, for a read
    /// that may delete); `None`: looked at here if needed.
    pub(super) fn apply_entry(
        &mut self,
        path: &Path,
        entry: crate::watch::Entry,
        confirmed: bool,
        look: Option<super::source::Look>,
    ) {
        use crate::watch::Entry;
        let entry = match entry {
            // Listed (so never skipped silently), never read: a name that is not UTF-8 could
            // not be shown, stored or referred to faithfully.
            Entry::Text(_) | Entry::Ignored(_) | Entry::Invalid(_)
                if path.file_name().and_then(|n| n.to_str()).is_none() =>
            {
                Entry::Ignored(crate::watch::NOT_UTF8_NAME.into())
            }
            entry => entry,
        };
        if !matches!(entry, Entry::Transient(_)) {
            self.retries.remove(path);
        }
        let text = match entry {
            Entry::Text(t) => t,
            // A file is only gone if the directory is there, unchanged, to say so (checked
            // here, where a missing file would delete).
            Entry::Missing if confirmed => {
                if self.removal_may_proceed(
                    path,
                    "still missing after watch.removalGrace, but so is the manifests directory: its objects are kept",
                    look,
                ) {
                    self.file_removed(path);
                }
                return;
            }
            Entry::Missing => return self.file_missing(path),
            Entry::Ignored(why) => return self.file_ignored(path, why, confirmed, look),
            Entry::Invalid(message) => {
                tracing::error!("{message}");
                // The last good version keeps running, as for any bad edit.
                return self.record_manifest(
                    path,
                    String::new(),
                    ManifestState::Invalid,
                    vec![message],
                    vec![],
                );
            }
            Entry::Transient(e) => return self.read_later(path, &e),
        };
        if self.world.manifests.get(path).is_some_and(|m| {
            m.content == text
                && matches!(
                    m.file.state,
                    ManifestState::Applied | ManifestState::Invalid
                )
        }) {
            // As applied, it defines all it did: a drop read since did not hold.
            if !confirmed {
                self.timer_index
                    .remove(&super::Target::Removal(path.to_path_buf()));
            }
            return;
        }
        self.apply_text(path, text, confirmed);
    }

    /// Asked before objects go because their file is gone or no longer a regular file: only
    /// if the manifests directory is there and is the one watched, as before. If it was just
    /// replaced, the watch was re-armed and the directory rescanned, which put the file on a
    /// fresh `watch.removalGrace` (or applied it, if the new directory has it); if it cannot be
    /// looked at now, the removal is tried again later; while it is unavailable nothing goes
    /// (`lost`, logged).
    fn removal_may_proceed(
        &mut self,
        path: &Path,
        lost: &str,
        look: Option<super::source::Look>,
    ) -> bool {
        let check = match look {
            Some(look) => self.check_source_with(look, false),
            None => self.check_source(false),
        };
        match check {
            // A listing that failed is owed: until it is done, "missing" may be its failure.
            super::source::Check::Unchanged if self.rescan_retry.is_some() => {
                let after = self.cfg.watch.removal_grace.max(self.source_retry_delay());
                tracing::info!(file = %path.display(), "the manifests directory could not be listed: the removal is tried again in {after:?}");
                self.schedule(after, super::Target::Removal(path.to_path_buf()));
                false
            }
            super::source::Check::Unchanged => true,
            super::source::Check::Rearmed => {
                tracing::info!(file = %path.display(), "the manifests directory was just replaced and rescanned: the removal waits for watch.removalGrace again");
                false
            }
            super::source::Check::Unsure => {
                let after = self.cfg.watch.removal_grace.max(self.source_retry_delay());
                tracing::info!(file = %path.display(), "the manifests directory cannot be looked at now: the removal is tried again in {after:?}");
                self.schedule(after, super::Target::Removal(path.to_path_buf()));
                false
            }
            super::source::Check::Lost => {
                tracing::info!(file = %path.display(), "{lost}");
                false
            }
        }
    }

    /// A passing read error (fds or memory exhausted, EIO…) says nothing about the file: it is
    /// `Pending` and read again with back-off, and whatever it last applied keeps running.
    fn read_later(&mut self, path: &Path, e: &std::io::Error) {
        let delay = super::back_off(self.retries.get(path).copied());
        self.retries.insert(path.to_path_buf(), delay);
        self.schedule(delay, super::Target::Retry(path.to_path_buf()));
        let message = format!("retrying in {delay:?}: {e}");
        tracing::warn!(file = %path.display(), "cannot read manifest: {message}");
        let content = self
            .world
            .manifests
            .get(path)
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let errors = self
            .world
            .manifests
            .get(path)
            .map(|m| m.file.errors.clone())
            .unwrap_or_default();
        let warnings = self
            .world
            .manifests
            .get(path)
            .map(|m| m.file.warnings.clone())
            .unwrap_or_default();
        self.record_manifest(path, content, ManifestState::Pending, errors, warnings);
        self.set_message(path, message);
    }

    /// Named like a manifest but not a regular file (a FIFO, a directory, a dangling
    /// symlink…): listed as `Ignored` with the reason. Jobs it defined while it was a file go
    /// as if it had been removed, after the same grace (a symlink being re-pointed may dangle
    /// for a moment).
    fn file_ignored(
        &mut self,
        path: &Path,
        why: String,
        confirmed: bool,
        look: Option<super::source::Look>,
    ) {
        let had_jobs = self
            .world
            .manifests
            .get(path)
            .is_some_and(|m| m.defines_any());
        let grace = self.cfg.watch.removal_grace;
        if had_jobs
            && (confirmed || grace.is_zero())
            && !self.removal_may_proceed(
                path,
                "no longer a regular file after watch.removalGrace, but the manifests directory is unavailable: its objects are kept",
                look,
            )
        {
            return;
        }
        if had_jobs && !confirmed && !grace.is_zero() {
            self.schedule(grace, super::Target::Removal(path.to_path_buf()));
        } else if had_jobs {
            let defined = self
                .world
                .manifests
                .get_mut(path)
                .map(|m| std::mem::take(&mut m.defines))
                .unwrap_or_default();
            // Another file that defines them too takes them over first, as when a file is
            // removed.
            self.retry_conflicts();
            for (kind, k) in defined.iter() {
                self.delete_defined(path, kind, k, "its manifest is no longer a regular file");
            }
            if let Some(m) = self.world.manifests.get_mut(path) {
                m.file.objects.clear();
                forget_undefined_ttl_deletions(m);
            }
        }
        if !self
            .world
            .manifests
            .get(path)
            .is_some_and(|m| m.file.state == ManifestState::Ignored)
        {
            tracing::warn!(file = %path.display(), "ignored: {why}");
        }
        let content = if had_jobs && !confirmed {
            self.world
                .manifests
                .get(path)
                .map(|m| m.content.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        self.record_manifest(path, content, ManifestState::Ignored, vec![], vec![]);
        self.set_message(path, why);
        if had_jobs && (confirmed || grace.is_zero()) {
            self.retry_conflicts();
        }
    }

    fn set_message(&mut self, path: &Path, message: String) {
        if let Some(m) = self.world.manifests.get_mut(path) {
            m.file.message = Some(message);
        }
    }

    /// Applies already-read content (the watcher and `PUT manifests` both end here). Unless
    /// `confirmed`, Jobs the file no longer defines are kept until the removal grace has
    /// passed: a file caught half-written (or empty, between an editor's rename and write)
    /// must not delete, and so later re-run, anything.
    pub(super) fn apply_text(&mut self, path: &Path, text: String, confirmed: bool) {
        let report = manifest::load(path, &text, Some(&self.cfg.images));
        if !report.errors.is_empty() {
            for e in &report.errors {
                tracing::error!("{e}");
            }
            // The last good version keeps running: a bad edit never takes objects away.
            return self.record_manifest(
                path,
                text,
                ManifestState::Invalid,
                report.errors,
                report.warnings,
            );
        }
        for w in &report.warnings {
            tracing::warn!("{w}");
        }
        let mut errors = Vec::new();
        let mut now = Defined::default();
        for job in report.jobs {
            let k = key(job.metadata.namespace(), job.metadata.name());
            if let Some(why) = self.job_conflict(path, &k) {
                errors.push(why);
                continue;
            }
            self.upsert_job(path, &k, job);
            now.get_mut(Kind::Job).push(k);
        }
        for pod in report.pods {
            let k = key(pod.metadata.namespace(), pod.metadata.name());
            if let Some(why) = self.pod_conflict(path, &k) {
                errors.push(why);
                continue;
            }
            self.upsert_pod(path, &k, pod);
            now.get_mut(Kind::Pod).push(k);
        }
        for cj in report.cronjobs {
            let k = key(cj.metadata.namespace(), cj.metadata.name());
            if let Some(why) = self.cronjob_conflict(path, &k) {
                errors.push(why);
                continue;
            }
            self.upsert_cronjob(path, &k, cj);
            now.get_mut(Kind::CronJob).push(k);
        }
        // An update its kind refuses (an immutable ConfigMap's data) leaves the object as it
        // was and the file Invalid; the file still defines it.
        let mut refused = Vec::new();
        for d in report.declared {
            let (kind, k) = (d.kind, key(d.metadata.namespace(), d.metadata.name()));
            if let Some(why) = self.declared_conflict(path, kind, &k) {
                errors.push(why);
                continue;
            }
            if let Err(why) = self.upsert_declared(path, &k, d) {
                refused.push(why);
            }
            now.get_mut(kind).push(k);
        }
        let before = self
            .world
            .manifests
            .get(path)
            .map(|m| m.defines.clone())
            .unwrap_or_default();
        let dropped: Vec<(Kind, Key)> = before
            .iter()
            .filter(|(kind, k)| !now.keys(*kind).contains(k))
            .map(|(kind, k)| (kind, k.clone()))
            .collect();
        let any_dropped = !dropped.is_empty();
        let grace = self.cfg.watch.removal_grace;
        if any_dropped && !confirmed && !grace.is_zero() {
            // Keep the old content on record, so the re-check sees a change to apply.
            self.schedule(grace, super::Target::Removal(path.to_path_buf()));
            if let Some(m) = self.world.manifests.get_mut(path) {
                for (kind, k) in dropped {
                    now.get_mut(kind).push(k);
                }
                m.defines = now;
                m.file.objects = object_refs(m);
            }
            return;
        }
        let state = if !errors.is_empty() {
            ManifestState::Conflict
        } else if !refused.is_empty() {
            ManifestState::Invalid
        } else {
            ManifestState::Applied
        };
        errors.extend(refused);
        for e in &errors {
            tracing::error!("{e}");
        }
        self.record_manifest(path, text, state, errors, report.warnings);
        if let Some(m) = self.world.manifests.get_mut(path) {
            m.defines = now;
            m.file.objects = object_refs(m);
            forget_undefined_ttl_deletions(m);
        }
        if !any_dropped {
            // Everything it defined is back: a drop read earlier did not hold for the grace,
            // so no removal check is due (a later truncated read must not confirm it).
            if !confirmed {
                self.timer_index
                    .remove(&super::Target::Removal(path.to_path_buf()));
            }
            return;
        }
        // A file that defines a dropped object too takes it over first, as when a file is
        // removed: a definition moved to another file keeps its object (a finished Job stays
        // finished, a CronJob its history and running Jobs) instead of a delete and a re-run.
        self.retry_conflicts();
        let why = "its definition was removed from the manifest";
        for (kind, gone) in &dropped {
            self.delete_defined(path, *kind, gone, why);
        }
        // Names the deletions freed.
        self.retry_conflicts();
    }

    /// Why a Job from `path` cannot take the name `k`, if it cannot: another file that still
    /// exists defines it, or another object owns it.
    fn job_conflict(&self, path: &Path, k: &Key) -> Option<String> {
        let rec = self.world.job(k)?;
        let by = match &rec.source {
            Some(source) if source == path => return None,
            // The file that defined it is gone, or no longer defines it: this one takes it over.
            Some(source) if !self.file_defines(source, Kind::Job, k) => return None,
            Some(source) => format!("is already defined in {}", source.display()),
            None => owned_elsewhere(&rec.job.metadata),
        };
        Some(conflict_message(path, Kind::Job, k, &by))
    }

    /// Whether the manifest `file` defines the object `k` of `kind` now.
    pub(super) fn file_defines(&self, file: &Path, kind: Kind, k: &Key) -> bool {
        self.world
            .manifests
            .get(file)
            .is_some_and(|m| m.defined(kind).contains(k))
    }

    /// Why a bare Pod from `path` cannot take the name `k`, if it cannot: another file that
    /// still exists defines it, or a pod a Job (or the API) created has it.
    fn pod_conflict(&self, path: &Path, k: &Key) -> Option<String> {
        let rec = self.world.pod(k)?;
        let by = match rec.source() {
            Some(source) if source == path => return None,
            // The file that defined it is gone for good, or no longer defines it (the pod is
            // only ending): this one takes the Pod over once it has.
            Some(source) if !self.file_defines(source, Kind::Pod, k) => {
                if rec.pod.metadata.deletion_timestamp.is_some() {
                    format!(
                        "is still terminating (it was defined in {})",
                        source.display()
                    )
                } else {
                    return None;
                }
            }
            Some(source) => format!("is already defined in {}", source.display()),
            None => owned_elsewhere(&rec.pod.metadata),
        };
        Some(conflict_message(path, Kind::Pod, k, &by))
    }

    /// A bare Pod as its file now defines it. Kubernetes forbids changing a pod's spec
    /// (only labels and annotations may change), so any other change replaces the pod: the
    /// old one is terminated gracefully and the new one created when it is gone.
    fn upsert_pod(&mut self, path: &Path, k: &Key, applied: crate::api::Pod) {
        let Some(rec) = self.world.pod_mut(k) else {
            return self.create_file_pod(path, k, applied);
        };
        let Some(file) = rec.file.as_mut() else {
            return;
        };
        if file.source != path {
            // Taken over by another file: recorded, as for a Job.
            file.source = path.to_path_buf();
            self.store.touch(super::world::pod_store_key(k));
        }
        if rec.pod.metadata.deletion_timestamp.is_some() {
            // Being replaced: what the file says now is created once it is gone.
            file.successor = Some(Box::new(applied));
            self.store.touch(super::world::pod_store_key(k));
            return;
        }
        if *file.applied == applied {
            return;
        }
        if file.applied.spec == applied.spec {
            rec.pod.metadata.labels = applied.metadata.labels.clone();
            // What the daemon noted on the pod stays, as the kubelet's own annotations do.
            let exec = rec.pod.metadata.annotations.remove(ANNOTATION_EXEC);
            rec.pod.metadata.annotations = applied.metadata.annotations.clone();
            if let Some(exec) = exec {
                rec.pod
                    .metadata
                    .annotations
                    .insert(ANNOTATION_EXEC.into(), exec);
            }
            *file.applied = applied;
            tracing::info!(namespace = %k.0, pod_name = %k.1, file = %path.display(), "pod metadata updated in place");
            self.pod_changed(k);
            return;
        }
        tracing::info!(namespace = %k.0, pod_name = %k.1, file = %path.display(), "pod spec changed: replacing the pod");
        let involved = super::reconcile::pod_ref(&rec.pod);
        let msg = format!(
            "Pod is replaced because its spec in {} changed; Kubernetes does not update a pod's spec in place",
            path.display()
        );
        self.record_event(involved, EventSpec::normal("Replacing", msg), "jobvisor");
        if let Some(file) = self.world.pod_mut(k).and_then(|r| r.file.as_mut()) {
            file.successor = Some(Box::new(applied));
        }
        let now = self.clock.now();
        self.delete_pod(k, now);
    }

    /// A bare Pod from its file, as the kubelet admits a static pod.
    fn create_file_pod(&mut self, path: &Path, k: &Key, applied: crate::api::Pod) {
        let now = self.clock.now();
        let uid = self.names.uid();
        let pod = manifest::admit_pod(&applied, &uid, &self.node_name, now);
        self.world.insert_pod(super::world::PodRecord {
            pod,
            runs: Default::default(),
            file: Some(super::world::FileOwned {
                source: path.to_path_buf(),
                applied: Box::new(applied),
                successor: None,
            }),
        });
        self.store.touch(super::world::pod_store_key(k));
        self.note(Kind::Pod, k, "ADDED");
        self.dirty_pods.insert(k.clone());
        tracing::info!(namespace = %k.0, pod_name = %k.1, file = %path.display(), "pod created");
    }

    /// Deletes a bare Pod that `path` defined, gracefully; it is removed once it has ended.
    pub(super) fn delete_file_pod(&mut self, path: &Path, k: &Key, why: &str) {
        if self.world.pod(k).is_none_or(|r| r.source() != Some(path)) {
            return;
        }
        tracing::info!(namespace = %k.0, pod_name = %k.1, "pod deleted: {why}");
        let now = self.clock.now();
        self.delete_pod(k, now);
    }

    /// After a bare Pod was removed: its successor (what its file said when the spec changed)
    /// is created if the file still defines the pod. Not while a removal of the file is
    /// pending: that re-reads the file and applies what it says then.
    pub(super) fn create_successor(&mut self, k: &Key, file: super::world::FileOwned) {
        let Some(successor) = file.successor else {
            return;
        };
        let path = file.source;
        let still_defined = self
            .world
            .manifests
            .get(&path)
            .is_some_and(|m| m.defined(Kind::Pod).contains(k));
        let removal_pending = self
            .timer_index
            .contains_key(&super::Target::Removal(path.clone()));
        if still_defined && !removal_pending {
            self.create_file_pod(&path, k, *successor);
        }
    }

    /// After an object left: files that define it and could not apply it while it was
    /// there (it was terminating, or another file held its name) are applied again.
    pub(super) fn reapply_definers_of(&mut self, kind: Kind, k: &Key) {
        let definers: Vec<(PathBuf, String)> = self
            .world
            .manifests
            .iter()
            .filter(|(_, m)| matches!(kind, Kind::Job | Kind::Pod) && m.defined(kind).contains(k))
            .filter(|(_, m)| m.file.state == ManifestState::Applied)
            .map(|(p, m)| (p.clone(), m.content.clone()))
            .collect();
        for (path, content) in definers {
            self.apply_text(&path, content, false);
        }
        self.retry_conflicts();
    }

    fn upsert_job(&mut self, path: &Path, k: &Key, applied: Job) {
        let now = self.clock.now();
        if self
            .world
            .job(k)
            .is_some_and(|r| r.job.metadata.deletion_timestamp.is_some())
        {
            // Being deleted in the foreground: once it is gone, the files that define it are
            // applied again and make it anew (`gc.rs`).
            return;
        }
        let change = self.world.job(k).map(|r| {
            (
                delta(&r.applied, &applied),
                r.source.as_deref() == Some(path),
            )
        });
        match change {
            Some((Delta::Same, true)) => {}
            Some((Delta::Same, false)) => {
                // Taken over by another file (a rename, a move): the new owner is recorded,
                // or after a restart the old file's removal would be looked for instead.
                if let Some(r) = self.world.job_mut(k) {
                    r.source = Some(path.to_path_buf());
                }
                self.store.touch(job_store_key(k));
            }
            Some((Delta::Mutable, _)) => {
                let Some(r) = self.world.job_mut(k) else {
                    return;
                };
                let mut job = applied.clone();
                manifest::assign_identity(&mut job, r.job.metadata.uid(), now);
                r.job.spec = job.spec;
                r.job.metadata.labels = job.metadata.labels;
                r.job.metadata.annotations = job.metadata.annotations;
                r.job.metadata.generation = Some(r.job.metadata.generation.unwrap_or(1) + 1);
                r.job.metadata.creation_timestamp = r.job.metadata.creation_timestamp.or(Some(now));
                r.applied = applied;
                r.source = Some(path.to_path_buf());
                tracing::info!(namespace = %k.0, job_name = %k.1, file = %path.display(), "job updated in place");
                self.job_changed(k);
                self.dirty_jobs.insert(k.clone());
            }
            Some((Delta::Immutable { field }, _)) => {
                self.delete_job(k, &format!("its {field} changed"));
                self.create_job(path, k, applied, Some(field));
            }
            None if self.deleted_by_ttl(path, k, &applied) => {}
            None => self.create_job(path, k, applied, None),
        }
    }

    /// Whether `path` still says what it said when the Job `k` finished and its
    /// `ttlSecondsAfterFinished` deleted it: then it is not run again. A changed spec forgets
    /// the deletion and the Job runs anew; changed labels or annotations alone do not.
    fn deleted_by_ttl(&mut self, path: &Path, k: &Key, applied: &Job) -> bool {
        let Some(m) = self.world.manifests.get_mut(path) else {
            return false;
        };
        let Some(i) = m.ttl_deleted.iter().position(|t| t.key == *k) else {
            return false;
        };
        if m.ttl_deleted[i].spec == applied.spec {
            return true;
        }
        m.ttl_deleted.remove(i);
        m.file
            .ttl_deleted
            .retain(|t| (&t.namespace, &t.name) != (&k.0, &k.1));
        self.store.touch(manifest_store_key(path));
        tracing::info!(namespace = %k.0, job_name = %k.1, file = %path.display(), "the spec of a Job deleted by its ttlSecondsAfterFinished changed: it runs anew");
        false
    }

    /// `recreated`: the immutable field whose change replaced the previous Job.
    fn create_job(&mut self, path: &Path, k: &Key, applied: Job, recreated: Option<&str>) {
        let now = self.clock.now();
        let mut job = applied.clone();
        let uid = self.names.uid();
        manifest::assign_identity(&mut job, &uid, now);
        job.metadata.annotations.insert(
            crate::api::ANNOTATION_SOURCE.into(),
            path.display().to_string(),
        );
        self.world.insert_job(
            k.clone(),
            JobRecord {
                job: job.clone(),
                applied,
                source: Some(path.to_path_buf()),
            },
        );
        self.store.touch(job_store_key(k));
        self.note(Kind::Job, k, "ADDED");
        self.dirty_jobs.insert(k.clone());
        tracing::info!(namespace = %k.0, job_name = %k.1, file = %path.display(), "job created");
        if let Some(field) = recreated {
            let msg = format!(
                "Job recreated because {field} in {} changed; pods of the previous Job were terminated",
                path.display()
            );
            self.record_event(
                super::reconcile::job_ref(&job),
                EventSpec::normal("Recreated", msg),
                "jobvisor",
            );
        }
    }

    /// Removes a Job as its file says: background cascading deletion (see `gc.rs`).
    pub(super) fn delete_job(&mut self, k: &Key, why: &str) {
        self.delete_job_with(k, why, crate::api::Propagation::Background);
    }

    /// Deletes the object `kind`/`k` that `path` defined, if `path` still is its file.
    pub(super) fn delete_defined(&mut self, path: &Path, kind: Kind, k: &Key, why: &str) {
        match kind {
            Kind::Job => {
                if self
                    .world
                    .job(k)
                    .is_some_and(|r| r.source.as_deref() == Some(path))
                {
                    self.delete_job(k, why);
                }
            }
            Kind::Pod => self.delete_file_pod(path, k, why),
            Kind::CronJob => self.delete_file_cronjob(path, k, why),
            Kind::Event | Kind::Manifest => {}
            // Declared kinds: unreachable until one is registered.
            #[allow(unreachable_patterns)]
            declared => {
                if self
                    .world
                    .declared(declared, k)
                    .is_some_and(|r| r.source == path)
                {
                    self.delete_declared(declared, k, why);
                }
            }
        }
    }

    /// Why an object of a declared kind from `path` cannot take the name `k`, if it
    /// cannot: another file that still defines it.
    fn declared_conflict(&self, path: &Path, kind: Kind, k: &Key) -> Option<String> {
        let rec = self.world.declared(kind, k)?;
        if rec.source == path || !self.file_defines(&rec.source, kind, k) {
            return None;
        }
        let by = format!("is already defined in {}", rec.source.display());
        Some(conflict_message(path, kind, k, &by))
    }

    /// An object of a declared kind as its file now defines it: created, or updated in
    /// place (uid and creationTimestamp kept) unless its kind refuses the update (an
    /// immutable ConfigMap's data), which is the error returned.
    fn upsert_declared(
        &mut self,
        path: &Path,
        k: &Key,
        d: manifest::declared::DeclaredObject,
    ) -> Result<(), String> {
        let kind = d.kind;
        let Some(rec) = self.world.declared_mut(kind, k) else {
            let uid = self.names.uid();
            let object = manifest::declared::with_identity(&d.object, &uid, self.clock.now());
            let rec = DeclaredRecord::new(object, d.object, path.to_path_buf())
                .map_err(|e| format!("{}: internal error: {e}", path.display()))?;
            self.world.insert_declared(kind, k.clone(), rec);
            self.store.touch(store_key(kind, k));
            self.note(kind, k, "ADDED");
            tracing::info!(kind = kind.resource().name, object = %format!("{}/{}", k.0, k.1), file = %path.display(), "created");
            return Ok(());
        };
        if rec.applied == d.object {
            if rec.source != path {
                // Taken over by another file (a rename): recorded, as for a Job.
                rec.source = path.to_path_buf();
                self.store.touch(store_key(kind, k));
            }
            return Ok(());
        }
        let causes = manifest::declared::validate_update(kind, &rec.applied, &d.object);
        if !causes.is_empty() {
            let prefix = format!("{}: ", path.display());
            return Err(manifest::invalid_object(&prefix, kind, &k.1, &causes));
        }
        let mut object = d.object.clone();
        for field in ["uid", "creationTimestamp"] {
            if let (Some(value), Some(meta)) = (
                rec.object.pointer(&format!("/metadata/{field}")).cloned(),
                object.get_mut("metadata").and_then(|m| m.as_object_mut()),
            ) {
                meta.insert(field.into(), value);
            }
        }
        rec.object = object;
        rec.applied = d.object;
        rec.source = path.to_path_buf();
        rec.read_metadata()
            .map_err(|e| format!("{}: internal error: {e}", path.display()))?;
        self.store.touch(store_key(kind, k));
        self.note(kind, k, "MODIFIED");
        tracing::info!(kind = kind.resource().name, object = %format!("{}/{}", k.0, k.1), file = %path.display(), "updated in place");
        Ok(())
    }

    /// Removes an object of a declared kind: nothing owns it or runs for it, so it goes at
    /// once.
    pub(super) fn delete_declared(&mut self, kind: Kind, k: &Key, why: &str) {
        let Some(rec) = self.world.remove_declared(kind, k) else {
            return;
        };
        self.store.touch(store_key(kind, k));
        self.note_deleted(kind, k, &rec.object);
        tracing::info!(kind = kind.resource().name, object = %format!("{}/{}", k.0, k.1), "deleted: {why}");
    }

    /// Editors save by renaming the old file away and writing a new one, and `mv a a~; cp a~ a`
    /// does the same by hand: a file is only gone if it is still missing after
    /// `watch.removalGrace`. Until then its Jobs are left alone.
    fn file_missing(&mut self, path: &Path) {
        if !self.world.manifests.contains_key(path) {
            return;
        }
        let grace = self.cfg.watch.removal_grace;
        if grace.is_zero() {
            return self.confirm_removal(path);
        }
        self.schedule(grace, super::Target::Removal(path.to_path_buf()));
    }

    pub(super) fn confirm_removal(&mut self, path: &Path) {
        self.apply_file_as(path, true);
    }

    pub(super) fn file_removed(&mut self, path: &Path) {
        let Some(record) = self.world.manifests.remove(path) else {
            return;
        };
        self.store.touch(manifest_store_key(path));
        self.world.conflicts.remove(path);
        tracing::info!(file = %path.display(), "manifest removed");
        // Another file that defines the same objects (a rename, a copy made before) takes
        // them over first: a finished Job then stays finished instead of being deleted and
        // run again from the other file.
        self.retry_conflicts();
        for (kind, k) in record.defines.iter() {
            self.delete_defined(path, kind, k, "its manifest file was removed");
        }
        self.retry_conflicts();
    }

    /// Files that lost a name clash may apply once the winner let go of the name.
    /// Applied at once from the content on record (what the conflict was found in; a change
    /// to the file since comes as a hint of its own), so that a take-over happens before
    /// whatever let go of the name is deleted.
    pub(super) fn retry_conflicts(&mut self) {
        let waiting: Vec<(PathBuf, String)> = self
            .world
            .conflicts
            .iter()
            .filter_map(|p| {
                self.world
                    .manifests
                    .get(p)
                    .map(|m| (p.clone(), m.content.clone()))
            })
            .collect();
        for (p, content) in waiting {
            self.apply_text(&p, content, false);
        }
    }

    fn record_manifest(
        &mut self,
        path: &Path,
        content: String,
        state: ManifestState,
        errors: Vec<String>,
        warnings: Vec<String>,
    ) {
        let now = self.clock.now();
        let entry = self
            .world
            .manifests
            .entry(path.to_path_buf())
            .or_insert_with(|| ManifestRecord::new(path));
        entry.content = content;
        entry.file.state = state;
        if state == ManifestState::Conflict {
            self.world.conflicts.insert(path.to_path_buf());
        } else {
            self.world.conflicts.remove(path);
        }
        entry.file.errors = errors;
        entry.file.warnings = warnings;
        entry.file.message = None;
        if state == ManifestState::Applied {
            entry.file.applied_time = Some(now);
        }
        self.store.touch(manifest_store_key(path));
    }
}

/// Why an object no file defines cannot be taken by one: what owns it.
fn owned_elsewhere(meta: &crate::api::ObjectMeta) -> String {
    match meta.owner_references.first() {
        Some(o) => format!("already exists: it belongs to {} {}", o.kind, o.name),
        None => "already exists".to_string(),
    }
}

/// A definition of `path` that loses the name `k` to another owner, `by` saying which.
pub(super) fn conflict_message(path: &Path, kind: Kind, k: &Key, by: &str) -> String {
    format!(
        "{}: {} \"{}\" in namespace \"{}\" {by}; this definition is ignored",
        path.display(),
        kind.resource().name,
        k.1,
        k.0
    )
}

/// The objects a file defines, for `get manifests`.
fn object_refs(m: &ManifestRecord) -> Vec<ObjectReference> {
    m.defines
        .iter()
        .map(|(kind, k)| ObjectReference {
            kind: kind.resource().name.into(),
            namespace: k.0.clone(),
            name: k.1.clone(),
            uid: String::new(),
            api_version: Some(kind.resource().api_version.into()),
        })
        .collect()
}

/// A Job the file no longer defines is no longer held back by its TTL deletion: defined
/// again later, it runs.
fn forget_undefined_ttl_deletions(m: &mut ManifestRecord) {
    let defined = m.defines.keys(Kind::Job).to_vec();
    m.ttl_deleted.retain(|t| defined.contains(&t.key));
    m.file.ttl_deleted.retain(|t| {
        defined
            .iter()
            .any(|k| (&k.0, &k.1) == (&t.namespace, &t.name))
    });
}
