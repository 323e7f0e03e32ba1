//! The daemon carrying out its decisions, in process: files applied, processes reported by
//! the fake runtime, crashes and restarts, with the clock moved by hand. Each test fails when
//! the behaviour it names is broken, which the process-level tests cannot all show.

use std::time::Duration;

use super::testing::{Call, Harness, job};
use crate::api::{Job, Pod};
use crate::config::Config;

fn only_job(h: &Harness) -> &Job {
    let mut jobs = h.daemon.world.jobs.values();
    let job = &jobs.next().expect("a Job").job;
    assert!(jobs.next().is_none(), "one Job");
    job
}

fn job_named<'a>(h: &'a Harness, name: &str) -> &'a Job {
    let found = h
        .daemon
        .world
        .jobs
        .values()
        .find(|r| r.job.metadata.name() == name);
    &found.expect("the Job").job
}

fn pods_of(h: &Harness, job_uid: &str) -> Vec<Pod> {
    let mut pods: Vec<Pod> = h
        .daemon
        .world
        .pods
        .values()
        .map(|r| r.pod.clone())
        .filter(|p| p.metadata.owner_references.iter().any(|o| o.uid == job_uid))
        .collect();
    pods.sort_by(|a, b| {
        let key = |p: &Pod| (p.metadata.creation_timestamp, p.metadata.name.clone());
        key(a).cmp(&key(b))
    });
    pods
}

fn phase(p: &Pod) -> &'static str {
    p.status.phase.as_str()
}

/// `completions` is immutable in Kubernetes: changing it in the file replaces the Job (a new
/// uid) and terminates the old Job's pods, instead of updating the running Job.
#[test]
fn changing_completions_recreates_the_job_and_terminates_its_pods() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job("j", "Never", "sleep", "  completions: 1\n"));
    let old_uid = only_job(&h).metadata.uid().to_string();
    let old_pods = pods_of(&h, &old_uid);
    assert_eq!(old_pods.len(), 1);
    assert_eq!(phase(&old_pods[0]), "Running");
    let old_pod_uid = old_pods[0].metadata.uid().to_string();

    h.advance(5);
    h.apply("j.yaml", &job("j", "Never", "sleep", "  completions: 2\n"));

    let new = only_job(&h).clone();
    assert_ne!(new.metadata.uid(), old_uid, "the Job was updated in place");
    assert_eq!(new.spec.completions, Some(2));
    assert_eq!(new.metadata.generation, Some(1));
    let stop = Call::StopPod {
        pod_uid: old_pod_uid,
        grace: Duration::from_secs(30),
    };
    assert!(h.runtime.calls().contains(&stop), "{:?}", h.runtime.calls());
    // Its container died of the SIGTERM; the pod, no longer counted, is gone.
    assert!(
        pods_of(&h, &old_uid).is_empty(),
        "{:#?}",
        pods_of(&h, &old_uid)
    );
    let new_pods = pods_of(&h, new.metadata.uid());
    assert_eq!(new_pods.len(), 1, "{new_pods:#?}");
    assert_eq!(phase(&new_pods[0]), "Running");
    assert!(
        h.daemon
            .world
            .events
            .iter()
            .any(|e| e.reason == "Recreated" && e.involved_object.uid == new.metadata.uid()),
        "{:#?}",
        h.daemon.world.events
    );
}

/// Recovery kills what a crashed daemon left running: every container whose pid was
/// recorded, by pid and process start time (so a reused pid is spared).
#[test]
fn recovery_kills_every_recorded_leftover_process() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "j.yaml",
        &job(
            "j",
            "Never",
            "sleep",
            "  completions: 4\n  parallelism: 3\n",
        ),
    );
    h.apply("done.yaml", &job("done", "Never", "true", ""));
    let done_uid = job_named(&h, "done").metadata.uid().to_string();
    let done_pod = pods_of(&h, &done_uid)[0].metadata.uid().to_string();
    h.runtime.exit(&done_pod, "main", 0);
    h.run();
    let started = h.runtime.started_processes();
    assert_eq!(started.len(), 4, "3 pods of j and the one of done");
    // The one that exited is not killed: its pid may be another process's by now.
    let leftovers = started[..3].to_vec();

    h.advance(60);
    let h = h.crash_and_restart();

    let kills: Vec<(u32, Option<u64>)> = h
        .runtime
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::KillLeftover { pid, proc_start } => Some((pid, proc_start)),
            _ => None,
        })
        .collect();
    let mut sorted = kills.clone();
    sorted.sort();
    assert_eq!(sorted, leftovers, "{kills:?}");
}
