//! The daemon carrying out its decisions, in process: files applied, processes reported by
//! the fake runtime, crashes and restarts, with the clock moved by hand. Each test fails when
//! the behaviour it names is broken, which the process-level tests cannot all show.

use std::time::Duration;

use super::testing::{Call, Harness, job};
use crate::api::{Job, Pod};
use crate::clock::Clock;
use crate::config::Config;

fn only_job(h: &Harness) -> Job {
    let mut jobs = h.daemon.world.all_jobs().into_iter();
    let job = jobs.next().expect("a Job").job;
    assert!(jobs.next().is_none(), "one Job");
    job
}

fn job_named(h: &Harness, name: &str) -> Job {
    let found = h
        .daemon
        .world
        .all_jobs()
        .into_iter()
        .find(|r| r.job.metadata.name() == name);
    found.expect("the Job").job
}

fn pods_of(h: &Harness, job_uid: &str) -> Vec<Pod> {
    let mut pods: Vec<Pod> = h
        .daemon
        .world
        .all_pods()
        .into_iter()
        .map(|r| r.pod)
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
    let events = h.daemon.world.all_events();
    assert!(
        events.iter().any(|e| e.reason == "Recreated"
            && e.involved_object.uid == new.metadata.uid()
            && e.message
                .starts_with("Job recreated because spec.completions in ")),
        "the event names the field that changed: {events:#?}"
    );
}

/// How the node ended a pod: the status Kubernetes gives a pod it disrupted.
fn assert_disrupted(p: &Pod, message: &str) {
    let st = &p.status;
    assert_eq!(phase(p), "Failed", "{st:#?}");
    assert_eq!(st.reason.as_deref(), Some("Terminated"));
    assert_eq!(st.message.as_deref(), Some(message));
    let condition = st
        .conditions
        .iter()
        .find(|c| c.type_ == crate::api::PodConditionType::DisruptionTarget)
        .unwrap_or_else(|| panic!("no DisruptionTarget condition: {st:#?}"));
    assert_eq!(condition.status, "True");
    assert_eq!(condition.reason.as_deref(), Some("TerminationByKubelet"));
    assert_eq!(condition.message.as_deref(), Some(message));
}

/// A crash leaves a running pod behind: the restarted daemon fails it as disrupted, its
/// container killed (137, SIGKILL), and the Job counts it failed.
#[test]
fn a_pod_interrupted_by_a_crash_ends_disrupted() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job("j", "Never", "sleep", ""));
    let job_uid = only_job(&h).metadata.uid().to_string();
    let running = pods_of(&h, &job_uid);
    assert_eq!(phase(&running[0]), "Running");

    h.advance(60);
    let h = h.crash_and_restart();

    let pods = pods_of(&h, &job_uid);
    let lost = &pods[0];
    assert_eq!(lost.metadata.uid(), running[0].metadata.uid());
    assert_disrupted(
        lost,
        "Pod was terminated because the jobvisor daemon stopped unexpectedly.",
    );
    let exit = lost.status.container_statuses[0]
        .state
        .terminated
        .as_ref()
        .expect("the container ended");
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    assert_eq!(
        exit.message.as_deref(),
        Some("the jobvisor daemon stopped while this container was running")
    );
    assert_eq!(exit.finished_at, Some(h.clock.now()));
    let status = only_job(&h).status.clone().unwrap_or_default();
    assert_eq!(status.failed, 1, "{status:#?}");
}

/// At shutdown a running pod is stopped, and once its container's exit is recorded it ends
/// as a Kubernetes graceful node shutdown ends it.
#[test]
fn a_pod_stopped_by_shutdown_ends_disrupted() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job("j", "Never", "sleep", ""));
    let job_uid = only_job(&h).metadata.uid().to_string();
    let pod_uid = pods_of(&h, &job_uid)[0].metadata.uid().to_string();

    h.advance(10);
    h.daemon.begin_shutdown("SIGTERM");
    h.daemon.turn();
    let stop = Call::StopPod {
        pod_uid,
        grace: Duration::from_secs(30),
    };
    assert!(h.runtime.calls().contains(&stop), "{:?}", h.runtime.calls());
    assert_eq!(
        phase(&pods_of(&h, &job_uid)[0]),
        "Running",
        "before the exit"
    );
    h.run();

    let pods = pods_of(&h, &job_uid);
    assert_eq!(pods.len(), 1, "nothing new starts while shutting down");
    assert_disrupted(
        &pods[0],
        "Pod was terminated in response to imminent node shutdown.",
    );
    assert!(h.daemon.shutdown_done());
}

