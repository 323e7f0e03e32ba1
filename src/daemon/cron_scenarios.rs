//! CronJobs driven through the whole daemon on the fake clock: slots fire from the timer,
//! crashes and downtime, the concurrency policies, history, edits and removal.

use super::testing::{Call, Harness, cronjob};
use crate::api::{CronJob, Job};
use crate::clock::Clock;
use crate::config::Config;

fn cron(h: &Harness, name: &str) -> CronJob {
    h.daemon
        .world
        .cronjobs
        .values()
        .find(|r| r.cronjob.metadata.name() == name)
        .map(|r| r.cronjob.clone())
        .expect("the CronJob")
}

/// The Jobs the CronJob controls, by name.
fn jobs_of(h: &Harness, cj: &CronJob) -> Vec<Job> {
    h.daemon
        .world
        .all_jobs()
        .into_iter()
        .filter(|r| super::cron::controller_uid(&r.job) == Some(cj.metadata.uid()))
        .map(|r| r.job.clone())
        .collect()
}

fn names(jobs: &[Job]) -> Vec<String> {
    jobs.iter().map(|j| j.metadata.name().to_string()).collect()
}

fn event_reasons(h: &Harness, involved_name: &str) -> Vec<String> {
    h.daemon
        .world
        .events
        .iter()
        .filter(|e| e.involved_object.name == involved_name)
        .map(|e| e.reason.clone())
        .collect()
}

fn event_message(h: &Harness, involved_name: &str, reason: &str) -> String {
    h.daemon
        .world
        .events
        .iter()
        .find(|e| e.involved_object.name == involved_name && e.reason == reason)
        .map(|e| e.message.clone())
        .unwrap_or_else(|| panic!("no {reason} event: {:#?}", h.daemon.world.events))
}

/// The uid of the one pod of `job`.
fn pod_uid_of(h: &Harness, job: &Job) -> String {
    let pods: Vec<_> = h
        .daemon
        .world
        .all_pods()
        .into_iter()
        .filter(|p| {
            p.pod
                .metadata
                .owner_references
                .iter()
                .any(|o| o.uid == job.metadata.uid())
        })
        .collect();
    assert_eq!(pods.len(), 1, "one pod of {}", job.metadata.name());
    pods[0].pod.metadata.uid().to_string()
}

fn t(s: &str) -> jiff::Timestamp {
    s.parse().expect("timestamp")
}

#[test]
fn a_slot_creates_one_job_owned_by_the_cronjob_and_its_pod_starts() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.advance(30);
    h.apply("c.yaml", &cronjob("hello", "* * * * *", "true", ""));
    assert!(
        jobs_of(&h, &cron(&h, "hello")).is_empty(),
        "nothing before the slot"
    );
    assert_eq!(h.next_cron_wake(), Some(t("2026-01-01T00:01:00Z")));

    let slot = h.advance_to_next_slot();
    let cj = cron(&h, "hello");
    let jobs = jobs_of(&h, &cj);
    assert_eq!(names(&jobs), ["hello-29453761"]);
    let job = &jobs[0];
    assert_eq!(
        job.metadata
            .annotations
            .get(crate::api::ANNOTATION_SCHEDULED_TIMESTAMP)
            .map(String::as_str),
        Some("2026-01-01T00:01:00Z")
    );
    assert_eq!(job.spec.backoff_limit, Some(6), "Job defaults applied");
    let status = cj.status.expect("status");
    assert_eq!(status.last_schedule_time, Some(slot));
    assert_eq!(status.active.len(), 1);
    assert_eq!(status.active[0].uid, job.metadata.uid());
    assert_eq!(h.runtime.starts().len(), 1, "its pod started");
    assert_eq!(h.next_cron_wake(), Some(t("2026-01-01T00:02:00Z")));

    // The Job succeeds: it leaves `active`, lastSuccessfulTime follows.
    let pod = pod_uid_of(&h, job);
    h.runtime.exit(&pod, "main", 0);
    h.run();
    let status = cron(&h, "hello").status.expect("status");
    assert!(status.active.is_empty(), "{status:?}");
    assert_eq!(status.last_successful_time, Some(slot));
    assert!(event_reasons(&h, "hello").contains(&"SawCompletedJob".to_string()));
}

