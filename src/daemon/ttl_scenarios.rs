//! `ttlSecondsAfterFinished` carried out: a finished Job and its pods are deleted once its
//! TTL has passed, and a file that still defines the Job does not run it again, neither
//! when read again nor after a restart, until the Job's spec in the file changes.

use super::testing::{Harness, job};
use crate::api::{Job, Pod, TtlDeletedJob};
use crate::clock::Clock;
use crate::config::Config;

fn jobs(h: &Harness) -> Vec<Job> {
    h.daemon
        .world
        .all_jobs()
        .into_iter()
        .map(|r| r.job)
        .collect()
}

/// The one Job there is, and the uid of its one pod.
fn the_job(h: &Harness) -> (Job, String) {
    let js = jobs(h);
    assert_eq!(js.len(), 1, "{js:#?}");
    let job = js[0].clone();
    let ps: Vec<Pod> = h
        .pods()
        .into_iter()
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .any(|o| o.uid == job.metadata.uid())
        })
        .collect();
    assert_eq!(ps.len(), 1, "{ps:#?}");
    (job, ps[0].metadata.uid().to_string())
}

/// What `get manifests` says of `j.yaml`'s Jobs deleted by their TTL.
fn noted(h: &Harness) -> Vec<TtlDeletedJob> {
    let path = h.daemon.layout.manifests.join("j.yaml");
    h.daemon.world.manifests[&path].file.ttl_deleted.clone()
}

fn finished(job: &Job) -> bool {
    job.status.as_ref().is_some_and(|s| s.is_finished())
}

#[test]
fn a_finished_job_goes_after_its_ttl_and_its_file_does_not_run_it_again() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = job("j", "Never", "true", "  ttlSecondsAfterFinished: 30\n");
    h.apply("j.yaml", &text);
    let (j, pod_uid) = the_job(&h);
    h.advance(2);
    h.runtime.exit(&pod_uid, "main", 0);
    h.run();
    let (done, _) = the_job(&h);
    assert!(finished(&done), "{:#?}", done.status);

    // Not yet: the timer looks again and keeps the Job.
    h.advance(29);
    assert!(h.job_timer_fires("j"), "no TTL timer armed");
    assert!(finished(&the_job(&h).0));
    assert!(noted(&h).is_empty());

    h.advance(1);
    assert!(h.job_timer_fires("j"), "no TTL timer armed again");
    assert!(jobs(&h).is_empty(), "{:#?}", jobs(&h));
    assert!(h.pods().is_empty(), "{:#?}", h.pods());
    let note = noted(&h);
    assert_eq!(note.len(), 1, "{note:#?}");
    assert_eq!(
        (note[0].name.as_str(), note[0].uid.as_str()),
        ("j", j.metadata.uid())
    );
    assert_eq!(note[0].deletion_time, h.clock.now());
    assert_eq!(
        note[0].deletion_time.duration_since(note[0].finished_time),
        jiff::SignedDuration::from_secs(30)
    );

    // The same file read again runs nothing.
    h.apply("j.yaml", &text);
    assert!(jobs(&h).is_empty(), "{:#?}", jobs(&h));
    // Nor does a restart, nor labels changed alone.
    let mut h = h.crash_and_restart();
    assert!(jobs(&h).is_empty(), "{:#?}", jobs(&h));
    assert_eq!(noted(&h).len(), 1);
    let relabelled = text.replace("  name: j\n", "  name: j\n  labels:\n    team: a\n");
    h.apply("j.yaml", &relabelled);
    assert!(jobs(&h).is_empty(), "{:#?}", jobs(&h));
    assert_eq!(h.runtime.starts().len(), 0, "{:?}", h.runtime.starts());

    // A changed spec runs it anew, and the note goes.
    let changed = relabelled.replace("ttlSecondsAfterFinished: 30", "ttlSecondsAfterFinished: 60");
    h.apply("j.yaml", &changed);
    let (again, _) = the_job(&h);
    assert_ne!(again.metadata.uid(), j.metadata.uid());
    assert!(!finished(&again));
    assert!(noted(&h).is_empty(), "{:#?}", noted(&h));
}

#[test]
fn ttl_zero_deletes_a_failed_job_as_it_finishes_and_the_note_survives_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = job(
        "j",
        "Never",
        "false",
        "  backoffLimit: 0\n  ttlSecondsAfterFinished: 0\n",
    );
    h.apply("j.yaml", &text);
    let (_, pod_uid) = the_job(&h);
    h.runtime.exit(&pod_uid, "main", 1);
    h.run();
    assert!(jobs(&h).is_empty(), "{:#?}", jobs(&h));
    assert!(h.pods().is_empty(), "{:#?}", h.pods());
    assert_eq!(noted(&h).len(), 1);
    // What the writer was handed holds the note with the deletion.
    let h = h.crash_and_restart();
    assert!(jobs(&h).is_empty(), "{:#?}", jobs(&h));
    assert_eq!(noted(&h).len(), 1);
}

#[test]
fn a_file_that_stops_defining_the_job_forgets_the_note() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = job("j", "Never", "true", "  ttlSecondsAfterFinished: 0\n");
    h.apply("j.yaml", &text);
    let (_, pod_uid) = the_job(&h);
    h.runtime.exit(&pod_uid, "main", 0);
    h.run();
    assert_eq!(noted(&h).len(), 1);
    let other = job("k", "Never", "true", "");
    h.apply("j.yaml", &other);
    assert!(noted(&h).is_empty(), "{:#?}", noted(&h));
    // Defined again, the same Job runs.
    h.apply("j.yaml", &text);
    let names: Vec<String> = jobs(&h)
        .iter()
        .map(|j| j.metadata.name().to_string())
        .collect();
    assert!(names.contains(&"j".to_string()), "{names:?}");
}

/// Without a TTL a finished Job stays, and no timer is armed for it.
#[test]
fn without_a_ttl_a_finished_job_stays() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job("j", "Never", "true", ""));
    let (_, pod_uid) = the_job(&h);
    h.runtime.exit(&pod_uid, "main", 0);
    h.run();
    h.advance(100_000);
    assert!(!h.job_timer_fires("j"));
    assert!(finished(&the_job(&h).0));
}

/// A CronJob's Job has no file: its TTL deletes it, with nothing to note, and the CronJob
/// records the success it saw and goes on to its next slot.
#[test]
fn a_cronjob_job_goes_after_its_ttl() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = super::testing::cronjob("c", "*/5 * * * *", "true", "").replace(
        "  jobTemplate:\n    spec:\n",
        "  jobTemplate:\n    spec:\n      ttlSecondsAfterFinished: 0\n",
    );
    h.apply("c.yaml", &text);
    h.advance_to_next_slot();
    let (_, pod_uid) = the_job(&h);
    h.runtime.exit(&pod_uid, "main", 0);
    h.run();
    assert!(jobs(&h).is_empty(), "{:#?}", jobs(&h));
    assert!(h.pods().is_empty(), "{:#?}", h.pods());
    let cj = h
        .daemon
        .world
        .cronjobs
        .values()
        .next()
        .expect("the CronJob");
    let status = cj.cronjob.status.clone().unwrap_or_default();
    assert!(status.active.is_empty(), "{status:#?}");
    assert!(status.last_successful_time.is_some(), "{status:#?}");
    // The next slot runs a new Job.
    h.advance_to_next_slot();
    assert_eq!(jobs(&h).len(), 1);
}