/// The same event twice is one Event counted twice, last seen at the second time.
#[test]
fn a_repeated_event_is_counted_not_recorded_again() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job("j", "OnFailure", "false", ""));
    let first = h.clock.now();
    let job_uid = only_job(&h).metadata.uid().to_string();
    let pod_uid = pods_of(&h, &job_uid)[0].metadata.uid().to_string();

    // The first restart of an OnFailure container is immediate: "Started" again.
    h.advance(7);
    h.runtime.exit(&pod_uid, "main", 1);
    h.run();
    assert_eq!(
        pods_of(&h, &job_uid)[0].status.container_statuses[0].restart_count,
        1
    );

    let events = h.daemon.world.all_events();
    let started: Vec<_> = events
        .iter()
        .filter(|e| e.involved_object.uid == pod_uid && e.reason == "Started")
        .collect();
    assert_eq!(started.len(), 1, "{started:#?}");
    assert_eq!(started[0].message, "Started container main");
    assert_eq!(started[0].count, 2);
    assert_eq!(started[0].first_timestamp, Some(first));
    assert_eq!(started[0].last_timestamp, Some(h.clock.now()));
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

#[allow(clippy::result_large_err)]
fn delete_job(
    h: &mut Harness,
    name: &str,
    propagation: crate::api::Propagation,
) -> Result<serde_json::Value, crate::api::Status> {
    h.ask(|reply| super::requests::Request::Delete {
        kind: crate::api::Kind::Job,
        namespace: "default".into(),
        name: name.into(),
        delete: super::requests::Deletion {
            propagation,
            ..Default::default()
        },
        reply,
    })
}

/// A Job `j` whose one pod runs: the root (kept alive by the caller), the harness, the Job's
/// uid and the pod's.
fn running_job() -> (tempfile::TempDir, Harness, String, String) {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job("j", "Never", "sleep", ""));
    let uid = only_job(&h).metadata.uid().to_string();
    let pod_uid = pods_of(&h, &uid)[0].metadata.uid().to_string();
    (root, h, uid, pod_uid)
}

fn stopped(h: &Harness, pod_uid: &str) -> bool {
    h.runtime
        .calls()
        .iter()
        .any(|c| matches!(c, Call::StopPod { pod_uid: u, .. } if u == pod_uid))
}

/// `propagationPolicy: Foreground`: the Job stays, terminating (deletionTimestamp and the
/// `foregroundDeletion` finalizer), until its pods are gone; then it goes too.
#[test]
fn foreground_deletion_waits_for_the_pods() {
    let (_root, mut h, uid, pod_uid) = running_job();

    let answer = delete_job(&mut h, "j", crate::api::Propagation::Foreground).unwrap();
    assert!(
        answer["metadata"]["deletionTimestamp"].is_string(),
        "{answer:#}"
    );
    assert_eq!(answer["metadata"]["finalizers"][0], "foregroundDeletion");
    assert!(stopped(&h, &pod_uid));
    assert!(only_job(&h).metadata.deletion_timestamp.is_some());

    // The pod's container dies of the SIGTERM; the pod goes, and then the Job.
    h.run();
    assert!(pods_of(&h, &uid).is_empty());
    assert!(
        h.daemon.world.job_keys().next().is_none(),
        "the Job outlived its pods"
    );
}

/// `Background` (the default): the Job goes at once, its pods are terminated after it.
#[test]
fn background_deletion_removes_the_job_first() {
    let (_root, mut h, _, pod_uid) = running_job();
    let answer = delete_job(&mut h, "j", crate::api::Propagation::Background).unwrap();
    assert_eq!(answer["status"], "Success");
    assert!(h.daemon.world.job_keys().next().is_none());
    assert!(stopped(&h, &pod_uid));
}

/// `Orphan`: the Job goes, its pod runs on as a pod of its own (no owner reference, no
/// tracking finalizer), and nothing stops it.
#[test]
fn orphan_deletion_leaves_the_pods_running() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job("j", "Never", "sleep", ""));
    let uid = only_job(&h).metadata.uid().to_string();
    let pod = pods_of(&h, &uid)[0].clone();
    delete_job(&mut h, "j", crate::api::Propagation::Orphan).unwrap();
    h.run();
    assert!(h.daemon.world.job_keys().next().is_none());
    assert!(!stopped(&h, pod.metadata.uid()));
    let k = (pod.metadata.namespace().into(), pod.metadata.name().into());
    let now = h.daemon.world.pod(&k).unwrap().into_owned().pod;
    assert!(now.metadata.owner_references.is_empty());
    assert!(now.metadata.finalizers.is_empty());
    assert_eq!(phase(&now), "Running");
}

