#!/usr/bin/env python3
"""jobvisor benchmarks, run by hand (not in CI): prints measured figures beside their baselines.

1. Throughput: a Job of N `true` pods at parallelism P, versus `xargs -P P` running the same
   N `true` processes. Figure: pods per second, and the ratio to xargs.
2. Latency: a manifest renamed into the watched directory → its first container's exec
   (the container's `startedAt`, taken right after exec succeeded), over F files one at a time.
   Figures: p50 and p99.
3. Watchers: a Job of W `true` pods (2,000) at parallelism 50 while 0, 20 and 200 clients
   watch every pod (`curl -N --unix-socket … 'http://localhost/api/v1/pods?watch=true' >
   /dev/null`, done here with sockets drained by one thread). Figures: pods per second, and
   the ratio to the same Job without watchers (targets: >= 0.8 at 20, >= 0.5 at 200).
4. Scale (`--only scale-jobs`, `scale-pods`): N (10,000) Jobs in N files, or N file-owned bare
   Pods (`true`, restartPolicy Never), written into the manifests directory before the daemon
   starts. Figures: start -> all finished (seen through one watch, as `kubectl wait` would);
   the daemon's RSS (/proc/<pid>/status VmRSS) idle after they finished, once the runtime's
   idle threads have exited (--settle seconds); the state on disk; `get jobs` (`get pods`)
   over all N, median of --latency-runs, through the CLI and as raw HTTP on the socket;
   restart with that state: start -> a full list answered, and the RSS then.
5. History (`--only history`): --history-pods (100,000) finished pods, made by running
   --history-jobs Jobs of `true` at parallelism 50. Figures: state on disk, RSS idle, and
   restart: start -> a full `get jobs` answered, and the RSS then.
6. Idle (`--only idle`): the RSS of a daemon with nothing loaded.
6b. Spawn cost against the daemon's size (`--only spawn`): the throughput Job with the daemon at
   its own size (~10 MiB) and grown by --ballast MiB (500; `JOBVISOR_BENCH_BALLAST_MIB`, a
   bench-only knob that allocates and touches that much at start), with `cgroups: auto` (as
   root) and `cgroups: none`, each round beside `xargs -P P`. Figures: pods/s, the ratio to
   xargs (target with cgroups: >= 1.0) and the large daemon's ratio to the small one (>= 0.9).
7. CronJobs (`--only cron`): with --cron-others (1,000) CronJobs loaded that fire hourly (at a
   minute outside the window), 20 CronJobs on `@every 1m` are created 3 s apart and left to fire
   for --cron-minutes (3) minutes, so their 60 firings never coincide. Figure: firing lateness,
   the slot (the Job's `batch.kubernetes.io/cronjob-scheduled-timestamp`) -> its pod's first
   container exec (`startedAt`), p50/p99/max. Baseline, measured in the same run: a process
   asleep until each of 60 instants that then spawns `date` (what a sleep-then-fork scheduler
   gets at best). Then a burst: 20 CronJobs `* * * * *` due at the same instant: first, median
   and last exec (no target: 20 spawns on 2 cores take ~13 ms whatever the scheduler does).
8. Log capture (`--only logs`): a pod whose container writes --log-bytes (1 GB) of 100-byte
   lines as fast as a pipe takes them, captured by the daemon into its CRI log (with the
   default rotation: 10Mi files, 5 kept, older ones gzip-compressed). Baseline, in the same run:
   a minimal single-threaded framer in C built here with gcc (read the pipe 64 KiB at a time,
   one timestamp per read, `<ts> stdout F <line>` per line, one write per read, into a file in
   the same folder) fed by the same generator. Figures: MB/s of both (the generator's lifetime:
   it blocks on a full pipe, so it lives as long as the capture takes), their ratio (target
   >= 0.8), and the daemon's RSS before and after.

Usage: benches/bench.py [--pods 5000] [--parallelism 50] [--rounds 3] [--files 200]
                        [--watch-pods 2000] [--watchers 0,20,200] [--watch-rounds 3]
                        [--only throughput,latency,watch,idle,spawn,scale-jobs,scale-pods,history,cron]
                        [--ballast 500]
                        [--scale 10000] [--history-pods 100000] [--history-jobs 10]
                        [--latency-runs 7] [--settle 12]
                        [--cron-others 1000] [--cron-minutes 3] [--log-bytes 1000000000]
                        [--bin target/release/jobvisor]
                        [--dir /dev/shm]   (where --root goes: logs and state are written there)

Throughput runs in rounds, each the Job and then xargs, and reports medians: this VM's speed
drifts by ±15% over minutes, so only neighbouring runs compare. Everything the daemons wrote is
removed at the end. On ext4 *without a journal* (this VM's root), creating files shortly (< 30 s)
after deleting thousands is slow (`recently_deleted`), so a second bench started right after
the first reads low there; wait half a minute or use --dir /dev/shm.
"""
import argparse
import http.client
import json
import math
import selectors
import shutil
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime


SCENARIOS = ["throughput", "latency", "watch", "idle", "spawn", "scale-jobs", "scale-pods", "history", "cron", "logs"]


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def get(sock, path):
    c = UnixHTTP(sock)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, json.loads(body) if body.startswith(b"{") else body


