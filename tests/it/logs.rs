//! Container logs under a burst: rotation keeps a run's files within
//! `containerLogMaxSize` × `containerLogMaxFiles`, and `jobvisor logs -f` follows across the
//! rotations, each line once and in order.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::support::*;

const T: Duration = Duration::from_secs(120);

/// A Job whose container writes line 0, waits until the test opens `fifo` (once `logs -f`
/// has shown line 0, so it is attached), then writes lines 1 to `lines`, 100 bytes each
/// (`%09d` and padding), as fast as it can.
fn burst_job(name: &str, fifo: &Path, lines: u64) -> String {
    let script = format!(
        "printf '%09d attached\\n' 0; read x < {}; awk 'BEGIN {{ p = sprintf(\"%90s\", \"\"); for (i = 1; i <= {lines}; i++) printf \"%09d%s\\n\", i, p }}'",
        fifo.display()
    );
    job_yaml(name, "Never", &["sh", "-c", &script], "")
}

fn pod_name(d: &TestDaemon, job: &str) -> (String, String) {
    let mut found = None;
    assert!(
        wait_until(T, || {
            found = d.pods_of(job).first().map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    p["metadata"]["uid"].as_str().unwrap_or("").to_string(),
                )
            });
            found.as_ref().is_some_and(|(_, _)| {
                d.pods_of(job)[0]["status"]["containerStatuses"][0]["state"]["running"].is_object()
            })
        }),
        "the pod of {job} never ran"
    );
    found.unwrap_or_default()
}

/// Bytes in the directory's files.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

struct Burst {
    /// The numbers of the lines `logs -f` printed, in order.
    followed: Vec<u64>,
    /// The most the container's log directory held at any sample.
    peak: u64,
    dir: PathBuf,
    /// Keeps the root (and the logs) until the test is done.
    _daemon: TestDaemon,
}

/// Runs a burst of `lines` lines under `config` while `logs -f` follows it and a thread
/// samples the size of the run's log directory.
fn burst(config: &str, lines: u64) -> Burst {
    let d = TestDaemon::start_with(&format!("{FAST_CONFIG}{config}"));
    let fifo = d.path().join("go");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    d.drop_manifest("burst.yaml", &burst_job("burst", &fifo, lines));
    let (pod, uid) = pod_name(&d, "burst");
    let dir = d.path().join(format!("logs/pods/default_{pod}_{uid}/main"));

    let mut follower = Command::new(BIN)
        .arg("--root")
        .arg(d.path())
        .args(["logs", "-f", &pod])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("jobvisor logs -f");
    let stdout = follower.stdout.take().expect("stdout");
    let (attached_tx, attached) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut nums = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("a line");
            let n = line[..9].parse::<u64>().expect("a numbered line");
            if n == 0 {
                let _ = attached_tx.send(());
                continue;
            }
            nums.push(n);
        }
        nums
    });
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak, dir) = (done.clone(), peak.clone(), dir.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(dir_bytes(&dir), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    // The burst starts when the FIFO is opened: only once `logs -f` has shown line 0, so it
    // follows the burst rather than reading it after the container ended.
    attached
        .recv_timeout(T)
        .expect("logs -f never showed the line before the burst");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .expect("opening the FIFO");
    d.wait_condition("burst", "Complete", T);
    let status = follower.wait().expect("logs -f ends with the container");
    assert!(status.success(), "logs -f: {status}");
    let followed = reader.join().expect("reader");
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    peak.fetch_max(dir_bytes(&dir), Ordering::Relaxed);
    Burst {
        followed,
        peak: peak.load(Ordering::Relaxed),
        dir,
        _daemon: d,
    }
}

/// A 50 MB burst (500,000 lines of 100 bytes, 70 MB as CRI records) with 1Mi × 4 files:
/// the run's files stay within the bound throughout, the rotated ones are named as the
/// kubelet names them, and `logs -f` follows across the ~70 rotations to the last line,
/// never repeating or reordering one (it may lose the lines of files removed before it got
/// to them, as any reader of a rotated log may).
#[test]
fn a_50mb_burst_rotates_within_its_bound_and_logs_f_follows_across_it() {
    const LINES: u64 = 500_000;
    const MAX: u64 = 1 << 20;
    const FILES: u64 = 4;
    let b = burst(
        &format!("logs:\n  containerLogMaxSize: 1Mi\n  containerLogMaxFiles: {FILES}\n"),
        LINES,
    );
    // The live and rotated files, plus one compression's `.gz.tmp` at most.
    assert!(
        b.peak <= (FILES + 1) * MAX,
        "the run's logs peaked at {} bytes",
        b.peak
    );
    // Oldest first by stamp, then by the number within its second (`.9` before `.10`, which
    // a string sort puts the other way round when ten rotations share a second).
    let list = || {
        let mut names: Vec<String> = std::fs::read_dir(&b.dir)
            .expect("the log directory")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort_by_key(|n| {
            let rest = n.strip_prefix("0.log.").unwrap_or("");
            let rest = rest.strip_suffix(".gz").unwrap_or(rest);
            let (stamp, seq) = rest.split_once('.').unwrap_or((rest, "0"));
            (
                n != "0.log",
                stamp.to_string(),
                seq.parse::<u64>().unwrap_or(0),
            )
        });
        names
    };
    // Compression runs on a thread of its own at nice 19, after the rotation, so it falls
    // behind on a loaded machine: wait until the files older than the newest rotated one are
    // compressed.
    let mut names = list();
    assert!(
        wait_until(T, || {
            names = list();
            names.len() <= 2 || names[1..names.len() - 1].iter().all(|n| n.ends_with(".gz"))
        }),
        "the older rotated files were never all compressed: {names:?}"
    );
    assert!(names.len() as u64 <= FILES, "{names:?}");
    assert_eq!(names[0], "0.log");
    for n in &names[1..] {
        let rest = n.strip_prefix("0.log.").expect("a rotated file");
        let stamp = rest.split('.').next().unwrap_or("");
        assert!(
            stamp.len() == 15 && stamp.as_bytes()[8] == b'-',
            "{n}: not 0.log.YYYYMMDD-hhmmss"
        );
    }
    assert!(names[1].ends_with(".gz") || names.len() == 2, "{names:?}");
    assert!(
        !names.last().expect("a rotated file").ends_with(".gz"),
        "{names:?}"
    );

    let f = &b.followed;
    assert_eq!(f.last(), Some(&LINES), "logs -f got to the last line");
    assert!(
        f.windows(2).all(|w| w[0] < w[1]),
        "logs -f repeated or reordered lines"
    );
    // It followed across rotations, not just the last file: at least the first file's lines.
    assert!(
        f.len() as u64 > 4 * MAX / 141,
        "only {} lines followed",
        f.len()
    );
}

/// A burst the files can hold whole (5 MB in 256Ki files, 40 kept): `logs -f` gets every
/// line exactly once across the ~28 rotations, compressed files included.
#[test]
fn logs_f_loses_nothing_across_rotations_when_the_files_are_kept() {
    const LINES: u64 = 50_000;
    let b = burst(
        "logs:\n  containerLogMaxSize: 256Ki\n  containerLogMaxFiles: 40\n",
        LINES,
    );
    assert!(
        b.followed == (1..=LINES).collect::<Vec<_>>(),
        "{} lines followed, not 1..={LINES} once each: {}",
        b.followed.len(),
        first_gap(&b.followed)
    );
    let compressed = || {
        std::fs::read_dir(&b.dir)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".gz"))
                })
                .count()
            })
            .unwrap_or(0)
    };
    assert!(
        wait_until(T, || compressed() > 20),
        "{} compressed files",
        compressed()
    );
}

