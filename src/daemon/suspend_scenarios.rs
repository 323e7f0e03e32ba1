//! `suspend` carried out: a Job created suspended runs nothing, suspending a running Job
//! (an edit of its file, applied in place) terminates its pods without counting them, and
//! resuming runs pods again with the activeDeadlineSeconds clock restarted.

use std::time::Duration;

use super::testing::{Call, Harness, job};
use crate::api::{Job, JobConditionType};
use crate::clock::Clock;
use crate::config::Config;

fn the_job(h: &Harness) -> Job {
    let mut jobs = h.daemon.world.all_jobs().into_iter();
    let job = jobs.next().expect("a Job").job;
    assert!(jobs.next().is_none(), "one Job");
    job
}

fn suspended_condition(job: &Job) -> Option<(String, String)> {
    job.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == JobConditionType::Suspended)
            .map(|c| (c.status.clone(), c.reason.clone()))
    })
}

fn job_events(h: &Harness) -> Vec<String> {
    h.daemon
        .world
        .all_events()
        .iter()
        .filter(|e| e.involved_object.kind == "Job")
        .map(|e| e.reason.clone())
        .collect()
}

fn spec(suspend: bool) -> String {
    format!("  activeDeadlineSeconds: 10\n  suspend: {suspend}\n")
}

#[test]
fn suspend_and_resume_through_the_file() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job("j", "Never", "sleep", &spec(true)));
    let created = the_job(&h);
    assert!(h.pods().is_empty(), "{:#?}", h.pods());
    assert_eq!(
        suspended_condition(&created),
        Some(("True".into(), "JobSuspended".into()))
    );
    let status = created.status.clone().unwrap_or_default();
    assert_eq!(status.start_time, None);
    assert_eq!(job_events(&h), ["Suspended"]);
    assert_eq!(crate::printers::job_status(&created), "Suspended");

    // Long past the deadline, counted from creation: resuming starts the clock now.
    h.advance(100);
    h.apply("j.yaml", &job("j", "Never", "sleep", &spec(false)));
    let resumed = the_job(&h);
    assert_eq!(
        resumed.metadata.uid(),
        created.metadata.uid(),
        "not in place"
    );
    assert_eq!(
        suspended_condition(&resumed),
        Some(("False".into(), "JobResumed".into()))
    );
    let status = resumed.status.clone().unwrap_or_default();
    assert_eq!(status.start_time, Some(h.clock.now()));
    assert!(!status.is_finished(), "{status:#?}");
    let running = h.pods();
    assert_eq!(running.len(), 1, "{running:#?}");
    assert_eq!(running[0].status.phase.as_str(), "Running");
    // As `syncJob`: `manageJob` creates the pods, then the condition changes.
    assert_eq!(job_events(&h), ["Suspended", "SuccessfulCreate", "Resumed"]);

    // Suspended while running: its pod is stopped and not counted.
    h.advance(3);
    h.apply("j.yaml", &job("j", "Never", "sleep", &spec(true)));
    let stop = Call::StopPod {
        pod_uid: running[0].metadata.uid().to_string(),
        grace: Duration::from_secs(30),
    };
    assert!(h.runtime.calls().contains(&stop), "{:?}", h.runtime.calls());
    let stopped = running[0].metadata.name().to_string();
    assert!(
        h.daemon
            .world
            .all_events()
            .iter()
            .any(|e| e.involved_object.name == stopped
                && e.reason == "Killing"
                && e.message == "Stopping container main"),
        "the kubelet's Killing event for the deleted pod"
    );
    assert!(h.pods().is_empty(), "{:#?}", h.pods());
    let again = the_job(&h);
    let status = again.status.clone().unwrap_or_default();
    assert_eq!((status.active, status.failed, status.succeeded), (0, 0, 0));
    assert_eq!(status.start_time, None);
    assert_eq!(
        suspended_condition(&again),
        Some(("True".into(), "JobSuspended".into()))
    );
    assert_eq!(crate::printers::job_status(&again), "Suspended");

    // Resumed again: a new pod, and the deadline counts from here.
    h.advance(50);
    h.apply("j.yaml", &job("j", "Never", "sleep", &spec(false)));
    assert_eq!(h.pods().len(), 1);
    h.advance(10);
    assert!(h.job_timer_fires("j"), "no deadline timer armed");
    let failed = the_job(&h);
    let status = failed.status.clone().unwrap_or_default();
    let reason = status
        .condition(JobConditionType::Failed)
        .map(|c| c.reason.clone());
    assert_eq!(reason.as_deref(), Some("DeadlineExceeded"), "{status:#?}");
}

/// A suspended Job stays suspended over a restart: nothing starts, and (events being kept
/// in memory) no second `Suspended` is said.
#[test]
fn a_suspended_job_stays_suspended_after_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job("j", "Never", "sleep", &spec(true)));
    let h = h.crash_and_restart_after(60);
    assert!(h.pods().is_empty());
    assert!(h.runtime.starts().is_empty());
    assert!(job_events(&h).is_empty(), "{:?}", job_events(&h));
    let job = the_job(&h);
    assert_eq!(
        suspended_condition(&job),
        Some(("True".into(), "JobSuspended".into()))
    );
}