/// Exactly once per slot, whatever instant the daemon dies at: before the slot's Job and
/// status were handed to the store, or after.
#[test]
fn a_crash_around_a_slot_neither_loses_nor_repeats_it() {
    for crash_before_flush in [true, false] {
        let root = tempfile::tempdir().unwrap();
        let mut h = Harness::new(root.path(), Config::default());
        h.apply("c.yaml", &cronjob("hello", "* * * * *", "sleep", ""));
        h.advance(60);
        if crash_before_flush {
            // The sync ran, nothing reached the writer.
            h.daemon.on_wall_timer(super::wall_timer::Wake::Due);
            h.daemon.reconcile();
        } else {
            h.fire_cron();
        }
        let mut h = h.crash_and_restart();
        let cj = cron(&h, "hello");
        assert_eq!(
            names(&jobs_of(&h, &cj)),
            ["hello-29453761"],
            "crash before flush: {crash_before_flush}"
        );
        // Later slots still run once each.
        h.advance_to_next_slot();
        let cj = cron(&h, "hello");
        assert_eq!(
            names(&jobs_of(&h, &cj)),
            ["hello-29453761", "hello-29453762"]
        );
    }
}

/// Down over five slots: one catch-up run (the last slot), and the miss said in an event.
#[test]
fn downtime_over_several_slots_runs_the_last_and_says_what_was_missed() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("c.yaml", &cronjob("hello", "* * * * *", "true", ""));
    let first = h.advance_to_next_slot();
    let h2 = h.crash_and_restart_after(5 * 60 + 20);
    let h = h2;
    let cj = cron(&h, "hello");
    let jobs = names(&jobs_of(&h, &cj));
    assert_eq!(
        jobs,
        ["hello-29453761", "hello-29453766"],
        "one catch-up run"
    );
    assert_eq!(first, t("2026-01-01T00:01:00Z"));
    assert_eq!(
        event_message(&h, "hello", "MissedSchedules"),
        "Missed 5 schedules between 2026-01-01T00:02:00+00:00 and 2026-01-01T00:06:00+00:00; ran the one at 2026-01-01T00:06:00+00:00"
    );
}

/// Forbid: a slot while the Job runs starts nothing (`JobAlreadyActive`); when the Job ends
/// the held slot runs, late.
#[test]
fn forbid_holds_a_slot_until_the_running_job_ends() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "c.yaml",
        &cronjob("f", "* * * * *", "sleep", "  concurrencyPolicy: Forbid\n"),
    );
    h.advance_to_next_slot();
    let first = jobs_of(&h, &cron(&h, "f"));
    assert_eq!(first.len(), 1);
    h.advance_to_next_slot();
    assert_eq!(jobs_of(&h, &cron(&h, "f")).len(), 1, "the slot was held");
    assert!(event_reasons(&h, "f").contains(&"JobAlreadyActive".to_string()));

    h.advance(20);
    let pod = pod_uid_of(&h, &first[0]);
    h.runtime.exit(&pod, "main", 0);
    h.run();
    let jobs = names(&jobs_of(&h, &cron(&h, "f")));
    assert_eq!(jobs, ["f-29453761", "f-29453762"], "the held slot ran late");
}

