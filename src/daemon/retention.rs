//! The logs of deleted pods: kept `logs.retainDeleted` after the pod left the store, within
//! `logs.retainDeletedBytes` together, then removed oldest deletion first, each removal a
//! Normal `LogsRemoved` event about the pod. What goes is decided by the pure
//! `controller::retention::decide`; this carries it out.
//!
//! - **When a pod is removed** from the world, its deletion time is recorded in the store
//!   (`logs/<pod uid>`) in the same batch that removes the pod, so a restart never loses it.
//! - **A sweep** runs at start, shortly after removals (one per [`AFTER_REMOVAL`], however many
//!   pods went), and when the oldest entry expires (`Target::LogSweep`); never by polling.
//!   It has two steps on the blocking pool, never on the loop: measure the entries not measured
//!   yet and list the spool for directories nobody knows (`runtime::spool`); then, after
//!   the loop decided, remove the directories. Each step's report comes back on a channel the
//!   loop selects on. One sweep at a time; a sweep asked for meanwhile runs after it.
//! - **A directory goes before its record**: a crash between the two leaves a record whose
//!   directory is gone, which the next sweep drops. The other order would leave a directory
//!   without a record, adopted again with a fresh retention.
//! - **Directories nobody knows** (no pod, no record: logs from before these records, or a pod
//!   removed without `retain_logs`) are adopted, their modification time taken as the
//!   deletion time.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Daemon, Target};
use crate::api::{ObjectReference, Pod};
use crate::controller::EventSpec;
use crate::controller::retention::{self, Entry, Holder, Limits, Reason, SpoolEntry};
use crate::runtime::spool::{self, Found};

/// The logs of one pod removed from the store. Store key: [`store_key`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedLogs {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// When the pod was removed from the store (adopted: the directory's modification time).
    pub deleted_at: Timestamp,
    /// Found in the spool without a pod or a record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// Size as last measured. The logs of a removed pod no longer grow, so it is measured once
    /// per daemon start; not stored.
    #[serde(skip)]
    pub bytes: Option<u64>,
}

pub const STORE_PREFIX: &str = "logs/";

pub fn store_key(uid: &str) -> String {
    format!("{STORE_PREFIX}{uid}")
}

/// A sweep follows a pod removal this much later, so a burst of removals costs one sweep.
const AFTER_REMOVAL: Duration = Duration::from_secs(2);

/// After a step failed (a directory that cannot be removed or measured), the next sweep is
/// at least this far off: the failure is retried without spinning.
const AFTER_FAILURE: Duration = Duration::from_secs(60);

/// What a sweep's step on the blocking pool found.
#[derive(Debug)]
pub enum SweepReport {
    Measured {
        /// Per uid asked for: its size, `None` when it has no directory.
        sizes: Vec<(String, Result<Option<u64>, String>)>,
        /// The spool's directories of unknown uids.
        unknown: Result<Vec<Found>, String>,
        /// Every directory of the spool, when the sweep surveyed it for the spool cap.
        survey: Option<Vec<Found>>,
    },
    Removed(Vec<(String, Result<(), String>)>),
}

/// The sweep's bookkeeping, and the channel its steps report on.
pub struct Sweeper {
    tx: mpsc::UnboundedSender<SweepReport>,
    /// Taken by the loop (or the test harness), which hands reports to `on_log_sweep`.
    pub rx: Option<mpsc::UnboundedReceiver<SweepReport>>,
    in_flight: bool,
    /// A sweep was asked for while one ran.
    again: bool,
    /// The current sweep had a step fail.
    failed: bool,
    /// When the oldest entry the current sweep keeps expires.
    next_due: Option<Timestamp>,
    /// Why each directory being removed goes, and the pod its event is about.
    reasons: HashMap<String, (Reason, ObjectReference)>,
    /// The next sweep measures the whole spool for `logs.spoolMaxSize` (at start, and when
    /// what was written since the last survey may have taken it past the cap).
    survey_due: bool,
    /// The spool's size at the last survey, less what was removed since.
    spool_bytes: u64,
    /// The runtime's bytes-written counter at the last survey.
    written_at_survey: u64,
}