def parse_ts(s):
    # RFC 3339 with up to 9 fractional digits → float seconds since the epoch
    date, _, frac = s.rstrip("Z").partition(".")
    base = datetime.fromisoformat(date + "+00:00").timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def job_yaml(name, command, completions=1, parallelism=1):
    cmd = ", ".join(json.dumps(c) for c in command)
    return f"""apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  completions: {completions}
  parallelism: {parallelism}
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox:1.36
        command: [{cmd}]
"""


class Daemon:
    def __init__(self, binary, parent=None, root=None, wait=True, config="", env=None):
        """A daemon on a new root under `parent`, or on `root` (made by `new_root`) as it is.
        `wait=False` returns as soon as the process is started (`self.started`). `config` is
        appended to the new root's config; `env` is added to the daemon's environment."""
        self.root = root or new_root(parent, config)
        self.sock = os.path.join(self.root, "jobvisor.sock")
        self.started = time.time()
        self.proc = subprocess.Popen([binary, "daemon", "--root", self.root], stderr=subprocess.DEVNULL,
                                     preexec_fn=service_limits, env={**os.environ, **(env or {})})
        if not wait:
            return
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if get(self.sock, "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.02)
        sys.exit("daemon did not start")

    def drop(self, name, text):
        manifests = os.path.join(self.root, "manifests")
        tmp = os.path.join(manifests, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        t = time.time()
        os.rename(tmp, os.path.join(manifests, name))
        return t

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)


def service_limits():
    """The open-files limit of the systemd unit (`LimitNOFILE=65536`), where this user may set
    it: 10,000 pods at once need more descriptors than a login shell's usual limit, and
    would otherwise end `StartError` ("too many open files")."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        pass


def new_root(parent, config=""):
    root = tempfile.mkdtemp(prefix="root-", dir=parent)
    with open(os.path.join(root, "config.yaml"), "w") as f:
        f.write("log:\n  level: warn\n" + config)
    return root


def pod_yaml(name, command):
    cmd = ", ".join(json.dumps(c) for c in command)
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:1.36
    command: [{cmd}]
"""


def wait_job(d, name):
    """Polls the Job until it is Complete or Failed; returns its status."""
    while True:
        code, job = get(d.sock, f"/apis/batch/v1/namespaces/default/jobs/{name}")
        if code == 200:  # else not applied yet
            conds = [c["type"] for c in (job.get("status") or {}).get("conditions", []) if c["status"] == "True"]
            if "Complete" in conds or "Failed" in conds:
                return job["status"]
        time.sleep(0.01)


def open_watch(sock, path):
    """A watch whose response headers came, i.e. registered with the daemon."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("watch refused")
        head += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit(f"watch refused: {head[:80]!r}")
    return s


class Drain(threading.Thread):
    """Reads every watch stream into nothing, as `curl -N … > /dev/null` would."""

    def __init__(self, socks):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        for s in socks:
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
        self.stop = threading.Event()
        self.bytes = 0
        self.ended = 0  # streams the daemon closed (a watcher that fell behind is ended)

    def run(self):
        while not self.stop.is_set():
            for key, _ in self.sel.select(timeout=0.05):
                try:
                    data = key.fileobj.recv(1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    self.ended += 1
                    self.sel.unregister(key.fileobj)
                else:
                    self.bytes += len(data)


def watched_throughput(binary, pods, parallelism, watchers, parent=None):
    """The Job's pods/s while `watchers` clients watch every pod."""
    d = Daemon(binary, parent)
    socks = []
    try:
        socks = [open_watch(d.sock, "/api/v1/pods?watch=true") for _ in range(watchers)]
        drain = Drain(socks)
        drain.start()
        t0 = d.drop("w.yaml", job_yaml("w", ["true"], pods, parallelism))
        status = wait_job(d, "w")
        elapsed = parse_ts(status.get("completionTime") or status["conditions"][-1]["lastTransitionTime"]) - t0
        drain.stop.set()
        drain.join()
    finally:
        for s in socks:
            s.close()
        d.stop()
    return pods / elapsed, drain.bytes, drain.ended


def throughput(binary, pods, parallelism, parent=None, config="", env=None, rss=None):
    """One round: the Job, then xargs right after it (the VM's speed drifts: compare neighbours).
    `rss`, a list, gets the daemon's RSS before the Job."""
    d = Daemon(binary, parent, config=config, env=env)
    if rss is not None:
        rss.append(memory(d.proc.pid)[0])
    try:
        t0 = d.drop("tp.yaml", job_yaml("tp", ["true"], pods, parallelism))
        while True:
            code, job = get(d.sock, "/apis/batch/v1/namespaces/default/jobs/tp")
            if code != 200:  # not applied yet
                time.sleep(0.01)
                continue
            conds = [c["type"] for c in (job.get("status") or {}).get("conditions", []) if c["status"] == "True"]
            if "Complete" in conds or "Failed" in conds:
                break
            time.sleep(0.01)
        status = job["status"]
        elapsed = parse_ts(status.get("completionTime") or status["conditions"][-1]["lastTransitionTime"]) - t0
    finally:
        d.stop()
    t1 = time.time()
    subprocess.run(f"seq {pods} | xargs -P {parallelism} -n 1 true", shell=True, check=True)
    xargs = time.time() - t1
    return pods / elapsed, pods / xargs, status


def latency(binary, files, parent=None):
    d = Daemon(binary, parent)
    delays = []
    try:
        for i in range(files):
            name = f"lat-{i}"
            t0 = d.drop(name + ".yaml", job_yaml(name, ["true"]))
            while True:
                _, pods = get(d.sock, f"/api/v1/namespaces/default/pods?labelSelector=job-name%3D{name}")
                started = None
                for p in pods.get("items", []):
                    for cs in p["status"].get("containerStatuses", []):
                        st = cs.get("state", {}).get("terminated") or cs.get("state", {}).get("running") or {}
                        started = st.get("startedAt") or started
                if started:
                    delays.append((parse_ts(started) - t0) * 1000)
                    break
                time.sleep(0.002)
    finally:
        d.stop()
    delays.sort()
    p99 = delays[min(len(delays) - 1, int(round(0.99 * len(delays))) - 1)]
    return statistics.median(delays), p99


MiB = 1 << 20


def memory(pid):
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out["VmRSS"], out["VmHWM"]


def state_size(root):
    """Bytes of the snapshot and of the journal."""
    state = os.path.join(root, "state")

    def size(name):
        try:
            return os.path.getsize(os.path.join(state, name))
        except OSError:
            return 0

    return size("snapshot.json"), size("journal.jsonl")


def connect_when_up(sock, deadline):
    while time.time() < deadline:
        try:
            c = UnixHTTP(sock)
            c.connect()
            return c
        except OSError:
            time.sleep(0.005)
    sys.exit("daemon did not start")


def wait_all(sock, path, done, failed, n, timeout=3600):
    """Watches `path` (from the daemon's start) until `n` objects have shown the `done` bytes;
    returns when that happened, the names that showed `failed`, and how often the watch was
    opened again. Only lines with either marker are decoded, so reading the stream costs this
    process little. A watch the daemon ends (410 Expired: more changes waited for the disk
    than `api.watchBacklog`, as when thousands of files apply at once) is opened again, as
    kubectl does; it starts over with every object as ADDED, so nothing is missed."""
    names, bad, reopened = set(), set(), -1
    deadline = time.time() + timeout
    while len(names) + len(bad) < n:
        reopened += 1
        c = connect_when_up(sock, time.time() + 60)
        c.sock.settimeout(max(deadline - time.time(), 1))
        c.request("GET", path)
        r = c.getresponse()
        if r.status != 200:
            sys.exit(f"watch {path}: {r.status}")
        rest = b""
        while len(names) + len(bad) < n:
            chunk = r.read1(1 << 16)
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.startswith(b'{"type":"ERROR"'):
                    continue
                if done in line or failed in line:
                    name = json.loads(line)["object"]["metadata"]["name"]
                    (names if done in line else bad).add(name)
        c.close()
        if time.time() > deadline:
            sys.exit(f"watch {path}: {len(names)} of {n} after {timeout} s")
    return time.time(), bad, reopened


def timed_list(sock, path):
    """Seconds for one list answered in full (read, not decoded), and its body."""
    t = time.time()
    c = UnixHTTP(sock)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        sys.exit(f"{path}: {r.status}")
    return time.time() - t, body


def timed_cli(binary, root, args):
    t = time.time()
    subprocess.run([binary, "--root", root, *args], check=True, stdout=subprocess.DEVNULL)
    return time.time() - t


def restart_until_listed(binary, root, path, n):
    """Starts a daemon on `root`; seconds from its start to a list of `n` items answered."""
    d = Daemon(binary, root=root, wait=False)
    deadline = d.started + 600
    while True:
        try:
            _, body = timed_list(d.sock, path)
        except OSError:
            if time.time() > deadline:
                sys.exit("restarted daemon did not answer")
            time.sleep(0.005)
            continue
        at = time.time()
        items = json.loads(body)["items"]
        if len(items) != n:
            sys.exit(f"restart: {len(items)} of {n} listed")
        return d, at - d.started


def failure_reasons(sock):
    """The commonest ways pods failed: (count, reason: message)."""
    _, pods = get(sock, "/api/v1/pods")
    why = {}
    for p in pods.get("items", []):
        if p["status"].get("phase") != "Failed":
            continue
        for cs in p["status"].get("containerStatuses", []):
            t = cs.get("state", {}).get("terminated") or {}
            k = f"{t.get('reason')}: {(t.get('message') or '').strip()[:70]}"
            why[k] = why.get(k, 0) + 1
    return sorted(((n, k) for k, n in why.items()), reverse=True)[:3]


def settled_rss(d, settle):
    """RSS once idle: after `settle` seconds, past the runtime's idle-thread keep-alive (10 s)."""
    time.sleep(settle)
    return memory(d.proc.pid)


def scale(a, parent, kind):
    """`kind` "jobs" or "pods": N objects in N files, present before the daemon starts."""
    n = a.scale
    root = new_root(parent)
    manifests = os.path.join(root, "manifests")
    os.mkdir(manifests)
    for i in range(n):
        name = f"s-{i:05d}"
        text = job_yaml(name, ["true"]) if kind == "jobs" else pod_yaml(name, ["true"])
        with open(os.path.join(manifests, name + ".yaml"), "w") as f:
            f.write(text)
    if kind == "jobs":
        watch, done, failed = "/apis/batch/v1/jobs?watch=true", b'"type":"Complete","status":"True"', b'"type":"Failed","status":"True"'
        listing, cli = "/apis/batch/v1/namespaces/default/jobs", ["get", "jobs"]
    else:
        watch, done, failed = "/api/v1/pods?watch=true", b'"phase":"Succeeded"', b'"phase":"Failed"'
        listing, cli = "/api/v1/namespaces/default/pods", ["get", "pods"]
    f = {}
    d = Daemon(a.bin, root=root, wait=False)
    try:
        at, bad, f["reopened"] = wait_all(d.sock, watch, done, failed, n)
        f["finished"] = at - d.started
        f["failed"] = len(bad)
        f["why"] = failure_reasons(d.sock) if bad else []
        f["rss_1s"] = settled_rss(d, 1)[0]
        f["rss"], f["hwm"] = settled_rss(d, max(a.settle - 1, 0))
        f["state"] = state_size(root)
        f["http"] = statistics.median(timed_list(d.sock, listing)[0] for _ in range(a.latency_runs))
        f["cli"] = statistics.median(timed_cli(a.bin, root, cli) for _ in range(a.latency_runs))
    finally:
        d.stop()
    f["state_stopped"] = state_size(root)
    d, f["restart"] = restart_until_listed(a.bin, root, listing, n)
    try:
        f["restart_rss"], f["restart_hwm"] = settled_rss(d, 2)
        f["restart_http"] = statistics.median(timed_list(d.sock, listing)[0] for _ in range(a.latency_runs))
    finally:
        d.stop()
    shutil.rmtree(root, ignore_errors=True)
    return f


def history(a, parent):
    """--history-pods finished pods, from --history-jobs Jobs of `true` at parallelism 50."""
    jobs = a.history_jobs
    per = a.history_pods // jobs
    d = Daemon(a.bin, parent)
    f = {}
    try:
        for i in range(jobs):
            d.drop(f"h-{i}.yaml", job_yaml(f"h-{i}", ["true"], per, a.parallelism))
        t = time.time()
        # Polled, not watched: a watch of these Jobs would carry every one of their 200,000
        # status changes (about 500 MB of JSON) for ten results.
        statuses = [wait_job(d, f"h-{i}") for i in range(jobs)]
        f["made"] = time.time() - t
        f["pods"] = sum(s.get("succeeded", 0) + s.get("failed", 0) for s in statuses)
        f["failed"] = sum(s.get("failed", 0) for s in statuses)
        f["rss"], f["hwm"] = settled_rss(d, a.settle)
        f["state"] = state_size(d.root)
    finally:
        d.stop()
    f["state_stopped"] = state_size(d.root)
    d2, f["restart"] = restart_until_listed(a.bin, d.root, "/apis/batch/v1/namespaces/default/jobs", jobs)
    try:
        f["restart_rss"], f["restart_hwm"] = settled_rss(d2, 2)
    finally:
        d2.stop()
    shutil.rmtree(d.root, ignore_errors=True)
    return f


def idle(a, parent):
    d = Daemon(a.bin, parent)
    try:
        return settled_rss(d, 2)
    finally:
        d.stop()
        shutil.rmtree(d.root, ignore_errors=True)


def cronjob_yaml(name, schedule, command):
    cmd = ", ".join(json.dumps(c) for c in command)
    return f"""apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
spec:
  schedule: "{schedule}"
  timeZone: Etc/UTC
  successfulJobsHistoryLimit: 10
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: c
            image: busybox:1.36
            command: [{cmd}]
"""


def cron_latencies(d, prefix):
    """Per Job of the CronJobs named `prefix*`: its pod's first exec minus its slot, in ms."""
    _, jobs = get(d.sock, "/apis/batch/v1/namespaces/default/jobs")
    slots = {}
    for j in jobs["items"]:
        name = j["metadata"]["name"]
        if name.startswith(prefix):
            stamp = j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
            slots[name] = parse_ts(stamp)
    _, pods = get(d.sock, "/api/v1/namespaces/default/pods")
    late = []
    for p in pods["items"]:
        job = p["metadata"].get("labels", {}).get("job-name")
        if job not in slots:
            continue
        for cs in p.get("status", {}).get("containerStatuses", []):
            state = cs.get("state", {})
            started = (state.get("terminated") or state.get("running") or {}).get("startedAt")
            if started:
                late.append((parse_ts(started) - slots[job]) * 1000)
    return sorted(late)


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}")


