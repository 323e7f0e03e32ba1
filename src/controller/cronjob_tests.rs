//! The cases of Kubernetes' `TestControllerV2SyncCronJob` and `TestControllerV2CleanupFinishedJobs`
//! (`pkg/controller/cronjob/cronjob_controllerv2_test.go`), on the same clock: a schedule on
//! the hour, "now" just before or after 10:00 on 2016-05-19. Where jobvisor says more than
//! Kubernetes (the `MissedSchedules` event), the rows name it.

use super::*;
use crate::api::{CronJobSpec, JobSpec, JobStatus, Labels};

const ON_THE_HOUR: &str = "0 * * * ?";
const EVERY_HOUR: &str = "@every 1h";
const SHORT: i64 = 10;
const MEDIUM: i64 = 2 * 60 * 60;
const LONG: i64 = 1_000_000;

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}
fn just_before_the_prior_hour() -> Timestamp {
    t("2016-05-19T08:59:00Z")
}
fn just_after_the_prior_hour() -> Timestamp {
    t("2016-05-19T09:01:00Z")
}
fn just_before_the_hour() -> Timestamp {
    t("2016-05-19T09:59:00Z")
}
fn top_of_the_hour() -> Timestamp {
    t("2016-05-19T10:00:00Z")
}
fn just_after_the_hour() -> Timestamp {
    t("2016-05-19T10:01:00Z")
}
fn just_before_the_next_hour() -> Timestamp {
    t("2016-05-19T10:59:00Z")
}
fn week_after_the_hour() -> Timestamp {
    t("2016-05-26T10:00:00Z")
}
fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}
fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn cronjob(policy: &str, schedule: &str, deadline: Option<i64>) -> CronJob {
    CronJob {
        api_version: "batch/v1".into(),
        kind: "CronJob".into(),
        metadata: ObjectMeta {
            name: Some("mycronjob".into()),
            namespace: Some("snazzycats".into()),
            uid: Some("1a2b3c".into()),
            creation_timestamp: Some(just_before_the_hour()),
            ..Default::default()
        },
        spec: CronJobSpec {
            schedule: schedule.into(),
            concurrency_policy: Some(ConcurrencyPolicy::from(policy)),
            starting_deadline_seconds: deadline,
            job_template: crate::api::JobTemplateSpec {
                metadata: ObjectMeta {
                    labels: labels(&[("a", "b")]),
                    annotations: labels(&[("x", "y")]),
                    ..Default::default()
                },
                spec: JobSpec {
                    parallelism: Some(1),
                    completions: Some(1),
                    ..Default::default()
                },
            },
            ..Default::default()
        },
        status: None,
    }
}

/// A Job of the CronJob created for `scheduled`, finished (Complete, 10 s after its
/// creation) or not.
fn owned_job(cj: &CronJob, scheduled: Timestamp, finished: bool) -> Job {
    let mut job = job_from_template(
        cj,
        &job_name(cj.metadata.name(), scheduled),
        scheduled,
        None,
    );
    job.metadata.uid = Some("1234".into());
    job.metadata.creation_timestamp = Some(scheduled);
    if finished {
        job.status = Some(complete(scheduled, scheduled + secs(10)));
    } else {
        job.status = Some(JobStatus {
            start_time: Some(scheduled),
            ..Default::default()
        });
    }
    job
}

fn complete(start: Timestamp, end: Timestamp) -> JobStatus {
    condition(JobConditionType::Complete, start, end)
}