impl Sweeper {
    pub fn new() -> Sweeper {
        let (tx, rx) = mpsc::unbounded_channel();
        Sweeper {
            tx,
            rx: Some(rx),
            in_flight: false,
            again: false,
            failed: false,
            next_due: None,
            reasons: HashMap::new(),
            survey_due: true,
            spool_bytes: 0,
            written_at_survey: 0,
        }
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }
}

fn pod_ref(e: &DeletedLogs) -> ObjectReference {
    ObjectReference {
        kind: "Pod".into(),
        namespace: e.namespace.clone(),
        name: e.name.clone(),
        uid: e.uid.clone(),
        api_version: Some("v1".into()),
    }
}

/// Runs `work` on the blocking pool and reports its result to the loop.
fn off_the_loop(
    tx: &mpsc::UnboundedSender<SweepReport>,
    work: impl FnOnce() -> SweepReport + Send + 'static,
) {
    let tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        // The loop is gone only when the daemon stops: nothing is left to report to.
        let _ = tx.send(work());
    });
}

impl Daemon {
    fn limits(&self) -> Limits {
        Limits {
            retain: self.cfg.logs.retain_deleted,
            max_bytes: self.cfg.logs.retain_deleted_bytes,
        }
    }

    fn pod_dir(&self, e: &DeletedLogs) -> Option<PathBuf> {
        spool::pod_dir(&self.layout.logs, &e.namespace, &e.name, &e.uid)
    }

    /// The pod has just been removed from the world: its logs are kept from now on. Call it
    /// wherever a pod leaves the world, in the same turn (so the same batch).
    pub(super) fn retain_logs(&mut self, pod: &Pod) {
        let entry = DeletedLogs {
            namespace: pod.metadata.namespace().to_string(),
            name: pod.metadata.name().to_string(),
            uid: pod.metadata.uid().to_string(),
            deleted_at: self.clock.now(),
            adopted: false,
            bytes: None,
        };
        self.store.touch(store_key(&entry.uid));
        self.world.deleted_logs.insert(entry.uid.clone(), entry);
        self.schedule(AFTER_REMOVAL, Target::LogSweep);
    }

    /// A sweep soon: at start, for entries that expired while the daemon was down and for
    /// directories from before it kept records.
    pub(super) fn sweep_logs_soon(&mut self) {
        self.schedule(Duration::ZERO, Target::LogSweep);
    }

    /// `Target::LogSweep`: measures what is not measured yet and looks for unknown
    /// directories, on the blocking pool.
    pub(super) fn sweep_logs(&mut self) {
        if self.shutting_down {
            return;
        }
        if self.retention.in_flight {
            self.retention.again = true;
            return;
        }
        self.retention.in_flight = true;
        self.retention.failed = false;
        let known: HashSet<String> = self
            .world
            .pod_by_uid
            .keys()
            .chain(self.world.deleted_logs.keys())
            .cloned()
            .collect();
        let mut to_measure = Vec::new();
        let mut invalid = Vec::new();
        for e in self
            .world
            .deleted_logs
            .values()
            .filter(|e| e.bytes.is_none())
        {
            match self.pod_dir(e) {
                Some(dir) => to_measure.push((e.uid.clone(), dir)),
                None => invalid.push(e.uid.clone()),
            }
        }
        for uid in invalid {
            // Only a hand-edited state gets here; such a path is never walked or removed.
            tracing::warn!(
                uid,
                "dropping a deleted pod's log record that names no directory in the spool"
            );
            self.forget(&uid);
        }
        let root = self.layout.logs.clone();
        let survey = std::mem::take(&mut self.retention.survey_due);
        if survey {
            // Before the walk: what is written meanwhile counts towards the next survey.
            self.retention.written_at_survey = self.runtime.log_bytes_written();
        }
        off_the_loop(&self.retention.tx, move || {
            measure(&root, &known, to_measure, survey)
        });
    }

    /// After a container run ended: if what was written to logs since the last survey may
    /// have taken the spool past `logs.spoolMaxSize`, a sweep soon measures it whole.
    pub(super) fn check_spool(&mut self) {
        let written = self
            .runtime
            .log_bytes_written()
            .saturating_sub(self.retention.written_at_survey);
        if self.retention.spool_bytes.saturating_add(written) > self.cfg.logs.spool_max_size
            && !self.retention.survey_due
        {
            self.retention.survey_due = true;
            self.schedule(AFTER_REMOVAL, Target::LogSweep);
        }
    }

