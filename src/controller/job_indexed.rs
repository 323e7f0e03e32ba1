//! Indexed Jobs (`completionMode: Indexed`), after `pkg/controller/job/indexed_job_utils.go`
//! and the Indexed branches of `job_controller.go`.
//!
//! Each pod runs one completion index in `[0, completions)`. An index succeeds with its first
//! succeeded pod (later ones, and pods of an index out of range, count for nothing);
//! `status.completedIndexes` lists the succeeded ones and `status.succeeded` is their number.
//! The lowest indexes that have no active, succeeded or failed pod get pods first.
//!
//! With `backoffLimitPerIndex`, failures count per index: each pod carries the number of
//! earlier counted (and ignored) failures of its index in annotations, an index whose pod
//! fails with `backoffLimitPerIndex` failures behind it fails for good
//! (`status.failedIndexes`), and each index waits out its own replacement delay. To hand
//! the count on, the last failed pod of an index keeps its tracking finalizer (it is neither
//! counted nor released) until its replacement exists, as `canRemoveFinalizer` does.
//!
//! A failed pod's failure is classified once, by [`classify`]: the single place a
//! podFailurePolicy verdict (Count / Ignore / FailIndex) enters the per-index accounting.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::job::{PodFailureBackoff, active, failed, terminating, tracked};
use super::pod_failure_policy::{self, FailureVerdict};
use super::{add, backoff, elapsed, pod, success_policy};
use crate::api::intervals::Intervals;
use crate::api::{
    EnvVar, JOB_COMPLETION_INDEX, JOB_INDEX_FAILURE_COUNT, JOB_INDEX_IGNORED_FAILURE_COUNT, Job,
    JobStatus, Pod, PodPhase,
};

/// The environment variable every container of an Indexed Job's pod gets.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The API server's cut for a `generateName` prefix (`names.MaxGeneratedNameLength`).
const MAX_GENERATED_NAME: usize = 58;

/// How one failed pod's failure counts: the verdict of `spec.podFailurePolicy`
/// (`matchPodFailurePolicy`), or [`PodFailure::Counted`] without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFailure {
    /// `Count` (and no rule matched): toward `backoffLimit`, `status.failed` and the
    /// index's `backoffLimitPerIndex`.
    Counted,
    /// `Ignore`: counted nowhere, the pod is replaced; per index it adds to
    /// `job-index-ignored-failure-count` (which still lengthens the index's delay).
    Ignored,
    /// `FailIndex`: counted in `status.failed`, and its index fails at once.
    FailIndex,
}

/// How the failure of `pod` (failed, or terminating under `TerminatingOrFailed`) counts for
/// its index, from the Job's podFailurePolicy. A `FailJob` match counts like `Count` here: the
/// Job-level check fails the whole Job before any index is looked at.
pub fn classify(job: &Job, pod: &Pod) -> PodFailure {
    match pod_failure_policy::classify(job.spec.pod_failure_policy.as_ref(), pod) {
        FailureVerdict::Ignore => PodFailure::Ignored,
        FailureVerdict::FailIndex => PodFailure::FailIndex,
        FailureVerdict::Count | FailureVerdict::FailJob { .. } => PodFailure::Counted,
    }
}

pub fn is_indexed(job: &Job) -> bool {
    job.spec.completion_mode.as_deref() == Some("Indexed")
}

/// An annotation read as Go's `strconv.Atoi` into an int32 that is not negative.
fn annotation_number(pod: &Pod, key: &str) -> Option<i32> {
    pod.metadata
        .annotations
        .get(key)
        .and_then(|v| crate::api::intervals::atoi(v))
        .and_then(|i| i32::try_from(i).ok())
        .filter(|i| *i >= 0)
}

/// The pod's completion index (`getCompletionIndex`): its annotation, if a non-negative number.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    annotation_number(pod, JOB_COMPLETION_INDEX)
}

/// A count annotation (`parseInt32`): 0 when missing or not a number in `[0, 2^31)`.
fn count_annotation(pod: &Pod, key: &str) -> i32 {
    annotation_number(pod, key).unwrap_or(0)
}

/// A pod to create for an Indexed Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIndex {
    pub index: i32,
    /// With `backoffLimitPerIndex`: the index's counted and ignored failures so far.
    pub failures: Option<(i32, i32)>,
}

/// The index whose own pod-failure delay ends first, among those waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexWait {
    pub wait: Duration,
    pub index: i32,
    /// Its next pod's attempt: the index's counted failures + 1.
    pub attempt: i32,
}