fn condition(type_: JobConditionType, start: Timestamp, end: Timestamp) -> JobStatus {
    JobStatus {
        start_time: Some(start),
        completion_time: (type_ == JobConditionType::Complete).then_some(end),
        conditions: vec![crate::api::JobCondition {
            type_,
            status: "True".into(),
            last_probe_time: None,
            last_transition_time: Some(end),
            reason: String::new(),
            message: String::new(),
        }],
        ..Default::default()
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Before {
    NeverRan,
    /// Ran once (its Job created for `job_at`) and that Job finished.
    RanButDone,
    /// Ran once and that Job is still running (and in `status.active`).
    StillActive,
}

struct Case {
    name: &'static str,
    policy: &'static str,
    schedule: &'static str,
    zone: Option<&'static str>,
    deadline: Option<i64>,
    suspend: bool,
    before: Before,
    created: Option<Timestamp>,
    last_schedule: Option<Timestamp>,
    job_at: Timestamp,
    now: Timestamp,
    // expectations
    create: bool,
    delete: bool,
    active: usize,
    /// Reasons of the events, in order.
    events: &'static [&'static str],
    wake_in: Option<SignedDuration>,
}

const BASE: Case = Case {
    name: "",
    policy: "Allow",
    schedule: ON_THE_HOUR,
    zone: None,
    deadline: None,
    suspend: false,
    before: Before::NeverRan,
    created: None,
    last_schedule: None,
    job_at: Timestamp::UNIX_EPOCH,
    now: Timestamp::UNIX_EPOCH,
    create: false,
    delete: false,
    active: 0,
    events: &[],
    wake_in: None,
};

fn run(case: &Case) {
    let mut cj = cronjob(case.policy, case.schedule, case.deadline);
    cj.spec.suspend = Some(case.suspend);
    cj.spec.time_zone = case.zone.map(str::to_string);
    let mut jobs = Vec::new();
    match case.before {
        Before::NeverRan => {
            cj.metadata.creation_timestamp = Some(case.created.unwrap_or(just_before_the_hour()));
        }
        Before::RanButDone | Before::StillActive => {
            cj.metadata.creation_timestamp =
                Some(case.created.unwrap_or(just_before_the_prior_hour()));
            let job = owned_job(&cj, case.job_at, case.before == Before::RanButDone);
            let mut status = CronJobStatus {
                last_schedule_time: Some(case.last_schedule.unwrap_or(just_after_the_prior_hour())),
                ..Default::default()
            };
            if case.before == Before::StillActive {
                status.active = vec![job_reference(&job)];
            }
            cj.status = Some(status);
            jobs.push(job);
        }
    }
    let zone = match case.zone {
        Some(name) => crate::schedule::time_zone(name),
        None => Ok(TimeZone::UTC),
    };
    let refs: Vec<&Job> = jobs.iter().collect();
    let cx = Context {
        jobs: &refs,
        zone: zone.as_ref().map_err(Clone::clone),
        name_taken: &|_| false,
        now: case.now,
    };
    let d = sync(&cj, &cx);
    let name = case.name;
    assert_eq!(
        d.create.is_some(),
        case.create,
        "{name}: create {:?}",
        d.create
    );
    assert_eq!(
        d.delete.len(),
        usize::from(case.delete),
        "{name}: delete {:?}",
        d.delete
    );
    assert_eq!(
        d.status.active.len(),
        case.active,
        "{name}: active {:?}",
        d.status.active
    );
    let reasons: Vec<&str> = d.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, case.events, "{name}: events {:#?}", d.events);
    assert_eq!(
        d.wake_at.map(|w| w.duration_since(case.now)),
        case.wake_in,
        "{name}: wake"
    );
    if case.before == Before::RanButDone {
        assert_eq!(
            d.status.last_successful_time,
            Some(case.job_at + secs(10)),
            "{name}: lastSuccessfulTime"
        );
    }
    if let Some(new) = &d.create {
        let owner = &new.job.metadata.owner_references;
        assert_eq!(owner.len(), 1, "{name}");
        assert_eq!(
            (
                owner[0].api_version.as_str(),
                owner[0].kind.as_str(),
                owner[0].name.as_str()
            ),
            ("batch/v1", "CronJob", "mycronjob")
        );
        assert_eq!(
            (owner[0].uid.as_str(), owner[0].controller),
            ("1a2b3c", Some(true))
        );
        assert_eq!(d.status.last_schedule_time, Some(new.scheduled), "{name}");
        assert_eq!(
            new.job.metadata.name(),
            job_name("mycronjob", new.scheduled),
            "{name}"
        );
    }
}

