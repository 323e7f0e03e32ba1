//! The pod a Job's controller creates from its template, as it stands once the API server,
//! the scheduler and the kubelet have each set their part: `manageJob` (labels, owner
//! reference, tracking finalizer, `generateName`), the API server (uid, creation time), the
//! scheduler (`nodeName`) and the kubelet (`Pending`, `startTime`, `hostIP`).
//!
//! The name and uid are the caller's to draw: choosing a free name needs the world.

use jiff::Timestamp;

use crate::api::{
    JOB_API_VERSION, JOB_TRACKING_FINALIZER, Job, LABEL_CONTROLLER_UID, LABEL_JOB_NAME,
    LABEL_LEGACY_CONTROLLER_UID, LABEL_LEGACY_JOB_NAME, ObjectMeta, OwnerReference,
    POD_API_VERSION, Pod, PodPhase, PodStatus,
};

/// Every pod runs on this host.
const HOST_IP: &str = "127.0.0.1";

/// A new pod of `job`, named `name` with uid `uid`, bound to `node_name`, created `now`.
pub fn pod_for_job(job: &Job, name: &str, uid: &str, node_name: &str, now: Timestamp) -> Pod {
    let meta = &job.metadata;
    let template = &job.spec.template;
    let mut labels = template.metadata.labels.clone();
    // Labels the template already has are kept: without manualSelector they are these values.
    for (label, value) in [
        (LABEL_CONTROLLER_UID, meta.uid()),
        (LABEL_JOB_NAME, meta.name()),
        (LABEL_LEGACY_CONTROLLER_UID, meta.uid()),
        (LABEL_LEGACY_JOB_NAME, meta.name()),
    ] {
        labels
            .entry(label.to_string())
            .or_insert_with(|| value.to_string());
    }
    let mut spec = template.spec.clone();
    spec.node_name = Some(node_name.to_string());
    Pod {
        api_version: POD_API_VERSION.into(),
        kind: "Pod".into(),
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            generate_name: Some(format!("{}-", meta.name())),
            namespace: Some(meta.namespace().into()),
            uid: Some(uid.to_string()),
            creation_timestamp: Some(now),
            labels,
            annotations: template.metadata.annotations.clone(),
            owner_references: vec![OwnerReference {
                api_version: JOB_API_VERSION.into(),
                kind: "Job".into(),
                name: meta.name().into(),
                uid: meta.uid().into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }],
            finalizers: vec![JOB_TRACKING_FINALIZER.into()],
            ..Default::default()
        },
        spec,
        status: PodStatus {
            phase: PodPhase::Pending,
            start_time: Some(now),
            host_ip: Some(HOST_IP.into()),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Container, Labels, PodSpec, PodTemplateSpec};

    fn now() -> Timestamp {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A Job as the daemon serves it: identity assigned, generated labels on the template.
    fn job() -> Job {
        Job {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("batch".into()),
                uid: Some("job-uid".into()),
                annotations: labels(&[("jobvisor.io/source", "/m/pi.yaml")]),
                labels: labels(&[("team", "math")]),
                ..Default::default()
            },
            spec: crate::api::JobSpec {
                template: PodTemplateSpec {
                    metadata: ObjectMeta {
                        labels: labels(&[
                            ("app", "pi"),
                            ("batch.kubernetes.io/controller-uid", "job-uid"),
                            ("batch.kubernetes.io/job-name", "pi"),
                            ("controller-uid", "job-uid"),
                            ("job-name", "pi"),
                        ]),
                        annotations: labels(&[("note", "from the template")]),
                        ..Default::default()
                    },
                    spec: PodSpec {
                        restart_policy: Some("Never".into()),
                        termination_grace_period_seconds: Some(30),
                        containers: vec![Container {
                            name: "main".into(),
                            image: Some("perl".into()),
                            command: Some(vec!["true".into()]),
                            ..Default::default()
                        }],
                        ..Default::default()
                    },
                },
                ..Default::default()
            },
            status: None,
        }
    }

    /// What Kubernetes holds for a pod of [`job`] once it is scheduled and seen by the kubelet.
    fn expected() -> Pod {
        let template = job().spec.template;
        Pod {
            api_version: "v1".into(),
            kind: "Pod".into(),
            metadata: ObjectMeta {
                name: Some("pi-x7k2p".into()),
                generate_name: Some("pi-".into()),
                namespace: Some("batch".into()),
                uid: Some("pod-uid".into()),
                creation_timestamp: Some(now()),
                labels: template.metadata.labels.clone(),
                annotations: labels(&[("note", "from the template")]),
                owner_references: vec![OwnerReference {
                    api_version: "batch/v1".into(),
                    kind: "Job".into(),
                    name: "pi".into(),
                    uid: "job-uid".into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }],
                finalizers: vec!["batch.kubernetes.io/job-tracking".into()],
                resource_version: None,
                generation: None,
                deletion_timestamp: None,
                deletion_grace_period_seconds: None,
            },
            spec: PodSpec {
                node_name: Some("host-a".into()),
                ..template.spec
            },
            status: PodStatus {
                phase: PodPhase::Pending,
                conditions: vec![],
                reason: None,
                message: None,
                host_ip: Some("127.0.0.1".into()),
                start_time: Some(now()),
                container_statuses: vec![],
            },
        }
    }

    #[test]
    fn the_pod_of_a_job() {
        type Change<T> = fn(&mut T);
        #[rustfmt::skip]
        let rows: Vec<(&str, Change<Job>, Change<Pod>)> = vec![
            ("every field of a served Job's pod", |_| {}, |_| {}),
            ("the Job's own labels and annotations stay on the Job",
             |j| {
                 j.metadata.labels.insert("only".into(), "job".into());
                 j.metadata.annotations.insert("only".into(), "job".into());
             },
             |_| {}),
            ("a template without the generated labels (manualSelector) still gets them, \
              which Kubernetes would not do",
             |j| {
                 j.spec.manual_selector = Some(true);
                 j.spec.template.metadata.labels = labels(&[("app", "pi")]);
             },
             |_| {}),
            ("labels the template sets itself are kept (manualSelector)",
             |j| {
                 j.spec.manual_selector = Some(true);
                 j.spec.template.metadata.labels.insert("job-name".into(), "mine".into());
             },
             |p| { p.metadata.labels.insert("job-name".into(), "mine".into()); }),
            ("the template's nodeName gives way to this host",
             |j| j.spec.template.spec.node_name = Some("elsewhere".into()),
             |_| {}),
            ("the template's spec is copied as it is",
             |j| j.spec.template.spec.termination_grace_period_seconds = Some(5),
             |p| p.spec.termination_grace_period_seconds = Some(5)),
            ("the template's annotations only",
             |j| j.spec.template.metadata.annotations.clear(),
             |p| p.metadata.annotations.clear()),
            ("generateName is the Job's name and a dash",
             |j| j.metadata.name = Some("a".repeat(63)),
             |p| {
                 p.metadata.generate_name = Some(format!("{}-", "a".repeat(63)));
                 p.metadata.owner_references[0].name = "a".repeat(63);
                 // Labels come from the template, which still names the Job "pi".
             }),
            ("a Job without a namespace is in default",
             |j| j.metadata.namespace = None,
             |p| p.metadata.namespace = Some("default".into())),
            ("a Job's status plays no part",
             |j| j.status = Some(crate::api::JobStatus { active: 3, ..Default::default() }),
             |_| {}),
        ];
        for (name, change_job, change_pod) in rows {
            let mut job = job();
            change_job(&mut job);
            let mut want = expected();
            change_pod(&mut want);
            let got = pod_for_job(&job, "pi-x7k2p", "pod-uid", "host-a", now());
            assert_eq!(got, want, "{name}");
        }
    }
}
