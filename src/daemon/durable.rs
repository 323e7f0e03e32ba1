//! Durable before visible: nothing is reported before the store has it on disk, and nothing
//! is started before it is recorded (as an API server acknowledges only what etcd committed).
//!
//! Three things wait here for the batch that covers them to be fsynced:
//! - watch changes and events (`publish`): the batch holding the change they report;
//! - API answers (`answer_when_durable`): the batch covering the state they were read from;
//! - container starts (`start_when_recorded`): the batch holding the pod with that run in
//!   `ContainerCreating`, so a process never runs without a pod that accounts for it.
//!
//! What a turn queues is stamped at the end of the turn (`stamp`), after every change the turn
//! made is marked in the store, with `Store::covering_seq`: the batch that will hold all of
//! it. Stamping when queued would be wrong, since code often records an event or decides a
//! start before it marks the object changed. Seqs only grow, so each queue is released from
//! the front. Group commit keeps this cheap: the loop
//! hands the store a batch whenever the writer is idle, and everything that happened while
//! the writer was busy goes into the next one (one fsync each, never one per pod).

use std::collections::VecDeque;

use super::Daemon;
use super::requests::{Change, Kind};
use crate::api::{ObjectReference, Status};
use crate::controller::EventSpec;
use crate::runtime::{ContainerLaunch, ExitInfo};
use crate::store::Durability;

/// An API answer computed from the current state; called with `None` to send it, or with
/// the error to send instead (the store cannot write).
pub type HeldAnswer = Box<dyn FnOnce(Option<Status>) + Send>;

#[derive(Default)]
pub struct Gate {
    /// The last `seq` the writer reported fsynced.
    pub durable: u64,
    /// Numbers every published change, so a watch skips what its initial list already holds.
    last_change_id: u64,
    /// Queued during this turn, not yet stamped with the batch that covers them.
    turn_changes: Vec<Change>,
    turn_starts: Vec<ContainerLaunch>,
    turn_answers: Vec<HeldAnswer>,
    changes: VecDeque<(u64, Change)>,
    starts: VecDeque<(u64, ContainerLaunch)>,
    answers: VecDeque<(u64, HeldAnswer)>,
}

impl Gate {
    pub fn new(durable: u64) -> Gate {
        Gate {
            durable,
            ..Default::default()
        }
    }

    /// Gives back what the queues no longer hold.
    pub fn shrink_to_fit(&mut self) {
        self.turn_changes.shrink_to_fit();
        self.turn_starts.shrink_to_fit();
        self.turn_answers.shrink_to_fit();
        self.changes.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.answers.shrink_to_fit();
    }

    /// The id of the last change published or queued: a watch that lists now has seen it.
    pub fn last_change_id(&self) -> u64 {
        self.last_change_id
    }
}

/// Pops the front entries of a queue whose seq is durable.
fn take_durable<T>(queue: &mut VecDeque<(u64, T)>, durable: u64) -> Vec<T> {
    let n = queue.iter().take_while(|(seq, _)| *seq <= durable).count();
    queue.drain(..n).map(|(_, t)| t).collect()
}

fn store_unavailable(why: &str) -> Status {
    Status::failure(
        503,
        "ServiceUnavailable",
        format!(
            "the jobvisor store cannot write ({why}): jobvisor reports only what is on disk; \
             try again once it can"
        ),
    )
}

impl Daemon {
    /// Queues a watch change (or event) until the batch covering it is on disk.
    pub(super) fn publish(&mut self, mut change: Change) {
        self.gate.last_change_id += 1;
        change.id = self.gate.last_change_id;
        self.gate.turn_changes.push(change);
    }

    /// Queues a container start until its pod's current state is on disk.
    pub(super) fn start_when_recorded(&mut self, launch: ContainerLaunch) {
        self.gate.turn_starts.push(launch);
    }

    /// Sends an API answer once the state it was read from is on disk.
    pub(super) fn answer_when_durable(&mut self, answer: HeldAnswer) {
        self.gate.turn_answers.push(answer);
    }

    /// End of a turn, once every change it made is marked in the store: what the turn queued
    /// waits for the batch that holds all of it.
    pub(super) fn stamp(&mut self) {
        let seq = self.store.covering_seq();
        let g = &mut self.gate;
        g.changes.extend(g.turn_changes.drain(..).map(|c| (seq, c)));
        g.starts.extend(g.turn_starts.drain(..).map(|l| (seq, l)));
        let answers = std::mem::take(&mut g.turn_answers);
        self.expire_watches_past_backlog();
        for answer in answers {
            match &self.problems.store {
                Some(why) if seq > self.gate.durable => answer(Some(store_unavailable(why))),
                _ => self.gate.answers.push_back((seq, answer)),
            }
        }
    }