def sleep_spawn_baseline(n, spacing):
    """A process asleep until each of `n` instants `spacing` s apart, then spawning `date`:
    the spawned process's clock reading minus the instant, in ms."""
    late = []
    at = math.ceil(time.time()) + 1
    for _ in range(n):
        time.sleep(max(0.0, at - time.time()))
        out = subprocess.run(["date", "+%s.%N"], capture_output=True, text=True).stdout
        late.append((float(out) - at) * 1000)
        at += spacing
    return sorted(late)


def pct(xs, q):
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def cron(a, parent):
    d = Daemon(a.bin, parent)
    try:
        # The others fire hourly, at a minute 30 minutes away from the window.
        quiet = (time.gmtime().tm_min + 30) % 60
        for i in range(a.cron_others):
            d.drop(f"other-{i}.yaml", cronjob_yaml(f"other-{i}", f"{quiet} * * * *", ["true"]))

        def listed(n):
            code, cj = get(d.sock, "/apis/batch/v1/namespaces/default/cronjobs")
            return code == 200 and len(cj["items"]) >= n
        wait_for(lambda: listed(a.cron_others), 120, f"{a.cron_others} CronJobs applied")
        first = time.time()
        for i in range(20):
            d.drop(f"every-{i}.yaml", cronjob_yaml(f"every-{i}", "@every 1m", ["true"]))
            time.sleep(3)
        end = first + a.cron_minutes * 60 + 60 + 5
        time.sleep(max(0.0, end - time.time()))
        every = cron_latencies(d, "every-")
        for i in range(20):
            os.unlink(os.path.join(d.root, "manifests", f"every-{i}.yaml"))
        # The burst: 20 CronJobs due at the same next minute.
        time.sleep(max(0.0, 62 - time.time() % 60) if time.time() % 60 > 50 else 0)
        for i in range(20):
            d.drop(f"burst-{i}.yaml", cronjob_yaml(f"burst-{i}", "* * * * *", ["true"]))
        boundary = (time.time() // 60 + 1) * 60
        time.sleep(max(0.0, boundary + 5 - time.time()))
        burst = cron_latencies(d, "burst-")
    finally:
        d.stop()
        shutil.rmtree(d.root, ignore_errors=True)
    base = sleep_spawn_baseline(60, 0.25)
    return every, burst, base


def run_cron(a, parent):
    every, burst, base = cron(a, parent)
    print(f"\nCronJob firing lateness, slot -> first container exec ({a.cron_others} other CronJobs loaded):")
    row("", "measured", "target")
    row(f"20 x `@every 1m`, {len(every)} firings: p50 ms", f"{pct(every, 0.5):.2f}")
    row("  p99 ms", f"{pct(every, 0.99):.2f}", "<= 5")
    row("  max ms", f"{every[-1]:.2f}")
    row("baseline: sleep until the instant, spawn `date`: p50 ms", f"{pct(base, 0.5):.2f}")
    row("  p99 ms", f"{pct(base, 0.99):.2f}")
    row(f"burst: {len(burst)} CronJobs due at once: first exec ms", f"{burst[0]:.2f}")
    row("  median ms", f"{pct(burst, 0.5):.2f}")
    row("  last ms", f"{burst[-1]:.2f}")


def mb(b):
    return f"{b / MiB:.1f}"


def row(label, measured, target=""):
    print(f"  {label:44}{measured:>14}{target:>12}")


def run_spawn(a, parent):
    """Spawn cost against the daemon's size, cgroups on and off, beside xargs in each round."""
    sizes = [0, a.ballast]
    modes = ["auto", "none"] if os.geteuid() == 0 else ["none"]
    results = {}
    for _ in range(a.rounds):
        # Interleaved, so the VM's drift hits each alike.
        for mode in modes:
            for mib in sizes:
                env = {"JOBVISOR_BENCH_BALLAST_MIB": str(mib)} if mib else {}
                rss = []
                pods_s, xargs_s, _ = throughput(a.bin, a.pods, a.parallelism, parent,
                                                config=f"cgroups: {mode}\n", env=env, rss=rss)
                results.setdefault((mode, mib), []).append((pods_s, xargs_s, rss[0]))
    print(f"\nspawn cost against the daemon's size: a Job of {a.pods} `true` pods at parallelism "
          f"{a.parallelism}, medians of {a.rounds} rounds, each beside `xargs -P {a.parallelism}`:")
    row("", "measured", "target")
    for mode in modes:
        small = statistics.median(r[0] for r in results[(mode, 0)])
        for mib in sizes:
            rs = results[(mode, mib)]
            pods_s = statistics.median(r[0] for r in rs)
            xargs_s = statistics.median(r[1] for r in rs)
            rss = statistics.median(r[2] for r in rs)
            label = f"cgroups {mode}, daemon RSS {mb(rss)} MiB: pods/s"
            row(label, f"{pods_s:.0f}")
            row(f"  xargs -P {a.parallelism} in the same rounds, /s", f"{xargs_s:.0f}")
            row("  ratio to xargs", f"{pods_s / xargs_s:.2f}", ">= 1.0" if mode == "auto" else "")
            if mib:
                row("  ratio to the small daemon", f"{pods_s / small:.2f}", ">= 0.9")
    if len(modes) == 1:
        print("  (cgroups on: needs root; skipped)")


def run_scale(a, parent, kind):
    f = scale(a, parent, kind)
    what = "Jobs (one `true` pod each)" if kind == "jobs" else "bare Pods (`true`, restartPolicy Never)"
    verb = "get jobs" if kind == "jobs" else "get pods"
    print(f"\n{a.scale} {what} in {a.scale} files, in place before the daemon starts:")
    row("", "measured", "target")
    row("start -> all finished, s", f"{f['finished']:.2f}")
    row("  = objects/s", f"{a.scale / f['finished']:.0f}")
    row("  failed", f"{f['failed']}")
    for n, why in f["why"]:
        print(f"    {n} pods ended {why}")
    row("  watch opened again after 410 Expired", f"{f['reopened']}")
    row("RSS 1 s after, MiB", mb(f["rss_1s"]))
    row(f"RSS idle ({a.settle} s after), MiB", mb(f["rss"]), "<= 64" if kind == "jobs" else "")
    row("  peak RSS (VmHWM), MiB", mb(f["hwm"]))
    row("  RSS per object, KiB", f"{f['rss'] / a.scale / 1024:.1f}")
    row("state: snapshot + journal, MB", f"{f['state'][0] / 1e6:.1f} + {f['state'][1] / 1e6:.1f}")
    row("  after a clean stop, MB", f"{f['state_stopped'][0] / 1e6:.1f} + {f['state_stopped'][1] / 1e6:.1f}")
    # The targets are the issue's, for Jobs; the Pods' figures are shown beside nothing.
    target = (lambda t: t) if kind == "jobs" else (lambda t: "")
    row(f"`{verb}` via the CLI, ms (median of {a.latency_runs})", f"{f['cli'] * 1000:.0f}", target("<= 100"))
    row(f"  the same list as raw HTTP, ms", f"{f['http'] * 1000:.0f}", target("<= 100"))
    row(f"restart: start -> full `{verb}` answered, s", f"{f['restart']:.2f}", target("<= 2"))
    row("  RSS idle after restart, MiB", mb(f["restart_rss"]), target("<= 64"))
    row("  peak RSS during restart, MiB", mb(f["restart_hwm"]))
    row("  list as raw HTTP after restart, ms", f"{f['restart_http'] * 1000:.0f}", target("<= 100"))


GEN_C = r"""
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* N bytes of 100-byte lines to stdout, 64 KiB per write. */
int main(int argc, char **argv) {
    long long left = atoll(argv[1]);
    static char buf[65500];
    for (int i = 0; i < (int)sizeof buf; i++) buf[i] = (i % 100 == 99) ? '\n' : 'a' + i % 26;
    while (left > 0) {
        long long n = left < (long long)sizeof buf ? left : (long long)sizeof buf;
        ssize_t w = write(1, buf, (size_t)n);
        if (w <= 0) return 1;
        left -= w;
    }
    return 0;
}
"""

FRAMER_C = r"""
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
/* The physical reference: read the pipe, prefix each line with a timestamp (one per read),
   the stream and the tag, write the batch to stdout (a file) with one write per read. */
#define IN (64 * 1024)
static char in[2 * IN], out[4 * IN];
int main(void) {
    size_t carry = 0;
    for (;;) {
        ssize_t n = read(0, in + carry, IN);
        if (n <= 0) break;
        struct timespec t; clock_gettime(CLOCK_REALTIME, &t);
        struct tm tm; gmtime_r(&t.tv_sec, &tm);
        char ts[64]; size_t tl = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        tl += snprintf(ts + tl, sizeof ts - tl, ".%09ldZ stdout F ", t.tv_nsec);
        size_t len = carry + (size_t)n, o = 0, start = 0;
        for (;;) {
            char *nl = memchr(in + start, '\n', len - start);
            if (!nl) break;
            size_t l = (size_t)(nl - (in + start)) + 1;
            memcpy(out + o, ts, tl); o += tl;
            memcpy(out + o, in + start, l); o += l;
            start += l;
        }
        if (write(1, out, o) != (ssize_t)o) return 1;
        carry = len - start;
        memmove(in, in + start, carry);
    }
    return 0;
}
"""


def build_c(parent, name, source):
    src = os.path.join(parent, name + ".c")
    exe = os.path.join(parent, name)
    with open(src, "w") as f:
        f.write(source)
    subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
    return exe


def log_capture(a, parent):
    """Rounds of the framer then the daemon (the VM's speed drifts: compare neighbours)."""
    gen = build_c(parent, "gen", GEN_C)
    framer = build_c(parent, "framer", FRAMER_C)
    n = a.log_bytes
    rounds = []
    for _ in range(a.log_rounds):
        # The framer, writing into the same file system as the daemon's logs.
        out = os.path.join(parent, "framer.log")
        t0 = time.time()
        subprocess.run(f"{gen} {n} | {framer} > {out}", shell=True, check=True)
        framer_s = time.time() - t0
        os.unlink(out)
        d = Daemon(a.bin, parent)
        try:
            time.sleep(1)
            rss_before, _ = memory(d.proc.pid)
            pod = f"""apiVersion: v1
kind: Pod
metadata:
  name: chatty
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.36
    command: ["{gen}", "{n}"]
"""
            d.drop("chatty.yaml", pod)
            while True:
                code, p = get(d.sock, "/api/v1/namespaces/default/pods/chatty")
                if code == 200 and p["status"].get("phase") in ("Succeeded", "Failed"):
                    break
                time.sleep(0.05)
            st = p["status"]["containerStatuses"][0]["state"]["terminated"]
            daemon_s = parse_ts(st["finishedAt"]) - parse_ts(st["startedAt"])
            rss_after, hwm = memory(d.proc.pid)
            logs = os.path.join(d.root, "logs")
            kept = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(logs) for f in fs)
        finally:
            d.stop()
            shutil.rmtree(d.root, ignore_errors=True)
        rounds.append({"framer": n / framer_s, "daemon": n / daemon_s, "rss_before": rss_before,
                       "rss_after": rss_after, "hwm": hwm, "kept": kept, "phase": p["status"]["phase"]})
    return rounds


