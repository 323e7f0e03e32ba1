//! What a failed pod means for its Job under `spec.podFailurePolicy`, after Kubernetes'
//! `pkg/controller/job/pod_failure_policy.go` (`matchPodFailurePolicy`).
//!
//! Every failed pod gets one [`FailureVerdict`], decided here and nowhere else: the Job
//! controller counts it or not, fails the Job, or (with `backoffLimitPerIndex`) fails its
//! index. Rules are tried in order and the first that matches decides; none matching is the
//! default handling, the same as `Count`. A rule with an action or operator validation would
//! refuse never matches, as in Kubernetes.
//!
//! `onExitCodes` looks at containers that have terminated with a non-zero code (regular
//! containers, then init containers once jobvisor runs them); `onPodConditions` at the pod's
//! conditions, such as the `DisruptionTarget=True` that a pod interrupted by a daemon stop
//! or crash carries (`disruption.rs`), as a node shutdown gives it in Kubernetes.

use crate::api::{
    ContainerStatus, Pod, PodCondition, PodFailurePolicy, PodFailurePolicyAction,
    PodFailurePolicyOnExitCodesOperator, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern,
};

/// The Job condition reason (and event reason) of a `FailJob` match.
pub const REASON: &str = "PodFailurePolicy";

/// What one failed pod means for its Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureVerdict {
    /// Counted in `status.failed` and against `backoffLimit`: a `Count` rule, or no rule.
    Count,
    /// Not counted anywhere; the pod is replaced (after the pod-failure backoff, which
    /// ignored failures lengthen, as in Kubernetes).
    Ignore,
    /// The Job fails: `FailureTarget`, then `Failed`, with reason [`REASON`] and this message.
    /// The pod is counted.
    FailJob { message: String },
    /// The pod's index fails (`backoffLimitPerIndex`); the pod is counted.
    FailIndex,
}

impl FailureVerdict {
    /// Whether the failure goes into `status.failed` (and `backoffLimit`).
    pub fn counts(&self) -> bool {
        !matches!(self, FailureVerdict::Ignore)
    }
}

/// The verdict on a failed pod: the first matching rule's, else [`FailureVerdict::Count`].
pub fn classify(policy: Option<&PodFailurePolicy>, pod: &Pod) -> FailureVerdict {
    matching_rule(policy, pod).map_or(FailureVerdict::Count, |(_, v)| v)
}

/// `getFailJobMessage`: the message of the first of these failed pods that a `FailJob` rule
/// matches.
pub fn fail_job_message<'a>(
    policy: Option<&PodFailurePolicy>,
    failed: impl IntoIterator<Item = &'a Pod>,
) -> Option<String> {
    policy?;
    failed.into_iter().find_map(|p| match classify(policy, p) {
        FailureVerdict::FailJob { message } => Some(message),
        _ => None,
    })
}

/// The first rule that matches the pod, with its index and verdict.
pub fn matching_rule(
    policy: Option<&PodFailurePolicy>,
    pod: &Pod,
) -> Option<(usize, FailureVerdict)> {
    let pod_name = || format!("{}/{}", pod.metadata.namespace(), pod.metadata.name());
    policy?.rules.iter().enumerate().find_map(|(i, rule)| {
        // What matched, named for a FailJob message.
        let what = if let Some(req) = &rule.on_exit_codes {
            let c = matching_container(&pod.status.container_statuses, req)?;
            let code = c.state.terminated.as_ref().map_or(0, |t| t.exit_code);
            format!(
                "Container {} for pod {} failed with exit code {code}",
                c.name,
                pod_name()
            )
        } else {
            let cond = matching_condition(&pod.status.conditions, &rule.on_pod_conditions)?;
            format!("Pod {} has condition {}", pod_name(), cond.type_)
        };
        let verdict = match &rule.action {
            PodFailurePolicyAction::Ignore => FailureVerdict::Ignore,
            PodFailurePolicyAction::Count => FailureVerdict::Count,
            PodFailurePolicyAction::FailIndex => FailureVerdict::FailIndex,
            PodFailurePolicyAction::FailJob => FailureVerdict::FailJob {
                message: format!("{what} matching FailJob rule at index {i}"),
            },
            // Refused by validation; Kubernetes skips such a rule.
            PodFailurePolicyAction::Other(_) => return None,
        };
        Some((i, verdict))
    })
}

/// `getMatchingContainerFromList`: the first container (of `containerName`, if given) that
/// terminated with a non-zero code the operator accepts.
fn matching_container<'a>(
    statuses: &'a [ContainerStatus],
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|c| {
        let Some(t) = &c.state.terminated else {
            return false; // still running: no exit code to match yet
        };
        req.container_name.as_ref().is_none_or(|n| *n == c.name)
            && t.exit_code != 0
            && exit_code_matches(t.exit_code, req)
    })
}

fn exit_code_matches(code: i32, req: &PodFailurePolicyOnExitCodesRequirement) -> bool {
    let listed = req.values.as_deref().unwrap_or(&[]).contains(&code);
    match req.operator {
        PodFailurePolicyOnExitCodesOperator::In => listed,
        PodFailurePolicyOnExitCodesOperator::NotIn => !listed,
        PodFailurePolicyOnExitCodesOperator::Other(_) => false,
    }
}

/// `matchOnPodConditions`: the first of the pod's conditions (in the pod's order) that some
/// pattern names with the same status.
fn matching_condition<'a>(
    conditions: &'a [PodCondition],
    patterns: &[PodFailurePolicyOnPodConditionsPattern],
) -> Option<&'a PodCondition> {
    conditions.iter().find(|c| {
        patterns
            .iter()
            .any(|p| p.type_ == c.type_ && p.status == c.status)
    })
}

#[cfg(test)]
#[path = "pod_failure_policy_tests.rs"]
mod tests;
