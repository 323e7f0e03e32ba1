//! Crash at any instant: the daemon is SIGKILLed at random instants and right after it
//! reported a result, restarted, and checked from outside after every restart.
//!
//! The invariant (docs/architecture.md, "Crash invariant: what the harness checks"):
//! - a Job reported finished (API, watch, `jobvisor wait`) stays finished, with the same uid,
//!   and never runs a container again;
//! - `status.succeeded` / `status.failed` never go backwards, across restarts;
//! - once the Job is finished, `succeeded` and `failed` equal its pods in phase Succeeded and
//!   Failed (no pod counted twice, none lost), `succeeded ≤ completions`, no pod still carries
//!   the tracking finalizer;
//! - every container execution is accounted for by a pod in the store: a container writes its
//!   pod name (`$HOSTNAME`) to a marker file outside the root before anything else, and every
//!   name there must be a pod of its Job.
//!
//! "Nothing ran again" is never checked by sleeping: after a restart, every Job reported
//! finished must show a terminal condition again, then a new sentinel Job must complete (the
//! daemon has rescanned, recovered and synced everything older); only then is the marker read.
//!
//! Knobs (environment of `cargo test`):
//! - `JOBVISOR_CRASH_TRIALS`: trials of every test (defaults: 30 and 20 short-Job trials, 5
//!   and 4 storms; the four tests take about 30 s on 2 cores);
//! - `JOBVISOR_CRASH_KILLS`: SIGKILLs per storm trial (default 12);
//! - `JOBVISOR_CRASH_PODS`: pods per storm Job (default 250);
//! - `JOBVISOR_CRASH_SEED`: the seed of the kill points (default: random, printed by each test);
//! - `JOBVISOR_CRASH_FSYNC_DELAY_MS`: `JOBVISOR_TEST_FSYNC_DELAY_MS` given to the daemon in the
//!   power-loss variants (default 5).
//!
//! The power-loss variants run the daemon with `JOBVISOR_TEST_POWER_LOSS=1`: the store then
//! drops, at start, every journal byte written after the last completed fsync, as a power
//! loss would (a SIGKILL alone leaves the page cache, so it cannot show a missing fsync).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// FAST_CONFIG's delays with a small
/// compaction threshold, so snapshot rewrites happen during the trials too.
const CRASH_CONFIG: &str = "\
backoff:
  podFailureBase: 50ms
  podFailureMax: 400ms
  containerRestartBase: 50ms
  containerRestartMax: 400ms
store:
  compactBytes: 262144
watch:
  removalGrace: 100ms
log:
  level: info
";

/// How long anything that should happen may take before it counts as not happening.
const T: Duration = Duration::from_secs(120);

/// Longest random delay between a daemon's READY and its SIGKILL.
const MAX_KILL_DELAY_MS: u64 = 400;

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn trials(default: u64) -> u64 {
    env_num("JOBVISOR_CRASH_TRIALS", default)
}

/// `JOBVISOR_CRASH_SEED` (to replay a printed seed), else a fresh random one per test.
fn seed() -> u64 {
    match std::env::var("JOBVISOR_CRASH_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("JOBVISOR_CRASH_SEED={v:?} is not a number")),
        Err(_) => {
            // std seeds RandomState from the OS, afresh for each instance.
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        }
    }
}

/// xorshift64: enough randomness for kill points, and no new crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What has been observed of one Job (by uid), across restarts.
#[derive(Debug, Clone, Default)]
struct Seen {
    uid: String,
    succeeded: u64,
    failed: u64,
    /// The terminal condition reported, and how many executions the marker held then.
    finished: Option<(String, usize)>,
    /// The reported condition is missing now (reported once until it is back).
    lost: bool,
    /// The Job is gone (reported once).
    gone: bool,
}

/// How the result of a short Job is learnt before the SIGKILL.
#[derive(Debug, Clone, Copy)]
enum Channel {
    Watch,
    Wait,
    Poll,
}