def run_logs(a, parent):
    rounds = log_capture(a, parent)
    med = lambda k: statistics.median(r[k] for r in rounds)
    span = lambda k: f"{min(r[k] for r in rounds) / 1e6:.0f}-{max(r[k] for r in rounds) / 1e6:.0f}"
    ratios = [r["daemon"] / r["framer"] for r in rounds]
    print(f"\nlog capture: {a.log_bytes / 1e9:.1f} GB of 100-byte lines from one container "
          f"(pods {', '.join(sorted(set(r['phase'] for r in rounds)))}; {med('kept') / 1e6:.1f} MB kept after "
          f"rotation); median of {a.log_rounds} rounds, each the framer then the daemon:")
    print(f"  {'':36}{'measured':>12}{'target':>12}{'rounds':>16}")
    print(f"  {'jobvisor capture, MB/s':36}{med('daemon') / 1e6:12.0f}{'':>12}{span('daemon'):>16}")
    print(f"  {'C framer (same run), MB/s':36}{med('framer') / 1e6:12.0f}{'baseline':>12}{span('framer'):>16}")
    print(f"  {'jobvisor / framer':36}{statistics.median(ratios):12.2f}{'>= 0.8':>12}"
          f"{f'{min(ratios):.2f}-{max(ratios):.2f}':>16}")
    print(f"  {'daemon RSS before / after, MiB':36}{mb(med('rss_before')) + ' / ' + mb(med('rss_after')):>12}")
    print(f"  {'  peak RSS (VmHWM), MiB':36}{mb(max(r['hwm'] for r in rounds)):>12}")