/// A Job another object owns has no file: deleting it touches no manifest.
#[test]
fn a_job_owned_by_an_object_is_deleted_without_any_file() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let file = h.daemon.layout.manifests.join("j.yaml");
    let text = job("j", "Never", "sleep", "");
    std::fs::write(&file, &text).unwrap();
    h.apply("j.yaml", &text);
    // As a CronJob's Job will be: owned through ownerReferences, no file of its own.
    let k = (String::from("default"), String::from("j"));
    h.daemon.world.job_mut(&k).unwrap().source = None;
    h.daemon.world.manifests.clear();
    delete_job(&mut h, "j", crate::api::Propagation::Background).unwrap();
    assert!(h.daemon.world.job_keys().next().is_none());
    assert!(
        file.exists(),
        "a file was removed for a Job no file defines"
    );
}

fn bare_pod(name: &str, policy: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {policy}\n  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\"]\n"
    )
}

fn bare(h: &Harness, name: &str) -> Pod {
    let k = (String::from("default"), name.to_string());
    h.daemon.world.pod(&k).unwrap().into_owned().pod
}

/// A bare Pod with restartPolicy Always restarts a container that exited 0 (a Job's pod
/// would be done), the first time at once, and stays Running.
#[test]
fn an_always_pod_restarts_a_success() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("p.yaml", &bare_pod("p", "Always"));
    let uid = bare(&h, "p").metadata.uid().to_string();
    h.advance(3);
    h.runtime.exit(&uid, "main", 0);
    h.run();
    assert_eq!(h.runtime.starts(), [("p".into(), 0), ("p".into(), 1)]);
    let p = bare(&h, "p");
    assert_eq!(phase(&p), "Running");
    let cs = &p.status.container_statuses[0];
    assert_eq!(cs.restart_count, 1);
    let last = cs
        .last_state
        .terminated
        .as_ref()
        .expect("the first run's exit");
    assert_eq!(
        (last.exit_code, last.reason.clone()),
        (0, Some(crate::api::TerminatedReason::Completed))
    );
}

/// What a container executes is noted on the pod when it starts (before the start: both
/// wait for the same record), and stays when the file changes only the pod's labels, as a
/// kubelet's own annotations do.
#[test]
fn the_host_command_is_noted_on_the_pod_and_kept_by_a_metadata_update() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text =
        bare_pod("p", "Always").replace("    command: [\"sleep\"]\n", "    args: [sleep, \"9\"]\n");
    h.apply("p.yaml", &text);
    let exec = |h: &Harness| {
        bare(h, "p")
            .metadata
            .annotations
            .get(crate::api::ANNOTATION_EXEC)
            .cloned()
    };
    // busybox: no entrypoint, args replace its cmd.
    assert_eq!(exec(&h).as_deref(), Some(r#"{"main":["sleep","9"]}"#));
    let path = h.daemon.layout.manifests.join("p.yaml");
    let relabelled = text.replace("  name: p\n", "  name: p\n  labels: {tier: web}\n");
    h.daemon.apply_text(&path, relabelled, true);
    h.daemon.turn();
    h.run();
    let p = bare(&h, "p");
    assert_eq!(
        p.metadata.labels.get("tier").map(String::as_str),
        Some("web")
    );
    assert_eq!(h.runtime.starts(), [("p".into(), 0)], "updated in place");
    assert_eq!(exec(&h).as_deref(), Some(r#"{"main":["sleep","9"]}"#));
}

/// After a crash a bare Pod's container is started again in place: the same pod, its
/// restartCount one more, the killed run (137) in lastState, never Failed.
/// A `Never` bare Pod is failed as disrupted, as a Job's pod is.
#[test]
fn bare_pods_after_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("a.yaml", &bare_pod("a", "Always"));
    // Not `n`: YAML 1.1 reads that as `false`, which the API server refuses as a name.
    h.apply("never.yaml", &bare_pod("never", "Never"));
    let before = bare(&h, "a");
    h.advance(60);
    let h = h.crash_and_restart();

    let a = bare(&h, "a");
    assert_eq!(a.metadata.uid(), before.metadata.uid(), "the same pod");
    assert_eq!(phase(&a), "Running");
    let cs = &a.status.container_statuses[0];
    assert_eq!(cs.restart_count, 1);
    assert_eq!(
        cs.last_state.terminated.as_ref().map(|t| t.exit_code),
        Some(137)
    );
    assert_eq!(h.runtime.starts(), [("a".into(), 1)]);
    assert!(
        a.status
            .conditions
            .iter()
            .all(|c| c.type_ != crate::api::PodConditionType::DisruptionTarget),
        "{:#?}",
        a.status.conditions
    );
    assert_disrupted(
        &bare(&h, "never"),
        "Pod was terminated because the jobvisor daemon stopped unexpectedly.",
    );
}

/// A changed pod spec replaces the pod: the old one is stopped, and the new one (same name,
/// new uid) starts only once the old one is gone.
#[test]
fn a_changed_pod_spec_replaces_the_pod_after_the_old_one_ends() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("p.yaml", &bare_pod("p", "Always"));
    let old = bare(&h, "p").metadata.uid().to_string();
    let path = h.daemon.layout.manifests.join("p.yaml");
    h.daemon.apply_text(
        &path,
        bare_pod("p", "Always").replace("sleep", "true"),
        true,
    );
    h.daemon.turn();
    h.settle();
    assert_eq!(
        bare(&h, "p").metadata.uid(),
        old,
        "replaced before the old pod ended"
    );
    assert!(bare(&h, "p").metadata.deletion_timestamp.is_some());
    h.run();
    let new = bare(&h, "p");
    assert_ne!(new.metadata.uid(), old);
    assert_eq!(
        new.spec.containers[0].command.as_deref(),
        Some(&["true".to_string()][..])
    );
    assert_eq!(h.runtime.starts(), [("p".into(), 0), ("p".into(), 0)]);
}

/// A Job deleted in the foreground and applied again while its pods stop is made anew once
/// it is gone, not lost (its file says Applied).
#[test]
fn a_job_reapplied_while_deleted_in_the_foreground_comes_back() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let text = job("j", "Never", "sleep", "");
    h.apply("j.yaml", &text);
    let old = only_job(&h).metadata.uid().to_string();
    delete_job(&mut h, "j", crate::api::Propagation::Foreground).unwrap();
    // `apply` again before the pod has ended: the Job is still there, terminating.
    let path = h.daemon.layout.manifests.join("j.yaml");
    h.daemon.apply_text(&path, text, true);
    h.daemon.turn();
    h.run();
    let new = only_job(&h);
    assert_ne!(
        new.metadata.uid(),
        old,
        "the terminating Job was kept or lost"
    );
    assert!(new.metadata.deletion_timestamp.is_none());
}