struct Harness {
    test: &'static str,
    seed: u64,
    d: TestDaemon,
    marker_dir: tempfile::TempDir,
    trial: u64,
    kill_points: u64,
    last_kill: String,
    seen: BTreeMap<String, Seen>,
    sentinels: u64,
    /// Executions already reported as having no pod.
    unrecorded: BTreeSet<String>,
    violations: Vec<String>,
}

impl Harness {
    fn new(test: &'static str, env: &[(&str, &str)]) -> Harness {
        let seed = seed();
        eprintln!("{test}: seed {seed} (JOBVISOR_CRASH_SEED={seed} replays its kill points)");
        let marker_dir = tempfile::Builder::new()
            .prefix("jobvisor-crash-execs-")
            .tempdir()
            .expect("marker dir");
        std::fs::write(marker_dir.path().join("execs"), "").expect("marker file");
        Harness {
            test,
            seed,
            d: TestDaemon::start_with_env(CRASH_CONFIG, env),
            marker_dir,
            trial: 0,
            kill_points: 0,
            last_kill: "none yet".into(),
            seen: BTreeMap::new(),
            sentinels: 0,
            unrecorded: BTreeSet::new(),
            violations: Vec::new(),
        }
    }

    fn marker(&self) -> PathBuf {
        self.marker_dir.path().join("execs")
    }

