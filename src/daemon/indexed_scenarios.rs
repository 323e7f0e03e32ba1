//! An Indexed Job carried out end to end on a fake clock: one pod per index named
//! `<job>-<index>-xxxxx`, the index in its annotation, label, hostname and environment, a
//! failed index retried after its own delay with its failure count handed on, and the Job
//! failing with `FailedIndexes` once every index is done, `completedIndexes` and
//! `failedIndexes` in Kubernetes' interval form.

use super::testing::{Harness, job};
use crate::api::{Job, JobConditionType, Pod};
use crate::config::Config;

fn the_job(h: &Harness) -> Job {
    let mut jobs = h.daemon.world.all_jobs().into_iter();
    let job = jobs.next().expect("a Job").job;
    assert!(jobs.next().is_none(), "one Job");
    job
}

fn index_of(p: &Pod) -> &str {
    p.metadata
        .annotations
        .get("batch.kubernetes.io/job-completion-index")
        .map(String::as_str)
        .unwrap_or("")
}

fn running_of(h: &Harness, index: &str) -> Pod {
    let pods: Vec<Pod> = h
        .pods()
        .into_iter()
        .filter(|p| index_of(p) == index && p.status.phase.as_str() == "Running")
        .collect();
    assert_eq!(pods.len(), 1, "one running pod of index {index}: {pods:#?}");
    pods.into_iter().next().expect("checked")
}

fn job_events(h: &Harness) -> Vec<String> {
    h.daemon
        .world
        .all_events()
        .iter()
        .filter(|e| e.involved_object.kind == "Job" && e.reason != "SuccessfulCreate")
        .map(|e| format!("{} {}: {}", e.type_, e.reason, e.message))
        .collect()
}

#[test]
fn an_indexed_job_with_a_failing_index() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let spec = "  completionMode: Indexed\n  completions: 3\n  parallelism: 3\n  backoffLimitPerIndex: 1\n";
    h.apply("idx.yaml", &job("idx", "Never", "work", spec));

    let pods = h.pods();
    assert_eq!(pods.len(), 3, "{pods:#?}");
    for i in ["0", "1", "2"] {
        let p = running_of(&h, i);
        let name = p.metadata.name();
        assert!(
            name.starts_with(&format!("idx-{i}-")) && name.len() == 11,
            "{name}"
        );
        assert_eq!(
            p.metadata.generate_name.as_deref(),
            Some(&*format!("idx-{i}-"))
        );
        assert_eq!(
            p.metadata
                .labels
                .get("batch.kubernetes.io/job-completion-index")
                .map(String::as_str),
            Some(i)
        );
        assert_eq!(
            p.metadata
                .annotations
                .get("batch.kubernetes.io/job-index-failure-count")
                .map(String::as_str),
            Some("0")
        );
        assert_eq!(p.spec.hostname.as_deref(), Some(&*format!("idx-{i}")));
    }
    let status = the_job(&h).status.unwrap_or_default();
    assert_eq!(
        (status.active, status.failed_indexes.as_deref()),
        (3, Some(""))
    );

    let uid = |p: Pod| p.metadata.uid().to_string();
    let first_two = running_of(&h, "2");
    h.runtime.exit(&uid(running_of(&h, "0")), "main", 0);
    h.runtime.exit(&uid(running_of(&h, "1")), "main", 0);
    h.runtime.exit(&uid(first_two.clone()), "main", 1);
    h.run();
    let status = the_job(&h).status.unwrap_or_default();
    assert_eq!(status.completed_indexes, "0,1");
    assert_eq!(status.succeeded, 2);
    // Held (tracked, uncounted) until its replacement exists, 10 s after it failed.
    assert_eq!((status.failed, status.active), (0, 0), "{status:#?}");
    assert!(
        h.pods()
            .iter()
            .all(|p| index_of(p) != "2" || p.status.phase.as_str() == "Failed")
    );

    h.advance(10);
    assert!(h.job_timer_fires("idx"), "no per-index delay armed");
    let second = running_of(&h, "2");
    assert_ne!(second.metadata.uid(), first_two.metadata.uid());
    assert_eq!(
        second
            .metadata
            .annotations
            .get("batch.kubernetes.io/job-index-failure-count")
            .map(String::as_str),
        Some("1")
    );
    let status = the_job(&h).status.unwrap_or_default();
    assert_eq!((status.failed, status.active), (1, 1), "{status:#?}");

    // The second failure of index 2 is its backoffLimitPerIndex + 1-th: the index fails,
    // and with every index done so does the Job.
    h.runtime.exit(&uid(second), "main", 1);
    h.run();
    let done = the_job(&h);
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.completed_indexes, "0,1");
    assert_eq!(status.failed_indexes.as_deref(), Some("2"));
    assert_eq!((status.succeeded, status.failed, status.active), (2, 2, 0));
    let conditions: Vec<(&str, &str)> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        conditions,
        [
            ("FailureTarget", "FailedIndexes"),
            ("Failed", "FailedIndexes")
        ]
    );
    assert!(status.condition(JobConditionType::Failed).is_some());
    assert_eq!(crate::printers::job_status(&done), "Failed");
    assert_eq!(
        crate::printers::job_row(&done, crate::clock::Clock::now(&h.clock), false)[2],
        "2/3"
    );
    assert_eq!(
        job_events(&h),
        ["Warning FailedIndexes: Job has failed indexes"]
    );
    assert!(
        h.pods().iter().all(|p| p.metadata.finalizers.is_empty()),
        "{:#?}",
        h.pods()
    );
}

