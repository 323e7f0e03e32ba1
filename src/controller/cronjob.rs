//! Kubernetes' CronJob controller (`pkg/controller/cronjob/cronjob_controllerv2.go`,
//! `utils.go`): one sync over a CronJob, the Jobs it controls and `now` says which Job to
//! create for which slot, which Jobs to delete (Replace, history limits), the new status, the
//! events, and when to look again. Level-triggered: after a crash the same inputs give the
//! same answer, and the Job's name (`<cronjob>-<slot in unix minutes>`) is the lock that keeps
//! a slot from running twice.
//!
//! Deliberate difference: the slot to run is the exact most recent fire time, where
//! Kubernetes estimates it from the first interval (`mostRecentScheduleTime`) and can miss it
//! for irregular schedules after downtime; and the missed slots are counted exactly and said
//! in an event (`MissedSchedules`, jobvisor's own reason).

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::api::{
    ANNOTATION_SCHEDULED_TIMESTAMP, ConcurrencyPolicy, CronJob, CronJobStatus, JOB_API_VERSION,
    Job, JobConditionType, ObjectMeta, ObjectReference, OwnerReference,
};
use crate::schedule::Schedule;

use super::EventSpec;

/// Kubernetes warns past this many missed slots (`TooManyMissedTimes`) and still runs the last.
pub const MAX_MISSED_BEFORE_WARNING: u64 = 100;

/// What a sync decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CronJobDecision {
    pub status: CronJobStatus,
    /// Jobs to delete, with background propagation, in this order.
    pub delete: Vec<JobDeletion>,
    pub create: Option<NewJob>,
    pub events: Vec<EventSpec>,
    /// When to sync again at the latest (the next fire time); `None`: only when the CronJob
    /// or one of its Jobs changes.
    pub wake_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobDeletion {
    pub name: String,
    pub why: DeleteReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// `concurrencyPolicy: Replace` at a new slot.
    Replace,
    /// Beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`.
    History,
}

/// A Job to create for a slot: everything but the identity the API server gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub job: Job,
    pub scheduled: Timestamp,
}

/// What the sync is given besides the CronJob.
pub struct Context<'a> {
    /// The Jobs whose controller reference names this CronJob.
    pub jobs: &'a [&'a Job],
    /// `spec.timeZone` loaded, else the daemon's local zone; `Err` is why the zone named
    /// cannot be loaded.
    pub zone: Result<&'a TimeZone, String>,
    /// Whether an object this CronJob does not control already has the name (a Job from a
    /// file, say): the slot's Job cannot be created then.
    pub name_taken: &'a dyn Fn(&str) -> bool,
    pub now: Timestamp,
}

/// The Job name for a slot: `getJobName`, the scheduled time in whole minutes.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

pub fn sync(cj: &CronJob, cx: &Context<'_>) -> CronJobDecision {
    let mut d = CronJobDecision {
        status: cj.status.clone().unwrap_or_default(),
        ..Default::default()
    };
    reconcile_active(cj, cx.jobs, &mut d);
    schedule(cj, cx, &mut d);
    clean_up_history(cj, cx.jobs, &mut d);
    d
}

fn finished_as(job: &Job) -> Option<JobConditionType> {
    let status = job.status.as_ref()?;
    [JobConditionType::Complete, JobConditionType::Failed]
        .into_iter()
        .find(|c| status.condition(c.clone()).is_some())
}

/// `syncCronJob`'s first half: `status.active` against the Jobs that exist.
fn reconcile_active(cj: &CronJob, jobs: &[&Job], d: &mut CronJobDecision) {
    for job in jobs {
        let uid = job.metadata.uid();
        let in_active = d.status.active.iter().any(|r| r.uid == uid);
        match finished_as(job) {
            None if !in_active => d.events.push(EventSpec::warning(
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    job.metadata.name()
                ),
            )),
            None => {}
            Some(condition) => {
                if in_active {
                    d.status.active.retain(|r| r.uid != uid);
                    d.events.push(EventSpec::normal(
                        "SawCompletedJob",
                        format!(
                            "Saw completed job: {}, condition: {condition}",
                            job.metadata.name()
                        ),
                    ));
                }
                let completed = job.status.as_ref().and_then(|s| s.completion_time);
                if condition == JobConditionType::Complete
                    && completed.is_some()
                    && completed > d.status.last_successful_time
                {
                    d.status.last_successful_time = completed;
                }
            }
        }
    }
    let missing: Vec<String> = d
        .status
        .active
        .iter()
        .filter(|r| !jobs.iter().any(|j| j.metadata.uid() == r.uid))
        .map(|r| r.name.clone())
        .collect();
    for name in missing {
        d.status.active.retain(|r| r.name != name);
        d.events.push(EventSpec::normal(
            "MissingJob",
            format!("Active job went missing: {name}"),
        ));
    }
    let _ = cj;
}