    /// `sh -c` that records the execution (pod name) first, then runs `then`.
    fn command(&self, then: &str) -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!(
                "echo \"$HOSTNAME\" >> '{}'; {then}",
                self.marker().display()
            ),
        ]
    }

    fn job_manifest(&self, name: &str, then: &str, extra_spec: &str) -> String {
        self.job_manifest_with("Never", name, then, extra_spec)
    }

    fn job_manifest_with(&self, policy: &str, name: &str, then: &str, extra: &str) -> String {
        let cmd = self.command(then);
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        job_yaml(name, policy, &cmd, extra)
    }

    /// Every execution so far: pod names, in order.
    fn execs(&self) -> Vec<String> {
        std::fs::read_to_string(self.marker())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    fn execs_of(&self, job: &str) -> Vec<String> {
        self.execs()
            .into_iter()
            .filter(|pod| job_of_pod(pod) == job)
            .collect()
    }

    fn violate(&mut self, job: &str, what: String) {
        let v = format!(
            "[{} seed={} trial={}] after kill point #{} ({}): job/{job}: {what}",
            self.test, self.seed, self.trial, self.kill_points, self.last_kill
        );
        eprintln!("VIOLATION {v}");
        self.violations.push(v);
    }

    /// SIGKILL now, then a new daemon on the same root.
    fn crash(&mut self, point: String) {
        self.d.kill9();
        self.restart(point);
    }

    /// After a `kill9`: counts the kill point, starts a new daemon and checks that every
    /// execution that had happened by the kill is a pod in the store.
    fn restart(&mut self, point: String) {
        // Read after the kill: these ran under the killed daemon (a container it started
        // just before dying may still add its line; the next check sees that one).
        let execs = self.execs();
        self.kill_points += 1;
        self.last_kill = format!("trial {}: {point}", self.trial);
        self.d.respawn();
        self.check_execs_recorded(&execs);
    }

    /// Every execution in `execs` is a pod in the store (each missing one reported once).
    fn check_execs_recorded(&mut self, execs: &[String]) {
        let (code, pods) = self.d.get_json("/api/v1/pods");
        assert_eq!(code, 200, "listing pods: {pods}");
        let in_store: BTreeSet<&str> = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["metadata"]["name"].as_str())
            .collect();
        let mut lost: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pod in execs {
            if !in_store.contains(pod.as_str()) && self.unrecorded.insert(pod.clone()) {
                lost.entry(job_of_pod(pod).to_string())
                    .or_default()
                    .push(pod.clone());
            }
        }
        for (job, pods) in lost {
            let msg = format!(
                "{} container execution(s) left no pod in the store: {pods:?}",
                pods.len()
            );
            self.violate(&job, msg);
        }
    }

    /// GETs the Job and checks it against everything observed of it before.
    fn observe(&mut self, job: &str) -> Option<Value> {
        let path = format!("/apis/batch/v1/namespaces/default/jobs/{job}");
        let (code, body) = match try_http(&self.d.socket(), "GET", &path, None) {
            Ok(r) => r,
            Err(e) => panic!(
                "GET {path}: {e}\n--- daemon log ---\n{}",
                tail(&self.d.daemon_log(), 40)
            ),
        };
        if code == 404 {
            if let Some(s) = self.seen.get_mut(job)
                && !s.gone
            {
                s.gone = true;
                self.violate(job, "observed before, and now gone".into());
            }
            return None;
        }
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: {code} {e}: {body}"));
        self.check_against_seen(job, &v);
        Some(v)
    }

    fn check_against_seen(&mut self, job: &str, v: &Value) {
        let uid = v["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let succeeded = v["status"]["succeeded"].as_u64().unwrap_or(0);
        let failed = v["status"]["failed"].as_u64().unwrap_or(0);
        let mut next = Seen {
            uid: uid.clone(),
            succeeded,
            failed,
            ..Seen::default()
        };
        if let Some(before) = self.seen.get(job).cloned() {
            if before.uid != uid && !before.uid.is_empty() {
                self.violate(
                    job,
                    format!(
                        "recreated: uid {} -> {uid} (succeeded {} -> {succeeded}, failed {} -> {failed})",
                        before.uid, before.succeeded, before.failed
                    ),
                );
            } else {
                if succeeded < before.succeeded {
                    self.violate(
                        job,
                        format!(
                            "status.succeeded went backwards: {} -> {succeeded}",
                            before.succeeded
                        ),
                    );
                }
                if failed < before.failed {
                    self.violate(
                        job,
                        format!(
                            "status.failed went backwards: {} -> {failed}",
                            before.failed
                        ),
                    );
                }
            }
            // A Job reported finished keeps its baseline of executions whatever happens next:
            // a re-run must show against it.
            if let Some((cond, execs)) = before.finished {
                if !has_condition(v, &cond) {
                    next.lost = true;
                    if !before.lost {
                        self.violate(
                            job,
                            format!(
                                "reported {cond}, now conditions {:?} (succeeded {succeeded}, failed {failed}, active {})",
                                condition_types(v),
                                v["status"]["active"].as_u64().unwrap_or(0)
                            ),
                        );
                    }
                }
                next.finished = Some((cond, execs));
            }
        }
        if next.finished.is_none()
            && let Some(cond) = ["Complete", "Failed"]
                .into_iter()
                .find(|c| has_condition(v, c))
        {
            // Reported finished now: every execution of it has happened already.
            next.finished = Some((cond.to_string(), self.execs_of(job).len()));
        }
        self.seen.insert(job.to_string(), next);
    }

    fn finished(&self, job: &str) -> Option<&str> {
        self.seen
            .get(job)
            .and_then(|s| s.finished.as_ref())
            .map(|(c, _)| c.as_str())
    }

    /// Polls the Job until `done` (or `timeout`); each answer is checked by `observe`.
    fn poll_until(
        &mut self,
        job: &str,
        every: Duration,
        timeout: Duration,
        mut done: impl FnMut(&Harness, &Value) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.observe(job)
                && done(self, &v)
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(every);
        }
    }

    /// The observable barrier after a restart: every Job reported finished is finished
    /// again (it ran again, if it was going to), then a new sentinel Job completes (the
    /// daemon has rescanned and synced everything older). Then the checks.
    fn barrier_and_check(&mut self) {
        let jobs: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, s)| s.finished.is_some())
            .map(|(j, _)| j.clone())
            .collect();
        for job in &jobs {
            let settled = self.poll_until(job, Duration::from_millis(20), T, |_, v| {
                has_condition(v, "Complete") || has_condition(v, "Failed")
            });
            if !settled {
                self.violate(
                    job,
                    format!("reported finished, not finished {T:?} after a restart"),
                );
            }
        }
        self.sentinels += 1;
        let sentinel = format!("sentinel-{}", self.sentinels);
        let manifest = self.job_manifest(&sentinel, "true", "");
        self.d.drop_manifest(&format!("{sentinel}.yaml"), &manifest);
        let done = self.poll_until(&sentinel, Duration::from_millis(10), T, |_, v| {
            has_condition(v, "Complete")
        });
        assert!(
            done,
            "sentinel {sentinel} never completed\n--- daemon log ---\n{}",
            tail(&self.d.daemon_log(), 60)
        );
        for job in &jobs {
            self.check_not_run_again(job);
        }
    }

    fn check_not_run_again(&mut self, job: &str) {
        let Some((cond, at_report)) = self.seen.get(job).and_then(|s| s.finished.clone()) else {
            return;
        };
        let execs = self.execs_of(job);
        if execs.len() > at_report {
            self.violate(
                job,
                format!(
                    "reported {cond}, then ran {} more container(s): {:?}",
                    execs.len() - at_report,
                    &execs[at_report..]
                ),
            );
            // Report each re-run once.
            if let Some(s) = self.seen.get_mut(job) {
                s.finished = Some((cond, execs.len()));
            }
        }
    }

    /// Once the Job is finished: counts match the pods in the store, every execution is a
    /// pod, nothing still waits to be counted.
    fn check_accounting(&mut self, job: &str, completions: u64) {
        let Some(v) = self.observe(job) else {
            self.violate(job, "gone at the final check".into());
            return;
        };
        let succeeded = v["status"]["succeeded"].as_u64().unwrap_or(0);
        let failed = v["status"]["failed"].as_u64().unwrap_or(0);
        let pods = self.d.pods_of(job);
        let phase = |p: &str| pods.iter().filter(|x| x["status"]["phase"] == p).count() as u64;
        let (pods_succeeded, pods_failed) = (phase("Succeeded"), phase("Failed"));
        if succeeded != pods_succeeded {
            self.violate(
                job,
                format!("status.succeeded is {succeeded}, but {pods_succeeded} pods are Succeeded"),
            );
        }
        if failed != pods_failed {
            self.violate(
                job,
                format!("status.failed is {failed}, but {pods_failed} pods are Failed"),
            );
        }
        if succeeded > completions {
            self.violate(
                job,
                format!("status.succeeded {succeeded} > completions {completions}"),
            );
        }
        let tracked: Vec<&str> = pods
            .iter()
            .filter(|p| {
                p["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == "batch.kubernetes.io/job-tracking"))
            })
            .filter_map(|p| p["metadata"]["name"].as_str())
            .collect();
        if !tracked.is_empty() {
            let msg = format!(
                "finished, but {} pod(s) still carry the job-tracking finalizer: {tracked:?}",
                tracked.len()
            );
            self.violate(job, msg);
        }
        let execs = self.execs();
        self.check_execs_recorded(&execs);
        self.check_runs_recorded(job, &pods, &execs);
    }

    /// No pod ran more often than its record says it was started: each container run is
    /// recorded (`restartCount` + 1 runs) before its process starts, restarts included.
    fn check_runs_recorded(&mut self, job: &str, pods: &[Value], execs: &[String]) {
        for pod in pods {
            let Some(name) = pod["metadata"]["name"].as_str() else {
                continue;
            };
            let recorded: u64 = pod["status"]["containerStatuses"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| c["restartCount"].as_u64().unwrap_or(0) + 1)
                        .sum()
                })
                .unwrap_or(0);
            let ran = execs.iter().filter(|e| e.as_str() == name).count() as u64;
            if ran > recorded {
                let msg =
                    format!("pod {name} ran {ran} time(s), but its record accounts for {recorded}");
                self.violate(job, msg);
            }
        }
    }

    /// Prints the summary; on violations keeps the directories and fails the test.
    fn finish(mut self) {
        let summary = format!(
            "{}: seed {}, {} trials, {} kill points, {} executions, {} violations",
            self.test,
            self.seed,
            self.trial,
            self.kill_points,
            self.execs().len(),
            self.violations.len()
        );
        eprintln!("SUMMARY {summary}");
        if self.violations.is_empty() {
            return;
        }
        let root = self.d.keep_root();
        self.marker_dir.disable_cleanup(true);
        let shown: Vec<&String> = self.violations.iter().take(30).collect();
        panic!(
            "{summary}\nroot kept: {}\nexecutions: {}\n{}{}",
            root.display(),
            self.marker().display(),
            shown.iter().map(|v| format!("- {v}\n")).collect::<String>(),
            if self.violations.len() > shown.len() {
                format!("… and {} more", self.violations.len() - shown.len())
            } else {
                String::new()
            }
        );
    }
}

