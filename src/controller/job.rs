//! The Job controller: one pure `sync` per Job, after `syncJob`/`manageJob` in Kubernetes'
//! `pkg/controller/job/job_controller.go`.
//!
//! Input: the Job, the pods it owns, `now` and the backoff config. Output: the new status,
//! how many pods to create, which pods to delete, events, and when to look again. Pods are
//! counted into `status.succeeded`/`status.failed` exactly once: a pod still carrying the
//! `batch.kubernetes.io/job-tracking` finalizer is uncounted; the decision lists the pods
//! whose finalizer the daemon must remove in the same store batch as the status.
//! The finishing sequence is Kubernetes' two-step one (spec §5.4): an interim condition
//! (`SuccessCriteriaMet`/`FailureTarget`), pods terminated, then `Complete`/`Failed`.

use std::time::Duration;

use jiff::Timestamp;

use super::job_indexed::{Indexes, NewIndex};
use super::{EventSpec, add, backoff, elapsed, pod, pod_failure_policy};
use crate::api::{
    JOB_TRACKING_FINALIZER, Job, JobCondition, JobConditionType, JobStatus, Pod, PodPhase,
    RestartPolicy,
};

/// Kubernetes caps pod creations and deletions per sync (`MaxPodCreateDeletePerSync`).
const MAX_PER_SYNC: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodFailureBackoff {
    pub base: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub pod: String,
    /// Count the pod as failed (Job failure, deadline) rather than drop it uncounted (scale-down, success).
    pub count_as_failed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobDecision {
    pub status: JobStatus,
    /// New pods to create from the template now.
    pub create: usize,
    /// Indexed Jobs: the index of each of the `create` pods, in order.
    pub indexes: Vec<NewIndex>,
    /// Active pods to terminate gracefully.
    pub delete: Vec<Delete>,
    /// Pods whose tracking finalizer the daemon must remove in the same store batch as this
    /// status: they are counted now (terminal or user-deleted) or deleted by the controller.
    pub untrack: Vec<String>,
    pub events: Vec<EventSpec>,
    pub requeue_after: Option<Duration>,
    /// Set when a pod is wanted but the pod-failure backoff holds its creation back.
    pub backoff: Option<BackoffHold>,
}

/// What holds a wanted pod back (`describe job`'s "Pod Failure Backoff:" line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffHold {
    /// The Job-wide delay after its consecutive failed pods.
    Job { wait: Duration },
    /// `backoffLimitPerIndex`: the index whose own delay ends first; its next pod is its
    /// `attempt`-th (its counted failures + 1).
    Index {
        wait: Duration,
        index: i32,
        attempt: i32,
    },
}

impl JobDecision {
    fn new(status: JobStatus) -> Self {
        JobDecision {
            status,
            create: 0,
            indexes: Vec::new(),
            delete: Vec::new(),
            untrack: Vec::new(),
            events: Vec::new(),
            requeue_after: None,
            backoff: None,
        }
    }
    /// Deleting a pod always releases it from tracking, so it is never counted twice.
    fn delete_pod(&mut self, p: &Pod, count_as_failed: bool) {
        let name = p.metadata.name().to_string();
        if tracked(p) {
            self.untrack.push(name.clone());
        }
        self.delete.push(Delete {
            pod: name,
            count_as_failed,
        });
    }
    fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |r| r.min(after)));
    }
}

pub(super) fn tracked(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .iter()
        .any(|f| f == JOB_TRACKING_FINALIZER)
}
pub(super) fn terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some() && !p.status.phase.is_terminal()
}
pub(super) fn active(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none() && !p.status.phase.is_terminal()
}
/// `isPodFailed` under podReplacementPolicy TerminatingOrFailed: a pod deleted by someone
/// else counts as failed as soon as it is terminating.
pub(super) fn failed(p: &Pod, terminating_counts: bool) -> bool {
    p.status.phase == PodPhase::Failed || (terminating_counts && terminating(p))
}