    /// Changes held for the disk are bounded by `api.watchBacklog`: released all at once,
    /// more than that would put every watcher behind its buffer anyway. Past it (a store that
    /// cannot write while clients watch, or a burst of thousands of objects), they are dropped
    /// and every watch ends now with `ERROR` 410 `Expired`, so its client lists again.
    fn expire_watches_past_backlog(&mut self) {
        let held = self.gate.changes.len();
        if held <= self.cfg.api.watch_backlog {
            return;
        }
        self.gate.changes.clear();
        tracing::warn!(
            held,
            "more watch changes wait for the disk than api.watchBacklog: ending every watch with 410 Expired"
        );
        for kind in [Kind::Job, Kind::Pod, Kind::Event] {
            let mut end = Change::expired(kind, held as u64);
            self.gate.last_change_id += 1;
            end.id = self.gate.last_change_id;
            self.changes.send(end);
        }
    }

    /// What the store's writer reported.
    pub(super) fn on_durability(&mut self, d: Durability) {
        match d {
            Durability::Durable(seq) => {
                self.gate.durable = self.gate.durable.max(seq);
                if let Some(was) = self.problems.store.take() {
                    tracing::info!(after = %was, "state is written again");
                    self.store_event(EventSpec::normal(
                        "StateWritten",
                        format!("jobvisor writes its state again (it failed with: {was})"),
                    ));
                }
            }
            Durability::Failing(why) => {
                if self.problems.store.as_deref() != Some(&why) {
                    self.store_event(EventSpec::warning(
                        "StateNotWritten",
                        format!(
                            "jobvisor cannot write its state: {why}; running containers go on, \
                             new ones wait, and nothing new is reported until it can"
                        ),
                    ));
                }
                self.problems.store = Some(why.clone());
                let held: Vec<HeldAnswer> = self.gate.answers.drain(..).map(|(_, a)| a).collect();
                for answer in held {
                    answer(Some(store_unavailable(&why)));
                }
            }
        }
        self.release();
    }

    /// Everything whose batch is on disk goes out: changes first (an answer may be a watch's
    /// start), then starts, then answers.
    pub(super) fn release(&mut self) {
        let durable = self.gate.durable;
        for change in take_durable(&mut self.gate.changes, durable) {
            self.changes.send(change);
        }
        for launch in take_durable(&mut self.gate.starts, durable) {
            self.start_if_still_wanted(launch);
        }
        for answer in take_durable(&mut self.gate.answers, durable) {
            answer(None);
        }
    }

    /// A start waited for the disk; meanwhile its pod may have been deleted, or the daemon may
    /// be shutting down. Then the run never happens, and it ends as the kubelet ends a
    /// container of a terminated pod that never ran (`ContainerStatusUnknown`, 137).
    fn start_if_still_wanted(&mut self, launch: ContainerLaunch) {
        let Some(k) = self.world.pod_by_uid.get(&launch.pod_uid).cloned() else {
            return;
        };
        let Some(rec) = self.world.pod(&k) else {
            return;
        };
        let waiting = rec.pod.status.container_statuses.iter().any(|c| {
            c.name == launch.container && c.restart_count == launch.restart_count && c.is_creating()
        });
        if !waiting {
            return;
        }
        let cancelled = self.shutting_down || rec.pod.metadata.deletion_timestamp.is_some();
        drop(rec);
        if !cancelled {
            self.runtime.start(launch);
            return;
        }
        let now = self.clock.now();
        self.on_runtime(crate::runtime::RuntimeEvent::Exited {
            pod_uid: launch.pod_uid,
            container: launch.container,
            restart_count: launch.restart_count,
            exit: ExitInfo {
                exit_code: 137,
                signal: None,
                reason: crate::api::TerminatedReason::ContainerStatusUnknown,
                message: Some(
                    "The container could not be located when the pod was terminated".into(),
                ),
                started_at: now,
                finished_at: now,
            },
        });
    }