    pub(super) fn on_log_sweep(&mut self, report: SweepReport) {
        match report {
            SweepReport::Measured {
                sizes,
                unknown,
                survey,
            } => {
                self.took_measure(sizes, unknown);
                self.decide_removals(survey);
            }
            SweepReport::Removed(results) => {
                self.took_removals(results);
                self.end_sweep();
            }
        }
    }

    fn forget(&mut self, uid: &str) {
        if self.world.deleted_logs.remove(uid).is_some() {
            self.store.touch(store_key(uid));
        }
    }

    fn took_measure(
        &mut self,
        sizes: Vec<(String, Result<Option<u64>, String>)>,
        unknown: Result<Vec<Found>, String>,
    ) {
        for (uid, size) in sizes {
            match size {
                Ok(Some(bytes)) => {
                    if let Some(e) = self.world.deleted_logs.get_mut(&uid) {
                        e.bytes = Some(bytes);
                    }
                }
                // The pod never wrote a line (or its directory went and a crash kept the
                // record): nothing is kept, so there is nothing to remove or report.
                Ok(None) => self.forget(&uid),
                Err(e) => {
                    tracing::warn!(uid, error = %e, "cannot measure a deleted pod's logs; counted as empty until measured");
                    self.retention.failed = true;
                }
            }
        }
        let found = match unknown {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for log directories without a pod");
                self.retention.failed = true;
                Vec::new()
            }
        };
        for f in found {
            // Listed off the loop: a pod created or removed meanwhile is known by now.
            if self.world.pod_by_uid.contains_key(&f.uid)
                || self.world.deleted_logs.contains_key(&f.uid)
            {
                continue;
            }
            tracing::info!(pod = %format!("{}/{}", f.namespace, f.name), uid = %f.uid, deleted_at = %f.modified, "log directory without a pod: kept as a deleted pod's logs, deleted when it was last modified");
            self.store.touch(store_key(&f.uid));
            self.world.deleted_logs.insert(
                f.uid.clone(),
                DeletedLogs {
                    namespace: f.namespace,
                    name: f.name,
                    uid: f.uid,
                    deleted_at: f.modified,
                    adopted: true,
                    bytes: Some(f.bytes),
                },
            );
        }
    }

    /// The pure rules over every entry (and, after a survey, the spool cap); what goes is
    /// removed on the blocking pool.
    fn decide_removals(&mut self, survey: Option<Vec<Found>>) {
        let now = self.clock.now();
        let limits = self.limits();
        let entries: Vec<Entry> = self
            .world
            .deleted_logs
            .values()
            .map(|e| Entry {
                uid: &e.uid,
                namespace: &e.namespace,
                name: &e.name,
                deleted_at: e.deleted_at,
                bytes: e.bytes.unwrap_or(0),
            })
            .collect();
        let decision = retention::decide(&entries, limits, now);
        self.retention.next_due = decision.next_due;
        let mut reasons: HashMap<String, (Reason, ObjectReference)> = HashMap::new();
        let mut doomed: Vec<(String, PathBuf)> = Vec::new();
        for (uid, reason) in &decision.remove {
            if let Some(e) = self.world.deleted_logs.get(*uid)
                && let Some(dir) = self.pod_dir(e)
            {
                doomed.push((e.uid.clone(), dir));
                reasons.insert(e.uid.clone(), (*reason, pod_ref(e)));
            }
        }
        drop(entries);
        if let Some(survey) = survey {
            for (uid, dir, reason, involved) in self.over_spool(&survey, &reasons) {
                reasons.insert(uid.clone(), (reason, involved));
                doomed.push((uid, dir));
            }
        }
        if doomed.is_empty() || self.shutting_down {
            self.end_sweep();
            return;
        }
        self.retention.reasons = reasons;
        off_the_loop(&self.retention.tx, move || remove(doomed));
    }

    /// The spool cap over a survey of the whole spool, the directories `going` already go
    /// left out: which pods' logs go too, each with its directory, reason and pod.
    fn over_spool(
        &mut self,
        survey: &[Found],
        going: &HashMap<String, (Reason, ObjectReference)>,
    ) -> Vec<(String, PathBuf, Reason, ObjectReference)> {
        let cap = self.cfg.logs.spool_max_size;
        let active: HashSet<&str> = self
            .world
            .unsettled_pods()
            .filter(|(_, r)| !r.pod.status.phase.is_terminal())
            .map(|(_, r)| r.pod.metadata.uid())
            .collect();
        let left: Vec<&Found> = survey
            .iter()
            .filter(|f| !going.contains_key(&f.uid))
            .collect();
        let entries: Vec<SpoolEntry> = left
            .iter()
            .map(|f| SpoolEntry {
                uid: &f.uid,
                namespace: &f.namespace,
                name: &f.name,
                bytes: f.bytes,
                holder: match self.world.deleted_logs.get(&f.uid) {
                    Some(e) => Holder::Deleted(e.deleted_at),
                    None if active.contains(f.uid.as_str())
                        || !self.world.pod_by_uid.contains_key(&f.uid) =>
                    {
                        // Not a pod we know to have finished (one created since the listing).
                        Holder::Active
                    }
                    None => Holder::Finished(f.written),
                },
            })
            .collect();
        let total: u64 = entries.iter().map(|e| e.bytes).sum();
        let remove = retention::over_spool(&entries, cap);
        let mut out = Vec::new();
        let mut freed = 0u64;
        for uid in remove {
            let Some(f) = left.iter().find(|f| f.uid == uid) else {
                continue;
            };
            let Some(dir) = spool::pod_dir(&self.layout.logs, &f.namespace, &f.name, &f.uid) else {
                continue;
            };
            freed += f.bytes;
            let involved = ObjectReference {
                kind: "Pod".into(),
                namespace: f.namespace.clone(),
                name: f.name.clone(),
                uid: f.uid.clone(),
                api_version: Some("v1".into()),
            };
            out.push((f.uid.clone(), dir, Reason::OverSpool(cap), involved));
        }
        self.retention.spool_bytes = total.saturating_sub(freed);
        if !out.is_empty() {
            tracing::info!(
                spool_bytes = total,
                cap,
                pods = out.len(),
                "the log spool is over logs.spoolMaxSize: removing the logs of finished pods"
            );
        }
        out
    }

    fn took_removals(&mut self, results: Vec<(String, Result<(), String>)>) {
        let limits = self.limits();
        let reasons = std::mem::take(&mut self.retention.reasons);
        for (uid, result) in results {
            let Some((reason, involved)) = reasons.get(&uid).cloned() else {
                continue;
            };
            let pod = format!("{}/{}", involved.namespace, involved.name);
            let adopted = self.world.deleted_logs.get(&uid).is_some_and(|e| e.adopted);
            match result {
                Ok(()) => {
                    let mut message = reason.message(limits);
                    if adopted && reason == Reason::Expired {
                        message.push_str(" (taken as when its log directory was last modified)");
                    }
                    tracing::info!(pod, uid, "{message}: logs removed");
                    self.forget(&uid);
                    self.record_event(
                        involved,
                        EventSpec::normal("LogsRemoved", message),
                        "jobvisor",
                    );
                }
                Err(err) => {
                    tracing::warn!(pod, uid, error = %err, "cannot remove a deleted pod's logs; trying again later");
                    self.retention.failed = true;
                    self.record_event(
                        involved,
                        EventSpec::warning(
                            "FailedLogsRemoval",
                            format!("removing the logs of the deleted pod failed: {err}"),
                        ),
                        "jobvisor",
                    );
                }
            }
        }
    }

    /// One sweep done: the next when one was asked for meanwhile, else when the oldest entry
    /// kept expires (not before [`AFTER_FAILURE`] if something failed).
    fn end_sweep(&mut self) {
        self.retention.in_flight = false;
        if std::mem::take(&mut self.retention.again) {
            self.sweep_logs();
            return;
        }
        let now = self.clock.now();
        let mut after = self
            .retention
            .next_due
            .map(|due| retention::until(due, now));
        if self.retention.failed {
            after = Some(after.map_or(AFTER_FAILURE, |a| a.max(AFTER_FAILURE)));
        }
        if let Some(after) = after {
            self.schedule(after, Target::LogSweep);
        }
    }
}