/// Replace: the running Job is deleted (its pod stopped with its grace period) and the new
/// slot's Job created.
#[test]
fn replace_deletes_the_running_job_for_the_new_one() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "c.yaml",
        &cronjob("r", "* * * * *", "sleep", "  concurrencyPolicy: Replace\n"),
    );
    h.advance_to_next_slot();
    let first = jobs_of(&h, &cron(&h, "r"));
    let pod = pod_uid_of(&h, &first[0]);
    h.advance_to_next_slot();
    let stop = Call::StopPod {
        pod_uid: pod,
        grace: std::time::Duration::from_secs(30),
    };
    assert!(h.runtime.calls().contains(&stop), "{:?}", h.runtime.calls());
    assert_eq!(names(&jobs_of(&h, &cron(&h, "r"))), ["r-29453762"]);
    let reasons = event_reasons(&h, "r");
    assert!(
        reasons.contains(&"SuccessfulDelete".to_string()),
        "{reasons:?}"
    );
}

/// History: finished Jobs beyond the limits go, oldest first, with their pods.
#[test]
fn finished_jobs_beyond_the_history_limit_are_deleted_oldest_first() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "c.yaml",
        &cronjob(
            "hist",
            "* * * * *",
            "true",
            "  successfulJobsHistoryLimit: 2\n",
        ),
    );
    for _ in 0..4 {
        h.advance_to_next_slot();
        let cj = cron(&h, "hist");
        let running: Vec<Job> = jobs_of(&h, &cj)
            .into_iter()
            .filter(|j| !j.status.as_ref().is_some_and(|s| s.is_finished()))
            .collect();
        for job in running {
            let pod = pod_uid_of(&h, &job);
            h.advance(1);
            h.runtime.exit(&pod, "main", 0);
            h.run();
        }
    }
    let jobs = names(&jobs_of(&h, &cron(&h, "hist")));
    assert_eq!(jobs, ["hist-29453763", "hist-29453764"]);
    let pods_left = h.daemon.world.pod_keys().count();
    assert_eq!(pods_left, 2, "the deleted Jobs' pods went with them");
}

/// Editing the file updates the CronJob in place; its Jobs run on. Removing the file deletes
/// the CronJob and its Jobs.
#[test]
fn an_edit_updates_in_place_and_removal_deletes_the_jobs_too() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("c.yaml", &cronjob("e", "* * * * *", "sleep", ""));
    h.advance_to_next_slot();
    let before = cron(&h, "e");
    h.apply("c.yaml", &cronjob("e", "*/5 * * * *", "sleep", ""));
    let after = cron(&h, "e");
    assert_eq!(after.metadata.uid(), before.metadata.uid());
    assert_eq!(after.metadata.generation, Some(2));
    assert_eq!(after.spec.schedule, "*/5 * * * *");
    assert_eq!(jobs_of(&h, &after).len(), 1, "its Job runs on");
    assert_eq!(h.next_cron_wake(), Some(t("2026-01-01T00:05:00Z")));

    let path = h.daemon.layout.manifests.join("c.yaml");
    h.daemon.file_removed(&path);
    h.daemon.turn();
    h.run();
    assert!(h.daemon.world.cronjobs.is_empty());
    assert!(
        h.daemon.world.job_keys().next().is_none(),
        "its Jobs were deleted with it"
    );
    assert_eq!(h.next_cron_wake(), None);
}

/// Suspended slots are missed; unsuspending runs the most recent one at once.
#[test]
fn unsuspending_runs_the_most_recent_missed_slot() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "c.yaml",
        &cronjob("s", "* * * * *", "true", "  suspend: true\n"),
    );
    assert_eq!(
        h.next_cron_wake(),
        None,
        "a suspended CronJob needs no timer"
    );
    h.advance(150);
    h.apply(
        "c.yaml",
        &cronjob("s", "* * * * *", "true", "  suspend: false\n"),
    );
    assert_eq!(names(&jobs_of(&h, &cron(&h, "s"))), ["s-29453762"]);
}

