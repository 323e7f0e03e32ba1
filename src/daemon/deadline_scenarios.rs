//! Pod-level `activeDeadlineSeconds` carried out: the pod's containers are killed when it
//! passes, the pod ends `Failed` with reason `DeadlineExceeded`, and a Job counts it against
//! `backoffLimit`.

use std::time::Duration;

use super::testing::{Call, Harness, job};
use crate::api::{JobConditionType, Pod};
use crate::config::Config;
use crate::controller::pod::{DEADLINE_EXCEEDED, DEADLINE_EXCEEDED_MESSAGE};

fn pods(h: &Harness) -> Vec<Pod> {
    let mut pods: Vec<Pod> = h
        .daemon
        .world
        .all_pods()
        .into_iter()
        .map(|r| r.pod)
        .collect();
    pods.sort_by_key(|p| p.metadata.creation_timestamp);
    pods
}

fn the_live_pod(h: &Harness) -> Pod {
    let live: Vec<Pod> = pods(h)
        .into_iter()
        .filter(|p| !p.status.phase.is_terminal())
        .collect();
    assert_eq!(live.len(), 1, "{live:#?}");
    live[0].clone()
}

fn assert_deadline_exceeded(p: &Pod) {
    let st = &p.status;
    assert_eq!(st.phase.as_str(), "Failed", "{st:#?}");
    assert_eq!(st.reason.as_deref(), Some(DEADLINE_EXCEEDED));
    assert_eq!(st.message.as_deref(), Some(DEADLINE_EXCEEDED_MESSAGE));
    let cs = st.container_statuses[0].state.terminated.as_ref();
    assert_eq!(cs.map(|t| t.exit_code), Some(143), "{st:#?}");
}

fn pod_events(h: &Harness, pod: &str) -> Vec<String> {
    h.daemon
        .world
        .all_events()
        .iter()
        .filter(|e| e.involved_object.name == pod)
        .map(|e| e.reason.clone())
        .collect()
}

#[test]
fn a_job_pod_past_its_deadline_is_killed_and_counts_against_backoff_limit() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = job("j", "Never", "sleep", "  backoffLimit: 1\n").replace(
        "      restartPolicy: Never\n",
        "      restartPolicy: Never\n      activeDeadlineSeconds: 5\n",
    );
    h.apply("j.yaml", &text);
    let first = the_live_pod(&h);
    let name = first.metadata.name().to_string();

    h.advance(4);
    assert!(h.pod_timer_fires(&name), "no deadline timer armed");
    assert_eq!(pods(&h)[0].status.phase.as_str(), "Running");
    h.advance(1);
    assert!(h.pod_timer_fires(&name), "no deadline timer armed again");
    let stop = Call::StopPod {
        pod_uid: first.metadata.uid().to_string(),
        grace: Duration::from_secs(30),
    };
    assert!(h.runtime.calls().contains(&stop), "{:?}", h.runtime.calls());
    let ended = pods(&h)
        .into_iter()
        .find(|p| p.metadata.name() == name)
        .expect("the first pod");
    assert_deadline_exceeded(&ended);
    let events = pod_events(&h, &name);
    assert!(
        events.contains(&"DeadlineExceeded".to_string()),
        "{events:?}"
    );
    assert!(events.contains(&"Killing".to_string()), "{events:?}");
    assert!(
        h.daemon
            .world
            .all_events()
            .iter()
            .any(|e| e.involved_object.name == name
                && e.reason == "Killing"
                && e.message == "Stopping container main"),
        "the kubelet's Killing message"
    );
    let job = h.daemon.world.all_jobs().remove(0).job;
    assert_eq!(job.status.as_ref().map(|s| s.failed), Some(1));

    // The replacement (after the pod-failure backoff) fails the same way: past backoffLimit.
    h.advance(10);
    assert!(h.job_timer_fires("j"), "no backoff timer armed");
    let second = the_live_pod(&h).metadata.name().to_string();
    h.advance(5);
    assert!(h.pod_timer_fires(&second));
    let job = h.daemon.world.all_jobs().remove(0).job;
    let status = job.status.unwrap_or_default();
    assert_eq!(status.failed, 2);
    let failed = status
        .condition(JobConditionType::Failed)
        .map(|c| c.reason.clone());
    assert_eq!(
        failed.as_deref(),
        Some("BackoffLimitExceeded"),
        "{status:#?}"
    );
}

/// A bare Pod with restartPolicy Always is not restarted once past its deadline.
#[test]
fn a_bare_pod_past_its_deadline_ends_failed_and_is_not_restarted() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "p.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  restartPolicy: Always\n  activeDeadlineSeconds: 3\n  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\"]\n",
    );
    h.advance(3);
    assert!(h.pod_timer_fires("p"));
    let p = pods(&h).remove(0);
    assert_deadline_exceeded(&p);
    assert_eq!(h.runtime.starts(), [("p".into(), 0)]);
}
