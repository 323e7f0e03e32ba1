//! `TestDaemon`: the real `jobvisor daemon` in a temporary `--root`, with Kubernetes' delays
//! shrunk through its config. Tests drive it only from outside: files, the CLI and the socket.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_jobvisor");

/// Small delays so tests never wait out Kubernetes' real ones.
pub const FAST_CONFIG: &str = "\
backoff:
  podFailureBase: 50ms
  podFailureMax: 400ms
  containerRestartBase: 50ms
  containerRestartMax: 400ms
watch:
  removalGrace: 100ms
log:
  level: debug
";

pub struct TestDaemon {
    pub root: tempfile::TempDir,
    child: Option<Child>,
    /// Extra environment for every daemon process this starts (test-only store modes).
    env: Vec<(String, String)>,
    /// The file-creation mask the daemon starts with (a unit's `UMask=`), if not ours.
    umask: Option<u32>,
    /// The daemon's open-files limit, soft and hard (a unit's `LimitNOFILE=`), if not ours.
    nofile: Option<u64>,
    /// systemd's notify socket as the daemon sees it: READY=1, STATUS=…
    notify: Option<UnixDatagram>,
}

impl TestDaemon {
    pub fn start() -> TestDaemon {
        Self::start_with(FAST_CONFIG)
    }

    pub fn start_with(config: &str) -> TestDaemon {
        Self::start_with_env(config, &[])
    }

    /// A root made elsewhere (a copy of another daemon's), not started yet.
    pub fn adopt(root: tempfile::TempDir) -> TestDaemon {
        TestDaemon {
            root,
            child: None,
            env: Vec::new(),
            umask: None,
            nofile: None,
            notify: None,
        }
    }

    /// Like `start_with`, with extra environment variables for the daemon (kept across
    /// `spawn`s, so a restarted daemon runs in the same mode).
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> TestDaemon {
        Self::start_as(config, env, None, None)
    }

    /// Like `start_with`, the daemon started with the file-creation mask `umask` (as the
    /// unit's `UMask=0007` starts it).
    pub fn start_with_umask(config: &str, umask: u32) -> TestDaemon {
        Self::start_as(config, &[], Some(umask), None)
    }

    /// Like `start_with`, the daemon started with an open-files limit of `nofile` (soft and
    /// hard, so it cannot raise it).
    pub fn start_with_nofile(config: &str, nofile: u64) -> TestDaemon {
        Self::start_as(config, &[], None, Some(nofile))
    }

    fn start_as(
        config: &str,
        env: &[(&str, &str)],
        umask: Option<u32>,
        nofile: Option<u64>,
    ) -> TestDaemon {
        let root = tempfile::Builder::new()
            .prefix("jobvisor-it-")
            .tempdir()
            .expect("tempdir");
        std::fs::write(root.path().join("config.yaml"), config).expect("config");
        let mut d = TestDaemon {
            root,
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            umask,
            nofile,
            notify: None,
        };
        d.spawn();
        d
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }
    pub fn manifests(&self) -> PathBuf {
        self.path().join("manifests")
    }
    pub fn socket(&self) -> PathBuf {
        self.path().join("jobvisor.sock")
    }

