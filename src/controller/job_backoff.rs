//! Whether a Job's next pod waits out the pod-failure backoff, and until when: what
//! `describe job` prints as "attempt N of M, next pod in Xs". Built from the Job
//! controller's own pure functions ([`job::sync`], [`job::failure_backoff_remaining`]), so
//! there is no second copy of the backoff rule to drift from the one that decides.

use jiff::Timestamp;

use super::add;
use super::job::{self, BackoffHold, PodFailureBackoff};
use crate::api::{Job, Pod};

/// A pod creation held back by the pod-failure backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingBackoff {
    /// With `backoffLimitPerIndex`: the index whose next pod comes first; each index waits
    /// out its own delay and has its own attempts.
    pub index: Option<i32>,
    /// The attempt the next pod is: failed pods so far + 1 (of the index, with an index).
    pub attempt: i32,
    /// `backoffLimit + 1` (`backoffLimitPerIndex + 1` with an index): the attempts before
    /// the Job (the index) fails. Wide: `backoffLimit` may be the largest int32.
    pub attempts: i64,
    /// When the Job controller creates the next pod.
    pub next_pod_at: Timestamp,
}

/// The pending backoff, if the backoff is what keeps this sync from creating a pod: the
/// controller's own sync wants a pod and says the backoff holds it. A finished, suspended
/// or full Job, or one whose backoff has run out, has none.
pub fn pending(
    job: &Job,
    pods: &[&Pod],
    now: Timestamp,
    cfg: PodFailureBackoff,
) -> Option<PendingBackoff> {
    let decision = job::sync(job, pods, now, cfg);
    if decision.create > 0 {
        return None;
    }
    match decision.backoff? {
        BackoffHold::Job { wait } => Some(PendingBackoff {
            index: None,
            // The status as this sync counts it: a failure not yet in the stored status counts.
            attempt: decision.status.failed.saturating_add(1),
            attempts: i64::from(job.spec.backoff_limit.unwrap_or(6)) + 1,
            next_pod_at: add(now, wait),
        }),
        BackoffHold::Index {
            wait,
            index,
            attempt,
        } => Some(PendingBackoff {
            index: Some(index),
            attempt,
            attempts: i64::from(job.spec.backoff_limit_per_index.unwrap_or(0)) + 1,
            next_pod_at: add(now, wait),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use jiff::SignedDuration;

    use super::*;
    use crate::api::{
        ContainerState, ContainerStateTerminated, ContainerStatus, JobCondition, JobConditionType,
        JobSpec, JobStatus, ObjectMeta, PodPhase, PodStatus, PodTemplateSpec,
    };

    const CFG: PodFailureBackoff = PodFailureBackoff {
        base: Duration::from_secs(10),
        max: Duration::from_secs(600),
    };

    fn now() -> Timestamp {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }

    fn ago(secs: i64) -> Timestamp {
        now() - SignedDuration::from_secs(secs)
    }

    /// A pod that ended (`Some(code)`: exit code, finished `secs` ago) or still runs.
    fn pod(i: usize, ended: Option<(i32, i64)>) -> Pod {
        let (phase, state) = match ended {
            Some((code, secs)) => (
                if code == 0 {
                    PodPhase::Succeeded
                } else {
                    PodPhase::Failed
                },
                ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: code,
                        finished_at: Some(ago(secs)),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ),
            None => (PodPhase::Running, ContainerState::default()),
        };
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("j-{i}")),
                creation_timestamp: Some(ago(1000 - i as i64)),
                ..Default::default()
            },
            status: PodStatus {
                phase,
                container_statuses: vec![ContainerStatus {
                    name: "c".into(),
                    state,
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn job(parallelism: i32, backoff_limit: i32, failed: i32) -> Job {
        let mut template = PodTemplateSpec::default();
        template.spec.restart_policy = Some("Never".into());
        Job {
            spec: JobSpec {
                parallelism: Some(parallelism),
                completions: Some(1),
                backoff_limit: Some(backoff_limit),
                template,
                ..Default::default()
            },
            status: Some(JobStatus {
                failed,
                start_time: Some(ago(100)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn attempt_of_attempts_and_the_next_pod_time() {
        let s = |n: i64| Some(ago(-n));
        struct Row {
            name: &'static str,
            job: Job,
            /// (exit code, finished seconds ago); `None`: running
            pods: Vec<Option<(i32, i64)>>,
            want: Option<(i32, i64, Option<Timestamp>)>,
            /// The pods still carry the tracking finalizer: not yet in the status.
            uncounted: bool,
        }
        let mut suspended = job(1, 6, 1);
        suspended.spec.suspend = Some(true);
        let mut finished = job(1, 6, 1);
        finished.status.as_mut().unwrap().conditions = vec![JobCondition {
            type_: JobConditionType::FailureTarget,
            status: "True".into(),
            last_probe_time: None,
            last_transition_time: Some(ago(1)),
            reason: "BackoffLimitExceeded".into(),
            message: String::new(),
        }];
        let rows = [
            Row {
                name: "first failure 3s ago: attempt 2 of 7 in 10-3 s",
                job: job(1, 6, 1),
                pods: vec![Some((1, 3))],
                want: Some((2, 7, s(7))),
                uncounted: false,
            },
            Row {
                name: "a failure not yet counted in the status counts",
                job: job(1, 6, 0),
                pods: vec![Some((1, 3))],
                want: Some((2, 7, s(7))),
                uncounted: true,
            },
            Row {
                name: "third consecutive failure: 40 s after the last",
                job: job(1, 3, 3),
                pods: vec![Some((1, 100)), Some((1, 50)), Some((1, 5))],
                want: Some((4, 4, s(35))),
                uncounted: false,
            },
            Row {
                name: "backoff over: the pod is created now, nothing pending",
                job: job(1, 6, 1),
                pods: vec![Some((1, 30))],
                want: None,
                uncounted: false,
            },
            Row {
                name: "no failure",
                job: job(1, 6, 0),
                pods: vec![None],
                want: None,
                uncounted: false,
            },
            Row {
                name: "every slot is taken by a running pod: no pod waits",
                job: job(1, 6, 1),
                pods: vec![Some((1, 3)), None],
                want: None,
                uncounted: false,
            },
            Row {
                name: "parallelism 2 but completions 1, one running: no second pod is wanted",
                job: job(2, 6, 1),
                pods: vec![Some((1, 3)), None],
                want: None,
                uncounted: false,
            },
            Row {
                name: "suspended",
                job: suspended,
                pods: vec![Some((1, 3))],
                want: None,
                uncounted: false,
            },
            Row {
                name: "failing: no pod comes",
                job: finished,
                pods: vec![Some((1, 3))],
                want: None,
                uncounted: false,
            },
            Row {
                name: "backoffLimit passed by this failure: the Job fails, no next pod",
                job: job(1, 0, 1),
                pods: vec![Some((1, 3))],
                want: None,
                uncounted: false,
            },
        ];
        for row in rows {
            let pods: Vec<Pod> = row
                .pods
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut pod = pod(i, *p);
                    if row.uncounted {
                        pod.metadata
                            .finalizers
                            .push(crate::api::JOB_TRACKING_FINALIZER.into());
                    }
                    pod
                })
                .collect();
            let refs: Vec<&Pod> = pods.iter().collect();
            let got = pending(&row.job, &refs, now(), CFG)
                .map(|p| (p.attempt, p.attempts, Some(p.next_pod_at)));
            assert_eq!(got, row.want, "{}", row.name);
        }
    }

    #[test]
    fn work_queue_with_parallelism_waits_for_the_failed_slot() {
        let mut j = job(2, 6, 1);
        j.spec.completions = None;
        let pods = [pod(0, Some((1, 3))), pod(1, None)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let got = pending(&j, &refs, now(), CFG).unwrap();
        assert_eq!((got.attempt, got.attempts), (2, 7));
        assert_eq!(got.next_pod_at, ago(-7));
    }
    /// An Indexed pod of `index` that failed `secs` ago with `behind` counted failures of
    /// its index before it, still tracked (the controller holds it until its replacement).
    fn index_pod(i: usize, index: i32, behind: i32, secs: i64) -> Pod {
        let mut p = pod(i, Some((1, secs)));
        let a = &mut p.metadata.annotations;
        a.insert(crate::api::JOB_COMPLETION_INDEX.into(), index.to_string());
        a.insert(
            crate::api::JOB_INDEX_FAILURE_COUNT.into(),
            behind.to_string(),
        );
        p.metadata
            .finalizers
            .push(crate::api::JOB_TRACKING_FINALIZER.into());
        p
    }

    /// With backoffLimitPerIndex each index waits out its own delay (`base·2^(k−1)`, k its
    /// own failures) and the Job's backoffLimit defaults to 2147483647: the line names the
    /// index and its attempt of `backoffLimitPerIndex + 1`, at the time the controller
    /// creates that index's pod, never the Job-wide delay or `backoffLimit + 1`.
    #[test]
    fn backoff_limit_per_index_waits_per_index() {
        let mut j = job(3, i32::MAX, 0);
        j.spec.completions = Some(3);
        j.spec.completion_mode = Some("Indexed".into());
        j.spec.backoff_limit_per_index = Some(3);
        // Three indexes failed once each, 3 s ago: Job-wide that would be 40 s after the
        // last; per index it is 10 s after each, and index 2 failed a second time (20 s).
        let pods = [
            index_pod(0, 0, 0, 3),
            index_pod(1, 1, 0, 2),
            index_pod(2, 2, 1, 1),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let got = pending(&j, &refs, now(), CFG).unwrap();
        assert_eq!(
            (got.index, got.attempt, got.attempts, got.next_pod_at),
            (Some(0), 2, 4, ago(-7))
        );
        // The controller creates index 0's pod exactly then.
        let at = |t: Timestamp| job::sync(&j, &refs, t, CFG).indexes;
        assert!(at(ago(-6)).is_empty());
        assert_eq!(at(ago(-7)).iter().map(|n| n.index).collect::<Vec<_>>(), [0]);
    }

    /// A Job whose backoffLimit is the largest int32 has 2^31 attempts, not a wrapped count.
    #[test]
    fn the_largest_backoff_limit_does_not_overflow() {
        let pods = [pod(0, Some((1, 3)))];
        let refs: Vec<&Pod> = pods.iter().collect();
        let got = pending(&job(1, i32::MAX, 1), &refs, now(), CFG).unwrap();
        assert_eq!((got.index, got.attempts), (None, 2_147_483_648));
    }
}
