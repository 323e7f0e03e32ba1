//! In-process daemons for the loop's unit tests: a real store in a temp root, a fake clock,
//! and a runtime that records starts instead of running anything.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Daemon;
use crate::clock::FakeClock;
use crate::config::{Config, Layout};
use crate::runtime::{ContainerLaunch, Runtime};

/// Records each start as `(pod name, restartCount)`.
#[derive(Default)]
pub struct RecordingRuntime {
    starts: Mutex<Vec<(String, i32)>>,
}

impl Runtime for RecordingRuntime {
    fn start(&self, l: ContainerLaunch) {
        let mut s = self.starts.lock().unwrap_or_else(|e| e.into_inner());
        s.push((l.pod_name, l.restart_count));
    }
    fn stop_pod(&self, _: &str, _: Duration) {}
    fn kill_leftover(&self, _: u32, _: Option<u64>) {}
    fn running(&self) -> usize {
        0
    }
}

impl RecordingRuntime {
    pub fn starts(&self) -> Vec<(String, i32)> {
        self.starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A daemon (without its loop) over `root`, its manifests directory created.
pub fn daemon_in(root: &Path, cfg: Config) -> (Daemon, FakeClock, Arc<RecordingRuntime>) {
    let layout = Layout::under_root(root);
    std::fs::create_dir_all(&layout.manifests).expect("manifests directory");
    let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().expect("timestamp"));
    let runtime = Arc::new(RecordingRuntime::default());
    let d = Daemon::open(cfg, layout, Arc::new(clock.clone()), runtime.clone()).expect("daemon");
    (d, clock, runtime)
}

/// A Job `name` running `command`; `extra_spec` lines go under `spec:` (2-space indent).
pub fn job(name: &str, restart_policy: &str, command: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{extra_spec}  template:
    spec:
      restartPolicy: {restart_policy}
      containers:
      - name: main
        image: busybox
        command: [\"{command}\"]
"
    )
}
