//! What an edited manifest does to the Job it defines: nothing, an update in place, or a new
//! Job. Kubernetes refuses an update that changes an immutable field
//! (`ValidateJobSpecUpdate` in `pkg/apis/batch/validation/validation.go`); a file cannot be
//! refused, so jobvisor replaces the Job instead (see docs/divergences.md).

use crate::api::{Job, JobSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobUpdate {
    /// The file says what it said before.
    Same,
    /// Only fields Kubernetes lets an update change: applied to the running Job.
    InPlace,
    /// `field` is immutable and changed: the Job is deleted and created anew.
    Recreate { field: &'static str },
}

/// Compares two defaulted Jobs as read from their file (before identity is assigned).
pub fn classify(old: &Job, new: &Job) -> JobUpdate {
    if old == new {
        return JobUpdate::Same;
    }
    // Every field is named, so a new one does not compile until it is given a side.
    let JobSpec {
        template,
        completions,
        completion_mode,
        selector,
        manual_selector,
        pod_failure_policy,
        success_policy,
        backoff_limit_per_index,
        managed_by,
        // Mutable in Kubernetes.
        parallelism: _,
        active_deadline_seconds: _,
        backoff_limit: _,
        max_failed_indexes: _,
        ttl_seconds_after_finished: _,
        suspend: _,
        pod_replacement_policy: _,
    } = &old.spec;
    let n = &new.spec;
    let immutable = [
        // Kubernetes lets the template's scheduling directives change while a Job is
        // suspended and has never started; here any template change recreates the Job, which
        // for such a Job (no pods yet) comes to the same.
        ("spec.template", *template == n.template),
        // Elastic Indexed Jobs (`validateCompletions`): an Indexed Job may change
        // completions to a number equal to its new parallelism; the controller then removes
        // the pods of the indexes past the new end, or runs the new ones.
        (
            "spec.completions",
            *completions == n.completions || elastic(new),
        ),
        ("spec.completionMode", *completion_mode == n.completion_mode),
        ("spec.selector", *selector == n.selector),
        // Not checked by Kubernetes itself, but it decides whether the selector and the
        // template's labels are generated from the uid, which a file cannot name: a change
        // always changes the selector the Job is served with.
        (
            "spec.manualSelector",
            is_true(*manual_selector) == is_true(n.manual_selector),
        ),
        (
            "spec.podFailurePolicy",
            *pod_failure_policy == n.pod_failure_policy,
        ),
        ("spec.successPolicy", *success_policy == n.success_policy),
        (
            "spec.backoffLimitPerIndex",
            *backoff_limit_per_index == n.backoff_limit_per_index,
        ),
        ("spec.managedBy", *managed_by == n.managed_by),
    ];
    match immutable.into_iter().find(|(_, same)| !same) {
        Some((field, _)) => JobUpdate::Recreate { field },
        None => JobUpdate::InPlace,
    }
}

/// An Indexed Job whose completions are set and equal to its parallelism.
fn elastic(job: &Job) -> bool {
    let s = &job.spec;
    s.completion_mode.as_deref() == Some("Indexed")
        && s.completions.is_some()
        && s.completions == s.parallelism
}

/// `manualSelector` unset is `false`: Kubernetes does not default it.
fn is_true(flag: Option<bool>) -> bool {
    flag == Some(true)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::api::{Container, LabelSelector, PodSpec, PodTemplateSpec};

    /// A Job as defaulting leaves it.
    fn job() -> Job {
        Job {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            metadata: crate::api::ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: JobSpec {
                parallelism: Some(1),
                completions: Some(1),
                backoff_limit: Some(6),
                completion_mode: Some("NonIndexed".into()),
                suspend: Some(false),
                pod_replacement_policy: Some("TerminatingOrFailed".into()),
                template: PodTemplateSpec {
                    spec: PodSpec {
                        restart_policy: Some("Never".into()),
                        containers: vec![Container {
                            name: "main".into(),
                            image: Some("busybox".into()),
                            command: Some(vec!["true".into()]),
                            ..Default::default()
                        }],
                        ..Default::default()
                    },
                    ..Default::default()
                },
                ..Default::default()
            },
            status: None,
        }
    }

    const IN_PLACE: JobUpdate = JobUpdate::InPlace;
    const fn recreate(field: &'static str) -> JobUpdate {
        JobUpdate::Recreate { field }
    }

    /// What changes in the file, how, and what that does.
    type Row = (&'static str, fn(&mut Job), JobUpdate);

    /// One row per field of `JobSpec`, and the metadata a file can change.
    #[test]
    fn which_changes_recreate_the_job() {
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("nothing", |_| {}, JobUpdate::Same),
            // ---- mutable in Kubernetes
            ("parallelism", |j| j.spec.parallelism = Some(3), IN_PLACE),
            ("activeDeadlineSeconds", |j| j.spec.active_deadline_seconds = Some(60), IN_PLACE),
            ("backoffLimit", |j| j.spec.backoff_limit = Some(0), IN_PLACE),
            ("maxFailedIndexes", |j| j.spec.max_failed_indexes = Some(2), IN_PLACE),
            ("ttlSecondsAfterFinished", |j| j.spec.ttl_seconds_after_finished = Some(100), IN_PLACE),
            ("suspend", |j| j.spec.suspend = Some(true), IN_PLACE),
            ("podReplacementPolicy", |j| j.spec.pod_replacement_policy = Some("Failed".into()), IN_PLACE),
            ("manualSelector false is its absence", |j| j.spec.manual_selector = Some(false), IN_PLACE),
            ("metadata.labels", |j| { j.metadata.labels.insert("team".into(), "math".into()); }, IN_PLACE),
            ("metadata.annotations", |j| { j.metadata.annotations.insert("note".into(), "x".into()); }, IN_PLACE),
            // ---- immutable
            ("template: the command",
             |j| j.spec.template.spec.containers[0].command = Some(vec!["false".into()]),
             recreate("spec.template")),
            ("template: its labels",
             |j| { j.spec.template.metadata.labels.insert("app".into(), "pi".into()); },
             recreate("spec.template")),
            ("completions", |j| j.spec.completions = Some(2), recreate("spec.completions")),
            ("completions with parallelism equal to it (elastic only when Indexed)",
             |j| { j.spec.completions = Some(4); j.spec.parallelism = Some(4); },
             recreate("spec.completions")),
            ("completions unset: a work queue", |j| j.spec.completions = None, recreate("spec.completions")),
            ("completionMode", |j| j.spec.completion_mode = Some("Indexed".into()), recreate("spec.completionMode")),
            ("selector",
             |j| j.spec.selector = Some(LabelSelector {
                 match_labels: [("app".to_string(), "pi".to_string())].into(),
                 ..Default::default()
             }),
             recreate("spec.selector")),
            ("manualSelector", |j| j.spec.manual_selector = Some(true), recreate("spec.manualSelector")),
            ("podFailurePolicy", |j| j.spec.pod_failure_policy = Some(Default::default()), recreate("spec.podFailurePolicy")),
            ("successPolicy", |j| j.spec.success_policy = Some(Default::default()), recreate("spec.successPolicy")),
            ("backoffLimitPerIndex", |j| j.spec.backoff_limit_per_index = Some(1), recreate("spec.backoffLimitPerIndex")),
            ("managedBy", |j| j.spec.managed_by = Some("example.com/other".into()), recreate("spec.managedBy")),
            // ---- both
            ("an immutable field wins over mutable ones",
             |j| { j.spec.parallelism = Some(3); j.spec.completions = Some(3); },
             recreate("spec.completions")),
        ];
        for (name, change, want) in rows {
            let mut new = job();
            change(&mut new);
            assert_eq!(classify(&job(), &new), want, "{name}");
            // The other way round decides the same.
            assert_eq!(classify(&new, &job()), want, "{name}, reversed");
        }
    }

    /// Elastic Indexed Jobs (`validateCompletions`, `TestValidateJobUpdate` "elastic" cases):
    /// (change from an Indexed Job with completions = parallelism = 3, outcome).
    #[test]
    fn an_indexed_job_scales_completions_with_parallelism() {
        let indexed = || {
            let mut j = job();
            j.spec.completion_mode = Some("Indexed".into());
            j.spec.completions = Some(3);
            j.spec.parallelism = Some(3);
            j
        };
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("scaled up in tandem", |j| { j.spec.completions = Some(5); j.spec.parallelism = Some(5); }, IN_PLACE),
            ("scaled down in tandem", |j| { j.spec.completions = Some(1); j.spec.parallelism = Some(1); }, IN_PLACE),
            ("to zero in tandem", |j| { j.spec.completions = Some(0); j.spec.parallelism = Some(0); }, IN_PLACE),
            ("completions alone", |j| j.spec.completions = Some(5), recreate("spec.completions")),
            ("completions unequal to the new parallelism",
             |j| { j.spec.completions = Some(5); j.spec.parallelism = Some(4); },
             recreate("spec.completions")),
            ("parallelism alone", |j| j.spec.parallelism = Some(1), IN_PLACE),
        ];
        for (name, change, want) in rows {
            let mut new = indexed();
            change(&mut new);
            assert_eq!(classify(&indexed(), &new), want, "{name}");
        }
    }
}