/// The per-sync view of an Indexed Job: which indexes succeeded and failed, and which failed
/// pods hold their index's failure count.
#[derive(Debug)]
pub struct Indexes<'a> {
    completions: i32,
    per_index: Option<i32>,
    pub succeeded: Intervals,
    /// `Some` exactly when `backoffLimitPerIndex` is set.
    pub failed: Option<Intervals>,
    /// Index → its last failed pod, kept tracked until a replacement exists.
    held: BTreeMap<i32, (&'a Pod, PodFailure)>,
}

impl<'a> Indexes<'a> {
    /// Counts what finished since the last sync into `status` (`calculateSucceededIndexes`,
    /// `calculateFailedIndexes`, `trackJobStatusAndRemoveFinalizers`); the pods counted or
    /// dropped go to `untrack`. Returns `None` for a NonIndexed Job.
    pub fn count(
        job: &Job,
        pods: &[&'a Pod],
        terminating_counts: bool,
        status: &mut JobStatus,
        untrack: &mut Vec<String>,
    ) -> Option<Indexes<'a>> {
        if !is_indexed(job) {
            return None;
        }
        let completions = job.spec.completions.unwrap_or(0);
        let per_index = job.spec.backoff_limit_per_index;
        let valid = |p: &Pod| completion_index(p).filter(|i| *i < completions);
        let mut new_succeeded = Vec::new();
        let mut new_failed = Vec::new();
        let mut failures: Vec<(&'a Pod, PodFailure)> = Vec::new();
        for &p in pods.iter().filter(|p| tracked(p)) {
            if p.status.phase == PodPhase::Succeeded {
                new_succeeded.extend(valid(p));
                untrack.push(p.metadata.name().to_string());
            } else if failed(p, terminating_counts) {
                let kind = classify(job, p);
                match (valid(p), per_index) {
                    (Some(ix), Some(limit)) => {
                        let exhausted = kind == PodFailure::FailIndex
                            || (kind == PodFailure::Counted
                                && count_annotation(p, JOB_INDEX_FAILURE_COUNT) >= limit);
                        if exhausted {
                            new_failed.push(ix);
                        }
                        failures.push((p, kind));
                    }
                    (Some(_), None) => failures.push((p, kind)),
                    // A pod without a valid index is released and counted nowhere.
                    (None, _) => untrack.push(p.metadata.name().to_string()),
                }
            }
        }
        new_succeeded.sort_unstable();
        new_failed.sort_unstable();
        let succeeded =
            Intervals::parse_lenient(&status.completed_indexes, completions).with(&new_succeeded);
        let failed = per_index.map(|_| {
            let old = status.failed_indexes.as_deref().unwrap_or("");
            Intervals::parse_lenient(old, completions).with(&new_failed)
        });
        let mut ix = Indexes {
            completions,
            per_index,
            succeeded,
            failed,
            held: BTreeMap::new(),
        };
        if per_index.is_some() {
            ix.hold(pods, &failures);
        }
        for (p, kind) in failures {
            if valid(p).is_some_and(|i| ix.held.get(&i).is_some_and(|(h, _)| std::ptr::eq(*h, p))) {
                continue;
            }
            if kind != PodFailure::Ignored {
                status.failed += 1;
            }
            untrack.push(p.metadata.name().to_string());
        }
        status.succeeded = i32::try_from(ix.succeeded.total()).unwrap_or(i32::MAX);
        status.completed_indexes = ix.succeeded.to_string();
        status.failed_indexes = ix.failed.as_ref().map(Intervals::to_string);
        Some(ix)
    }

    /// `getPodsWithDelayedDeletionPerIndex`: per index still to run (not succeeded, failed or
    /// active), its failed pod with the most failures behind it, the latest to finish.
    fn hold(&mut self, pods: &[&'a Pod], failures: &[(&'a Pod, PodFailure)]) {
        // Sorted for binary search: a sync of 10^5 pods must not compare every failed pod
        // with every active one.
        let mut busy: Vec<i32> = pods
            .iter()
            .filter(|p| active(p))
            .filter_map(|p| completion_index(p))
            .collect();
        busy.sort_unstable();
        for &(p, kind) in failures {
            let Some(ix) = completion_index(p) else {
                continue;
            };
            if self.succeeded.has(ix) || self.failed.as_ref().is_some_and(|f| f.has(ix)) {
                continue;
            }
            if busy.binary_search(&ix).is_ok() {
                continue;
            }
            let later = match self.held.get(&ix) {
                Some((prev, _)) => {
                    absolute_failures(prev) <= absolute_failures(p)
                        && pod::finish_time(p) >= pod::finish_time(prev)
                }
                None => true,
            };
            if later {
                self.held.insert(ix, (p, kind));
            }
        }
    }