/// A bare Pod being replaced whose file is then removed: no successor is started from the
/// definition that is gone.
#[test]
fn a_replaced_pod_whose_file_goes_has_no_successor() {
    let root = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.watch.removal_grace = Duration::from_secs(2);
    let mut h = Harness::new(root.path(), cfg);
    h.apply("p.yaml", &bare_pod("p", "Always"));
    let path = h.daemon.layout.manifests.join("p.yaml");
    h.daemon.apply_text(
        &path,
        bare_pod("p", "Always").replace("sleep", "true"),
        true,
    );
    h.daemon.turn();
    // The file is emptied before the old pod ends: its removal waits out the grace.
    h.daemon.apply_text(&path, String::new(), false);
    h.daemon.turn();
    h.run();
    assert_eq!(h.runtime.starts(), [("p".into(), 0)], "a successor started");
    assert!(h.daemon.world.pod_keys().next().is_none());
}

/// A pod still tracked by a Job that no longer exists (deleted before its pods' release was
/// recorded) is released at recovery, so it can go.
#[test]
fn recovery_releases_pods_of_a_job_that_is_gone() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job("j", "Never", "sleep", ""));
    let uid = only_job(&h).metadata.uid().to_string();
    let k = (String::from("default"), String::from("j"));
    h.daemon.world.remove_job(&k);
    h.daemon.store.touch(super::world::job_store_key(&k));
    h.daemon.turn();
    h.settle();
    let h = h.crash_and_restart();
    let pods: Vec<Pod> = h
        .daemon
        .world
        .all_pods()
        .into_iter()
        .map(|r| r.pod)
        .collect();
    assert_eq!(pods.len(), 1);
    assert!(
        pods[0].metadata.finalizers.is_empty(),
        "{:?}",
        pods[0].metadata
    );
    assert!(
        pods[0]
            .metadata
            .owner_references
            .iter()
            .any(|o| o.uid == uid)
    );
}