impl Drop for Harness {
    /// A panic mid-trial keeps the directories too.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let root = self.d.keep_root();
            self.marker_dir.disable_cleanup(true);
            eprintln!(
                "{} (seed {}, trial {}, last kill point {}): root kept at {}, executions in {}",
                self.test,
                self.seed,
                self.trial,
                self.last_kill,
                root.display(),
                self.marker().display()
            );
        }
    }
}

/// `<job>-xxxxx` → `<job>`.
fn job_of_pod(pod: &str) -> &str {
    pod.rsplit_once('-').map_or(pod, |(job, _)| job)
}

/// A watch over the socket, chunked transfer decoded, one JSON event per line.
struct WatchStream {
    reader: BufReader<UnixStream>,
    buf: Vec<u8>,
}

impl WatchStream {
    /// Returns once the response headers came: the watch is registered.
    fn open(d: &TestDaemon, path: &str) -> WatchStream {
        let mut s = UnixStream::connect(d.socket()).expect("connect for watch");
        s.set_read_timeout(Some(T)).expect("timeout");
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("watch request");
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        let mut head = String::new();
        while reader.read_line(&mut line).expect("watch headers") > 0 && line != "\r\n" {
            head.push_str(&line);
            line.clear();
        }
        assert!(head.starts_with("HTTP/1.1 200"), "watch refused: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "watch not chunked: {head}"
        );
        WatchStream {
            reader,
            buf: Vec::new(),
        }
    }