pub fn sync(job: &Job, pods: &[&Pod], now: Timestamp, cfg: PodFailureBackoff) -> JobDecision {
    let mut status = job.status.clone().unwrap_or_default();
    if status.is_finished() {
        return finished(status, pods);
    }
    let spec = &job.spec;
    let terminating_counts = spec.pod_replacement_policy.as_deref() != Some("Failed");
    let mut d = JobDecision::new(JobStatus::default());

    let policy = spec.pod_failure_policy.as_ref();
    // Count what finished since the last sync (Indexed Jobs count by index), a failure as its
    // podFailurePolicy verdict says (`job_indexed::classify` for an Indexed Job).
    let mut indexed = Indexes::count(job, pods, terminating_counts, &mut status, &mut d.untrack);
    for p in pods.iter().filter(|p| tracked(p) && indexed.is_none()) {
        if p.status.phase == PodPhase::Succeeded {
            status.succeeded += 1;
            d.untrack.push(p.metadata.name().to_string());
        } else if failed(p, terminating_counts) {
            if pod_failure_policy::classify(policy, p).counts() {
                status.failed += 1;
            }
            d.untrack.push(p.metadata.name().to_string());
        }
    }
    let suspended = suspended(job);
    // A suspended Job has not started: its activeDeadlineSeconds clock is not running. One
    // resumed now starts now, before its deadline is looked at.
    if !suspended && status.condition(JobConditionType::Suspended).is_some() {
        status.start_time = None;
    }
    if status.start_time.is_none() && !suspended {
        status.start_time = Some(now);
    }
    let mut live: Vec<&Pod> = pods.iter().copied().filter(|p| active(p)).collect();

    if status
        .condition(JobConditionType::SuccessCriteriaMet)
        .is_none()
        && status.condition(JobConditionType::FailureTarget).is_none()
    {
        // `syncJob`'s order: a FailJob rule over every failed pod (`getFailJobMessage`),
        // backoffLimit, activeDeadlineSeconds, the failed indexes; then a successPolicy.
        let fail_job = pod_failure_policy::fail_job_message(
            policy,
            pods.iter()
                .copied()
                .filter(|p| failed(p, terminating_counts)),
        );
        let held = indexed.as_ref().map_or(0, Indexes::held_failures);
        let failing = match fail_job {
            Some(message) => Some((pod_failure_policy::REASON, message)),
            None => failure(job, &status, held, &live, now, &mut d)
                .or_else(|| indexed.as_ref().and_then(|ix| ix.failure(job)))
                .map(|(r, m)| (r, m.to_string())),
        };
        let success = indexed.as_ref().and_then(|ix| ix.success(job));
        if let Some((reason, message)) = failing {
            set_condition(
                &mut status,
                JobConditionType::FailureTarget,
                reason,
                &message,
                now,
            );
        } else if let Some(message) = success {
            set_condition(
                &mut status,
                JobConditionType::SuccessCriteriaMet,
                "SuccessPolicy",
                &message,
                now,
            );
        } else if succeeded(job, &status, live.len()) {
            set_condition(
                &mut status,
                JobConditionType::SuccessCriteriaMet,
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            );
        }
    }

    let failing = status.condition(JobConditionType::FailureTarget).is_some();
    if failing
        || status
            .condition(JobConditionType::SuccessCriteriaMet)
            .is_some()
    {
        // Terminate what still runs; on failure those pods count as failed (unless a rule
        // ignores one: a container of it may have exited already, or, in an Indexed Job, it
        // has no index in range: such a pod counts for nothing, as a failed one).
        if let Some(ix) = indexed.as_mut() {
            ix.release_held(&mut status, &mut d.untrack);
        }
        for p in live.drain(..) {
            let counts = pod_failure_policy::classify(policy, p).counts()
                && indexed.as_ref().is_none_or(|ix| ix.in_range(p));
            if failing && counts {
                status.failed += 1;
            }
            d.delete_pod(p, failing);
        }
    } else {
        let ix = indexed.as_ref();
        manage(job, &status, ix, &mut live, pods, now, cfg, &mut d);
        suspension(&mut status, suspended, now, &mut d.events);
    }

    let still_terminating = pods.iter().filter(|p| terminating(p)).count() + d.delete.len();
    status.active = live.len() as i32 + d.create as i32;
    status.ready = live.iter().filter(|p| pod::is_ready(p)).count() as i32;
    status.terminating = still_terminating as i32;
    if still_terminating == 0 {
        finish(&mut status, spec.completions, now, &mut d.events);
    }
    if status.is_finished() {
        status.active = 0;
        status.ready = 0;
    }
    d.status = status;
    d
}

/// A finished Job keeps its status; stray pods still tracked are released uncounted.
fn finished(status: JobStatus, pods: &[&Pod]) -> JobDecision {
    let mut d = JobDecision::new(status);
    for p in pods {
        if active(p) {
            d.delete_pod(p, false);
        } else if tracked(p) {
            d.untrack.push(p.metadata.name().to_string());
        }
    }
    d
}