/// `syncCronJob`'s second half: is a slot due, and what runs for it.
fn schedule(cj: &CronJob, cx: &Context<'_>, d: &mut CronJobDecision) {
    if cj.metadata.deletion_timestamp.is_some() {
        return;
    }
    let zone = match &cx.zone {
        Ok(zone) => *zone,
        Err(why) => {
            let name = cj.spec.time_zone.as_deref().unwrap_or("");
            d.events.push(EventSpec::warning(
                "UnknownTimeZone",
                format!("invalid timeZone: {}: {why}", go_quote(name)),
            ));
            return;
        }
    };
    if cj.spec.suspended() {
        return;
    }
    let schedule = match Schedule::parse(&cj.spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            d.events.push(EventSpec::warning(
                "UnparseableSchedule",
                format!(
                    "unparseable schedule: {} : {e}",
                    go_quote(&cj.spec.schedule)
                ),
            ));
            return;
        }
    };
    let now = cx.now;
    let Some(created) = cj.metadata.creation_timestamp else {
        return;
    };
    let earliest = d.status.last_schedule_time.unwrap_or(created);
    if schedule.next_after(earliest, zone).is_none() {
        d.events.push(EventSpec::warning(
            "InvalidSchedule",
            format!(
                "invalid schedule: {} : the schedule never fires",
                cj.spec.schedule
            ),
        ));
        return;
    }
    let missed = schedule.fires_between(earliest, now, zone);
    // From the last slot, not from now: `@every` counts from its slots.
    d.wake_at = schedule.next_after(missed.last.unwrap_or(earliest), zone);
    let window_start = match cj.spec.starting_deadline_seconds {
        // Any int64 ≥ 0 is valid: a deadline reaching back past the earliest representable
        // instant is no deadline at all (and must not overflow).
        Some(secs) => match now.checked_sub(SignedDuration::from_secs(secs)) {
            Ok(start) => earliest.max(start),
            Err(_) => earliest,
        },
        None => earliest,
    };
    let in_window = schedule.fires_between(window_start, now, zone);
    let Some(slot) = in_window.last else {
        if let (Some(first), Some(last), Some(secs)) =
            (missed.first, missed.last, cj.spec.starting_deadline_seconds)
        {
            d.events.push(EventSpec::warning(
                "MissedSchedules",
                format!(
                    "Missed {} between {} and {}; none is within startingDeadlineSeconds ({secs}s), so none ran",
                    schedules(missed.count),
                    rfc3339(first, zone),
                    rfc3339(last, zone)
                ),
            ));
        }
        return;
    };
    if in_window.count > MAX_MISSED_BEFORE_WARNING {
        d.events.push(EventSpec::warning(
            "TooManyMissedTimes",
            format!(
                "too many missed start times: {}. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                in_window.count
            ),
        ));
    }
    let name = job_name(cj.metadata.name(), slot);
    if d.status.active.iter().any(|r| r.name == name) || d.status.last_schedule_time == Some(slot) {
        return;
    }
    if cj.spec.concurrency() == ConcurrencyPolicy::Forbid && !d.status.active.is_empty() {
        d.events.push(EventSpec::normal(
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid",
        ));
        return;
    }
    if cj.spec.concurrency() == ConcurrencyPolicy::Replace {
        for r in std::mem::take(&mut d.status.active) {
            d.events.push(EventSpec::normal(
                "SuccessfulDelete",
                format!("Deleted job {}", r.name),
            ));
            d.delete.push(JobDeletion {
                name: r.name,
                why: DeleteReason::Replace,
            });
        }
    }
    if let Some(existing) = cx.jobs.iter().find(|j| j.metadata.name() == name) {
        // Created before a crash took the status with it (or an `@every` below a minute named
        // two slots alike): recorded, not created again.
        if !d
            .status
            .active
            .iter()
            .any(|r| r.uid == existing.metadata.uid())
        {
            d.status.active.push(job_reference(existing));
            d.status.last_schedule_time = Some(slot);
        }
        return;
    }
    if (cx.name_taken)(&name) {
        // Kubernetes assumes another actor made it and leaves the status alone.
        return;
    }
    report_missed(&schedule, earliest, slot, now, zone, d);
    let job = job_from_template(cj, &name, slot, cx.zone.as_ref().ok().copied());
    d.events.push(EventSpec::normal(
        "SuccessfulCreate",
        format!("Created job {name}"),
    ));
    d.status.active.push(ObjectReference {
        kind: "Job".into(),
        namespace: cj.metadata.namespace().into(),
        name: name.clone(),
        uid: String::new(),
        api_version: Some(JOB_API_VERSION.into()),
    });
    d.status.last_schedule_time = Some(slot);
    d.create = Some(NewJob {
        job,
        scheduled: slot,
    });
}