/// `DeleteOptions` as the API server reads them: `orphanDependents`, a Job's default (Orphan,
/// with a warning), a dry run that changes nothing, and a uid precondition.
#[test]
#[allow(clippy::result_large_err)]
fn delete_options_are_read_as_the_api_server_reads_them() {
    use super::requests::Deletion;
    use crate::api::{DeleteOptions, Kind, Propagation};
    let opts = |json: &str| serde_json::from_str::<DeleteOptions>(json).unwrap();
    let job = Deletion::from_options(Kind::Job, opts("{}")).unwrap();
    assert_eq!(job.propagation, Propagation::Orphan);
    assert!(job.warning.is_some());
    let pod = Deletion::from_options(Kind::Pod, opts("{}")).unwrap();
    assert_eq!(
        (pod.propagation, pod.warning),
        (Propagation::Background, None)
    );
    let old = Deletion::from_options(Kind::Job, opts(r#"{"orphanDependents":false}"#)).unwrap();
    assert_eq!(
        (old.propagation, old.warning),
        (Propagation::Background, None)
    );
    let both = r#"{"orphanDependents":true,"propagationPolicy":"Orphan"}"#;
    assert_eq!(
        Deletion::from_options(Kind::Job, opts(both))
            .unwrap_err()
            .code,
        422
    );
    let bad = r#"{"propagationPolicy":"Later"}"#;
    assert_eq!(
        Deletion::from_options(Kind::Job, opts(bad))
            .unwrap_err()
            .code,
        422
    );

    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply("j.yaml", &job_text());
    let uid = only_job(&h).metadata.uid().to_string();
    let ask = |h: &mut Harness, json: &str| {
        let delete = Deletion::from_options(Kind::Job, opts(json)).unwrap();
        h.ask(|reply| super::requests::Request::Delete {
            kind: Kind::Job,
            namespace: "default".into(),
            name: "j".into(),
            delete,
            reply,
        })
    };
    let dry = ask(
        &mut h,
        r#"{"dryRun":["All"],"propagationPolicy":"Background"}"#,
    )
    .unwrap();
    assert_eq!(dry["status"], "Success");
    assert_eq!(
        only_job(&h).metadata.uid(),
        uid,
        "a dry run deleted the Job"
    );
    let stale = ask(&mut h, r#"{"preconditions":{"uid":"someone-else"}}"#).unwrap_err();
    assert_eq!(stale.code, 409);
    assert_eq!(only_job(&h).metadata.uid(), uid);
    let pre = format!(r#"{{"preconditions":{{"uid":"{uid}"}},"propagationPolicy":"Background"}}"#);
    ask(&mut h, &pre).unwrap();
    assert!(h.daemon.world.job_keys().next().is_none());
}

fn job_text() -> String {
    job("j", "Never", "sleep", "")
}

/// "A finished Job never re-runs because a file was touched" (README, "The manifests
/// directory"): moving a finished Job's definition to another file (the new file first, a
/// Conflict while the old one still defines it, then the old file edited to define it no
/// more) must hand the Job over, as a removed file does. Instead the Job is deleted and
/// created anew from the other file, and runs again.
#[test]
fn moving_a_finished_job_to_another_file_does_not_run_it_again() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let other = job("other", "Never", "true", "");
    let moving = job("mv", "Never", "true", "");
    h.apply("a.yaml", &format!("{moving}---\n{other}"));
    let uid = job_named(&h, "mv").metadata.uid().to_string();
    let pod = pods_of(&h, &uid)[0].metadata.uid().to_string();
    h.runtime.exit(&pod, "main", 0);
    h.run();
    assert!(
        job_named(&h, "mv")
            .status
            .as_ref()
            .is_some_and(|s| s.is_finished())
    );
    let starts_before = h.runtime.starts().len();

    h.apply("b.yaml", &moving);
    h.apply("a.yaml", &other);

    assert_eq!(job_named(&h, "mv").metadata.uid(), uid, "the same Job");
    assert_eq!(
        h.runtime.starts().len(),
        starts_before,
        "nothing ran again: {:?}",
        h.runtime.starts()
    );
}

/// Everything the API shows of Jobs and pods, as bytes: lists (JSON and Table, all and
/// by label), each object by itself, and each store record.
fn served_bytes(h: &mut Harness) -> Vec<String> {
    use super::requests::{Filter, Kind, Request};
    let mut out = Vec::new();
    for kind in [Kind::Job, Kind::Pod] {
        for (table, selector) in [(false, None), (true, None), (false, Some("job-name=ok"))] {
            let filter = Filter::parse(selector, None).unwrap();
            let list = h
                .ask(|reply| Request::List {
                    kind,
                    namespace: None,
                    filter,
                    watch: false,
                    table,
                    reply,
                })
                .unwrap();
            out.extend(list.items.iter().map(|i| i.get().to_string()));
        }
        let keys: Vec<super::world::Key> = match kind {
            Kind::Job => h.daemon.world.job_keys().cloned().collect(),
            _ => h.daemon.world.pod_keys().cloned().collect(),
        };
        for k in keys {
            let got = h.ask(|reply| Request::Get {
                kind,
                namespace: k.0.clone(),
                name: k.1.clone(),
                reply,
            });
            out.push(serde_json::to_string(&got.unwrap()).unwrap());
            let store_key = super::world::store_key(kind, &k);
            out.push(h.daemon.world.stored(&store_key).unwrap().get().to_string());
        }
    }
    out.sort();
    out
}

/// A Job that completes (two pods), one that fails and a bare Pod that succeeds, all over.
fn finished_objects(h: &mut Harness) {
    h.apply(
        "ok.yaml",
        &job("ok", "Never", "sleep", "  completions: 2\n"),
    );
    h.apply(
        "bad.yaml",
        &job("bad", "Never", "sleep", "  backoffLimit: 0\n"),
    );
    h.apply("p.yaml", &bare_pod("p", "Never"));
    for _ in 0..2 {
        for (uid, code) in running_pods(h) {
            h.runtime.exit(&uid, "main", code);
        }
        h.advance(1);
        h.run();
    }
}

/// The running pods' uids, each with the exit code the test gives it: 1 for Job "bad".
fn running_pods(h: &Harness) -> Vec<(String, i32)> {
    h.daemon
        .world
        .all_pods()
        .into_iter()
        .filter(|r| r.pod.status.phase.as_str() == "Running")
        .map(|r| {
            let bad = r.pod.metadata.name().starts_with("bad-");
            (r.pod.metadata.uid().to_string(), i32::from(bad))
        })
        .collect()
}

fn all_packed(h: &Harness) -> bool {
    let w = &h.daemon.world;
    w.job_keys()
        .all(|k| w.is_packed(super::requests::Kind::Job, k))
        && w.pod_keys()
            .all(|k| w.is_packed(super::requests::Kind::Pod, k))
}

/// Finished Jobs and pods are held packed, and the API and the store see the very bytes
/// they would see of the typed records.
#[test]
fn settled_records_are_packed_and_served_byte_for_byte() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    finished_objects(&mut h);
    let jobs = h.daemon.world.all_jobs();
    assert_eq!(jobs.len(), 2);
    assert!(
        jobs.iter()
            .all(|r| r.job.status.as_ref().unwrap().is_finished())
    );
    assert_eq!(h.daemon.world.pod_keys().count(), 4);
    assert!(all_packed(&h), "a settled record is still typed");
    let packed = served_bytes(&mut h);
    h.daemon.world.unpack_all();
    assert!(!all_packed(&h));
    assert_eq!(served_bytes(&mut h), packed);
}

/// A watch event carries the object exactly as a list and a GET serve it, field order and
/// all: clients match on bytes (the scale bench looked for `"type":"Complete","status":"True"`
/// and waited forever for events whose keys had come out sorted).
#[test]
fn watch_events_carry_the_objects_as_served() {
    use super::requests::{Filter, Kind, Request};
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let mut watches = [Kind::Job, Kind::Pod].map(|k| (k, h.daemon.changes.subscribe(k)));
    finished_objects(&mut h);
    h.daemon.world.unpack_all();
    for (kind, rx) in &mut watches {
        let mut last = std::collections::BTreeMap::new();
        while let Ok(change) = rx.try_recv() {
            let line: serde_json::Value = serde_json::from_slice(&change.line).unwrap();
            let name = line["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string();
            let text = std::str::from_utf8(&change.line).unwrap().to_string();
            last.insert(name, text);
        }
        let filter = Filter::parse(None, None).unwrap();
        let list = h
            .ask(|reply| Request::List {
                kind: *kind,
                namespace: None,
                filter,
                watch: false,
                table: false,
                reply,
            })
            .unwrap();
        assert_eq!(
            list.items.len(),
            last.len(),
            "{kind:?}: one watched object per item"
        );
        for item in &list.items {
            let name: serde_json::Value = serde_json::from_str(item.get()).unwrap();
            let name = name["metadata"]["name"].as_str().unwrap().to_string();
            let line = &last[&name];
            assert!(
                line.contains(item.get()),
                "{kind:?} {name}: the watch sent\n{line}\nthe list serves\n{}",
                item.get()
            );
            let got = h.ask(|reply| Request::Get {
                kind: *kind,
                namespace: "default".into(),
                name: name.clone(),
                reply,
            });
            assert_eq!(
                serde_json::to_string(&got.unwrap()).unwrap(),
                item.get(),
                "GET {name}"
            );
        }
    }
}

/// While a Job runs, the pods its syncs read (its last counted success, its failures) stay
/// typed; once it has finished, they are packed with it.
#[test]
fn a_running_jobs_pods_that_its_syncs_read_stay_typed() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "ok.yaml",
        &job("ok", "Never", "sleep", "  completions: 2\n"),
    );
    let (first, _) = running_pods(&h).pop().unwrap();
    h.runtime.exit(&first, "main", 0);
    h.run();
    let w = &h.daemon.world;
    let first = w.pod_by_uid[&first].clone();
    assert!(!w.is_packed(super::requests::Kind::Pod, &first));
    assert_eq!(w.pod_keys().count(), 2, "the second pod runs");
    for (uid, _) in running_pods(&h) {
        h.runtime.exit(&uid, "main", 0);
    }
    h.run();
    assert!(all_packed(&h));
}

/// A crash while records are packed loses nothing: the restarted daemon serves the same
/// bytes, and packs them again.
#[test]
fn packed_records_are_served_the_same_after_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    finished_objects(&mut h);
    assert!(all_packed(&h));
    let before = served_bytes(&mut h);
    let mut h = h.crash_and_restart();
    assert!(
        all_packed(&h),
        "a settled record is typed after the restart"
    );
    assert_eq!(served_bytes(&mut h), before);
}

