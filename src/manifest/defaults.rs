//! Defaulting: what the API server fills in on create before it validates
//! (`SetDefaults_Job`, core/v1 pod defaults, `PrepareForCreate`), so that a Job read from a
//! file looks like `kubectl get job -o yaml` shows it.
//!
//! Deliberately not defaulted: `restartPolicy` (Kubernetes defaults it to `Always`, which Job
//! validation then rejects, so a Job must spell it out), `manualSelector` (Kubernetes omits
//! it unless set), and the empty `securityContext: {}` / `resources: {}` that Kubernetes
//! shows, because jobvisor rejects or warns about those fields whenever they are present.

use crate::api::{
    ConcurrencyPolicy, Container, CronJob, Job, ObjectMeta, Pod, PodSpec, RestartPolicy,
};

const DEFAULT_BACKOFF_LIMIT: i32 = 6;
const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;

pub(crate) fn apply(job: &mut Job) {
    // PrepareForCreate: status is the server's, never the manifest's.
    job.status = None;
    clear_server_metadata(&mut job.metadata);
    if job.metadata.namespace.as_deref().unwrap_or("").is_empty() {
        job.metadata.namespace = Some("default".into());
    }

    let spec = &mut job.spec;
    match (spec.completions, spec.parallelism) {
        (None, None) => {
            spec.completions = Some(1);
            spec.parallelism = Some(1);
        }
        // Only parallelism: completions stays unset, which means a work queue.
        (None, Some(_)) => {}
        (Some(_), None) => spec.parallelism = Some(1),
        (Some(_), Some(_)) => {}
    }
    if spec.backoff_limit.is_none() {
        // With per-index limits the global limit must not get in the way.
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            DEFAULT_BACKOFF_LIMIT
        });
    }
    spec.completion_mode
        .get_or_insert_with(|| "NonIndexed".into());
    spec.suspend.get_or_insert(false);
    spec.pod_replacement_policy.get_or_insert_with(|| {
        if spec.pod_failure_policy.is_some() {
            "Failed".into()
        } else {
            "TerminatingOrFailed".into()
        }
    });

    // A pattern without a status matches the condition being True.
    for rule in spec
        .pod_failure_policy
        .iter_mut()
        .flat_map(|p| &mut p.rules)
    {
        for pattern in &mut rule.on_pod_conditions {
            if pattern.status.is_empty() {
                pattern.status = "True".into();
            }
        }
    }

    pod_spec(&mut spec.template.spec);
}

/// A bare Pod: the core/v1 defaults (`restartPolicy: Always` among them) and no status.
pub(crate) fn apply_pod(pod: &mut Pod) {
    pod.status = Default::default();
    clear_server_metadata(&mut pod.metadata);
    if pod.metadata.namespace.as_deref().unwrap_or("").is_empty() {
        pod.metadata.namespace = Some("default".into());
    }
    pod.spec.restart_policy.get_or_insert(RestartPolicy::Always);
    pod_spec(&mut pod.spec);
}

/// A CronJob (`SetDefaults_CronJob`): Allow, not suspended, history 3 and 1, and the pod
/// defaults inside its template. The Job-level defaults (`backoffLimit`…) are not the
/// CronJob's: each Job gets them when it is created ([`apply`]).
pub(crate) fn apply_cronjob(cj: &mut CronJob) {
    cj.status = None;
    clear_server_metadata(&mut cj.metadata);
    if cj.metadata.namespace.as_deref().unwrap_or("").is_empty() {
        cj.metadata.namespace = Some("default".into());
    }
    let s = &mut cj.spec;
    s.concurrency_policy.get_or_insert(ConcurrencyPolicy::Allow);
    s.suspend.get_or_insert(false);
    s.successful_jobs_history_limit.get_or_insert(3);
    s.failed_jobs_history_limit.get_or_insert(1);
    pod_spec(&mut s.job_template.spec.template.spec);
}

/// What the API server sets itself on create, whatever the request says (`BeforeCreate`,
/// `FillObjectMetaSystemFields`): a file that copies `kubectl get -o yaml` output carries
/// these, and an object must not be born deleted or with an old identity.
pub(crate) fn clear_server_metadata(meta: &mut ObjectMeta) {
    meta.uid = None;
    meta.resource_version = None;
    meta.generation = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
}