    /// The next event, or `None` when the stream ends.
    fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(&line) {
                    return Some(v);
                }
                continue;
            }
            let mut size = String::new();
            if self.reader.read_line(&mut size).ok()? == 0 {
                return None;
            }
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 {
                return None;
            }
            let mut chunk = vec![0u8; n + 2];
            self.reader.read_exact(&mut chunk).ok()?;
            chunk.truncate(n);
            self.buf.extend_from_slice(&chunk);
        }
    }
}

/// Trials of short Jobs: each is SIGKILLed the moment its result is reported (through a
/// watch, `jobvisor wait` or a GET), restarted, and must neither lose the result nor run again.
fn finished_trials(h: &mut Harness, n: u64) {
    let mut rng = Rng::new(h.seed);
    for trial in 0..n {
        h.trial = trial;
        let channel = match trial % 3 {
            0 => Channel::Watch,
            1 => Channel::Wait,
            _ => Channel::Poll,
        };
        let fail = rng.below(4) == 0;
        let job = format!("fin-{trial}");
        let (cond, manifest, completions) = if fail {
            (
                "Failed",
                h.job_manifest(&job, "exit 1", "  backoffLimit: 1\n"),
                1,
            )
        } else {
            let completions = 1 + rng.below(3);
            let parallelism = 1 + rng.below(completions);
            (
                "Complete",
                h.job_manifest(
                    &job,
                    "true",
                    &format!("  completions: {completions}\n  parallelism: {parallelism}\n"),
                ),
                completions,
            )
        };
        let file = format!("{job}.yaml");
        let reported = match channel {
            Channel::Watch => {
                let mut w = WatchStream::open(
                    &h.d,
                    &format!(
                        "/apis/batch/v1/namespaces/default/jobs?watch=true&fieldSelector=metadata.name%3D{job}"
                    ),
                );
                h.d.drop_manifest(&file, &manifest);
                let mut got = None;
                while let Some(ev) = w.next() {
                    if has_condition(&ev["object"], cond) {
                        got = Some(ev["object"].clone());
                        break;
                    }
                }
                got
            }
            Channel::Wait => {
                let mut wait = std::process::Command::new(BIN)
                    .arg("--root")
                    .arg(h.d.path())
                    .args([
                        "wait",
                        &format!("--for=condition={}", cond.to_lowercase()),
                        &format!("job/{job}"),
                        "--timeout=120s",
                    ])
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("jobvisor wait");
                h.d.drop_manifest(&file, &manifest);
                let status = wait.wait().expect("jobvisor wait");
                // `wait` says so only when the Job has the condition: take it as that Job.
                status.success().then(|| {
                    serde_json::json!({"metadata": {"uid": ""}, "status": {"conditions": [
                        {"type": cond, "status": "True"}]}})
                })
            }
            Channel::Poll => {
                h.d.drop_manifest(&file, &manifest);
                let deadline = Instant::now() + T;
                let mut got = None;
                while got.is_none() && Instant::now() < deadline {
                    let (code, v) =
                        h.d.get_json(&format!("/apis/batch/v1/namespaces/default/jobs/{job}"));
                    if code == 200 && has_condition(&v, cond) {
                        got = Some(v);
                    } else {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                got
            }
        };
        // The kill comes first: anything reported must already be durable.
        h.d.kill9();
        let Some(reported) = reported else {
            panic!(
                "{}: job/{job} never reported {cond} through {channel:?}\n--- daemon log ---\n{}",
                h.test,
                tail(&h.d.daemon_log(), 60)
            );
        };
        let execs = h.execs_of(&job).len();
        let uid = reported["metadata"]["uid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let status = &reported["status"];
        let seen = Seen {
            succeeded: status["succeeded"].as_u64().unwrap_or(0),
            failed: status["failed"].as_u64().unwrap_or(0),
            finished: Some((cond.to_string(), execs)),
            uid,
            ..Seen::default()
        };
        h.restart(format!(
            "right after {cond} was reported through {channel:?}"
        ));
        if seen.uid.is_empty() {
            // Through `wait`: the uid and counts are learnt from the first look after the
            // restart; losing the condition still shows.
            let after = h.d.job(&job);
            let uid = after
                .as_ref()
                .and_then(|v| v["metadata"]["uid"].as_str())
                .unwrap_or("")
                .to_string();
            h.seen.insert(job.clone(), Seen { uid, ..seen });
            if let Some(v) = after {
                h.check_against_seen(&job, &v);
            } else {
                h.violate(&job, format!("reported {cond}, gone after the restart"));
            }
        } else {
            h.seen.insert(job.clone(), seen);
        }
        h.barrier_and_check();
        h.check_accounting(&job, completions);
    }
    h.trial = n;
}

/// Trials of one Job of many short pods, SIGKILLed at random instants (and right after a
/// count went up) many times, watched the whole time; then killed right after it completes.
fn storm_trials(h: &mut Harness, n: u64) {
    storm_trials_with(
        h,
        n,
        "Never",
        "sleep 0.05",
        env_num("JOBVISOR_CRASH_PODS", 250),
    );
}

/// `OnFailure` pods that fail about half their runs: restarts in place, each of which must be
/// recorded before it runs.
fn restart_storm_trials(h: &mut Harness, n: u64) {
    let pods = env_num("JOBVISOR_CRASH_PODS", 250) / 5;
    let coin = "sleep 0.02; [ \"$(od -An -N1 -tu1 /dev/urandom)\" -lt 128 ] || exit 1";
    storm_trials_with(h, n, "OnFailure", coin, pods);
}

fn storm_trials_with(h: &mut Harness, n: u64, policy: &str, then: &str, pods: u64) {
    let kills = env_num("JOBVISOR_CRASH_KILLS", 12);
    let mut rng = Rng::new(h.seed);
    for trial in 0..n {
        h.trial = trial;
        let parallelism = 10 + rng.below(11);
        let job = format!("storm-{trial}");
        let manifest = h.job_manifest_with(
            policy,
            &job,
            then,
            &format!(
                "  completions: {pods}\n  parallelism: {parallelism}\n  backoffLimit: 1000000\n"
            ),
        );
        h.d.drop_manifest(&format!("{job}.yaml"), &manifest);
        for k in 0..kills {
            if h.finished(&job).is_some() {
                break;
            }
            let point = match rng.below(6) {
                0 | 1 => {
                    // Right after a count went up (or the Job finished): what was just
                    // reported must survive.
                    let base = h.seen.get(&job).map_or(0, |s| s.succeeded + s.failed);
                    h.poll_until(&job, Duration::from_millis(2), T, |h, v| {
                        h.finished(&job).is_some()
                            || v["status"]["succeeded"].as_u64().unwrap_or(0)
                                + v["status"]["failed"].as_u64().unwrap_or(0)
                                > base
                    });
                    let s = h.seen.get(&job).cloned().unwrap_or_default();
                    format!(
                        "kill {k}: right after succeeded={} failed={} was reported",
                        s.succeeded, s.failed
                    )
                }
                2 => {
                    // Twice: now, and again while the next daemon recovers (before READY).
                    h.d.kill9();
                    h.kill_points += 1;
                    h.d.spawn_unready();
                    let ms = rng.below(80);
                    std::thread::sleep(Duration::from_millis(ms));
                    format!("kill {k}: {ms} ms into the start-up after a kill")
                }
                _ => {
                    let ms = rng.below(MAX_KILL_DELAY_MS);
                    let deadline = Instant::now() + Duration::from_millis(ms);
                    while Instant::now() < deadline {
                        h.observe(&job);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    format!("kill {k}: {ms} ms after ready")
                }
            };
            h.crash(point);
        }
        // Let it finish, watching, and crash the moment it is reported finished.
        let done = h.poll_until(&job, Duration::from_millis(5), T, |h, _| {
            h.finished(&job).is_some()
        });
        assert!(
            done,
            "{}: job/{job} never finished\n--- daemon log ---\n{}",
            h.test,
            tail(&h.d.daemon_log(), 60)
        );
        let cond = h.finished(&job).unwrap_or_default().to_string();
        h.crash(format!("right after {cond} was reported"));
        h.barrier_and_check();
        h.check_accounting(&job, pods);
    }
    h.trial = n;
}

fn power_loss_env() -> Vec<(&'static str, String)> {
    vec![
        ("JOBVISOR_TEST_POWER_LOSS", "1".into()),
        (
            "JOBVISOR_TEST_FSYNC_DELAY_MS",
            env_num("JOBVISOR_CRASH_FSYNC_DELAY_MS", 5).to_string(),
        ),
    ]
}

fn with_env(test: &'static str, env: &[(&'static str, String)]) -> Harness {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Harness::new(test, &env)
}

#[test]
fn finished_jobs_never_run_again_after_kill_dash_nine() {
    let mut h = with_env(
        "crash::finished_jobs_never_run_again_after_kill_dash_nine",
        &[],
    );
    finished_trials(&mut h, trials(30));
    h.finish();
}

#[test]
fn counts_never_go_backwards_under_random_kills() {
    let mut h = with_env("crash::counts_never_go_backwards_under_random_kills", &[]);
    storm_trials(&mut h, trials(5));
    h.finish();
}

#[test]
fn restarts_in_place_are_recorded_before_they_run() {
    // A longer fsync: a restart started before its record is then caught by a kill.
    let env = [
        ("JOBVISOR_TEST_POWER_LOSS", "1".to_string()),
        ("JOBVISOR_TEST_FSYNC_DELAY_MS", "25".to_string()),
    ];
    let mut h = with_env(
        "crash::restarts_in_place_are_recorded_before_they_run",
        &env,
    );
    restart_storm_trials(&mut h, trials(3));
    h.finish();
}

#[test]
fn power_loss_finished_jobs_never_run_again() {
    let mut h = with_env(
        "crash::power_loss_finished_jobs_never_run_again",
        &power_loss_env(),
    );
    finished_trials(&mut h, trials(20));
    h.finish();
}

#[test]
fn power_loss_counts_never_go_backwards() {
    let mut h = with_env(
        "crash::power_loss_counts_never_go_backwards",
        &power_loss_env(),
    );
    storm_trials(&mut h, trials(4));
    h.finish();
}