/// What the world holds beside its records, in a stable order.
fn indexes(h: &Harness) -> String {
    use std::collections::BTreeMap;
    let w = &h.daemon.world;
    type Sets = std::collections::HashMap<String, std::collections::BTreeSet<super::world::Key>>;
    fn sorted(m: &Sets) -> BTreeMap<&String, &std::collections::BTreeSet<super::world::Key>> {
        m.iter().collect()
    }
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{}",
        w.pods_of_job,
        sorted(&w.pending_of_job),
        w.last_success_of_job.iter().collect::<BTreeMap<_, _>>(),
        w.pod_by_uid.iter().collect::<BTreeMap<_, _>>(),
        w.manifests,
        w.all_events(),
        serde_json::to_string(&w.all_pods()).unwrap(),
    )
}

/// Allocating the world again (after a burst) changes nothing it holds or serves, typed
/// records of running objects included, and the daemon goes on from it.
#[test]
fn a_rebuilt_world_holds_and_serves_the_same() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    finished_objects(&mut h);
    h.apply("run.yaml", &job("run", "Never", "sleep", ""));
    assert!(!all_packed(&h), "the running Job is typed");
    let before = (served_bytes(&mut h), indexes(&h));
    h.daemon.world.rebuild();
    assert_eq!((served_bytes(&mut h), indexes(&h)), before);
    for (uid, _) in running_pods(&h) {
        h.runtime.exit(&uid, "main", 0);
    }
    h.run();
    assert!(job_named(&h, "run").status.unwrap().is_finished());
    assert!(all_packed(&h));
}

