//! Pure controllers: decisions over state and an injected `now`, never I/O.
//!
//! [`job`] is Kubernetes' Job controller (`pkg/controller/job/job_controller.go`); [`pod`] is the
//! part of the kubelet that decides container starts, restarts and pod phase. Both are
//! level-triggered: they look at the whole current state and say what should happen next,
//! so after a crash they simply converge again. [`backoff`] holds the two exponential delays.
//! [`job_indexed`] is the Indexed completion mode with per-index backoff, [`success_policy`]
//! an Indexed Job's `successPolicy`; [`job_pod`] builds the pod a Job creates from its template; [`disruption`] ends pods the
//! node ends (shutdown, recovery after a crash); [`events`] tells a repeated event from a new
//! one; [`job_update`] says whether an edited manifest updates its Job in place or replaces it;
//! [`retention`] says which logs of deleted pods go; [`ttl`] says when a finished Job's
//! `ttlSecondsAfterFinished` deletes it; [`job_backoff`] says whether a pod waits out the
//! pod-failure backoff (for `describe job`); [`pod_failure_policy`] gives each failed pod its
//! verdict under the Job's `podFailurePolicy`.
//! This module must not use tokio, `std::fs` or `std::process` (CI checks it).

pub mod backoff;
pub mod cronjob;
pub mod disruption;
pub mod events;
pub mod job;
pub mod job_backoff;
pub mod job_indexed;
pub mod job_pod;
pub mod job_update;
pub mod pod;
pub mod pod_failure_policy;
pub mod retention;
pub mod success_policy;
pub mod ttl;

use jiff::Timestamp;

use crate::api::EventType;

/// A Kubernetes event the controller wants recorded (the daemon fills in object refs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub type_: EventType,
    pub reason: String,
    pub message: String,
}

impl EventSpec {
    pub fn normal(reason: &str, message: impl Into<String>) -> Self {
        EventSpec {
            type_: EventType::Normal,
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn warning(reason: &str, message: impl Into<String>) -> Self {
        EventSpec {
            type_: EventType::Warning,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// `b - a` as a std Duration, zero when `b` is not after `a`.
pub fn elapsed(a: Timestamp, b: Timestamp) -> std::time::Duration {
    std::time::Duration::try_from(b.duration_since(a)).unwrap_or_default()
}

/// `t + d`, saturating at the far end of time instead of failing.
pub fn add(t: Timestamp, d: std::time::Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}
