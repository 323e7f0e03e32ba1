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

Usage: benches/bench.py [--pods 5000] [--parallelism 50] [--rounds 3] [--files 200]
                        [--watch-pods 2000] [--watchers 0,20,200] [--watch-rounds 3]
                        [--only throughput|latency|watch]
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
import selectors
import shutil
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime


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
    def __init__(self, binary, parent=None):
        self.root = tempfile.mkdtemp(prefix="root-", dir=parent)
        self.sock = os.path.join(self.root, "jobvisor.sock")
        with open(os.path.join(self.root, "config.yaml"), "w") as f:
            f.write("log:\n  level: warn\n")
        self.proc = subprocess.Popen([binary, "daemon", "--root", self.root], stderr=subprocess.DEVNULL)
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


def throughput(binary, pods, parallelism, parent=None):
    """One round: the Job, then xargs right after it (the VM's speed drifts: compare neighbours)."""
    d = Daemon(binary, parent)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--parallelism", type=int, default=50)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds; medians are reported")
    ap.add_argument("--watch-pods", type=int, default=2000)
    ap.add_argument("--watchers", default="0,20,200", help="watcher counts; the first is the baseline")
    ap.add_argument("--watch-rounds", type=int, default=3)
    ap.add_argument("--only", choices=["throughput", "latency", "watch"], default=None)
    ap.add_argument("--bin", default="target/release/jobvisor")
    ap.add_argument("--dir", default=None, help="where the daemon's --root goes (default: $TMPDIR); try /dev/shm")
    a = ap.parse_args()
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
    if a.only in (None, "throughput"):
        run_throughput(a, parent)
    if a.only in (None, "latency"):
        run_latency(a, parent)
    if a.only in (None, "watch"):
        run_watch(a, parent)


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