/// A crash right after the world was allocated again loses nothing either.
#[test]
fn a_crash_after_a_rebuild_serves_the_same() {
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    finished_objects(&mut h);
    let before = served_bytes(&mut h);
    h.daemon.world.rebuild();
    let mut h = h.crash_and_restart();
    assert_eq!(served_bytes(&mut h), before);
}

/// Events past the newest few are held packed, and served as the typed events would be:
/// the list, each event by itself, and the Table (in time order).
#[test]
fn packed_events_are_served_as_typed() {
    use super::requests::{Filter, Kind, Request};
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    h.apply(
        "many.yaml",
        &job("many", "Never", "sleep", "  completions: 8\n"),
    );
    for _ in 0..8 {
        for (uid, _) in running_pods(&h) {
            h.runtime.exit(&uid, "main", 0);
        }
        h.advance(1);
        h.run();
    }
    let events = h.daemon.world.all_events();
    assert_eq!(h.daemon.world.packed_events(), 0, "packed only once quiet");
    h.daemon.give_memory_back();
    assert!(
        h.daemon.world.packed_events() > 0,
        "{} events",
        events.len()
    );
    assert_eq!(h.daemon.world.all_events(), events);
    let now = h.clock.now();
    let mut list = |table| {
        let filter = Filter::parse(None, None).unwrap();
        h.ask(|reply| Request::List {
            kind: Kind::Event,
            namespace: None,
            filter,
            watch: false,
            table,
            reply,
        })
        .unwrap()
        .items
        .iter()
        .map(|i| i.get().to_string())
        .collect::<Vec<_>>()
    };
    let typed: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert_eq!(list(false), typed);
    let mut in_time_order = events.clone();
    crate::printers::sort_events(&mut in_time_order);
    let cells: Vec<Vec<String>> = list(true)
        .iter()
        .map(|row| serde_json::from_str::<serde_json::Value>(row).unwrap()["cells"].clone())
        .map(|c| serde_json::from_value(c).unwrap())
        .collect();
    let expected: Vec<Vec<String>> = in_time_order
        .iter()
        .map(|e| crate::printers::event_row(e, now, true))
        .collect();
    assert_eq!(cells, expected);
    for e in &events {
        let got = h.ask(|reply| Request::Get {
            kind: Kind::Event,
            namespace: e.metadata.namespace().into(),
            name: e.metadata.name().into(),
            reply,
        });
        assert_eq!(got.unwrap(), serde_json::to_value(e).unwrap());
    }
}

/// A ConfigMap in `cfg.yaml`: `data` lines under `data:`, `extra` top-level lines.
fn configmap(data: &str, extra: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n{extra}data:\n{data}")
}

