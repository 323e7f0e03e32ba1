//! The TTL-after-finished controller (Kubernetes'
//! `pkg/controller/ttlafterfinished/ttlafterfinished_controller.go`): a Job with
//! `spec.ttlSecondsAfterFinished` is deleted, its pods with it, that many seconds after it
//! finished. Finished means a `Complete` or `Failed` condition with status `True`; the
//! finish time is that condition's `lastTransitionTime`. The interim conditions
//! (`SuccessCriteriaMet`, `FailureTarget`) and `Suspended` do not start the clock.

use std::time::Duration;

use jiff::Timestamp;

use super::{add, elapsed};
use crate::api::{Job, JobConditionType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// No TTL, not finished, already being deleted, or no finish time to count from.
    Keep,
    /// Due now: delete the Job (background propagation). `finished`: when it finished.
    Delete { finished: Timestamp },
    /// Not due yet: look again after this long.
    WakeAfter(Duration),
}

/// `processTTL`/`timeLeft`: what the TTL of `job` says at `now`.
pub fn decide(job: &Job, now: Timestamp) -> Ttl {
    let Some(ttl) = job.spec.ttl_seconds_after_finished else {
        return Ttl::Keep;
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ttl::Keep;
    }
    let Some(status) = &job.status else {
        return Ttl::Keep;
    };
    // Kubernetes logs an error and leaves a finished Job without a transition time alone.
    let Some(finished) = [JobConditionType::Complete, JobConditionType::Failed]
        .into_iter()
        .filter_map(|t| status.condition(t))
        .find_map(|c| c.last_transition_time)
    else {
        return Ttl::Keep;
    };
    // Validation refuses a negative TTL; one read back from an old store counts as 0.
    let expire = add(
        finished,
        Duration::from_secs(u64::try_from(ttl).unwrap_or(0)),
    );
    if now >= expire {
        Ttl::Delete { finished }
    } else {
        Ttl::WakeAfter(elapsed(now, expire))
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::api::{JobCondition, JobSpec, JobStatus};

    fn now() -> Timestamp {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }

    fn condition(type_: JobConditionType, status: &str, ago: i64) -> JobCondition {
        JobCondition {
            type_,
            status: status.into(),
            last_probe_time: None,
            last_transition_time: Some(now() - SignedDuration::from_secs(ago)),
            reason: String::new(),
            message: String::new(),
        }
    }

    /// Cases after `TestTimeLeft` and `TestProcessTTL` of Kubernetes'
    /// `ttlafterfinished_controller_test.go`, in our own words.
    #[test]
    fn ttl_table() {
        use JobConditionType::*;
        let at = |ago: i64| now() - SignedDuration::from_secs(ago);
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            Option<i32>,
            Vec<(JobConditionType, &str, i64)>,
            bool,
            Ttl,
        )> = vec![
            (
                "no ttl",
                None,
                vec![(Complete, "True", 100)],
                false,
                Ttl::Keep,
            ),
            ("not finished", Some(0), vec![], false, Ttl::Keep),
            (
                "interim success does not start the clock",
                Some(0),
                vec![(SuccessCriteriaMet, "True", 100)],
                false,
                Ttl::Keep,
            ),
            (
                "interim failure does not start the clock",
                Some(0),
                vec![(FailureTarget, "True", 100)],
                false,
                Ttl::Keep,
            ),
            (
                "suspended does not start the clock",
                Some(0),
                vec![(Suspended, "True", 100)],
                false,
                Ttl::Keep,
            ),
            (
                "a False Complete is not finished",
                Some(0),
                vec![(Complete, "False", 100)],
                false,
                Ttl::Keep,
            ),
            (
                "ttl 0 deletes at once",
                Some(0),
                vec![(SuccessCriteriaMet, "True", 0), (Complete, "True", 0)],
                false,
                Ttl::Delete { finished: at(0) },
            ),
            (
                "complete, ttl not yet passed",
                Some(10),
                vec![(Complete, "True", 4)],
                false,
                Ttl::WakeAfter(Duration::from_secs(6)),
            ),
            (
                "complete, ttl exactly passed",
                Some(10),
                vec![(Complete, "True", 10)],
                false,
                Ttl::Delete { finished: at(10) },
            ),
            (
                "failed, ttl long passed",
                Some(10),
                vec![(FailureTarget, "True", 500), (Failed, "True", 400)],
                false,
                Ttl::Delete { finished: at(400) },
            ),
            (
                "failed, ttl not yet passed",
                Some(100),
                vec![(Failed, "True", 1)],
                false,
                Ttl::WakeAfter(Duration::from_secs(99)),
            ),
            (
                "finish time in the future (clock skew) waits",
                Some(5),
                vec![(Complete, "True", -10)],
                false,
                Ttl::WakeAfter(Duration::from_secs(15)),
            ),
            (
                "already being deleted",
                Some(0),
                vec![(Complete, "True", 100)],
                true,
                Ttl::Keep,
            ),
        ];
        for (name, ttl, conditions, deleting, want) in cases {
            let mut job = Job {
                spec: JobSpec {
                    ttl_seconds_after_finished: ttl,
                    ..Default::default()
                },
                status: Some(JobStatus {
                    conditions: conditions
                        .into_iter()
                        .map(|(t, s, ago)| condition(t, s, ago))
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            if deleting {
                job.metadata.deletion_timestamp = Some(now());
            }
            assert_eq!(decide(&job, now()), want, "{name}");
        }
    }

    #[test]
    fn a_finished_job_without_a_transition_time_is_kept() {
        let mut c = condition(JobConditionType::Complete, "True", 0);
        c.last_transition_time = None;
        let job = Job {
            spec: JobSpec {
                ttl_seconds_after_finished: Some(0),
                ..Default::default()
            },
            status: Some(JobStatus {
                conditions: vec![c],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(decide(&job, now()), Ttl::Keep);
    }
}
