//! Durable before visible: nothing is reported before the store has it on disk, and nothing
//! is started before it is recorded (as an API server acknowledges only what etcd committed).
//!
//! Three things wait here for the batch that covers them to be fsynced:
//! - watch changes and events (`publish`): the batch holding the change they report;
//! - API answers (`answer_when_durable`): the batch covering the state they were read from;
//! - container starts (`start_when_recorded`): the batch holding the pod with that run in
//!   `ContainerCreating`, so a process never runs without a pod that accounts for it.
//!
//! Each waits for a `seq` that `Store::covering_seq` gave it when it was queued; seqs only
//! grow, so each queue is released from the front. Group commit keeps this cheap: the loop
//! hands the store a batch whenever the writer is idle, and everything that happened while
//! the writer was busy goes into the next one (one fsync each, never one per pod).

use std::collections::VecDeque;

use super::Daemon;
use super::requests::Change;
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
        let seq = self.store.covering_seq();
        self.gate.changes.push_back((seq, change));
    }

    /// Queues a container start until its pod's current state is on disk.
    pub(super) fn start_when_recorded(&mut self, launch: ContainerLaunch) {
        let seq = self.store.covering_seq();
        self.gate.starts.push_back((seq, launch));
    }

    /// Sends an API answer once the state it was read from is on disk.
    pub(super) fn answer_when_durable(&mut self, answer: HeldAnswer) {
        let seq = self.store.covering_seq();
        if seq <= self.gate.durable {
            answer(None);
        } else if let Some(why) = &self.problems.store {
            answer(Some(store_unavailable(why)));
        } else {
            self.gate.answers.push_back((seq, answer));
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
        let Some(rec) = self.world.pods.get(&k) else {
            return;
        };
        let waiting = rec.pod.status.container_statuses.iter().any(|c| {
            c.name == launch.container
                && c.restart_count == launch.restart_count
                && c.state.waiting.as_ref().and_then(|w| w.reason.as_deref())
                    == Some("ContainerCreating")
        });
        if !waiting {
            return;
        }
        let cancelled = self.shutting_down || rec.pod.metadata.deletion_timestamp.is_some();
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
                reason: "ContainerStatusUnknown".into(),
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
        if e.type_ == "Warning" {
            tracing::error!(reason = %e.reason, "{}", e.message);
        }
        let before = self.gate.changes.len();
        self.record_event(involved, e, "jobvisor");
        // Released now, ahead of changes still waiting for the disk.
        if self.gate.changes.len() > before
            && let Some((_, change)) = self.gate.changes.pop_back()
        {
            self.changes.send(change);
        }
    }

    /// `STATUS=` for systemd whenever what keeps the daemon from its job changes.
    pub(super) fn notify_problems(&mut self) {
        if self.problems != self.notified_problems {
            self.notified_problems = self.problems.clone();
            super::serve::notify(&format!("STATUS={}", self.problems.status_line()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_durable_fronts_are_released() {
        let mut q: VecDeque<(u64, &str)> = [(1, "a"), (2, "b"), (2, "c"), (3, "d")].into();
        assert_eq!(take_durable(&mut q, 0), Vec::<&str>::new());
        assert_eq!(take_durable(&mut q, 2), ["a", "b", "c"]);
        assert_eq!(take_durable(&mut q, 2), Vec::<&str>::new());
        assert_eq!(take_durable(&mut q, 9), ["d"]);
    }
}