/// A declared kind end to end: a ConfigMap file is served with an identity and stored (a
/// restart keeps it, uid and all); an edit updates it in place; once `immutable`, an edit
/// of its data is refused as the API server refuses it and the object stays; a DELETE
/// removes the file and the object; and a file that drops its ConfigMap deletes it.
#[test]
#[allow(clippy::result_large_err)] // the Status is the API's answer as it is
fn a_configmap_follows_its_file_and_is_deleted_with_it() {
    use super::requests::{Deletion, Request};
    use super::world::key;
    use crate::api::{Kind, ManifestState};

    let root = tempfile::tempdir().unwrap();
    let mut h = Harness::new(root.path(), Config::default());
    let k = key("default", "cfg");
    let get = |h: &mut Harness| {
        h.ask(|reply| Request::Get {
            kind: Kind::ConfigMap,
            namespace: "default".into(),
            name: "cfg".into(),
            reply,
        })
    };
    let mut watch = h.daemon.changes.subscribe(Kind::ConfigMap);
    let seen = |watch: &mut tokio::sync::broadcast::Receiver<_>| {
        let change: std::sync::Arc<super::requests::Change> = watch.try_recv().expect("a change");
        (change.type_, change.object["data"].clone())
    };
    h.apply("cfg.yaml", &configmap("  a: \"1\"\n", ""));
    assert_eq!(seen(&mut watch), ("ADDED", serde_json::json!({"a": "1"})));
    let served = get(&mut h).expect("served");
    let uid = served["metadata"]["uid"]
        .as_str()
        .expect("a uid")
        .to_string();
    assert_eq!(served["data"], serde_json::json!({"a": "1"}));
    assert_eq!(served["kind"], "ConfigMap");
    assert!(
        served["metadata"]["creationTimestamp"].is_string(),
        "{served}"
    );
    assert!(h.daemon.world.stored("configmaps/default/cfg").is_some());

    let mut h = h.crash_and_restart();
    assert_eq!(get(&mut h).unwrap()["metadata"]["uid"], uid.as_str());

    let mut watch = h.daemon.changes.subscribe(Kind::ConfigMap);
    h.apply("cfg.yaml", &configmap("  a: \"2\"\n", ""));
    assert_eq!(
        seen(&mut watch),
        ("MODIFIED", serde_json::json!({"a": "2"}))
    );
    let served = get(&mut h).unwrap();
    assert_eq!(served["data"], serde_json::json!({"a": "2"}));
    assert_eq!(served["metadata"]["uid"], uid.as_str(), "updated in place");

    h.apply("cfg.yaml", &configmap("  a: \"3\"\n", "immutable: true\n"));
    assert_eq!(
        get(&mut h).unwrap()["data"]["a"],
        "3",
        "made immutable with it"
    );
    let path = h.daemon.layout.manifests.join("cfg.yaml");
    h.apply("cfg.yaml", &configmap("  a: \"4\"\n", "immutable: true\n"));
    let m = &h.daemon.world.manifests[&path];
    assert_eq!(m.file.state, ManifestState::Invalid);
    assert_eq!(
        m.file.errors,
        [format!(
            "{}: The ConfigMap \"cfg\" is invalid: data: Forbidden: field is immutable when `immutable` is set",
            path.display()
        )]
    );
    assert_eq!(get(&mut h).unwrap()["data"]["a"], "3", "the object stays");

    std::fs::write(&path, configmap("  a: \"3\"\n", "immutable: true\n")).unwrap();
    let answer = h
        .ask(|reply| Request::Delete {
            kind: Kind::ConfigMap,
            namespace: "default".into(),
            name: "cfg".into(),
            delete: Deletion::default(),
            reply,
        })
        .expect("deleted");
    assert_eq!(answer["status"], "Success", "{answer}");
    let types: Vec<&str> = std::iter::from_fn(|| watch.try_recv().ok())
        .map(|c| c.type_)
        .collect();
    assert_eq!(
        types,
        ["MODIFIED", "DELETED"],
        "made immutable, then deleted"
    );
    assert!(!path.exists(), "its file went first");
    assert!(h.daemon.world.declared(Kind::ConfigMap, &k).is_none());
    assert!(h.daemon.world.stored("configmaps/default/cfg").is_none());

    let refused = h
        .ask(|reply| Request::Create {
            kind: Kind::ConfigMap,
            namespace: "default".into(),
            body: configmap("  a: \"1\"\n", ""),
            reply,
        })
        .expect_err("created from files only");
    assert_eq!((refused.code, refused.reason.as_str()), (403, "Forbidden"));
    assert!(h.daemon.world.declared(Kind::ConfigMap, &k).is_none());

    h.apply("other.yaml", &configmap("  b: \"1\"\n", ""));
    assert!(h.daemon.world.declared(Kind::ConfigMap, &k).is_some());
    h.apply("other.yaml", "");
    assert!(
        h.daemon.world.declared(Kind::ConfigMap, &k).is_none(),
        "a file that no longer defines it deletes it"
    );
}