def run_history(a, parent):
    f = history(a, parent)
    print(f"\n{f['pods']} finished pods in history ({a.history_jobs} Jobs of `true`, parallelism {a.parallelism}; "
          f"made in {f['made']:.0f} s, {f['failed']} pods failed):")
    row("", "measured", "target")
    row("state: snapshot + journal, MB", f"{f['state'][0] / 1e6:.1f} + {f['state'][1] / 1e6:.1f}")
    row("  after a clean stop, MB", f"{f['state_stopped'][0] / 1e6:.1f} + {f['state_stopped'][1] / 1e6:.1f}")
    row(f"RSS idle ({a.settle} s after), MiB", mb(f["rss"]))
    row("  peak RSS (VmHWM), MiB", mb(f["hwm"]))
    row("restart: start -> full `get jobs` answered, s", f"{f['restart']:.2f}")
    row("  RSS idle after restart, MiB", mb(f["restart_rss"]))
    row("  RSS per pod after restart, KiB", f"{f['restart_rss'] / f['pods'] / 1024:.2f}")
    row("  peak RSS during restart, MiB", mb(f["restart_hwm"]))


def run_idle(a, parent):
    rss, hwm = idle(a, parent)
    print("\nidle daemon, nothing loaded:")
    row("", "measured", "target")
    row("RSS, MiB", mb(rss), "<= 10")
    row("  peak RSS (VmHWM), MiB", mb(hwm))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--parallelism", type=int, default=50)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds; medians are reported")
    ap.add_argument("--watch-pods", type=int, default=2000)
    ap.add_argument("--watchers", default="0,20,200", help="watcher counts; the first is the baseline")
    ap.add_argument("--watch-rounds", type=int, default=3)
    ap.add_argument("--only", default=None,
                    help="comma-separated: " + ",".join(SCENARIOS) + " (default: all)")
    ap.add_argument("--scale", type=int, default=10000, help="objects of the scale scenarios")
    ap.add_argument("--history-pods", type=int, default=100000)
    ap.add_argument("--history-jobs", type=int, default=10)
    ap.add_argument("--latency-runs", type=int, default=7, help="lists timed; the median is reported")
    ap.add_argument("--settle", type=int, default=12,
                    help="seconds before an idle RSS is read: past tokio's 10 s keep-alive of idle threads")
    ap.add_argument("--cron-others", type=int, default=1000, help="CronJobs loaded that do not fire in the window")
    ap.add_argument("--cron-minutes", type=int, default=3, help="how long the 20 `@every 1m` CronJobs fire")
    ap.add_argument("--log-bytes", type=int, default=1_000_000_000, help="bytes the chatty container writes")
    ap.add_argument("--log-rounds", type=int, default=3, help="log capture rounds; medians are reported")
    ap.add_argument("--ballast", type=int, default=500,
                    help="MiB the large daemon of the spawn scenario allocates (JOBVISOR_BENCH_BALLAST_MIB)")
    ap.add_argument("--bin", default="target/release/jobvisor")
    ap.add_argument("--dir", default=None, help="where the daemon's --root goes (default: $TMPDIR); try /dev/shm")
    a = ap.parse_args()
    a.only = set(a.only.split(",")) if a.only else set(SCENARIOS)
    if a.only - set(SCENARIOS):
        sys.exit(f"--only: unknown {', '.join(sorted(a.only - set(SCENARIOS)))}; choose from {', '.join(SCENARIOS)}")
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} not found: cargo build --release")
    where = a.dir or tempfile.gettempdir()
    # Every daemon's --root goes under one folder, removed at the end.
    parent = tempfile.mkdtemp(prefix="jobvisor-bench-", dir=a.dir)
    try:
        run(a, where, parent)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def run(a, where, parent):
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}; --root under {where}")
    if "throughput" in a.only:
        run_throughput(a, parent)
    if "latency" in a.only:
        run_latency(a, parent)
    if "watch" in a.only:
        run_watch(a, parent)
    if "idle" in a.only:
        run_idle(a, parent)
    if "spawn" in a.only:
        run_spawn(a, parent)
    if "scale-jobs" in a.only:
        run_scale(a, parent, "jobs")
    if "scale-pods" in a.only:
        run_scale(a, parent, "pods")
    if "history" in a.only:
        run_history(a, parent)
    if "cron" in a.only:
        run_cron(a, parent)
    if "logs" in a.only:
        run_logs(a, parent)