/// Where `followed` first departs from 1, 2, 3, …: what came instead.
fn first_gap(followed: &[u64]) -> String {
    let mut want = 1;
    for (i, &n) in followed.iter().enumerate() {
        if n != want {
            return format!("line {want} expected at position {i}, line {n} came");
        }
        want += 1;
    }
    format!("all in order, ending at line {}", want - 1)
}

/// Bytes of all files under `dir`.
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => tree_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// `logs.spoolMaxSize`: five pods of a Job write 140 KB of log each into a 300Ki spool; the
/// logs of the pods that finished first are removed, each with a `LogsRemoved` event on its
/// pod (which stays), until the spool is within its cap again.
#[test]
fn the_spool_cap_removes_the_oldest_finished_pods_logs_with_an_event() {
    let d = TestDaemon::start_with(&format!("{FAST_CONFIG}logs:\n  spoolMaxSize: 300Ki\n"));
    let script = "awk 'BEGIN { p = sprintf(\"%90s\", \"\"); for (i = 1; i <= 1000; i++) printf \"%09d%s\\n\", i, p }'";
    d.drop_manifest(
        "chatty.yaml",
        &job_yaml(
            "chatty",
            "Never",
            &["sh", "-c", script],
            "  completions: 5\n  parallelism: 1\n",
        ),
    );
    d.wait_condition("chatty", "Complete", T);
    let removed = || -> Vec<serde_json::Value> {
        let (_, events) = d.get_json("/api/v1/namespaces/default/events");
        events["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["reason"] == "LogsRemoved")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let spool = d.path().join("logs/pods");
    let pods = d.pods_of("chatty");
    assert_eq!(pods.len(), 5, "the pods stay");
    // A pod's log directory goes before its event is recorded (and the event is seen only
    // once it is on disk): wait for the spool within its cap and an event for every pod
    // whose directory went.
    let gone = || -> Vec<String> {
        pods.iter()
            .filter(|p| {
                !spool
                    .join(format!(
                        "default_{}_{}",
                        p["metadata"]["name"].as_str().unwrap_or(""),
                        p["metadata"]["uid"].as_str().unwrap_or("")
                    ))
                    .exists()
            })
            .map(|p| p["metadata"]["uid"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let mut events = Vec::new();
    assert!(
        wait_until(T, || {
            events = removed();
            tree_bytes(&spool) <= 300 * 1024
                && gone()
                    .iter()
                    .all(|uid| events.iter().any(|e| e["involvedObject"]["uid"] == *uid))
        }),
        "the spool at {} bytes, the logs of {:?} gone, events: {events:#?}",
        tree_bytes(&spool),
        gone()
    );
    assert!(gone().len() >= 3, "{:?}", gone());
    assert!(events.len() >= 3, "{events:#?}");
    assert_eq!(d.pods_of("chatty").len(), 5, "the pods stay");
    for e in &events {
        assert_eq!(
            e["message"], "the logs in the spool exceeded logs.spoolMaxSize (300Ki)",
            "{e:#}"
        );
        let uid = &e["involvedObject"]["uid"];
        assert!(pods.iter().any(|p| &p["metadata"]["uid"] == uid), "{e:#}");
    }
    // The newest pod's logs are among those kept.
    let newest = pods
        .iter()
        .max_by_key(|p| {
            p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .expect("a pod");
    let name = newest["metadata"]["name"].as_str().unwrap_or("");
    let out = d.cli_ok(&["logs", name]);
    assert_eq!(out.lines().count(), 1000);
}