    /// An event about the store itself: published at once, since it reports no stored change.
    fn store_event(&mut self, e: EventSpec) {
        let involved = ObjectReference {
            kind: "Node".into(),
            namespace: String::new(),
            name: self.node_name.clone(),
            uid: self.node_name.clone(),
            api_version: Some("v1".into()),
        };
        if e.type_ == crate::api::EventType::Warning {
            tracing::error!(reason = %e.reason, "{}", e.message);
        }
        let before = self.gate.turn_changes.len();
        self.record_event(involved, e, "jobvisor");
        // Released now, ahead of changes still waiting for the disk.
        if self.gate.turn_changes.len() > before
            && let Some(change) = self.gate.turn_changes.pop()
        {
            self.changes.send(change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::daemon::testing::{daemon_in, job, settle};
    use crate::runtime::RuntimeEvent;

    /// The pod's one container run number and its record as the store will hold it.
    fn recorded_run(d: &Daemon) -> (String, i32, String) {
        let rec = d.world.all_pods().pop().expect("a pod");
        let cs = &rec.pod.status.container_statuses[0];
        let json = d
            .world
            .stored(&super::super::world::pod_store_key(
                &super::super::world::key("default", rec.pod.metadata.name()),
            ))
            .map(|v| v.get().to_string())
            .unwrap_or_default();
        (rec.pod.metadata.uid().to_string(), cs.restart_count, json)
    }

    /// More changes waiting for the disk than `api.watchBacklog` are not kept: every watch
    /// is ended with 410 Expired at once (released later, they would overrun it anyway).
    #[test]
    fn held_changes_past_the_backlog_end_the_watches() {
        let root = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.api.watch_backlog = 8;
        let (mut d, _, _) = daemon_in(root.path(), cfg);
        let mut pods = d.changes.subscribe(Kind::Pod);
        let path = root.path().join("manifests/wide.yaml");
        let text = job(
            "wide",
            "Never",
            "true",
            "  completions: 20\n  parallelism: 20\n",
        );
        d.apply_text(&path, text, true);
        // No durability report is taken: all 20 pods' changes wait for the disk.
        d.turn();
        assert!(d.gate.changes.len() <= 8, "{} held", d.gate.changes.len());
        let end = pods.try_recv().expect("the watch was told at once");
        assert!(end.ends_watches());
        let line = String::from_utf8_lossy(&end.line);
        assert!(
            line.contains("\"code\":410") && line.contains("Expired"),
            "{line}"
        );
    }

    /// Every start, the first and the restarts after a CrashLoopBackOff timer alike, waits
    /// for the record of that run; nothing is released in the turn that decided it.
    #[test]
    fn every_start_waits_for_its_record() {
        let root = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.backoff.container_restart_base = std::time::Duration::from_secs(10);
        let (mut d, clock, runtime) = daemon_in(root.path(), cfg);
        let mut rx = d.durability_rx.take().unwrap();
        let path = root.path().join("manifests/j.yaml");
        let text = job("j", "OnFailure", "false", "  backoffLimit: 100\n");
        d.apply_text(&path, text, true);
        d.turn();
        assert_eq!(runtime.starts(), [], "started before the pod was on disk");
        settle(&mut d, &mut rx);
        assert_eq!(runtime.starts().len(), 1);

        for run in 0..3 {
            let (uid, restart_count, _) = recorded_run(&d);
            assert_eq!(restart_count, run);
            let now = clock.now();
            d.on_runtime(RuntimeEvent::Started {
                pod_uid: uid.clone(),
                container: "main".into(),
                restart_count,
                pid: 4242,
                proc_start: None,
                started_at: now,
            });
            d.turn();
            settle(&mut d, &mut rx);
            clock.advance(jiff::SignedDuration::from_secs(1));
            let before = runtime.starts().len();
            d.on_runtime(RuntimeEvent::Exited {
                pod_uid: uid.clone(),
                container: "main".into(),
                restart_count,
                exit: ExitInfo {
                    exit_code: 1,
                    signal: None,
                    reason: crate::api::TerminatedReason::Error,
                    message: None,
                    started_at: now,
                    finished_at: clock.now(),
                },
            });
            d.turn();
            let early = format!("restart {} started before it was recorded", run + 1);
            assert_eq!(runtime.starts().len(), before, "{early}");
            settle(&mut d, &mut rx);
            if runtime.starts().len() == before {
                // In CrashLoopBackOff: the timer fires with nothing else changed.
                clock.advance(jiff::SignedDuration::from_secs(3600));
                let k = d.world.pod_keys().next().unwrap().clone();
                d.dirty_pods.insert(k);
                d.turn();
                assert_eq!(runtime.starts().len(), before, "{early}");
                settle(&mut d, &mut rx);
            }
            let (_, restart_count, json) = recorded_run(&d);
            assert_eq!(restart_count, run + 1);
            assert!(json.contains("ContainerCreating"), "{json}");
            assert_eq!(runtime.starts().len(), before + 1);
        }
    }

    /// A declared object (a ConfigMap) is durable before visible like any object: its watch
    /// event waits for the store to report its record written; its delete likewise.
    #[test]
    fn a_declared_object_is_seen_only_once_on_disk() {
        let root = tempfile::tempdir().unwrap();
        let (mut d, _, _) = daemon_in(root.path(), Config::default());
        let mut rx = d.durability_rx.take().unwrap();
        let mut watch = d.changes.subscribe(Kind::ConfigMap);
        let path = root.path().join("manifests/cm.yaml");
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x}\n";
        d.apply_text(&path, text.into(), true);
        d.turn();
        assert!(watch.try_recv().is_err(), "published before it was on disk");
        settle(&mut d, &mut rx);
        assert_eq!(
            watch.try_recv().expect("published once on disk").type_,
            "ADDED"
        );
        d.apply_text(&path, String::new(), true);
        d.turn();
        assert!(
            watch.try_recv().is_err(),
            "deletion published before it was on disk"
        );
        settle(&mut d, &mut rx);
        assert_eq!(watch.try_recv().expect("then published").type_, "DELETED");
    }

    #[test]
    fn only_durable_fronts_are_released() {
        let mut q: VecDeque<(u64, &str)> = [(1, "a"), (2, "b"), (2, "c"), (3, "d")].into();
        assert_eq!(take_durable(&mut q, 0), Vec::<&str>::new());
        assert_eq!(take_durable(&mut q, 2), ["a", "b", "c"]);
        assert_eq!(take_durable(&mut q, 2), Vec::<&str>::new());
        assert_eq!(take_durable(&mut q, 9), ["d"]);
    }
}