/// A step of the wall clock (NTP, `date -s`, a resume) wakes the timer with `ClockChanged`:
/// forward, the slot now due runs once; backward, nothing runs twice.
#[test]
fn a_clock_step_is_looked_at_again_and_never_repeats_a_slot() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.advance(30);
    h.apply("c.yaml", &cronjob("step", "0 * * * *", "true", ""));
    assert_eq!(h.next_cron_wake(), Some(t("2026-01-01T01:00:00Z")));

    h.advance(2 * 3600);
    h.daemon
        .on_wall_timer(super::wall_timer::Wake::ClockChanged);
    h.daemon.turn();
    h.run();
    let jobs = names(&jobs_of(&h, &cron(&h, "step")));
    assert_eq!(jobs, ["step-29453880"], "the 02:00 slot, once");
    assert!(event_reasons(&h, "step").contains(&"MissedSchedules".to_string()));

    h.advance(-3 * 3600);
    h.daemon
        .on_wall_timer(super::wall_timer::Wake::ClockChanged);
    h.daemon.turn();
    h.run();
    assert_eq!(names(&jobs_of(&h, &cron(&h, "step"))), ["step-29453880"]);
    assert_eq!(
        h.next_cron_wake(),
        Some(t("2026-01-01T03:00:00Z")),
        "the next slot after the last one that ran"
    );
}

/// A CronJob's file that is no longer a regular file (a FIFO, a directory) goes as a removed
/// file does: the CronJob and its Jobs are deleted.
#[test]
fn a_file_no_longer_regular_takes_its_cronjob_and_jobs_away() {
    let root = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.watch.removal_grace = std::time::Duration::ZERO;
    let mut h = Harness::new(root.path(), cfg);
    h.apply("c.yaml", &cronjob("gone", "* * * * *", "sleep", ""));
    h.advance_to_next_slot();
    assert_eq!(h.daemon.world.job_keys().count(), 1);
    let path = h.daemon.layout.manifests.join("c.yaml");
    h.daemon.apply_entry(
        &path,
        crate::watch::Entry::Ignored("a FIFO".into()),
        true,
        None,
    );
    h.daemon.turn();
    h.run();
    assert!(h.daemon.world.cronjobs.is_empty());
    assert!(h.daemon.world.job_keys().next().is_none());
}

/// The pods not yet ended, by uid.
fn running_pods(h: &Harness) -> Vec<String> {
    h.daemon
        .world
        .all_pods()
        .into_iter()
        .filter(|p| !p.pod.status.phase.is_terminal())
        .map(|p| p.pod.metadata.uid().to_string())
        .collect()
}

/// `@every` below a minute names every slot of a minute alike: while that minute's Job
/// exists the next slot runs nothing, but with `successfulJobsHistoryLimit: 0` the finished
/// Job is deleted at once and the next slot of the same minute creates it again, as
/// Kubernetes' controller would (README "CronJobs").
#[test]
fn an_every_below_a_minute_runs_again_in_the_minute_once_history_deleted_its_job() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "c.yaml",
        &cronjob(
            "ev",
            "@every 2s",
            "sleep",
            "  successfulJobsHistoryLimit: 0\n",
        ),
    );
    // While the minute's Job runs, the next slots of the minute start nothing.
    h.advance_to_next_slot();
    h.advance_to_next_slot();
    h.advance_to_next_slot();
    assert_eq!(h.runtime.starts().len(), 1);
    // Finished, it is deleted (limit 0); the next slot makes the minute's Job again.
    for pod in running_pods(&h) {
        h.runtime.exit(&pod, "main", 0);
        h.run();
    }
    assert!(
        h.daemon.world.job_keys().next().is_none(),
        "history 0 deleted it"
    );
    h.advance_to_next_slot();
    assert!(
        h.clock.now() < t("2026-01-01T00:01:00Z"),
        "all in one minute"
    );
    assert_eq!(h.runtime.starts().len(), 2);
}