/// "Missed N schedules between T1 and T2; ran the one at T": the slots since the last run
/// that did not start at their time. The slot that runs counts when it starts a second or more
/// late (the daemon was down, or a Forbid held it back).
fn report_missed(
    schedule: &Schedule,
    earliest: Timestamp,
    slot: Timestamp,
    now: Timestamp,
    zone: &TimeZone,
    d: &mut CronJobDecision,
) {
    let late = now.duration_since(slot) >= SignedDuration::from_secs(1);
    let until = if late {
        slot
    } else {
        slot - SignedDuration::from_nanos(1)
    };
    let missed = schedule.fires_between(earliest, until, zone);
    let (Some(first), Some(last)) = (missed.first, missed.last) else {
        return;
    };
    d.events.push(EventSpec::warning(
        "MissedSchedules",
        format!(
            "Missed {} between {} and {}; ran the one at {}",
            schedules(missed.count),
            rfc3339(first, zone),
            rfc3339(last, zone),
            rfc3339(slot, zone)
        ),
    ));
}

fn schedules(n: u64) -> String {
    if n == 1 {
        "1 schedule".into()
    } else {
        format!("{n} schedules")
    }
}

fn rfc3339(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn job_reference(job: &Job) -> ObjectReference {
    ObjectReference {
        kind: "Job".into(),
        namespace: job.metadata.namespace().into(),
        name: job.metadata.name().into(),
        uid: job.metadata.uid().into(),
        api_version: Some(JOB_API_VERSION.into()),
    }
}

/// `getJobFromTemplate2`: the template's labels and annotations, the scheduled-time
/// annotation (in `timeZone`, UTC when unset), the controller reference, the template's spec.
pub fn job_from_template(
    cj: &CronJob,
    name: &str,
    scheduled: Timestamp,
    zone: Option<&TimeZone>,
) -> Job {
    let template = &cj.spec.job_template;
    let mut annotations = template.metadata.annotations.clone();
    let stamp_zone = match (&cj.spec.time_zone, zone) {
        (Some(_), Some(z)) => z.clone(),
        _ => TimeZone::UTC,
    };
    let stamp = scheduled.to_zoned_datetime(stamp_zone);
    // Go's RFC 3339 layout writes a zero offset as `Z`, in any zone.
    let stamp = if stamp.offset().seconds() == 0 {
        stamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        stamp.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    };
    annotations.insert(ANNOTATION_SCHEDULED_TIMESTAMP.to_string(), stamp);
    Job {
        api_version: JOB_API_VERSION.into(),
        kind: "Job".into(),
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(cj.metadata.namespace().to_string()),
            labels: template.metadata.labels.clone(),
            annotations,
            owner_references: vec![owner_reference(cj)],
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The controller reference a CronJob's Jobs carry.
pub fn owner_reference(cj: &CronJob) -> OwnerReference {
    OwnerReference {
        api_version: JOB_API_VERSION.into(),
        kind: "CronJob".into(),
        name: cj.metadata.name().into(),
        uid: cj.metadata.uid().into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `cleanupFinishedJobs`: finished Jobs beyond each limit go, oldest start first (Jobs that
/// never started sort last, ties by name). Unfinished Jobs are never touched.
fn clean_up_history(cj: &CronJob, jobs: &[&Job], d: &mut CronJobDecision) {
    let limits = [
        (
            JobConditionType::Complete,
            cj.spec.successful_jobs_history_limit,
        ),
        (JobConditionType::Failed, cj.spec.failed_jobs_history_limit),
    ];
    for (condition, limit) in limits {
        let Some(limit) = limit else {
            continue;
        };
        let mut finished: Vec<&Job> = jobs
            .iter()
            .copied()
            .filter(|j| finished_as(j) == Some(condition.clone()))
            .filter(|j| !d.delete.iter().any(|x| x.name == j.metadata.name()))
            .collect();
        let excess = finished
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        finished.sort_by_key(|j| {
            let start = j.status.as_ref().and_then(|s| s.start_time);
            (start.is_none(), start, j.metadata.name().to_string())
        });
        for job in finished.into_iter().take(excess) {
            let name = job.metadata.name().to_string();
            d.status.active.retain(|r| r.name != name);
            d.events.push(EventSpec::normal(
                "SuccessfulDelete",
                format!("Deleted job {name}"),
            ));
            d.delete.push(JobDeletion {
                name,
                why: DeleteReason::History,
            });
        }
    }
}

#[cfg(test)]
#[path = "cronjob_tests.rs"]
mod tests;