def run_watch(a, parent):
    counts = [int(c) for c in a.watchers.split(",")]
    # Rounds interleave the watcher counts, so the VM's drift hits each alike.
    rounds = {c: [] for c in counts}
    for _ in range(a.watch_rounds):
        for c in counts:
            rounds[c].append(watched_throughput(a.bin, a.watch_pods, a.parallelism, c, parent))
    base = statistics.median(r[0] for r in rounds[counts[0]])
    targets = {20: ">= 0.8", 200: ">= 0.5"}
    print(f"\n{a.watch_pods} `true` pods at parallelism {a.parallelism} while N clients watch every pod; "
          f"median of {a.watch_rounds} rounds:")
    print(f"  {'watchers':>10}{'pods/s':>10}{'ratio':>8}{'target':>10}{'rounds pods/s':>18}{'MB/watcher':>12}{'ended':>7}")
    for c in counts:
        rs = rounds[c]
        pps = statistics.median(r[0] for r in rs)
        mb = statistics.median(r[1] for r in rs) / max(c, 1) / 1e6
        ended = max(r[2] for r in rs)
        span = f"{min(r[0] for r in rs):.0f}-{max(r[0] for r in rs):.0f}"
        print(f"  {c:>10}{pps:>10.0f}{pps / base:>8.2f}{targets.get(c, 'baseline' if c == counts[0] else ''):>10}"
              f"{span:>18}{mb:>12.1f}{ended:>7}")