    /// Whether the pod has an index below `completions`: only such a pod counts.
    pub fn in_range(&self, pod: &Pod) -> bool {
        completion_index(pod).is_some_and(|i| i < self.completions)
    }

    /// Failed pods held back from counting that `backoffLimit` must see all the same
    /// (`jobCtx.failed` counts every failed pod still carrying the finalizer).
    pub fn held_failures(&self) -> i32 {
        self.held
            .values()
            .filter(|(_, k)| *k != PodFailure::Ignored)
            .count() as i32
    }

    /// The Job finishes: every held pod is counted and released (`canRemoveFinalizer` is
    /// true for all once a finishing condition is set).
    pub fn release_held(&mut self, status: &mut JobStatus, untrack: &mut Vec<String>) {
        for (_, (p, kind)) in std::mem::take(&mut self.held) {
            if kind != PodFailure::Ignored {
                status.failed += 1;
            }
            untrack.push(p.metadata.name().to_string());
        }
    }

    /// The per-index failure verdict, checked after backoffLimit and activeDeadlineSeconds.
    pub fn failure(&self, job: &Job) -> Option<(&'static str, &'static str)> {
        let failed = self.failed.as_ref()?.total();
        if job
            .spec
            .max_failed_indexes
            .is_some_and(|max| failed > i64::from(max))
        {
            return Some((
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes",
            ));
        }
        if failed > 0 && failed + self.succeeded.total() >= i64::from(self.completions) {
            return Some(("FailedIndexes", "Job has failed indexes"));
        }
        None
    }

    /// The message of the successPolicy rule the succeeded indexes meet, if any.
    pub fn success(&self, job: &Job) -> Option<String> {
        success_policy::matched(
            job.spec.success_policy.as_ref(),
            self.completions,
            &self.succeeded,
        )
    }

    /// Active pods to delete (`activePodsForRemoval`): every pod without a valid index, all
    /// but one pod of an index run twice, then the least advanced until `at_least` go.
    pub fn removals<'p>(&self, live: &[&'p Pod], at_least: usize) -> Vec<&'p Pod> {
        let mut by_index: BTreeMap<i32, Vec<&'p Pod>> = BTreeMap::new();
        let mut remove = Vec::new();
        for &p in live {
            match completion_index(p).filter(|i| *i < self.completions) {
                Some(ix) => by_index.entry(ix).or_default().push(p),
                None => remove.push(p),
            }
        }
        let mut left = Vec::new();
        for (_, mut same) in by_index {
            same.sort_by_key(|p| removal_order(p));
            let keep = same.pop();
            remove.extend(same);
            left.extend(keep);
        }
        if remove.len() < at_least {
            left.sort_by_key(|p| removal_order(p));
            let more = at_least - remove.len();
            remove.extend(left.into_iter().take(more));
        }
        remove
    }

    /// Up to `count` pods to create for the lowest pending indexes (`firstPendingIndexes`);
    /// with `backoffLimitPerIndex`, only indexes whose own delay is over
    /// (`getPodCreationInfoForIndependentIndexes`), and how long until the next one is.
    pub fn to_create(
        &self,
        count: usize,
        pods: &[&Pod],
        replace_only_failed: bool,
        now: Timestamp,
        cfg: PodFailureBackoff,
    ) -> (Vec<NewIndex>, Option<IndexWait>) {
        let mut taken: Vec<i32> = pods
            .iter()
            .filter(|p| active(p) || (replace_only_failed && terminating(p)))
            .filter_map(|p| completion_index(p))
            .collect();
        taken.sort_unstable();
        taken.dedup();
        let mut not_pending = self.succeeded.with(&taken);
        if let Some(failed) = &self.failed {
            not_pending = not_pending.merge(failed);
        }
        let pending = first_pending(&not_pending, self.completions, count);
        if self.per_index.is_none() {
            let new = pending
                .into_iter()
                .map(|index| NewIndex {
                    index,
                    failures: None,
                })
                .collect();
            return (new, None);
        }
        let mut new = Vec::new();
        let mut wait: Option<IndexWait> = None;
        for index in pending {
            let held = self.held.get(&index);
            let remaining = held.map_or(Duration::ZERO, |(p, _)| index_delay(p, now, cfg));
            let failures = match held {
                None => (0, 0),
                Some((p, kind)) => {
                    let (counted, ignored) = (
                        count_annotation(p, JOB_INDEX_FAILURE_COUNT),
                        count_annotation(p, JOB_INDEX_IGNORED_FAILURE_COUNT),
                    );
                    match kind {
                        PodFailure::Ignored => (counted, ignored.saturating_add(1)),
                        _ => (counted.saturating_add(1), ignored),
                    }
                }
            };
            if remaining > Duration::ZERO {
                if wait.is_none_or(|w| remaining < w.wait) {
                    wait = Some(IndexWait {
                        wait: remaining,
                        index,
                        attempt: failures.0.saturating_add(1),
                    });
                }
                continue;
            }
            new.push(NewIndex {
                index,
                failures: Some(failures),
            });
        }
        (new, wait)
    }
}