/// Moving a CronJob's definition from one file to another (a new file defines it, then the old
/// file is edited to define it no more) hands it over, as a renamed or removed file does
/// (`file_removed` lets the other file take over first): same CronJob, same status, its
/// running Job untouched. Instead the CronJob is deleted with its Jobs (the running one's pod
/// is stopped) and created anew from the other file, with a new uid and no history.
#[test]
fn moving_a_cronjob_to_another_file_keeps_it_and_its_running_job() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let other = cronjob("other", "0 0 1 1 *", "true", "");
    let moving = cronjob("mv", "* * * * *", "sleep", "");
    h.apply("a.yaml", &format!("{other}---\n{moving}"));
    h.advance_to_next_slot();
    let before = cron(&h, "mv");
    let jobs = jobs_of(&h, &before);
    assert_eq!(names(&jobs), ["mv-29453761"]);
    let pod = pod_uid_of(&h, &jobs[0]);

    h.apply("b.yaml", &moving); // Conflict while a.yaml still defines it
    h.apply("a.yaml", &other); // a.yaml lets go

    let after = cron(&h, "mv");
    assert_eq!(
        after.metadata.uid(),
        before.metadata.uid(),
        "the same CronJob"
    );
    assert_eq!(
        after.status.as_ref().and_then(|s| s.last_schedule_time),
        Some(t("2026-01-01T00:01:00Z"))
    );
    assert_eq!(names(&jobs_of(&h, &after)), ["mv-29453761"], "its Job kept");
    let stopped = h
        .runtime
        .calls()
        .into_iter()
        .any(|c| matches!(c, Call::StopPod { pod_uid, .. } if pod_uid == pod));
    assert!(!stopped, "its running pod was stopped");
}

/// "A Job the file no longer defines is deleted once that has held for `watch.removalGrace`
/// (a file read half-written must not delete, and later re-run, anything)" (README, "The
/// manifests directory"). A file read empty schedules the check; it is good again at once;
/// then, just as the grace ends, a writer truncates it and has not written yet (`cmd > file`:
/// no close, so no event). The definition was missing for an instant, not for the grace: the
/// good read cancelled the check, so nothing is deleted (before, the check read the empty file
/// as confirmed and the CronJob went with its running Job, to come back with a new uid).
#[test]
fn a_definition_back_within_the_grace_is_not_deleted_by_a_truncation_at_its_end() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = cronjob("blink", "* * * * *", "sleep", "");
    let path = h.daemon.layout.manifests.join("c.yaml");
    let write_and_read = |h: &mut Harness, content: &str| {
        std::fs::write(&path, content).expect("write");
        h.daemon.apply_file(&path);
        h.daemon.turn();
        h.run();
    };
    write_and_read(&mut h, &text);
    h.advance_to_next_slot();
    let before = cron(&h, "blink");
    let jobs = jobs_of(&h, &before);
    assert_eq!(names(&jobs), ["blink-29453761"]);

    write_and_read(&mut h, ""); // emptied and closed: the removal waits out the grace
    write_and_read(&mut h, &text); // good again
    std::fs::write(&path, "").expect("truncate"); // a writer opened it O_TRUNC, not closed yet
    h.removal_timer_fires(&path); // the grace of the first read ends
    h.daemon.turn();
    h.run();

    let after = h
        .daemon
        .world
        .cronjobs
        .values()
        .find(|r| r.cronjob.metadata.name() == "blink")
        .map(|r| r.cronjob.clone());
    let after = after.expect("the CronJob was deleted");
    assert_eq!(after.metadata.uid(), before.metadata.uid());
    assert_eq!(names(&jobs_of(&h, &after)), ["blink-29453761"]);
}