/// Failure criteria in `syncJob`'s order after a FailJob rule: backoffLimit, then
/// activeDeadlineSeconds.
/// `held`: failed pods not counted into `status.failed` yet that backoffLimit counts all the
/// same (an Indexed Job's pods holding their index's failure count).
fn failure(
    job: &Job,
    status: &JobStatus,
    held: i32,
    live: &[&Pod],
    now: Timestamp,
    d: &mut JobDecision,
) -> Option<(&'static str, &'static str)> {
    let limit = job.spec.backoff_limit.unwrap_or(6);
    let on_failure = job.spec.template.spec.restart_policy == Some(RestartPolicy::OnFailure);
    // pastBackoffLimitOnFailure: restarts of pods that are still Pending/Running count too.
    let restarts: i64 = if on_failure {
        live.iter()
            .flat_map(|p| &p.status.container_statuses)
            .map(|c| i64::from(c.restart_count))
            .sum()
    } else {
        0
    };
    let past_restarts = on_failure
        && if limit == 0 {
            restarts > 0
        } else {
            restarts >= i64::from(limit)
        };
    if status.failed.saturating_add(held) > limit || past_restarts {
        return Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
    }
    if let (Some(secs), Some(start), false) = (
        job.spec.active_deadline_seconds,
        status.start_time,
        suspended(job),
    ) {
        let deadline = add(start, Duration::from_secs(u64::try_from(secs).unwrap_or(0)));
        if now >= deadline {
            return Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ));
        }
        d.requeue(elapsed(now, deadline));
    }
    None
}

fn succeeded(job: &Job, status: &JobStatus, active: usize) -> bool {
    match job.spec.completions {
        Some(c) => status.succeeded >= c,
        // Work queue: done once any pod succeeded and none is left running.
        None => status.succeeded > 0 && active == 0,
    }
}

/// `manageJob`: create or delete pods to reach the wanted number of active pods.
#[allow(clippy::too_many_arguments)]
fn manage(
    job: &Job,
    status: &JobStatus,
    indexed: Option<&Indexes>,
    live: &mut Vec<&Pod>,
    pods: &[&Pod],
    now: Timestamp,
    cfg: PodFailureBackoff,
    d: &mut JobDecision,
) {
    if suspended(job) {
        // Every active pod goes, counted neither failed nor succeeded.
        let n = live.len().min(MAX_PER_SYNC);
        for p in live.drain(..n) {
            d.delete_pod(p, false);
        }
        if !live.is_empty() {
            d.requeue(Duration::ZERO);
        }
        return;
    }
    let parallelism = job.spec.parallelism.unwrap_or(1).max(0) as usize;
    let want = match job.spec.completions {
        Some(c) => ((c - status.succeeded).max(0) as usize).min(parallelism),
        None if status.succeeded > 0 => live.len(),
        None => parallelism,
    };
    if let Some(ix) = indexed {
        // Duplicate and out-of-range indexes go even when no pod is in excess.
        let excess = live.len().saturating_sub(want);
        let mut remove = ix.removals(live, excess);
        remove.truncate(MAX_PER_SYNC);
        if !remove.is_empty() {
            live.retain(|p| !remove.iter().any(|r| std::ptr::eq(*r, *p)));
            for p in remove {
                d.delete_pod(p, false);
            }
            return;
        }
    } else if live.len() > want {
        // Prefer removing pods that are not ready, then the newest.
        live.sort_by_key(|p| {
            (
                pod::is_ready(p),
                std::cmp::Reverse(p.metadata.creation_timestamp),
            )
        });
        let excess = (live.len() - want).min(MAX_PER_SYNC);
        for p in live.drain(..excess) {
            d.delete_pod(p, false);
        }
        return;
    }
    // podReplacementPolicy Failed: a terminating pod still holds its slot until it has ended.
    let waits_for_failed = job.spec.pod_replacement_policy.as_deref() == Some("Failed");
    let held = if waits_for_failed {
        pods.iter().filter(|p| terminating(p)).count()
    } else {
        0
    };
    let missing = want.saturating_sub(live.len() + held);
    if missing == 0 {
        return;
    }
    // With backoffLimitPerIndex each index waits out its own delay instead.
    let wait = match indexed {
        Some(_) if job.spec.backoff_limit_per_index.is_some() => Duration::ZERO,
        _ => failure_backoff_remaining(pods, now, cfg),
    };
    if wait > Duration::ZERO {
        d.requeue(wait);
        d.backoff = Some(BackoffHold::Job { wait });
        return;
    }
    if let Some(ix) = indexed {
        let (new, next) = ix.to_create(missing.min(MAX_PER_SYNC), pods, waits_for_failed, now, cfg);
        if let Some(w) = next {
            d.requeue(w.wait);
            d.backoff = Some(BackoffHold::Index {
                wait: w.wait,
                index: w.index,
                attempt: w.attempt,
            });
        }
        d.create = new.len();
        d.indexes = new;
        if missing > MAX_PER_SYNC {
            d.requeue(Duration::ZERO);
        }
        return;
    }
    d.create = missing.min(MAX_PER_SYNC);
    if missing > MAX_PER_SYNC {
        d.requeue(Duration::ZERO);
    }
}

