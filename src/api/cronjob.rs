//! `batch/v1` CronJob: a Job template and the schedule it is created on.
//! Fields and defaults as `k8s.io/api/batch/v1/types.go` and `pkg/apis/batch/v1/defaults.go`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{JobSpec, ObjectMeta, ObjectReference};

pub const CRONJOB_API_VERSION: &str = "batch/v1";

/// On each Job a CronJob creates: the slot it was created for, RFC 3339 in the CronJob's
/// `timeZone` (UTC when unset). KEP-4026.
pub const ANNOTATION_SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Set by `kubectl create job --from=cronjob/NAME` (a client feature, not the controller).
pub const ANNOTATION_INSTANTIATE: &str = "cronjob.kubernetes.io/instantiate";

string_enum!(
    /// `spec.concurrencyPolicy`.
    ConcurrencyPolicy {
        Allow,
        Forbid,
        Replace,
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronJob {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: CronJobSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CronJobStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronJobSpec {
    #[serde(default)]
    pub schedule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    #[serde(default)]
    pub job_template: JobTemplateSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_jobs_history_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_jobs_history_limit: Option<i32>,
}

impl CronJobSpec {
    /// The policy after defaulting (`Allow` when unset).
    pub fn concurrency(&self) -> ConcurrencyPolicy {
        self.concurrency_policy
            .clone()
            .unwrap_or(ConcurrencyPolicy::Allow)
    }
    pub fn suspended(&self) -> bool {
        self.suspend == Some(true)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobTemplateSpec {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: JobSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronJobStatus {
    /// The Jobs this CronJob created and has not yet seen finish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<ObjectReference>,
    /// The scheduled time (not the creation time) of the newest Job created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Timestamp>,
    /// The latest `completionTime` of a Job of this CronJob that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Timestamp>,
}