def run_latency(a, parent):
    p50, p99 = latency(a.bin, a.files, parent)
    print(f"\nmanifest renamed in -> first container exec, {a.files} files one at a time:")
    print(f"  {'':24}{'measured':>12}{'target':>12}")
    print(f"  {'p50 ms':24}{p50:12.2f}{'<= 5':>12}")
    print(f"  {'p99 ms':24}{p99:12.2f}{'':>12}")


def run_throughput(a, parent):
    rounds = [throughput(a.bin, a.pods, a.parallelism, parent) for _ in range(a.rounds)]
    ours = statistics.median(r[0] for r in rounds)
    xargs = statistics.median(r[1] for r in rounds)
    ratio = statistics.median(r[0] / r[1] for r in rounds)
    status = rounds[-1][2]

    def span(xs):
        return f"{min(xs):.0f}-{max(xs):.0f}"

    print(f"\n{a.pods} `true` pods at parallelism {a.parallelism} (succeeded {status.get('succeeded')}, "
          f"failed {status.get('failed')}); median of {a.rounds} rounds, each the Job then xargs:")
    print(f"  {'':24}{'measured':>12}{'target':>12}{'rounds':>16}")
    print(f"  {'jobvisor pods/s':24}{ours:12.0f}{'>= 1000':>12}{span([r[0] for r in rounds]):>16}")
    print(f"  {'xargs -P processes/s':24}{xargs:12.0f}{'baseline':>12}{span([r[1] for r in rounds]):>16}")
    ratios = [r[0] / r[1] for r in rounds]
    print(f"  {'jobvisor / xargs':24}{ratio:12.2f}{'>= 1.2':>12}{f'{min(ratios):.2f}-{max(ratios):.2f}':>16}")


if __name__ == "__main__":
    main()
