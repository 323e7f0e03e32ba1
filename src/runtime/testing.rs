//! The test harness of the runtime's modules (a [`ProcessRuntime`] in a temp directory, and
//! waits for what it reports), and [`command_status`] for any test that runs a command.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;

use super::logs::{ReadOptions, Stream, parse_line, read_log};
use super::process::ProcessRuntime;
use super::reaper::owned_pids;
use super::spawn::{proc_start_time, proc_stat_field};
use super::{ContainerLaunch, ExitInfo, Runtime, RuntimeEvent};
use crate::clock::SystemClock;

/// `Command::status` for tests anywhere in the crate: runtimes of other tests in this process
/// reap every child they do not own, and would take this one's exit status (ECHILD). So the
/// child goes into `OWNED` before any reaper can look at it.
pub(crate) fn command_status(
    cmd: &mut std::process::Command,
) -> std::io::Result<std::process::ExitStatus> {
    let mut child = {
        // Held across the spawn: a reaper that peeks at the new child waits for the lock, then
        // finds it owned.
        let mut owned = owned_pids();
        let child = cmd.spawn()?;
        owned.insert(child.id() as i32);
        child
    };
    let status = child.wait();
    owned_pids().remove(&(child.id() as i32));
    status
}

pub(super) const WAIT: Duration = Duration::from_secs(10);
pub(super) const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

pub(super) struct Harness {
    pub(super) rt: ProcessRuntime,
    rx: UnboundedReceiver<RuntimeEvent>,
    /// Events of other pods seen while waiting for one.
    seen: VecDeque<RuntimeEvent>,
    pub(super) dir: tempfile::TempDir,
    next_uid: usize,
}

/// What one run produced.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) pid: Option<u32>,
    pub(super) proc_start: Option<u64>,
    pub(super) exit: ExitInfo,
    pub(super) log: PathBuf,
}

impl Harness {
    pub(super) fn new() -> Harness {
        let (tx, rx) = unbounded_channel();
        Harness {
            rt: ProcessRuntime::new(Arc::new(SystemClock), tx),
            rx,
            seen: VecDeque::new(),
            dir: tempfile::tempdir().unwrap(),
            next_uid: 0,
        }
    }

    pub(super) fn launch(&mut self, argv: &[&str]) -> ContainerLaunch {
        self.next_uid += 1;
        let uid = format!("uid-{}", self.next_uid);
        ContainerLaunch {
            log_path: super::logs::container_log_path(
                &self.dir.path().join("logs"),
                "default",
                "p",
                &uid,
                "main",
                0,
            ),
            pod_uid: uid,
            namespace: "default".into(),
            pod_name: "p".into(),
            container: "main".into(),
            restart_count: 0,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            refused: None,
            env: vec![("PATH".into(), PATH.into())],
            working_dir: self.dir.path().to_path_buf(),
            log_limits: Default::default(),
            limits: Default::default(),
            pids_limit: None,
            user: None,
        }
    }

    /// Starts `launch`, returns its pod uid and log path.
    pub(super) fn start(&mut self, launch: ContainerLaunch) -> (String, PathBuf) {
        let ids = (launch.pod_uid.clone(), launch.log_path.clone());
        self.rt.start(launch);
        ids
    }

    /// Reports seen while waiting for others (and not taken by `wait`).
    pub(super) fn take_seen(&mut self) -> Vec<RuntimeEvent> {
        self.seen.drain(..).collect()
    }

    pub(super) async fn next_event(&mut self) -> RuntimeEvent {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("no runtime event within 10 s")
            .expect("event channel closed")
    }

    /// Waits for the `Exited` of `pod_uid` (and its `Started`, if any).
    pub(super) async fn wait(&mut self, pod_uid: &str, log: PathBuf) -> Run {
        let mut run = Run {
            pid: None,
            proc_start: None,
            exit: ExitInfo {
                exit_code: -1,
                signal: None,
                reason: crate::api::TerminatedReason::Other(String::new()),
                message: None,
                started_at: Timestamp::UNIX_EPOCH,
                finished_at: Timestamp::UNIX_EPOCH,
            },
            log,
        };
        let mut buffered = std::mem::take(&mut self.seen);
        loop {
            let ev = match buffered.pop_front() {
                Some(ev) => ev,
                None => self.next_event().await,
            };
            match ev {
                RuntimeEvent::Started {
                    pod_uid: u,
                    pid,
                    proc_start,
                    ..
                } if u == pod_uid => {
                    assert!(run.pid.is_none(), "two Started events");
                    run.pid = Some(pid);
                    run.proc_start = proc_start;
                }
                RuntimeEvent::Exited {
                    pod_uid: u, exit, ..
                } if u == pod_uid => {
                    run.exit = exit;
                    self.seen.extend(buffered);
                    return run;
                }
                other => self.seen.push_back(other),
            }
        }
    }

    pub(super) async fn run(&mut self, argv: &[&str]) -> Run {
        let launch = self.launch(argv);
        self.run_launch(launch).await
    }

    pub(super) async fn run_launch(&mut self, launch: ContainerLaunch) -> Run {
        let (uid, log) = self.start(launch);
        self.wait(&uid, log).await
    }

    pub(super) async fn wait_started(&mut self, pod_uid: &str) -> u32 {
        loop {
            match self.next_event().await {
                RuntimeEvent::Started {
                    pod_uid: u, pid, ..
                } if u == pod_uid => {
                    // Put it back for `wait`.
                    self.seen.push_back(RuntimeEvent::Started {
                        pod_uid: u,
                        container: "main".into(),
                        restart_count: 0,
                        pid,
                        proc_start: None,
                        started_at: Timestamp::UNIX_EPOCH,
                    });
                    return pid;
                }
                other => self.seen.push_back(other),
            }
        }
    }
}

pub(super) fn log_text(path: &Path) -> String {
    read_log(path, ReadOptions::default()).unwrap()
}

/// Raw records (stream, tag, text) of a log file.
pub(super) fn records(path: &Path) -> Vec<(Stream, bool, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let r = parse_line(l).unwrap_or_else(|| panic!("not a CRI line: {l:?}"));
            (r.stream, r.partial, r.text)
        })
        .collect()
}

pub(super) async fn wait_for_log(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = read_log(path, ReadOptions::default())
            && text.contains(needle)
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never showed in {path:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Until `pid` no longer names the process that started at `start` (killed *and* reaped).
pub(super) async fn wait_gone(pid: u32, start: Option<u64>) {
    let deadline = Instant::now() + WAIT;
    while proc_start_time(pid).is_some() && proc_start_time(pid) == start {
        let state = proc_stat_field(pid, 3).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "process {pid} still there (state {state})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn zombie_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            proc_stat_field(pid, 4).as_deref() == Some(me.as_str())
                && proc_stat_field(pid, 3).as_deref() == Some("Z")
        })
        .collect()
}

/// Other tests run in parallel in this process, so a zombie may exist for an instant:
/// wait for a moment with none.
pub(super) async fn assert_no_zombies_soon() {
    let deadline = Instant::now() + WAIT;
    loop {
        let z = zombie_children();
        if z.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "zombie children: {z:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