    /// Starts the daemon and waits for the READY=1 it sends systemd.
    pub fn spawn(&mut self) {
        let notify_path = self.path().join("notify.sock");
        let _ = std::fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path).expect("notify socket");
        notify
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let child = self
            .command()
            .env("NOTIFY_SOCKET", &notify_path)
            .spawn()
            .expect("spawning jobvisor daemon");
        self.child = Some(child);
        let mut buf = [0u8; 256];
        loop {
            match notify.recv(&mut buf) {
                Ok(n) if String::from_utf8_lossy(&buf[..n]).contains("READY=1") => break,
                Ok(_) => continue,
                Err(e) => panic!("daemon never became ready: {e}\n{}", self.daemon_log()),
            }
        }
        self.notify = Some(notify);
    }

    /// The next message to systemd's notify socket that `wanted` accepts, within `timeout`.
    pub fn wait_notify(&self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let notify = self.notify.as_ref()?;
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1024];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            notify
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let n = notify.recv(&mut buf).ok()?;
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if wanted(&msg) {
                return Some(msg);
            }
        }
        None
    }

    /// Starts the daemon without waiting for it to be ready (to crash it while it starts).
    pub fn spawn_unready(&mut self) {
        assert!(self.child.is_none(), "a daemon is running");
        let child = self.command().spawn().expect("spawning jobvisor daemon");
        self.child = Some(child);
    }

    fn command(&self) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("daemon.log"))
            .expect("daemon log");
        let mut cmd = Command::new(BIN);
        cmd.args(["daemon", "--root"])
            .arg(self.path())
            .env_remove("NOTIFY_SOCKET")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit(2) is async-signal-safe and allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, n, n)
                        .map_err(std::io::Error::from)
                });
            }
        }
        if let Some(mask) = self.umask {
            use std::os::unix::process::CommandExt;
            let mask = nix::sys::stat::Mode::from_bits_truncate(mask);
            // SAFETY: umask(2) is async-signal-safe and allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    nix::sys::stat::umask(mask);
                    Ok(())
                });
            }
        }
        cmd
    }

    /// After `kill9`: a new daemon on the same root, as a supervisor would restart it.
    pub fn respawn(&mut self) {
        assert!(self.child.is_none(), "respawn after kill9 or stop");
        self.spawn();
    }

    /// Keeps the root directory after the test, for inspection; returns its path.
    pub fn keep_root(&mut self) -> PathBuf {
        self.root.disable_cleanup(true);
        self.path().to_path_buf()
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        wait_child(&mut child, Duration::from_secs(60))
    }

    /// SIGKILL: a crash at an arbitrary instant.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Writes a manifest the way `kubectl`-style tools do: temp file, then rename into place.
    pub fn drop_manifest(&self, name: &str, text: &str) -> PathBuf {
        let tmp = self.manifests().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write manifest");
        let path = self.manifests().join(name);
        std::fs::rename(&tmp, &path).expect("rename manifest");
        path
    }

    /// The names in the manifests directory, sorted.
    pub fn manifest_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.manifests())
            .expect("manifests directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub fn copy_example(&self, name: &str) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        let text = std::fs::read_to_string(&src).expect("example");
        self.drop_manifest(name, &text)
    }

    /// Runs the CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(self.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running jobvisor cli")
    }

    /// The CLI's stdout; panics with its stderr when it fails.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "jobvisor {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        http(&self.socket(), method, path, body)
    }

    pub fn get_json(&self, path: &str) -> (u16, Value) {
        let (code, body) = self.http("GET", path, None);
        (
            code,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    pub fn job(&self, name: &str) -> Option<Value> {
        let (code, v) = self.get_json(&format!("/apis/batch/v1/namespaces/default/jobs/{name}"));
        (code == 200).then_some(v)
    }

    /// Pods of a Job, oldest first.
    pub fn pods_of(&self, job: &str) -> Vec<Value> {
        let (_, v) = self.get_json(&format!(
            "/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io/job-name%3D{job}"
        ));
        let mut pods = v["items"].as_array().cloned().unwrap_or_default();
        pods.sort_by_key(|p| {
            p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or("")
                .to_string()
        });
        pods
    }

    /// The reasons of all events, oldest first.
    pub fn event_reasons(&self) -> Vec<String> {
        let (_, events) = self.get_json("/api/v1/events");
        events["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| e["reason"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the Job has the condition (`Complete`, `Failed`, …) with status True.
    pub fn wait_condition(&self, job: &str, condition: &str, timeout: Duration) -> Value {
        let mut last = Value::Null;
        let ok = wait_until(timeout, || {
            last = self.job(job).unwrap_or(Value::Null);
            has_condition(&last, condition)
        });
        assert!(
            ok,
            "job {job} never got {condition}: {last:#}\n--- daemon log ---\n{}",
            tail(&self.daemon_log(), 60)
        );
        last
    }
}

impl Drop for TestDaemon {
    /// A clean stop, so no test leaves container processes behind.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn has_condition(job: &Value, condition: &str) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == condition && c["status"] == "True")
    })
}

pub fn condition_types(job: &Value) -> Vec<String> {
    job["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| c["type"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `cond` until true or `timeout`; tests wait on state, never on fixed sleeps.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("daemon did not stop within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A minimal HTTP/1.1 client over the Unix socket (what `curl --unix-socket` does).
pub fn http(socket: &Path, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    try_http(socket, method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", socket.display()))
}

/// `http`, with connection and I/O errors returned instead of panicking.
pub fn try_http(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        code,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        },
    ))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A Job manifest with one container; `extra_spec` lines go under `spec:` (2-space indent).
pub fn job_yaml(name: &str, restart: &str, command: &[&str], extra_spec: &str) -> String {
    let cmd: Vec<String> = command
        .iter()
        .map(|c| serde_json::to_string(c).expect("json"))
        .collect();
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{extra_spec}  template:
    spec:
      restartPolicy: {restart}
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: busybox:1.36
        command: [{}]
",
        cmd.join(", ")
    )
}