fn pod_spec(pod: &mut PodSpec) {
    pod.termination_grace_period_seconds
        .get_or_insert(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    pod.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    pod.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    for c in &mut pod.containers {
        container(c);
    }
}

fn container(c: &mut Container) {
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy
        .get_or_insert_with(|| "File".into());
    if c.image_pull_policy.is_none() {
        c.image_pull_policy = Some(image_pull_policy(c.image.as_deref().unwrap_or("")).into());
    }
}

/// `Always` for `:latest` or no tag, else `IfNotPresent` (as core/v1 `SetDefaults_Container`).
fn image_pull_policy(image: &str) -> &'static str {
    if image_tag(image) == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag as the Docker reference parser sees it: `latest` when neither tag nor digest is
/// given; `None` for a digest reference or an empty image (Kubernetes then gets no tag).
fn image_tag(image: &str) -> Option<&str> {
    if image.is_empty() || image.contains('@') {
        return None;
    }
    // A colon before the last '/' belongs to a registry port (`host:5000/app`), not a tag.
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => Some(tag),
        None => Some("latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_follows_the_tag() {
        let cases = [
            ("busybox", "Always"),
            ("busybox:latest", "Always"),
            ("busybox:1.36", "IfNotPresent"),
            ("registry.local:5000/tools/busybox", "Always"),
            ("registry.local:5000/tools/busybox:1.36", "IfNotPresent"),
            ("busybox@sha256:0123", "IfNotPresent"),
            ("", "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(image_pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn completions_and_parallelism() {
        // (completions, parallelism) in → out
        let cases = [
            ((None, None), (Some(1), Some(1))),
            ((None, Some(3)), (None, Some(3))),
            ((Some(4), None), (Some(4), Some(1))),
            ((Some(4), Some(2)), (Some(4), Some(2))),
            ((Some(0), None), (Some(0), Some(1))),
        ];
        for ((c, p), want) in cases {
            let mut job = Job::default();
            job.spec.completions = c;
            job.spec.parallelism = p;
            apply(&mut job);
            assert_eq!(
                (job.spec.completions, job.spec.parallelism),
                want,
                "{c:?} {p:?}"
            );
        }
    }

    #[test]
    fn the_rest_of_the_defaults() {
        let mut job = Job::default();
        job.spec.template.spec.containers.push(Container {
            name: "c".into(),
            image: Some("busybox:1.36".into()),
            ..Container::default()
        });
        apply(&mut job);
        assert_eq!(job.metadata.namespace.as_deref(), Some("default"));
        let s = &job.spec;
        assert_eq!(s.backoff_limit, Some(6));
        assert_eq!(s.completion_mode.as_deref(), Some("NonIndexed"));
        assert_eq!(s.suspend, Some(false));
        assert_eq!(s.manual_selector, None);
        assert_eq!(
            s.pod_replacement_policy.as_deref(),
            Some("TerminatingOrFailed")
        );
        let p = &s.template.spec;
        assert_eq!(p.restart_policy, None);
        assert_eq!(p.termination_grace_period_seconds, Some(30));
        assert_eq!(p.dns_policy.as_deref(), Some("ClusterFirst"));
        assert_eq!(p.scheduler_name.as_deref(), Some("default-scheduler"));
        let c = &p.containers[0];
        assert_eq!(
            c.termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
        assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    }

    #[test]
    fn set_values_are_kept() {
        let mut job = Job::default();
        job.metadata.namespace = Some("batch".into());
        job.spec.backoff_limit = Some(0);
        job.spec.template.spec.termination_grace_period_seconds = Some(1);
        apply(&mut job);
        assert_eq!(job.metadata.namespace.as_deref(), Some("batch"));
        assert_eq!(job.spec.backoff_limit, Some(0));
        assert_eq!(
            job.spec.template.spec.termination_grace_period_seconds,
            Some(1)
        );
    }

    #[test]
    fn per_index_and_failure_policy_variants() {
        let mut job = Job::default();
        job.spec.backoff_limit_per_index = Some(1);
        job.spec.pod_failure_policy = Some(crate::api::PodFailurePolicy::default());
        apply(&mut job);
        assert_eq!(job.spec.backoff_limit, Some(i32::MAX));
        assert_eq!(job.spec.pod_replacement_policy.as_deref(), Some("Failed"));
    }

    /// `onPodConditions[].status` defaults to True; a status given is kept.
    #[test]
    fn pod_condition_patterns_default_to_true() {
        let mut job: Job = serde_json::from_value(serde_json::json!({
            "spec": {"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [
                {"type": "DisruptionTarget"}, {"type": "Ready", "status": "False"}]}]}}
        }))
        .expect("a Job");
        apply(&mut job);
        let rules = &job.spec.pod_failure_policy.expect("the policy").rules;
        let statuses: Vec<&str> = rules[0]
            .on_pod_conditions
            .iter()
            .map(|p| p.status.as_str())
            .collect();
        assert_eq!(statuses, ["True", "False"]);
    }
}