/// Time left before pods may be created again: `base·2^(n−1)` after the last of the `n`
/// failures that finished after the latest success (`backoff_utils.go`).
pub fn failure_backoff_remaining(
    pods: &[&Pod],
    now: Timestamp,
    cfg: PodFailureBackoff,
) -> Duration {
    let finish = |p: &&Pod| pod::finish_time(p);
    let last_success = pods
        .iter()
        .filter(|p| p.status.phase == PodPhase::Succeeded)
        .filter_map(finish)
        .max();
    // Natural failures only: pods the controller itself deleted end Failed too, uncounted.
    let failures: Vec<Timestamp> = pods
        .iter()
        .filter(|p| p.status.phase == PodPhase::Failed && p.metadata.deletion_timestamp.is_none())
        .filter_map(finish)
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    let Some(last_failure) = failures.iter().max() else {
        return Duration::ZERO;
    };
    let delay = backoff::pod_failure_delay(failures.len() as u32, cfg.base, cfg.max);
    elapsed(now, add(*last_failure, delay))
}

fn suspended(job: &Job) -> bool {
    job.spec.suspend == Some(true)
}

/// The `Suspended` condition, after `manageJob` ran: `True` while suspended (its
/// `startTime` cleared), turned `False` on resume (`startTime` reset to now, so
/// activeDeadlineSeconds counts from the resume). A Job never suspended gets none.
fn suspension(
    status: &mut JobStatus,
    suspended: bool,
    now: Timestamp,
    events: &mut Vec<EventSpec>,
) {
    if suspended {
        status.start_time = None;
        let cond = (JobConditionType::Suspended, "JobSuspended", "Job suspended");
        if ensure_condition(status, cond, true, now) {
            events.push(EventSpec::normal("Suspended", "Job suspended"));
        }
    } else {
        let cond = (JobConditionType::Suspended, "JobResumed", "Job resumed");
        if ensure_condition(status, cond, false, now) {
            events.push(EventSpec::normal("Resumed", "Job resumed"));
            status.start_time = Some(now);
        }
    }
}

/// `ensureJobConditionStatus`: sets the condition to `want` (with its reason and message),
/// saying whether anything changed. A condition is never added as `False`.
fn ensure_condition(
    status: &mut JobStatus,
    (type_, reason, message): (JobConditionType, &str, &str),
    want: bool,
    now: Timestamp,
) -> bool {
    let value = if want { "True" } else { "False" };
    if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status == value && c.reason == reason && c.message == message {
            return false;
        }
        *c = condition(type_, reason, message, now);
        c.status = value.into();
        return true;
    }
    if !want {
        return false;
    }
    status
        .conditions
        .push(condition(type_, reason, message, now));
    true
}

/// The second step of finishing: once no pod is left terminating, the interim condition
/// becomes terminal.
fn finish(
    status: &mut JobStatus,
    completions: Option<i32>,
    now: Timestamp,
    events: &mut Vec<EventSpec>,
) {
    if let Some(c) = status
        .condition(JobConditionType::SuccessCriteriaMet)
        .cloned()
    {
        set_condition(
            status,
            JobConditionType::Complete,
            &c.reason,
            &c.message,
            now,
        );
        status.completion_time = Some(now);
        // `recordJobFinished`: more successes than asked for (pods that succeeded together).
        if completions.is_some_and(|c| status.succeeded > c) {
            events.push(EventSpec::warning(
                "TooManySucceededPods",
                "Too many succeeded pods running after completion count reached",
            ));
        }
        events.push(EventSpec::normal("Completed", "Job completed"));
    } else if let Some(c) = status.condition(JobConditionType::FailureTarget).cloned() {
        set_condition(status, JobConditionType::Failed, &c.reason, &c.message, now);
        events.push(EventSpec::warning(&c.reason, c.message));
    }
}

fn set_condition(
    status: &mut JobStatus,
    type_: JobConditionType,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != "True" || c.reason != reason || c.message != message {
            *c = condition(type_, reason, message, now);
        }
        return;
    }
    status
        .conditions
        .push(condition(type_, reason, message, now));
}

fn condition(type_: JobConditionType, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_,
        status: "True".into(),
        last_probe_time: Some(now),
        last_transition_time: Some(now),
        reason: reason.into(),
        message: message.into(),
    }
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "job_pod_failure_policy_tests.rs"]
mod pod_failure_policy_tests;