/// Step one, on the blocking pool.
fn measure(
    root: &Path,
    known: &HashSet<String>,
    dirs: Vec<(String, PathBuf)>,
    survey: bool,
) -> SweepReport {
    let sizes = dirs
        .into_iter()
        .map(|(uid, dir)| (uid, spool::measure(&dir).map_err(|e| format!("{e:#}"))))
        .collect();
    if !survey {
        let unknown = spool::unknown_dirs(root, known).map_err(|e| format!("{e:#}"));
        return SweepReport::Measured {
            sizes,
            unknown,
            survey: None,
        };
    }
    match spool::survey(root) {
        Ok(all) => SweepReport::Measured {
            sizes,
            unknown: Ok(all
                .iter()
                .filter(|f| !known.contains(&f.uid))
                .cloned()
                .collect()),
            survey: Some(all),
        },
        Err(e) => SweepReport::Measured {
            sizes,
            unknown: Err(format!("{e:#}")),
            survey: None,
        },
    }
}

/// Step two, on the blocking pool.
fn remove(dirs: Vec<(String, PathBuf)>) -> SweepReport {
    SweepReport::Removed(
        dirs.into_iter()
            .map(|(uid, dir)| (uid, spool::remove(&dir).map_err(|e| format!("{e:#}"))))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use jiff::Timestamp;

    use super::super::Target;
    use super::super::testing::{Harness, job};
    use super::super::world::key;
    use crate::api::Event;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::runtime::logs::{ReadOptions, container_log_path, read_log};

    fn config(retain: Duration, max_bytes: u64) -> Config {
        let mut cfg = Config::default();
        cfg.logs.retain_deleted = retain;
        cfg.logs.retain_deleted_bytes = max_bytes;
        cfg
    }

    /// `(name, uid)` of the one pod of Job `job`.
    fn pod_of(h: &Harness, job: &str) -> (String, String) {
        let all = h.daemon.world.all_pods();
        let mut pods = all
            .iter()
            .map(|r| &r.pod)
            .filter(|p| p.metadata.owner_references.iter().any(|o| o.name == job));
        let pod = pods.next().expect("a pod");
        assert!(pods.next().is_none(), "one pod of {job}");
        (
            pod.metadata.name().to_string(),
            pod.metadata.uid().to_string(),
        )
    }

    /// Runs Job `name`: its container writes `bytes` bytes of log (none: no log at all, as a
    /// container that never writes leaves) and exits 0. Returns the pod's `(name, uid)`.
    fn run_job(h: &mut Harness, name: &str, bytes: usize) -> (String, String) {
        h.apply(&format!("{name}.yaml"), &job(name, "Never", "true", ""));
        let (pod, uid) = pod_of(h, name);
        if bytes > 0 {
            let path = log_of(h, &pod, &uid);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let prefix = "2026-01-01T00:00:00.000000000Z stdout F ";
            let text = "x".repeat(bytes - prefix.len() - 1);
            std::fs::write(&path, format!("{prefix}{text}\n")).unwrap();
        }
        h.runtime.exit(&uid, "main", 0);
        h.run();
        (pod, uid)
    }

    fn log_of(h: &Harness, pod: &str, uid: &str) -> PathBuf {
        container_log_path(&h.daemon.layout.logs, "default", pod, uid, "main", 0)
    }

    fn pod_dir(h: &Harness, pod: &str, uid: &str) -> PathBuf {
        h.daemon
            .layout
            .logs
            .join("pods")
            .join(format!("default_{pod}_{uid}"))
    }

    /// Deletes the Job as `delete job` does; its ended pod leaves the store.
    fn delete_job(h: &mut Harness, name: &str) {
        h.daemon
            .delete_job(&key("default", name), "deleted by the test");
        h.daemon.turn();
        h.run();
        assert!(
            h.daemon
                .world
                .all_pods()
                .iter()
                .all(|r| r.pod.metadata.owner_references[0].name != name),
            "the pods of {name} were removed"
        );
    }

    fn set_mtime(dir: &Path, at: &str) {
        let at: Timestamp = at.parse().unwrap();
        let file = std::fs::File::open(dir).unwrap();
        let since_epoch = Duration::try_from(at.duration_since(Timestamp::UNIX_EPOCH)).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + since_epoch)
            .unwrap();
    }

    fn removals(h: &Harness) -> Vec<Event> {
        h.daemon
            .world
            .all_events()
            .into_iter()
            .filter(|e| e.reason == "LogsRemoved")
            .collect()
    }

    /// How long until the next sweep, as the loop's timer has it.
    fn next_sweep(h: &Harness) -> Option<Duration> {
        let at = h.daemon.timer_index.get(&Target::LogSweep)?;
        Some(at.saturating_duration_since(tokio::time::Instant::now()))
    }

    /// A deleted pod's logs stay readable in the spool; the time of its deletion is on disk,
    /// so a crash in between changes nothing (its directory's mtime, far older, is not what
    /// counts); once `retainDeleted` has passed they go, with an event about the pod.
    #[test]
    fn deleted_pods_logs_stay_their_time_across_a_crash_then_go_with_an_event() {
        let root = tempfile::tempdir().unwrap();
        let hour = Duration::from_secs(3600);
        let mut h = Harness::new(root.path(), config(hour, 1 << 30));
        let (pod, uid) = run_job(&mut h, "nightly", 100);
        let dir = pod_dir(&h, &pod, &uid);
        h.advance(10);

        delete_job(&mut h, "nightly");
        let deleted_at = h.clock.now();
        let kept = &h.daemon.world.deleted_logs[&uid];
        assert_eq!((kept.deleted_at, kept.adopted), (deleted_at, false));
        assert_eq!(
            (kept.namespace.as_str(), kept.name.as_str()),
            ("default", pod.as_str())
        );
        let log = read_log(&log_of(&h, &pod, &uid), ReadOptions::default()).unwrap();
        assert_eq!(
            log.len(),
            100 - "2026-01-01T00:00:00.000000000Z stdout F ".len()
        );
        let soon = next_sweep(&h).expect("a sweep after the removal");
        assert!(soon <= super::AFTER_REMOVAL, "{soon:?}");

        h.sweep_logs();
        assert!(dir.exists(), "kept its hour");
        assert_eq!(h.daemon.world.deleted_logs[&uid].bytes, Some(100));
        let due = next_sweep(&h).expect("a sweep when it expires");
        assert!(
            due > hour - Duration::from_secs(60) && due <= hour,
            "{due:?}"
        );

        set_mtime(&dir, "2000-01-01T00:00:00Z");
        h.advance(1800);
        let mut h = h.crash_and_restart();
        let kept = &h.daemon.world.deleted_logs[&uid];
        assert_eq!((kept.deleted_at, kept.adopted), (deleted_at, false));
        h.sweep_logs();
        h.advance(1799);
        h.sweep_logs();
        assert!(
            dir.exists(),
            "the deletion time, not the directory's, counts"
        );
        assert!(removals(&h).is_empty(), "{:#?}", removals(&h));

        h.advance(1);
        h.sweep_logs();
        assert!(!dir.exists(), "removed once its hour is up");
        assert!(h.daemon.world.deleted_logs.is_empty());
        let events = removals(&h);
        assert_eq!(events.len(), 1, "{events:#?}");
        let e = &events[0];
        assert_eq!(e.type_, crate::api::EventType::Normal);
        assert_eq!(e.message, "retained 1h0m0s after the pod was deleted");
        let o = &e.involved_object;
        assert_eq!(
            (
                o.kind.as_str(),
                o.namespace.as_str(),
                o.name.as_str(),
                o.uid.as_str()
            ),
            ("Pod", "default", pod.as_str(), uid.as_str())
        );
        assert_eq!(next_sweep(&h), None, "nothing left to wait for");

        let h = h.crash_and_restart();
        assert!(
            h.daemon.world.deleted_logs.is_empty(),
            "the removal is on disk"
        );
    }

    /// Past `retainDeletedBytes` the logs of the pods deleted longest ago go until the rest
    /// fit; logs of pods that still exist neither count nor go, and a deleted pod that never
    /// wrote leaves nothing to keep or report.
    #[test]
    fn over_the_budget_the_oldest_deletions_go_first() {
        let root = tempfile::tempdir().unwrap();
        let mut h = Harness::new(root.path(), config(Duration::from_secs(3600), 250));
        let live = run_job(&mut h, "live", 1000);
        let mut gone = Vec::new();
        for name in ["first", "second", "third"] {
            gone.push(run_job(&mut h, name, 100));
        }
        let silent = run_job(&mut h, "silent", 0);
        for name in ["first", "second", "third", "silent"] {
            delete_job(&mut h, name);
            h.advance(10);
        }
        assert_eq!(h.daemon.world.deleted_logs.len(), 4);

        h.sweep_logs();

        let dirs: Vec<bool> = gone
            .iter()
            .map(|(p, u)| pod_dir(&h, p, u).exists())
            .collect();
        assert_eq!(dirs, [false, true, true], "the first deleted goes");
        assert!(
            pod_dir(&h, &live.0, &live.1).exists(),
            "a live pod's logs stay"
        );
        assert!(
            !h.daemon.world.deleted_logs.contains_key(&silent.1),
            "nothing to keep"
        );
        let events = removals(&h);
        assert_eq!(events.len(), 1, "{events:#?}");
        assert_eq!(events[0].involved_object.uid, gone[0].1);
        assert_eq!(
            events[0].message,
            "the logs of deleted pods exceeded logs.retainDeletedBytes (250)"
        );
    }

    /// Log directories from before deletion times were recorded belong to no pod and no
    /// record: they are adopted, deleted (for the rule) when they were last modified.
    #[test]
    fn directories_without_a_pod_are_adopted_at_their_modification_time() {
        let root = tempfile::tempdir().unwrap();
        let mut h = Harness::new(root.path(), Config::default());
        let live = run_job(&mut h, "live", 100);
        let pods = h.daemon.layout.logs.join("pods");
        let old = pods.join("default_old-abcde_u-old");
        let recent = pods.join("default_recent-abcde_u-recent");
        for (dir, mtime) in [
            (&old, "2025-12-20T00:00:00Z"),
            (&recent, "2025-12-31T00:00:00Z"),
        ] {
            std::fs::create_dir_all(dir.join("main")).unwrap();
            std::fs::write(dir.join("main/0.log"), "2025-12-20T00:00:00Z stdout F hi\n").unwrap();
            set_mtime(dir, mtime);
        }

        h.sweep_logs();

        assert!(!old.exists(), "older than a week: removed");
        let events = removals(&h);
        assert_eq!(events.len(), 1, "{events:#?}");
        assert_eq!(events[0].involved_object.uid, "u-old");
        assert_eq!(events[0].involved_object.name, "old-abcde");
        assert!(
            events[0]
                .message
                .starts_with("retained 168h0m0s after the pod was deleted ("),
            "{}",
            events[0].message
        );
        assert!(recent.exists());
        assert!(
            pod_dir(&h, &live.0, &live.1).exists(),
            "a live pod's logs are its own"
        );
        let adopted = h.daemon.world.deleted_logs["u-recent"].clone();
        assert!(adopted.adopted);
        assert_eq!(adopted.deleted_at, "2025-12-31T00:00:00Z".parse().unwrap());
        let due = next_sweep(&h).expect("a sweep when it expires");
        let expected = Duration::from_secs(6 * 24 * 3600);
        assert!(
            due > expected - Duration::from_secs(60) && due <= expected,
            "{due:?}"
        );

        let h = h.crash_and_restart();
        assert_eq!(
            h.daemon.world.deleted_logs["u-recent"].deleted_at,
            adopted.deleted_at
        );
        assert_eq!(h.daemon.world.deleted_logs.len(), 1);
    }

    fn set_file_mtime(path: &Path, at: &str) {
        let at: Timestamp = at.parse().unwrap();
        let since_epoch = Duration::try_from(at.duration_since(Timestamp::UNIX_EPOCH)).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + since_epoch)
            .unwrap();
    }

    /// Past `logs.spoolMaxSize` all logs together are cut down: deleted pods' logs first,
    /// then those of the pods that finished longest ago, each with a `LogsRemoved` event on
    /// the pod; a running pod's logs count but stay, and so do the newest finished ones.
    #[test]
    fn over_the_spool_cap_deleted_then_oldest_finished_pods_logs_go() {
        let root = tempfile::tempdir().unwrap();
        let mut cfg = config(Duration::from_secs(3600), 1 << 30);
        cfg.logs.spool_max_size = 250;
        let mut h = Harness::new(root.path(), cfg);
        let old = run_job(&mut h, "old", 100);
        let new = run_job(&mut h, "new", 100);
        set_file_mtime(&log_of(&h, &old.0, &old.1), "2026-01-01T00:00:00Z");
        set_file_mtime(&log_of(&h, &new.0, &new.1), "2026-01-02T00:00:00Z");
        let gone = run_job(&mut h, "gone", 100);
        delete_job(&mut h, "gone");
        // Running: its log is written, its container has not exited.
        h.apply("live.yaml", &job("live", "Never", "true", ""));
        let live = pod_of(&h, "live");
        let live_log = log_of(&h, &live.0, &live.1);
        std::fs::create_dir_all(live_log.parent().unwrap()).unwrap();
        std::fs::write(
            &live_log,
            format!(
                "2026-01-01T00:00:00.000000000Z stdout F {}\n",
                "x".repeat(59)
            ),
        )
        .unwrap();

        h.daemon.retention.survey_due = true;
        h.sweep_logs();

        let exists = |h: &Harness, p: &(String, String)| pod_dir(h, &p.0, &p.1).exists();
        assert!(!exists(&h, &gone), "a deleted pod's logs go first");
        assert!(!exists(&h, &old), "then the pod that finished longest ago");
        assert!(exists(&h, &new), "the rest fit: 200 of 250 bytes");
        assert!(exists(&h, &live), "a running pod's logs stay");
        let events = removals(&h);
        let about: Vec<&str> = events
            .iter()
            .map(|e| e.involved_object.uid.as_str())
            .collect();
        assert_eq!(about, [gone.1.as_str(), old.1.as_str()], "{events:#?}");
        for e in &events {
            assert_eq!(
                e.message,
                "the logs in the spool exceeded logs.spoolMaxSize (250)"
            );
        }
        assert!(
            h.daemon.world.pod_by_uid.contains_key(&old.1),
            "the finished pod itself stays"
        );
        assert!(!h.daemon.world.deleted_logs.contains_key(&gone.1));

        // Within the cap now: another survey removes nothing more.
        h.daemon.retention.survey_due = true;
        h.sweep_logs();
        assert_eq!(removals(&h).len(), 2);
        assert!(exists(&h, &new) && exists(&h, &live));
    }

    /// Output lost to a full disk is a Warning `LogWriteFailed` event on the pod when the
    /// episode begins and another with the counts when it ends; a report about a pod that is
    /// gone is dropped.
    #[test]
    fn lost_output_is_a_warning_event_on_the_pod() {
        let root = tempfile::tempdir().unwrap();
        let mut h = Harness::new(root.path(), Config::default());
        h.apply("chatty.yaml", &job("chatty", "Never", "true", ""));
        let (_, uid) = pod_of(&h, "chatty");
        let lost = |uid: &str| crate::runtime::RuntimeEvent::LogLost {
            pod_uid: uid.to_string(),
            container: "main".into(),
            restart_count: 0,
            bytes: 4200,
            lines: 42,
            error: "writing /logs/x/0.log: No space left on device (os error 28)".into(),
        };
        h.daemon
            .on_runtime(crate::runtime::RuntimeEvent::LogWriteFailing {
                pod_uid: uid.clone(),
                container: "main".into(),
                restart_count: 0,
                error: "writing /logs/x/0.log: No space left on device (os error 28)".into(),
            });
        h.daemon.on_runtime(lost(&uid));
        h.daemon.on_runtime(lost("no-such-pod"));
        h.daemon.turn();
        h.run();
        let events: Vec<Event> = h
            .daemon
            .world
            .all_events()
            .into_iter()
            .filter(|e| e.reason == "LogWriteFailed")
            .collect();
        assert_eq!(events.len(), 2, "{events:#?}");
        assert_eq!(
            events[0].message,
            "cannot write the log of container \"main\" (run 0): writing /logs/x/0.log: No space left on device (os error 28); its output is dropped and counted until a write works again"
        );
        let e = &events[1];
        assert_eq!(e.type_, crate::api::EventType::Warning);
        assert_eq!(e.involved_object.uid, uid);
        assert_eq!(
            e.message,
            "lost 42 lines (4200 bytes) of the output of container \"main\" (run 0): writing /logs/x/0.log: No space left on device (os error 28)"
        );
    }
}