#[test]
fn a_success_policy_ends_the_other_indexes() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let spec = "  completionMode: Indexed\n  completions: 3\n  parallelism: 3\n  successPolicy:\n    rules:\n    - succeededIndexes: \"0\"\n";
    h.apply("idx.yaml", &job("idx", "Never", "work", spec));
    let others: Vec<String> = ["1", "2"]
        .iter()
        .map(|i| running_of(&h, i).metadata.uid().to_string())
        .collect();
    h.runtime
        .exit(running_of(&h, "0").metadata.uid(), "main", 0);
    h.run();
    // The other indexes' pods were stopped (SIGTERM, 143) and are not counted failed.
    for uid in &others {
        let stop = crate::daemon::testing::Call::StopPod {
            pod_uid: uid.clone(),
            grace: std::time::Duration::from_secs(30),
        };
        assert!(h.runtime.calls().contains(&stop), "{:?}", h.runtime.calls());
    }
    let status = the_job(&h).status.unwrap_or_default();
    let conditions: Vec<(&str, &str, &str)> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.reason.as_str(), c.message.as_str()))
        .collect();
    assert_eq!(
        conditions,
        [
            (
                "SuccessCriteriaMet",
                "SuccessPolicy",
                "Matched rules at index 0"
            ),
            ("Complete", "SuccessPolicy", "Matched rules at index 0")
        ]
    );
    assert_eq!((status.succeeded, status.failed), (1, 0));
    assert_eq!(status.completed_indexes, "0");
    let events = job_events(&h);
    let deletes = events
        .iter()
        .filter(|e| e.contains("SuccessfulDelete"))
        .count();
    assert_eq!(deletes, 2, "{events:?}");
    assert_eq!(
        events.last().map(String::as_str),
        Some("Normal Completed: Job completed")
    );
}

/// A failed pod held for its index (tracked, uncounted) survives a daemon crash as it was:
/// the store keeps the pod with its finalizer, annotations and finish time, from which the
/// restarted controller recounts the same status, waits out the rest of the same delay and
/// hands the same failure count on; no pod is counted twice or lost.
#[test]
fn a_held_failure_survives_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let spec = "  completionMode: Indexed\n  completions: 2\n  parallelism: 2\n  backoffLimitPerIndex: 2\n";
    h.apply("idx.yaml", &job("idx", "Never", "work", spec));
    let uid = |p: Pod| p.metadata.uid().to_string();
    let failed = running_of(&h, "1");
    h.runtime.exit(&uid(running_of(&h, "0")), "main", 0);
    h.runtime.exit(&uid(failed.clone()), "main", 1);
    h.run();
    let before = the_job(&h).status.unwrap_or_default();
    assert_eq!(
        (before.succeeded, before.failed, before.active),
        (1, 0, 0),
        "{before:#?}"
    );

    h.advance(4);
    let mut h = h.crash_and_restart();
    let after = the_job(&h).status.unwrap_or_default();
    assert_eq!(
        (
            after.completed_indexes.as_str(),
            after.succeeded,
            after.failed,
            after.active
        ),
        ("0", 1, 0, 0),
        "{after:#?}"
    );
    let held = h
        .pods()
        .into_iter()
        .find(|p| p.metadata.uid() == failed.metadata.uid())
        .expect("the held pod is still there");
    assert_eq!(
        held.metadata.finalizers,
        ["batch.kubernetes.io/job-tracking"]
    );

    // The rest of the index's 10 s delay, from the pod's finish, not from the restart.
    h.advance(6);
    assert!(h.job_timer_fires("idx"), "no per-index delay armed");
    let second = running_of(&h, "1");
    assert_eq!(
        second
            .metadata
            .annotations
            .get("batch.kubernetes.io/job-index-failure-count")
            .map(String::as_str),
        Some("1")
    );
    let status = the_job(&h).status.unwrap_or_default();
    assert_eq!(
        (status.succeeded, status.failed, status.active),
        (1, 1, 1),
        "{status:#?}"
    );
}
