//! The socket speaks Kubernetes: REST paths, JSON objects, Status errors, watch streams.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const T: Duration = Duration::from_secs(60);

#[test]
fn objects_lists_and_errors_are_kubernetes_shaped() {
    let d = TestDaemon::start();
    d.copy_example("simple-job.yaml");
    d.wait_condition("simple-job", "Complete", T);

    let (code, job) = d.get_json("/apis/batch/v1/namespaces/default/jobs/simple-job");
    assert_eq!(code, 200);
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    assert!(job["metadata"]["uid"].is_string() && job["metadata"]["creationTimestamp"].is_string());
    assert_eq!(job["spec"]["backoffLimit"], 6, "defaults applied");
    assert_eq!(job["spec"]["completionMode"], "NonIndexed");
    let uid = job["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["job-name"],
        "simple-job"
    );

    let (_, list) = d.get_json("/apis/batch/v1/jobs");
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("batch/v1"), Some("JobList"))
    );
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, pods) = d.get_json("/api/v1/namespaces/default/pods");
    assert_eq!(pods["kind"], "PodList");
    let pod = &pods["items"][0];
    assert!(
        pod["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("simple-job-")
    );
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], uid);
    assert_eq!(
        pod["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "simple-job"
    );
    assert!(
        pod["metadata"]["finalizers"].is_null(),
        "tracking finalizer removed once counted"
    );
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );

    let reasons = d.event_reasons();
    for want in ["SuccessfulCreate", "Started", "Completed"] {
        assert!(reasons.iter().any(|r| r == want), "{want} in {reasons:?}");
    }

    let (code, missing) = d.get_json("/apis/batch/v1/namespaces/default/jobs/nope");
    assert_eq!(code, 404);
    assert_eq!(missing["kind"], "Status");
    assert_eq!(missing["reason"], "NotFound");
    assert_eq!(missing["code"], 404);
    assert_eq!(missing["message"], "jobs.batch \"nope\" not found");
    let (code, _) = d.get_json("/apis/batch/v1/namespaces/other/jobs/simple-job");
    assert_eq!(code, 404, "namespaces are separate");
    let (code, _) = d.get_json("/no/such/path");
    assert_eq!(code, 404);
    let (code, body) = d.http("GET", "/healthz", None);
    assert_eq!((code, body.as_str()), (200, "ok"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode");
}

#[test]
fn watch_streams_changes_as_they_happen() {
    let d = TestDaemon::start();
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"GET /apis/batch/v1/namespaces/default/jobs?watch=true HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    // The response headers come once the watch is registered: only then create the Job.
    while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
        line.clear();
    }
    d.drop_manifest("w.yaml", &job_yaml("w", "Never", &["true"], ""));
    let mut seen = Vec::new();
    let mut raw = Vec::new();
    while !seen.iter().any(|(_, c): &(String, bool)| *c) {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        raw.push(line.clone());
        // Chunk-size lines are hex and may parse as a JSON number ("599"): only objects count.
        if let Ok(ev @ Value::Object(_)) = serde_json::from_str::<Value>(line.trim()) {
            seen.push((
                ev["type"].as_str().unwrap_or("").to_string(),
                has_condition(&ev["object"], "Complete"),
            ));
        }
    }
    // Keep the raw stream in the message: a framing problem shows there.
    let first = seen.first().map(|s| s.0.as_str());
    assert_eq!(first, Some("ADDED"), "{seen:?}\n{raw:#?}");
    assert!(
        seen.iter().any(|(t, c)| t == "MODIFIED" && *c),
        "{seen:?}\n{raw:#?}"
    );
}

/// Opens `path` as a watch; returns once the response headers came (the watch is registered).
pub(crate) fn open_watch(d: &TestDaemon, path: &str) -> BufReader<UnixStream> {
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
        line.clear();
    }
    reader
}

/// Watch events read until `done` says so (chunk-size lines are skipped: not JSON objects).
pub(crate) fn watch_events(
    reader: &mut BufReader<UnixStream>,
    mut done: impl FnMut(&Value) -> bool,
) -> Vec<Value> {
    let mut events = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            return events;
        }
        if let Ok(ev @ Value::Object(_)) = serde_json::from_str::<Value>(line.trim()) {
            let stop = done(&ev);
            events.push(ev);
            if stop {
                return events;
            }
        }
    }
}

