//! `batch/v1` `spec.podFailurePolicy`: rules that decide what a failed pod means for its Job
//! (`k8s.io/api/batch/v1/types.go`, `PodFailurePolicy*`). Plain data; the matcher is
//! `controller::pod_failure_policy`, the rules' checks `manifest::validate`.
//!
//! Kubernetes' string fields whose values the controller acts on (`action`, `operator`) are
//! enums keeping an unknown value as written, so that validation can name it; `values` keeps
//! the difference between absent and empty, which validation reports differently.

use serde::{Deserialize, Serialize};

use super::PodConditionType;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodFailurePolicy {
    #[serde(default)]
    pub rules: Vec<PodFailurePolicyRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodFailurePolicyRule {
    #[serde(default)]
    pub action: PodFailurePolicyAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit_codes: Option<PodFailurePolicyOnExitCodesRequirement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_pod_conditions: Vec<PodFailurePolicyOnPodConditionsPattern>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodFailurePolicyOnExitCodesRequirement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default)]
    pub operator: PodFailurePolicyOnExitCodesOperator,
    /// `None` when the manifest has no `values` (validation says `null`), else as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<i32>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodFailurePolicyOnPodConditionsPattern {
    #[serde(rename = "type", default = "no_condition_type")]
    pub type_: PodConditionType,
    /// `True`, `False` or `Unknown`; defaulted to `True` (`SetDefaults_Job`).
    #[serde(default)]
    pub status: String,
}

fn no_condition_type() -> PodConditionType {
    PodConditionType::Other(String::new())
}

string_enum!(
    /// What a matching rule does with the failed pod.
    PodFailurePolicyAction {
        FailJob,
        FailIndex,
        Ignore,
        Count,
    }
);

impl Default for PodFailurePolicyAction {
    /// Absent: validation reports it as required.
    fn default() -> Self {
        PodFailurePolicyAction::Other(String::new())
    }
}

string_enum!(
    /// How `onExitCodes.values` is compared with a container's exit code.
    PodFailurePolicyOnExitCodesOperator {
        In,
        NotIn,
    }
);

impl Default for PodFailurePolicyOnExitCodesOperator {
    /// Absent: validation reports it as required.
    fn default() -> Self {
        PodFailurePolicyOnExitCodesOperator::Other(String::new())
    }
}