/// "`jobTemplate`, validated as a Job whose selector is generated" (README, "CronJobs"): a
/// Job file whose pod template sets a label the generated selector owns (`controller-uid`,
/// or a `job-name` other than the Job's) is refused, as the API server refuses such a Job. A
/// CronJob's template is not checked for them: the file applies, and every slot runs a Job
/// whose selector does not select its own pod template (`controller-uid: fake`), or whose
/// pods claim another Job's name (`job-name: other`). Kubernetes accepts the CronJob but
/// refuses every one of its Jobs, so nothing would ever run there.
#[test]
fn a_job_template_that_sets_the_generated_selector_labels_is_refused() {
    for (label, value) in [
        ("batch.kubernetes.io/controller-uid", "fake"),
        ("controller-uid", "fake"),
        ("batch.kubernetes.io/job-name", "other"),
        ("job-name", "other"),
    ] {
        let root = tempfile::tempdir().unwrap();
        let mut h = Harness::new(root.path(), Config::default());
        let text = cronjob("lbl", "* * * * *", "true", "").replace(
            "      template:\n        spec:\n",
            &format!(
                "      template:\n        metadata:\n          labels:\n            {label}: {value}\n        spec:\n"
            ),
        );
        assert!(text.contains(label), "{text}");
        h.apply("c.yaml", &text);
        let m = &h.daemon.world.manifests[&h.daemon.layout.manifests.join("c.yaml")];
        assert_eq!(
            m.file.state,
            crate::api::ManifestState::Invalid,
            "{label}: {:?}",
            m.file
        );
        assert!(
            m.file.errors.iter().any(|e| e.contains(label)),
            "{:?}",
            m.file.errors
        );
    }
}

/// A valid CronJob (the API server takes any `startingDeadlineSeconds` ≥ 0) with a deadline
/// reaching back past the year -9999 overflowed jiff's timestamp subtraction in the sync and
/// panicked the daemon; since its file stays, every restart panicked again.
#[test]
fn a_huge_starting_deadline_neither_panics_nor_stops_the_slot() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "c.yaml",
        &cronjob(
            "far",
            "* * * * *",
            "true",
            "  startingDeadlineSeconds: 9223372036854775807\n",
        ),
    );
    h.advance_to_next_slot();
    assert_eq!(names(&jobs_of(&h, &cron(&h, "far"))), ["far-29453761"]);
    let h = h.crash_and_restart_after(150);
    assert_eq!(
        names(&jobs_of(&h, &cron(&h, "far"))),
        ["far-29453761", "far-29453763"]
    );
}

/// A CronJob taken over by another file (a rename: the new file conflicts until the old one
/// is gone) records its new file: after a restart, removing that file deletes it.
#[test]
fn a_cronjob_taken_over_by_another_file_is_recorded_there_across_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = cronjob("mv", "0 3 * * *", "true", "");
    let a = h.daemon.layout.manifests.join("a.yaml");
    let b = h.daemon.layout.manifests.join("b.yaml");
    // On disk too: the restarted daemon reads the directory.
    std::fs::write(&a, &text).unwrap();
    h.apply("a.yaml", &text);
    std::fs::write(&b, &text).unwrap();
    h.apply("b.yaml", &text);
    std::fs::remove_file(&a).unwrap();
    h.daemon.file_removed(&a);
    h.daemon.turn();
    h.run();
    let h = h.crash_and_restart();
    let rec = h
        .daemon
        .world
        .cronjobs
        .values()
        .find(|r| r.cronjob.metadata.name() == "mv")
        .expect("the CronJob");
    assert_eq!(rec.source, b, "the new owner was not recorded");
}

/// A file that is no longer a regular file hands its CronJob to another file that defines it
/// too, as a removed file does: same CronJob, its running Job kept.
#[test]
fn a_file_no_longer_regular_hands_its_cronjob_to_the_other_file() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = cronjob("keep", "* * * * *", "sleep", "");
    h.apply("a.yaml", &text);
    h.advance_to_next_slot();
    let before = cron(&h, "keep");
    h.apply("b.yaml", &text);
    let a = h.daemon.layout.manifests.join("a.yaml");
    h.daemon.apply_entry(
        &a,
        crate::watch::Entry::Ignored("a directory".into()),
        true,
        None,
    );
    h.daemon.turn();
    h.run();
    let after = cron(&h, "keep");
    assert_eq!(after.metadata.uid(), before.metadata.uid());
    assert_eq!(names(&jobs_of(&h, &after)), ["keep-29453761"]);
}