fn absolute_failures(p: &Pod) -> i64 {
    i64::from(count_annotation(p, JOB_INDEX_FAILURE_COUNT))
        + i64::from(count_annotation(p, JOB_INDEX_IGNORED_FAILURE_COUNT))
}

/// `getRemainingTimePerIndex`: the delay after the `k`-th failure of an index (all its
/// failures, ignored ones too), from the finish of its last failed pod.
fn index_delay(last_failed: &Pod, now: Timestamp, cfg: PodFailureBackoff) -> Duration {
    let k = u32::try_from(absolute_failures(last_failed) + 1).unwrap_or(u32::MAX);
    let delay = backoff::pod_failure_delay(k, cfg.base, cfg.max);
    match pod::finish_time(last_failed) {
        Some(t) => elapsed(now, add(t, delay)),
        None => Duration::ZERO,
    }
}

/// `controller.ActivePods` reduced to what jobvisor's pods tell apart: not ready before
/// ready, newer before older.
fn removal_order(p: &Pod) -> (bool, std::cmp::Reverse<Option<Timestamp>>) {
    (
        pod::is_ready(p),
        std::cmp::Reverse(p.metadata.creation_timestamp),
    )
}

/// The lowest `count` indexes below `completions` not in `taken`.
fn first_pending(taken: &Intervals, completions: i32, count: usize) -> Vec<i32> {
    let mut out = Vec::with_capacity(count.min(completions.max(0) as usize));
    let mut candidate = 0i32;
    for &(first, last) in taken.pairs() {
        while candidate < completions && out.len() < count && candidate < first {
            out.push(candidate);
            candidate += 1;
        }
        candidate = candidate.max(last.saturating_add(1));
    }
    while candidate < completions && out.len() < count {
        out.push(candidate);
        candidate += 1;
    }
    out
}

/// `podGenerateNameWithIndex`: `<job>-<index>-`, the Job's name cut so that the whole
/// prefix stays within 58 characters and `-<index>-` survives.
pub fn generate_name(job: &str, index: i32) -> String {
    let suffix = format!("-{index}-");
    let prefix = format!("{job}{suffix}");
    if prefix.len() <= MAX_GENERATED_NAME {
        return prefix;
    }
    let keep = MAX_GENERATED_NAME.saturating_sub(suffix.len());
    // Job names are DNS subdomains: ASCII, so any byte is a character boundary.
    format!("{}{suffix}", &job[..keep.min(job.len())])
}

/// What `manageJob` adds to the template of an index's pod: the index as annotation and
/// label, the hostname `<job>-<index>`, `JOB_COMPLETION_INDEX` in every container (unless
/// it sets it itself), the failure-count annotations with `backoffLimitPerIndex`, and the
/// `<job>-<index>-` generateName.
pub fn apply(pod: &mut Pod, job: &Job, new: &NewIndex) {
    let index = new.index.to_string();
    let meta = &mut pod.metadata;
    meta.annotations
        .insert(JOB_COMPLETION_INDEX.into(), index.clone());
    meta.labels.insert(JOB_COMPLETION_INDEX.into(), index);
    meta.generate_name = Some(generate_name(job.metadata.name(), new.index));
    if let Some((counted, ignored)) = new.failures {
        meta.annotations
            .insert(JOB_INDEX_FAILURE_COUNT.into(), counted.to_string());
        if ignored > 0 {
            meta.annotations
                .insert(JOB_INDEX_IGNORED_FAILURE_COUNT.into(), ignored.to_string());
        }
    }
    pod.spec.hostname = Some(format!("{}-{}", job.metadata.name(), new.index));
    for c in &mut pod.spec.containers {
        if c.env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
            continue;
        }
        c.env.push(EnvVar {
            name: COMPLETION_INDEX_ENV.into(),
            value: None,
            value_from: Some(serde_json::json!({
                "fieldRef": {"fieldPath": format!("metadata.labels['{JOB_COMPLETION_INDEX}']")}
            })),
        });
    }
}

#[cfg(test)]
#[path = "job_indexed_tests.rs"]
mod tests;