#[test]
fn pod_and_event_watches_each_see_their_own_kind() {
    let d = TestDaemon::start();
    let mut pods = open_watch(&d, "/api/v1/namespaces/default/pods?watch=true");
    let mut events = open_watch(&d, "/api/v1/events?watch=true");
    d.drop_manifest("pw.yaml", &job_yaml("pw", "Never", &["true"], ""));
    let seen = watch_events(&mut pods, |ev| {
        ev["object"]["status"]["phase"] == "Succeeded"
    });
    let kinds: Vec<&str> = seen
        .iter()
        .filter_map(|e| e["object"]["kind"].as_str())
        .collect();
    assert!(kinds.iter().all(|k| *k == "Pod"), "{seen:#?}");
    assert_eq!(
        seen.first().map(|e| &e["type"]),
        Some(&Value::from("ADDED")),
        "{seen:#?}"
    );
    let seen = watch_events(&mut events, |ev| ev["object"]["reason"] == "Completed");
    assert!(
        seen.iter().all(|e| e["object"]["kind"] == "Event"),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|e| e["object"]["reason"] == "SuccessfulCreate"),
        "{seen:#?}"
    );
}

/// `POST /apis/jobvisor.io/v1/manifests` applies one object (YAML or JSON): 201 with the
/// file that now defines it when created, 200 after, 422 when invalid, 400 for anything but
/// one object; nothing is written unless it is applied.
#[test]
fn objects_are_applied_through_the_api() {
    let d = TestDaemon::start();
    let path = "/apis/jobvisor.io/v1/manifests";
    let text = job_yaml("put", "Never", &["true"], "");
    let (code, body) = d.http("POST", path, Some(&text));
    assert_eq!(code, 201, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let file = d.manifests().join("job.batch_default_put.yaml");
    assert_eq!(answer["path"], file.display().to_string());
    assert_eq!(answer["objects"][0]["action"], "created");
    assert!(file.exists());
    d.wait_condition("put", "Complete", T);
    let (code, body) = d.http("POST", path, Some(&text));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""action":"unchanged""#), "{body}");

    let before = d.manifest_names();
    let (code, body) = d.http(
        "POST",
        path,
        Some(&job_yaml("bad", "Always", &["true"], "")),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("restartPolicy"), "{body}");
    let two = format!("{text}---\n{}", job_yaml("put2", "Never", &["true"], ""));
    let (code, body) = d.http("POST", path, Some(&two));
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http("POST", path, Some("# nothing\n"));
    assert_eq!(code, 400, "{body}");
    assert_eq!(d.manifest_names(), before, "nothing written when refused");
}

/// A watcher whose client stops reading never holds the daemon up: the Job completes, a
/// watcher that keeps reading gets every change, and the stuck one, once read again, is ended
/// the way the API server ends a watch that fell behind: `ERROR` with a 410 `Expired` Status.
#[test]
fn a_watcher_that_stops_reading_is_ended_with_410_expired() {
    const PODS: usize = 1000;
    let d = TestDaemon::start_with(&format!("{FAST_CONFIG}api:\n  watchBacklog: 512\n"));
    // Opened and then never read until the Job is done.
    let mut stuck = open_watch(&d, "/api/v1/pods?watch=true");
    let mut good = open_watch(&d, "/api/v1/pods?watch=true");
    let reader = std::thread::spawn(move || {
        // Each pod's last state as seen; done when every pod was seen counted and finished.
        let mut last = std::collections::HashMap::<String, Value>::new();
        let mut errors = Vec::new();
        watch_events(&mut good, |ev| {
            if ev["type"] == "ERROR" {
                errors.push(ev.clone());
                return true;
            }
            let name = ev["object"]["metadata"]["name"].as_str().unwrap_or("");
            last.insert(name.to_string(), ev["object"].clone());
            last.len() == PODS
                && last.values().all(|p| {
                    p["status"]["phase"] == "Succeeded" && p["metadata"]["finalizers"].is_null()
                })
        });
        (last, errors)
    });
    d.drop_manifest(
        "many.yaml",
        &job_yaml(
            "many",
            "Never",
            &["true"],
            &format!("  completions: {PODS}\n  parallelism: 25\n"),
        ),
    );
    d.wait_condition("many", "Complete", Duration::from_secs(300));
    let (last, errors) = reader.join().unwrap();
    assert!(
        errors.is_empty(),
        "the reading watcher was ended: {errors:?}"
    );
    assert_eq!(last.len(), PODS, "every pod seen by the reading watcher");

    let events = watch_events(&mut stuck, |ev| ev["type"] == "ERROR");
    let end = events.last().expect("events");
    assert_eq!(end["type"], "ERROR", "{end:#}");
    assert_eq!(end["object"]["kind"], "Status", "{end:#}");
    assert_eq!(end["object"]["code"], 410, "{end:#}");
    assert_eq!(end["object"]["reason"], "Expired", "{end:#}");
    // Then the stream ends: the chunked body's last chunk follows.
    let mut rest = String::new();
    while stuck.read_line(&mut rest).unwrap() > 0 && !rest.contains("0\r\n\r\n") {}
    assert!(rest.contains("0\r\n\r\n"), "{rest:?}");
}

/// Connection limits: past `api.maxConnections` a request is refused with 429 and a
/// Kubernetes Status while `/healthz` still answers; watches count as connections but are
/// never cut by the idle timeout, while an idle kept-alive connection is, which frees its slot.
#[test]
fn connections_past_the_cap_get_429_and_idle_ones_are_closed() {
    let d = TestDaemon::start_with(&format!(
        "{FAST_CONFIG}api:\n  maxConnections: 4\n  idleTimeout: 2s\n  headerReadTimeout: 10s\n"
    ));
    let mut watches: Vec<_> = (0..3)
        .map(|_| open_watch(&d, "/apis/batch/v1/jobs?watch=true"))
        .collect();
    // The fourth: one request, then kept alive and idle.
    let mut idle = UnixStream::connect(d.socket()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    idle.write_all(b"GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("gitVersion") {
        let n = idle.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }

    let (code, raw) = raw_http(&d, "GET /apis/batch/v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(code, 429, "{raw}");
    assert!(raw.to_ascii_lowercase().contains("retry-after: 1"), "{raw}");
    let body: Value = serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["kind"], "Status", "{raw}");
    assert_eq!(body["reason"], "TooManyRequests", "{raw}");
    assert_eq!(body["code"], 429, "{raw}");
    let (code, body) = d.http("GET", "/healthz", None);
    assert_eq!(
        (code, body.as_str()),
        (200, "ok"),
        "health answers past the cap"
    );

    // The idle connection is closed by the daemon once idle for 2s; the watches, which had
    // been quiet even longer, are not.
    let n = idle.read(&mut buf).unwrap();
    assert_eq!(n, 0, "idle connection closed");
    // The slot is released right after the socket closes: a moment later at most.
    assert!(
        wait_until(Duration::from_secs(10), || d
            .http("GET", "/version", None)
            .0
            == 200),
        "its slot was freed"
    );
    d.drop_manifest("seen.yaml", &job_yaml("seen", "Never", &["true"], ""));
    for w in &mut watches {
        let events = watch_events(w, |ev| ev["object"]["metadata"]["name"] == "seen");
        assert_eq!(events.last().unwrap()["type"], "ADDED");
    }
}

/// A connection that never sends a whole request head is closed after the header timeout.
#[test]
fn a_connection_without_a_request_head_is_closed() {
    let d = TestDaemon::start_with(&format!("{FAST_CONFIG}api:\n  headerReadTimeout: 300ms\n"));
    for partial in ["", "GET /version HTTP/1.1\r\nHost: loc"] {
        let mut s = UnixStream::connect(d.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(partial.as_bytes()).unwrap();
        let mut rest = Vec::new();
        // Blocks until the daemon closes (or the 30 s read timeout fails the test).
        let n = s.read_to_end(&mut rest).unwrap();
        assert_eq!(
            n,
            0,
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
    let (code, _) = d.http("GET", "/version", None);
    assert_eq!(code, 200);
}

/// A body that never comes cannot hold a connection: past `api.requestTimeout` the request
/// is answered 504 Timeout. A watch, which is long-running, is not cut by it.
#[test]
fn a_request_whose_body_never_comes_times_out_but_a_watch_does_not() {
    let d = TestDaemon::start_with(&format!("{FAST_CONFIG}api:\n  requestTimeout: 300ms\n"));
    let mut watch = UnixStream::connect(d.socket()).unwrap();
    watch
        .write_all(b"GET /apis/batch/v1/jobs?watch=true HTTP/1.1\r\nHost: l\r\n\r\n")
        .unwrap();
    let (code, raw) = raw_http(
        &d,
        "POST /apis/jobvisor.io/v1/manifests HTTP/1.1\r\nHost: l\r\nContent-Length: 1000\r\n\r\nab",
    );
    assert_eq!(code, 504, "{raw}");
    assert!(raw.contains("\"reason\":\"Timeout\""), "{raw}");
    // Past the timeout, the watch still streams: a new Job shows on it.
    d.drop_manifest("late.yaml", &job_yaml("late", "Never", &["true"], ""));
    watch
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"name\":\"late\"") {
        let n = watch.read(&mut buf).expect("the watch was cut");
        assert!(
            n > 0,
            "the watch was closed: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

/// A `logs -f` whose client went away while the log was quiet ends: it stops waiting and
/// lets go of the log file.
#[test]
fn an_abandoned_follow_of_a_quiet_log_ends() {
    let d = TestDaemon::start();
    d.drop_manifest(
        "quiet.yaml",
        &job_yaml(
            "quiet",
            "Never",
            &["sh", "-c", "echo hi; exec sleep 60"],
            "",
        ),
    );
    assert!(wait_until(Duration::from_secs(60), || d
        .pods_of("quiet")
        .iter()
        .any(|p| p["status"]["phase"] == "Running")));
    let pod = d.pods_of("quiet")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let log_fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
            .map(|fds| {
                fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|t| t.to_string_lossy().ends_with("/main/0.log"))
                    .count()
            })
            .unwrap_or(0)
    };
    // The runtime creates the log file with the container's first output, which may come
    // well after the pod is Running: count the descriptors once "hi" is in the file.
    assert!(
        wait_until(Duration::from_secs(60), || d
            .http(
                "GET",
                &format!("/api/v1/namespaces/default/pods/{pod}/log"),
                None
            )
            .1
            .contains("hi")),
        "the container never wrote hi"
    );
    // The runtime writes the log through one descriptor of its own (a plain read's reader
    // is closed before its response ends).
    let writer = log_fds();
    assert_eq!(writer, 1, "the runtime's own descriptor of the log");
    let mut s = UnixStream::connect(d.socket()).unwrap();
    let req = format!(
        "GET /api/v1/namespaces/default/pods/{pod}/log?follow=true HTTP/1.1\r\nHost: l\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("hi") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    assert_eq!(log_fds(), writer + 1, "the follower holds the log open");
    drop(s);
    assert!(
        wait_until(Duration::from_secs(60), || log_fds() == writer),
        "the abandoned follower still holds the log file"
    );
}

/// Sends `request` as is on a new connection; the status code and the raw response.
fn raw_http(d: &TestDaemon, request: &str) -> (u16, String) {
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let code = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, raw)
}

/// The daemon's peak memory (`VmHWM`), in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Reads an HTTP response body as it comes, keeping only its length and its last bytes.
fn stream_body(d: &TestDaemon, path: &str) -> (usize, Vec<u8>) {
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut length = None;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(!line.starts_with("HTTP/1.1 5"), "{line}");
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut total = 0;
    let mut last = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut take = |r: &mut BufReader<UnixStream>, mut size: usize| {
        total += size;
        while size > 0 {
            let n = size.min(buf.len());
            r.read_exact(&mut buf[..n]).unwrap();
            last.extend_from_slice(&buf[..n]);
            let keep = last.len().saturating_sub(64);
            last.drain(..keep);
            size -= n;
        }
    };
    match length {
        Some(n) => take(&mut r, n),
        None => loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            take(&mut r, size);
            r.read_line(&mut line).unwrap();
        },
    }
    (total, last)
}

/// Reading a log whose line is 64 MB costs the daemon a fixed buffer, not the line: its peak
/// memory grows by far less than the line while the log is read whole, with `tailLines` and
/// with `timestamps`.
#[test]
fn reading_a_huge_line_keeps_the_daemons_memory_bounded() {
    const LINE: usize = 64 << 20;
    // One file holds the whole line: with the default rotation (10Mi x 5) its start would be
    // removed before it is read.
    let d = TestDaemon::start_with(&format!(
        "{FAST_CONFIG}logs:\n  containerLogMaxSize: 128Mi\n"
    ));
    let script = format!("head -c {LINE} /dev/zero | tr '\\0' x; echo; echo done");
    d.drop_manifest(
        "big.yaml",
        &job_yaml("big", "Never", &["sh", "-c", &script], ""),
    );
    d.wait_condition("big", "Complete", Duration::from_secs(120));
    let pod = d.pods_of("big")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let log = format!("/api/v1/namespaces/default/pods/{pod}/log");
    let before = peak_memory(d.pid());
    let (total, last) = stream_body(&d, &log);
    assert_eq!(total, LINE + "\ndone\n".len());
    assert!(
        last.ends_with(b"xxx\ndone\n"),
        "{:?}",
        String::from_utf8_lossy(&last)
    );
    let (total, last) = stream_body(&d, &format!("{log}?tailLines=2&timestamps=true"));
    assert_eq!(
        total,
        LINE + 2 * "2026-11-27T10:11:12.123456789Z ".len() + "\ndone\n".len()
    );
    let last = String::from_utf8_lossy(&last);
    assert!(
        last.contains("xxx\n20") && last.ends_with("Z done\n"),
        "{last:?}"
    );
    let grew = peak_memory(d.pid()).saturating_sub(before);
    assert!(
        grew < (LINE / 4) as u64,
        "reading a {LINE}-byte line raised the daemon's peak memory by {grew} bytes"
    );
}

/// Watches still filter by label and field selector now that events are serialized once: the
/// other Job's events, which come first, must not show.
#[test]
fn watches_filter_by_label_and_field_selector() {
    let d = TestDaemon::start();
    let mut by_label = open_watch(&d, "/api/v1/pods?watch=true&labelSelector=job-name%3Da");
    let mut by_field = open_watch(
        &d,
        "/apis/batch/v1/namespaces/default/jobs?watch=true&fieldSelector=metadata.name%3Da",
    );
    d.drop_manifest("b.yaml", &job_yaml("b", "Never", &["true"], ""));
    d.wait_condition("b", "Complete", T);
    d.drop_manifest("a.yaml", &job_yaml("a", "Never", &["true"], ""));
    let pods = watch_events(&mut by_label, |ev| {
        ev["object"]["status"]["phase"] == "Succeeded"
    });
    assert!(
        pods.iter()
            .all(|e| e["object"]["metadata"]["labels"]["job-name"] == "a"),
        "{pods:#?}"
    );
    let jobs = watch_events(&mut by_field, |ev| has_condition(&ev["object"], "Complete"));
    assert!(
        jobs.iter().all(|e| e["object"]["metadata"]["name"] == "a"),
        "{jobs:#?}"
    );
}

/// kubectl's server-side printing: a list asked for as a `meta.k8s.io/v1` Table comes back
/// as rows laid out by the daemon (the CLI's `get` prints them), filtered like the list; a
/// watch, or a client that does not ask, gets the objects.
#[test]
fn lists_come_as_tables_when_asked_for() {
    let d = TestDaemon::start();
    d.copy_example("simple-job.yaml");
    d.wait_condition("simple-job", "Complete", T);
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let table = |path: &str| -> (String, Value) {
        let (code, raw) = raw_http(
            &d,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(code, 200, "{raw}");
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        (
            head.to_ascii_lowercase(),
            serde_json::from_str(body).unwrap(),
        )
    };
    let (head, jobs) = table("/apis/batch/v1/namespaces/default/jobs");
    assert!(
        head.contains("content-type: application/json;as=table;v=v1;g=meta.k8s.io"),
        "{head}"
    );
    assert_eq!(
        (jobs["kind"].as_str(), jobs["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let columns: Vec<(&str, i64)> = jobs["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        columns,
        [
            ("Name", 0),
            ("Status", 0),
            ("Completions", 0),
            ("Duration", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1)
        ]
    );
    let row = &jobs["rows"][0];
    assert_eq!(row["cells"][0], "simple-job");
    assert_eq!(row["cells"][1], "Complete");
    assert_eq!(row["cells"][2], "1/1");
    assert_eq!(row["object"]["metadata"]["namespace"], "default");
    let (_, pods) = table("/api/v1/pods?labelSelector=job-name%3Dsimple-job");
    assert_eq!(pods["rows"].as_array().unwrap().len(), 1);
    assert_eq!(pods["rows"][0]["cells"][2], "Completed");
    let (_, none) = table("/api/v1/pods?labelSelector=job-name%3Dother");
    assert_eq!(none["rows"].as_array().unwrap().len(), 0);
    let (_, events) = table("/api/v1/namespaces/default/events");
    assert!(events["rows"].as_array().unwrap().len() >= 2);
    // Without the header: the objects, as before.
    let (_, list) = d.get_json("/apis/batch/v1/namespaces/default/jobs");
    assert_eq!(list["kind"], "JobList");
}