#[test]
fn sync_table() {
    let cases = [
        Case {
            name: "never ran, not valid schedule",
            schedule: "obvious error schedule",
            job_at: just_after_the_prior_hour(),
            now: just_before_the_hour(),
            events: &["UnparseableSchedule"],
            ..BASE
        },
        Case {
            name: "never ran, not valid time zone",
            zone: Some("bad timezone"),
            job_at: just_after_the_prior_hour(),
            now: just_before_the_hour(),
            events: &["UnknownTimeZone"],
            ..BASE
        },
        Case {
            name: "never ran, not time, A",
            now: just_before_the_hour(),
            wake_in: Some(mins(1)),
            ..BASE
        },
        Case {
            name: "never ran, not time, F",
            policy: "Forbid",
            now: just_before_the_hour(),
            wake_in: Some(mins(1)),
            ..BASE
        },
        Case {
            name: "never ran, not time, R",
            policy: "Replace",
            now: just_before_the_hour(),
            wake_in: Some(mins(1)),
            ..BASE
        },
        Case {
            name: "never ran, not time in zone",
            zone: Some("America/New_York"),
            now: just_before_the_hour(),
            wake_in: Some(mins(1)),
            ..BASE
        },
        Case {
            name: "never ran, is time, A",
            now: just_after_the_hour(),
            create: true,
            active: 1,
            events: &["MissedSchedules", "SuccessfulCreate"],
            wake_in: Some(mins(59)),
            ..BASE
        },
        Case {
            name: "never ran, on the dot, A",
            now: top_of_the_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "never ran, on the dot, F",
            policy: "Forbid",
            now: top_of_the_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "never ran, on the dot, R",
            policy: "Replace",
            now: top_of_the_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "never ran, is time in zone",
            zone: Some("America/New_York"),
            now: top_of_the_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "never ran, is time, suspended",
            suspend: true,
            now: just_after_the_hour(),
            ..BASE
        },
        Case {
            name: "never ran, is time, past deadline",
            deadline: Some(SHORT),
            now: just_after_the_hour() + mins(SHORT + 1),
            events: &["MissedSchedules"],
            wake_in: Some(mins(60 - 1 - SHORT - 1)),
            ..BASE
        },
        Case {
            name: "never ran, is time, not past deadline",
            deadline: Some(LONG),
            now: top_of_the_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "prev ran but done, not time, A",
            before: Before::RanButDone,
            job_at: just_after_the_prior_hour(),
            now: just_before_the_hour(),
            wake_in: Some(mins(1)),
            ..BASE
        },
        Case {
            name: "prev ran but done, not time, F",
            policy: "Forbid",
            before: Before::RanButDone,
            job_at: just_after_the_prior_hour(),
            now: just_before_the_hour(),
            wake_in: Some(mins(1)),
            ..BASE
        },
        Case {
            name: "prev ran but done, not time, R",
            policy: "Replace",
            before: Before::RanButDone,
            job_at: just_after_the_prior_hour(),
            now: just_before_the_hour(),
            wake_in: Some(mins(1)),
            ..BASE
        },
        Case {
            name: "prev ran but done, is time, A",
            before: Before::RanButDone,
            job_at: just_after_the_prior_hour(),
            now: top_of_the_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "prev ran but done, is time, F",
            policy: "Forbid",
            before: Before::RanButDone,
            job_at: just_after_the_prior_hour(),
            now: top_of_the_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "prev ran but done, is time, R",
            policy: "Replace",
            before: Before::RanButDone,
            job_at: just_after_the_prior_hour(),
            now: top_of_the_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "prev ran but done, is time, past deadline",
            before: Before::RanButDone,
            deadline: Some(SHORT),
            job_at: just_after_the_prior_hour(),
            now: just_after_the_hour(),
            events: &["MissedSchedules"],
            wake_in: Some(mins(59)),
            ..BASE
        },
        Case {
            name: "prev ran but done, is time, not past deadline",
            before: Before::RanButDone,
            deadline: Some(LONG),
            job_at: just_after_the_prior_hour(),
            now: top_of_the_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "still active, not time, A",
            before: Before::StillActive,
            job_at: just_after_the_prior_hour(),
            now: just_before_the_hour(),
            active: 1,
            wake_in: Some(mins(1)),
            ..BASE
        },
        Case {
            name: "still active, is time, A",
            before: Before::StillActive,
            job_at: just_after_the_prior_hour(),
            now: top_of_the_hour(),
            create: true,
            active: 2,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "still active, is time, F",
            policy: "Forbid",
            before: Before::StillActive,
            job_at: just_after_the_prior_hour(),
            now: top_of_the_hour(),
            active: 1,
            events: &["JobAlreadyActive"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "still active, is time, R",
            policy: "Replace",
            before: Before::StillActive,
            job_at: just_after_the_prior_hour(),
            now: top_of_the_hour(),
            create: true,
            delete: true,
            active: 1,
            events: &["SuccessfulDelete", "SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "still active, is time, past deadline",
            before: Before::StillActive,
            deadline: Some(SHORT),
            job_at: just_after_the_prior_hour(),
            now: just_after_the_hour(),
            active: 1,
            events: &["MissedSchedules"],
            wake_in: Some(mins(59)),
            ..BASE
        },
        // Down for a week: 168 slots missed; the last runs, with Kubernetes' warning.
        Case {
            name: "prev ran but done, long overdue, no deadline",
            before: Before::RanButDone,
            job_at: just_after_the_prior_hour(),
            now: week_after_the_hour(),
            create: true,
            active: 1,
            events: &["TooManyMissedTimes", "MissedSchedules", "SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "prev ran but done, long overdue, past medium deadline",
            before: Before::RanButDone,
            deadline: Some(MEDIUM),
            job_at: just_after_the_prior_hour(),
            now: week_after_the_hour(),
            create: true,
            active: 1,
            events: &["MissedSchedules", "SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "prev ran but done, long overdue, past short deadline, F",
            policy: "Forbid",
            before: Before::RanButDone,
            deadline: Some(SHORT),
            job_at: just_after_the_prior_hour(),
            now: week_after_the_hour(),
            create: true,
            active: 1,
            events: &["MissedSchedules", "SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "still active, long overdue, F",
            policy: "Forbid",
            before: Before::StillActive,
            job_at: just_after_the_prior_hour(),
            now: week_after_the_hour(),
            active: 1,
            events: &["TooManyMissedTimes", "JobAlreadyActive"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        // The job created for this slot finished but the status did not record it (a crash
        // between the two, in Kubernetes): recorded now, not created again.
        Case {
            name: "this ran but the status was lost",
            before: Before::RanButDone,
            job_at: top_of_the_hour(),
            now: just_after_the_hour(),
            active: 1,
            events: &[],
            wake_in: Some(mins(59)),
            ..BASE
        },
        Case {
            name: "with @every schedule, never ran, not time",
            schedule: EVERY_HOUR,
            now: top_of_the_hour(),
            wake_in: Some(mins(59)),
            ..BASE
        },
        Case {
            name: "with @every schedule, never ran, is time",
            schedule: EVERY_HOUR,
            created: Some(just_before_the_prior_hour()),
            now: just_before_the_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "with @every schedule, never ran, is time, past deadline",
            schedule: EVERY_HOUR,
            deadline: Some(SHORT),
            created: Some(just_before_the_prior_hour()),
            now: just_before_the_hour() + secs(SHORT + 1),
            events: &["MissedSchedules"],
            wake_in: Some(mins(60) - secs(SHORT + 1)),
            ..BASE
        },
        Case {
            name: "with @every schedule, never ran, is time, not past deadline",
            schedule: EVERY_HOUR,
            deadline: Some(LONG),
            created: Some(just_before_the_prior_hour()),
            now: just_before_the_hour() + secs(SHORT - 1),
            create: true,
            active: 1,
            events: &["MissedSchedules", "SuccessfulCreate"],
            wake_in: Some(mins(60) - secs(SHORT - 1)),
            ..BASE
        },
        Case {
            name: "with @every schedule, prev ran but done, is time",
            schedule: EVERY_HOUR,
            before: Before::RanButDone,
            created: Some(just_before_the_prior_hour()),
            job_at: just_before_the_prior_hour(),
            last_schedule: Some(just_before_the_hour()),
            now: just_before_the_next_hour(),
            create: true,
            active: 1,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "with @every schedule, still active, is time",
            schedule: EVERY_HOUR,
            before: Before::StillActive,
            created: Some(just_before_the_prior_hour()),
            job_at: just_before_the_prior_hour(),
            last_schedule: Some(just_before_the_prior_hour()),
            now: just_before_the_hour(),
            create: true,
            active: 2,
            events: &["SuccessfulCreate"],
            wake_in: Some(mins(60)),
            ..BASE
        },
        Case {
            name: "with @every schedule, prev ran but done, long overdue",
            schedule: EVERY_HOUR,
            before: Before::RanButDone,
            created: Some(just_after_the_prior_hour()),
            job_at: just_after_the_prior_hour(),
            last_schedule: Some(just_after_the_hour()),
            now: week_after_the_hour(),
            create: true,
            active: 1,
            events: &["TooManyMissedTimes", "MissedSchedules", "SuccessfulCreate"],
            wake_in: Some(mins(1)),
            ..BASE
        },
    ];
    for case in &cases {
        run(case);
    }
}

/// Kubernetes estimates the most recent slot from the first interval and, for
/// `30 10,11,12 * * 1-5` last run Thursday 10:30 and back on Friday 16:30, finds none
/// (`utils_test.go` "another complex schedule"); jobvisor runs Friday 12:30.
#[test]
fn the_exact_most_recent_slot_runs_after_downtime() {
    let mut cj = cronjob("Allow", "30 10,11,12 * * 1-5", None);
    cj.metadata.creation_timestamp = Some(t("2016-05-18T00:00:00Z"));
    cj.status = Some(CronJobStatus {
        last_schedule_time: Some(t("2016-05-19T10:30:00Z")),
        ..Default::default()
    });
    let cx = Context {
        jobs: &[],
        zone: Ok(&TimeZone::UTC),
        name_taken: &|_| false,
        now: t("2016-05-20T16:30:00Z"),
    };
    let d = sync(&cj, &cx);
    let new = d.create.expect("a Job for the last missed slot");
    assert_eq!(new.scheduled, t("2016-05-20T12:30:00Z"));
    let missed = d
        .events
        .iter()
        .find(|e| e.reason == "MissedSchedules")
        .expect("said");
    assert_eq!(
        missed.message,
        "Missed 5 schedules between 2016-05-19T11:30:00+00:00 and 2016-05-20T12:30:00+00:00; ran the one at 2016-05-20T12:30:00+00:00"
    );
    assert_eq!(d.wake_at, Some(t("2016-05-23T10:30:00Z")));
}

#[test]
fn the_job_is_made_from_the_template() {
    let mut cj = cronjob("Allow", ON_THE_HOUR, None);
    cj.spec.job_template.spec.template.spec.restart_policy = Some(crate::api::RestartPolicy::Never);
    let job = job_from_template(&cj, "mycronjob-24394200", top_of_the_hour(), None);
    assert_eq!(job.metadata.name(), "mycronjob-24394200");
    assert_eq!(job.metadata.namespace(), "snazzycats");
    assert_eq!(job.metadata.labels, labels(&[("a", "b")]));
    assert_eq!(
        job.metadata.annotations,
        labels(&[
            (ANNOTATION_SCHEDULED_TIMESTAMP, "2016-05-19T10:00:00Z"),
            ("x", "y")
        ])
    );
    assert_eq!(job.spec, cj.spec.job_template.spec);
    assert_eq!(
        job_name("mycronjob", top_of_the_hour()),
        "mycronjob-24394200"
    );

    // In its timeZone; a zero offset is written `Z` as Go's RFC 3339 layout does.
    cj.spec.time_zone = Some("America/New_York".into());
    let ny = crate::schedule::time_zone("America/New_York").expect("zone");
    let job = job_from_template(&cj, "x", top_of_the_hour(), Some(&ny));
    assert_eq!(
        job.metadata
            .annotations
            .get(ANNOTATION_SCHEDULED_TIMESTAMP)
            .map(String::as_str),
        Some("2016-05-19T06:00:00-04:00")
    );
    cj.spec.time_zone = Some("Europe/London".into());
    let london = crate::schedule::time_zone("Europe/London").expect("zone");
    let job = job_from_template(&cj, "x", t("2016-01-19T10:00:00Z"), Some(&london));
    assert_eq!(
        job.metadata
            .annotations
            .get(ANNOTATION_SCHEDULED_TIMESTAMP)
            .map(String::as_str),
        Some("2016-01-19T10:00:00Z")
    );
}

/// A manual Job (`create job --from`) is not adopted: it is reported, not counted.
#[test]
fn an_unexpected_job_is_reported_and_not_counted_by_forbid() {
    let mut cj = cronjob("Forbid", ON_THE_HOUR, None);
    cj.metadata.creation_timestamp = Some(just_before_the_prior_hour());
    let mut manual = owned_job(&cj, just_after_the_prior_hour(), false);
    manual.metadata.name = Some("mycronjob-manual-xyz".into());
    manual
        .metadata
        .annotations
        .insert(crate::api::ANNOTATION_INSTANTIATE.into(), "manual".into());
    cj.status = Some(CronJobStatus {
        last_schedule_time: Some(t("2016-05-19T09:00:00Z")),
        ..Default::default()
    });
    let jobs = [&manual];
    let cx = Context {
        jobs: &jobs,
        zone: Ok(&TimeZone::UTC),
        name_taken: &|_| false,
        now: top_of_the_hour(),
    };
    let d = sync(&cj, &cx);
    let reasons: Vec<&str> = d.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["UnexpectedJob", "SuccessfulCreate"]);
    assert_eq!(d.status.active.len(), 1);
    assert_eq!(d.status.active[0].name, "mycronjob-24394200");
}

#[test]
fn a_job_gone_from_active_is_missing() {
    let mut cj = cronjob("Forbid", ON_THE_HOUR, None);
    cj.metadata.creation_timestamp = Some(just_before_the_prior_hour());
    let gone = owned_job(&cj, t("2016-05-19T09:00:00Z"), false);
    cj.status = Some(CronJobStatus {
        active: vec![job_reference(&gone)],
        last_schedule_time: Some(t("2016-05-19T09:00:00Z")),
        ..Default::default()
    });
    let cx = Context {
        jobs: &[],
        zone: Ok(&TimeZone::UTC),
        name_taken: &|_| false,
        now: top_of_the_hour(),
    };
    let d = sync(&cj, &cx);
    let reasons: Vec<&str> = d.events.iter().map(|e| e.reason.as_str()).collect();
    // Forbid no longer holds it back: the slot runs.
    assert_eq!(reasons, ["MissingJob", "SuccessfulCreate"]);
}

/// Forbid: the slot held back by a running Job runs late once that Job finishes.
#[test]
fn a_slot_forbid_held_back_runs_when_the_job_finishes() {
    let mut cj = cronjob("Forbid", ON_THE_HOUR, None);
    cj.metadata.creation_timestamp = Some(just_before_the_prior_hour());
    let mut running = owned_job(&cj, t("2016-05-19T09:00:00Z"), false);
    cj.status = Some(CronJobStatus {
        active: vec![job_reference(&running)],
        last_schedule_time: Some(t("2016-05-19T09:00:00Z")),
        ..Default::default()
    });
    let jobs = [&running];
    let utc = TimeZone::UTC;
    let d = sync(
        &cj,
        &Context {
            jobs: &jobs,
            zone: Ok(&utc),
            name_taken: &|_| false,
            now: top_of_the_hour(),
        },
    );
    assert!(d.create.is_none());
    running.status = Some(complete(
        t("2016-05-19T09:00:00Z"),
        t("2016-05-19T10:20:00Z"),
    ));
    let jobs = [&running];
    let cx = Context {
        jobs: &jobs,
        zone: Ok(&TimeZone::UTC),
        name_taken: &|_| false,
        now: t("2016-05-19T10:20:00Z"),
    };
    let d = sync(&cj, &cx);
    let reasons: Vec<&str> = d.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["SawCompletedJob", "MissedSchedules", "SuccessfulCreate"]
    );
    assert_eq!(d.create.map(|n| n.scheduled), Some(top_of_the_hour()));
    assert_eq!(
        d.status.last_successful_time,
        Some(t("2016-05-19T10:20:00Z"))
    );
}

/// `@every` below a minute: two slots share the minute's Job name, so the second runs nothing
/// (Kubernetes records the existing Job again, as after a crash).
#[test]
fn every_thirty_seconds_runs_once_a_minute() {
    let mut cj = cronjob("Allow", "@every 30s", None);
    cj.metadata.creation_timestamp = Some(t("2016-05-19T10:00:00Z"));
    let d = sync(
        &cj,
        &Context {
            jobs: &[],
            zone: Ok(&TimeZone::UTC),
            name_taken: &|_| false,
            now: t("2016-05-19T10:00:30Z"),
        },
    );
    let first = d.create.expect("the first slot runs");
    assert_eq!(first.job.metadata.name(), "mycronjob-24394200");
    cj.status = Some(d.status);
    let mut job = first.job;
    job.metadata.uid = Some("u1".into());
    if let Some(r) = cj.status.as_mut().and_then(|s| s.active.first_mut()) {
        r.uid = "u1".into();
    }
    let jobs = [&job];
    let d = sync(
        &cj,
        &Context {
            jobs: &jobs,
            zone: Ok(&TimeZone::UTC),
            name_taken: &|_| false,
            now: t("2016-05-19T10:00:59Z"),
        },
    );
    assert!(d.create.is_none(), "{:?}", d.create);
    assert_eq!(d.status.active.len(), 1);
}

#[test]
fn a_name_another_object_has_blocks_the_slot() {
    let cj = cronjob("Allow", ON_THE_HOUR, None);
    let d = sync(
        &cj,
        &Context {
            jobs: &[],
            zone: Ok(&TimeZone::UTC),
            name_taken: &|n| n == "mycronjob-24394200",
            now: top_of_the_hour(),
        },
    );
    assert!(d.create.is_none());
    assert_eq!(d.status.last_schedule_time, None);
}

/// `startingDeadlineSeconds` is any int64 ≥ 0 to the API server: a deadline reaching back
/// before the earliest representable instant (here 2^63−1 s) is no deadline at all, and
/// must not overflow (it panicked the daemon, at every start, since the file stays).
#[test]
fn a_deadline_beyond_the_representable_past_is_no_deadline() {
    for deadline in [i64::MAX, 400_000_000_000] {
        let cj = cronjob("Allow", ON_THE_HOUR, Some(deadline));
        let d = sync(
            &cj,
            &Context {
                jobs: &[],
                zone: Ok(&TimeZone::UTC),
                name_taken: &|_| false,
                now: just_after_the_hour(),
            },
        );
        let new = d.create.expect("the slot runs");
        assert_eq!(new.scheduled, top_of_the_hour(), "deadline {deadline}");
    }
}

#[test]
fn a_schedule_that_never_fires_is_invalid() {
    let cj = cronjob("Allow", "0 0 30 2 *", None);
    let d = sync(
        &cj,
        &Context {
            jobs: &[],
            zone: Ok(&TimeZone::UTC),
            name_taken: &|_| false,
            now: top_of_the_hour(),
        },
    );
    let reasons: Vec<&str> = d.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["InvalidSchedule"]);
    assert_eq!(d.wake_at, None);
}

/// `TestControllerV2CleanupFinishedJobs` and the history limits: the oldest start goes first,
/// never-started Jobs last, unfinished Jobs never.
#[test]
fn history_table() {
    struct Row {
        name: &'static str,
        succeeded_limit: Option<i32>,
        failed_limit: Option<i32>,
        /// (name, finished as, start minute past 08:00)
        jobs: &'static [(&'static str, Option<JobConditionType>, Option<i64>)],
        deleted: &'static [&'static str],
    }
    use JobConditionType::{Complete, Failed};
    let rows = [
        Row {
            name: "over the successful limit",
            succeeded_limit: Some(1),
            failed_limit: Some(1),
            jobs: &[
                ("hour-ago", Some(Complete), Some(0)),
                ("minute-ago", Some(Complete), Some(59)),
            ],
            deleted: &["hour-ago"],
        },
        Row {
            name: "within the limit",
            succeeded_limit: Some(2),
            failed_limit: Some(1),
            jobs: &[
                ("hour-ago", Some(Complete), Some(0)),
                ("minute-ago", Some(Complete), Some(59)),
            ],
            deleted: &[],
        },
        Row {
            name: "limit zero keeps none",
            succeeded_limit: Some(0),
            failed_limit: Some(0),
            jobs: &[("a", Some(Complete), Some(1)), ("b", Some(Failed), Some(2))],
            deleted: &["a", "b"],
        },
        Row {
            name: "failed limit apart from succeeded",
            succeeded_limit: Some(3),
            failed_limit: Some(1),
            jobs: &[
                ("f1", Some(Failed), Some(1)),
                ("s1", Some(Complete), Some(2)),
                ("f2", Some(Failed), Some(3)),
                ("f3", Some(Failed), Some(4)),
            ],
            deleted: &["f1", "f2"],
        },
        Row {
            name: "unfinished never go",
            succeeded_limit: Some(0),
            failed_limit: Some(0),
            jobs: &[("running", None, Some(1))],
            deleted: &[],
        },
        Row {
            name: "never started sorts last, ties by name",
            succeeded_limit: Some(1),
            failed_limit: Some(1),
            jobs: &[
                ("z-unstarted", Some(Complete), None),
                ("b", Some(Complete), Some(5)),
                ("a", Some(Complete), Some(5)),
            ],
            deleted: &["a", "b"],
        },
        Row {
            name: "no limits",
            succeeded_limit: None,
            failed_limit: None,
            jobs: &[
                ("a", Some(Complete), Some(1)),
                ("b", Some(Complete), Some(2)),
            ],
            deleted: &[],
        },
    ];
    for row in rows {
        let mut cj = cronjob("Allow", ON_THE_HOUR, None);
        cj.spec.suspend = Some(true);
        cj.spec.successful_jobs_history_limit = row.succeeded_limit;
        cj.spec.failed_jobs_history_limit = row.failed_limit;
        let jobs: Vec<Job> = row
            .jobs
            .iter()
            .enumerate()
            .map(|(i, (name, finished, start))| {
                let start = start.map(|m| t("2016-05-19T08:00:00Z") + mins(m));
                let mut job = owned_job(&cj, top_of_the_hour(), false);
                job.metadata.name = Some(name.to_string());
                job.metadata.uid = Some(format!("uid-{i}"));
                let end = t("2016-05-19T09:30:00Z");
                job.status = Some(match finished {
                    Some(c) => {
                        let mut s = condition(c.clone(), end, end);
                        s.start_time = start;
                        s
                    }
                    None => JobStatus {
                        start_time: start,
                        ..Default::default()
                    },
                });
                job
            })
            .collect();
        let refs: Vec<&Job> = jobs.iter().collect();
        let d = sync(
            &cj,
            &Context {
                jobs: &refs,
                zone: Ok(&TimeZone::UTC),
                name_taken: &|_| false,
                now: top_of_the_hour(),
            },
        );
        let deleted: Vec<&str> = d.delete.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(deleted, row.deleted, "{}", row.name);
        assert!(d.delete.iter().all(|x| x.why == DeleteReason::History));
    }
}
