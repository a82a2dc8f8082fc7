#!/usr/bin/env python3
"""Leader failover, basalt vs etcd, same run: how long after a kill -9 of a 3-member cluster's
leader the survivors acknowledge a write again (issue 10's "a leader change restores writes in
<= 1.5 s").

For each server: start 3 fresh members on loopback with the same flags (100 ms heartbeat, 1 s
election timeout), then ROUNDS times: find the leader, start a poller that launches
`etcdctl put` against the two survivors every POLL_MS (each with a short command timeout, many
in flight), kill -9 the leader, and take the end time of the first acknowledged put launched
after the kill. The figure is that end time minus the kill time: it includes one etcdctl run
(its median on a healthy cluster is printed beside it). The killed member is restarted on its
data dir and the cluster is awaited before the next round.

Usage: bench/failover.py              (ROUNDS=5 POLL_MS=50 BASALT_BIN=target/release/basalt
                                        ETCD_BIN=etcd ETCDCTL=etcdctl WORKDIR=<temp dir>)
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROUNDS = int(os.environ.get("ROUNDS", "5"))
POLL_MS = int(os.environ.get("POLL_MS", "50"))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASALT_BIN = os.environ.get("BASALT_BIN", os.path.join(REPO, "target/release/basalt"))
ETCD_BIN = os.environ.get("ETCD_BIN", "etcd")
ETCDCTL = os.environ.get("ETCDCTL", "etcdctl")
WORKDIR = os.environ.get("WORKDIR") or tempfile.mkdtemp(prefix="basalt-failover.")
LIMIT_S = 30


def log(message):
    print(f"failover.py: {message}", file=sys.stderr, flush=True)


def etcdctl(endpoints, *args, timeout="1s"):
    """Runs etcdctl; returns (ok, stdout, seconds)."""
    start = time.monotonic()
    done = subprocess.run(
        [ETCDCTL, "--endpoints", ",".join(endpoints), f"--command-timeout={timeout}", *args],
        env={**os.environ, "ETCDCTL_API": "3"},
        capture_output=True,
        text=True,
    )
    return done.returncode == 0, done.stdout, time.monotonic() - start


class Cluster:
    def __init__(self, name, binary, client_base, peer_base):
        self.name, self.binary = name, binary
        self.clients = [client_base + 100 * i for i in range(3)]
        self.peers = [peer_base + 100 * i for i in range(3)]
        self.initial = ",".join(
            f"{name}-{i}=http://127.0.0.1:{port}" for i, port in enumerate(self.peers)
        )
        self.procs = [None] * 3
        shutil.rmtree(os.path.join(WORKDIR, name), ignore_errors=True)
        for i in range(3):
            self.start(i)
        self.await_writes(range(3))

    def endpoint(self, i):
        return f"127.0.0.1:{self.clients[i]}"

    def start(self, i):
        client = f"http://127.0.0.1:{self.clients[i]}"
        peer = f"http://127.0.0.1:{self.peers[i]}"
        log_file = open(os.path.join(WORKDIR, f"{self.name}-{i}.log"), "a")
        self.procs[i] = subprocess.Popen(
            [
                self.binary, "--name", f"{self.name}-{i}",
                "--data-dir", os.path.join(WORKDIR, self.name, f"member-{i}"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", self.initial,
                "--heartbeat-interval", "100", "--election-timeout", "1000",
            ],
            stdout=log_file,
            stderr=log_file,
        )

    def await_writes(self, members):
        deadline = time.monotonic() + LIMIT_S
        endpoints = [self.endpoint(i) for i in members]
        while time.monotonic() < deadline:
            if etcdctl(endpoints, "put", "failover/ready", "1")[0]:
                return
            time.sleep(0.1)
        raise SystemExit(f"{self.name}: no write acknowledged within {LIMIT_S} s")

    def leader(self):
        """The index of the member every member names as leader."""
        deadline = time.monotonic() + LIMIT_S
        while time.monotonic() < deadline:
            ok, out, _ = etcdctl(
                [self.endpoint(i) for i in range(3)], "endpoint", "status", "-w", "json"
            )
            if ok:
                status = json.loads(out)
                leaders = {s["Status"]["leader"] for s in status}
                ids = [s["Status"]["header"]["member_id"] for s in status]
                if len(status) == 3 and len(leaders) == 1 and leaders <= set(ids):
                    return ids.index(leaders.pop())
            time.sleep(0.1)
        raise SystemExit(f"{self.name}: no agreed leader within {LIMIT_S} s")

    def stop(self):
        for proc in self.procs:
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()


def one_failover(cluster):
    leader = cluster.leader()
    survivors = [cluster.endpoint(i) for i in range(3) if i != leader]
    healthy = [etcdctl(survivors, "put", "failover/k", "v")[2] for _ in range(5)]
    acknowledged = []
    stop = threading.Event()
    lock = threading.Lock()

    def attempt():
        ok, _, _ = etcdctl(survivors, "put", "failover/k", "v", timeout="500ms")
        if ok:
            with lock:
                acknowledged.append(time.monotonic())

    killed_at = None

    def poll():
        while not stop.is_set():
            if killed_at is not None:
                threading.Thread(target=attempt, daemon=True).start()
            time.sleep(POLL_MS / 1000)

    poller = threading.Thread(target=poll)
    poller.start()
    killed_at = time.monotonic()
    cluster.procs[leader].send_signal(signal.SIGKILL)
    cluster.procs[leader].wait()
    deadline = killed_at + LIMIT_S
    while time.monotonic() < deadline:
        with lock:
            if acknowledged:
                break
        time.sleep(0.01)
    stop.set()
    poller.join()
    with lock:
        first = min(acknowledged) if acknowledged else None
    cluster.start(leader)
    cluster.await_writes(range(3))
    if first is None:
        raise SystemExit(f"{cluster.name}: no write within {LIMIT_S} s of the kill")
    return first - killed_at, statistics.median(healthy)


def main():
    os.makedirs(WORKDIR, exist_ok=True)
    log(f"work dir {WORKDIR}")
    results = {}
    for name, binary, client_base, peer_base in [
        ("basalt", BASALT_BIN, 24791, 24801),
        ("etcd", ETCD_BIN, 24792, 24802),
    ]:
        cluster = Cluster(name, binary, client_base, peer_base)
        try:
            rounds = [one_failover(cluster) for _ in range(ROUNDS)]
        finally:
            cluster.stop()
        results[name] = rounds
        log(f"{name}: " + ", ".join(f"{r[0]:.3f} s" for r in rounds))
    version = subprocess.run([ETCD_BIN, "--version"], capture_output=True, text=True)
    print(f"{ROUNDS} kill -9s of the leader per server, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{version.stdout.splitlines()[0]}, load average {open('/proc/loadavg').read().split()[:3]}")
    print()
    print("| server | writes restored after (s): min / median / max | each round (s) | one healthy etcdctl put (median s) |")
    print("|---|--:|---|--:|")
    for name, rounds in results.items():
        gaps = [r[0] for r in rounds]
        healthy = statistics.median(r[1] for r in rounds)
        print(f"| {name} | {min(gaps):.2f} / {statistics.median(gaps):.2f} / {max(gaps):.2f} | "
              f"{', '.join(f'{g:.2f}' for g in gaps)} | {healthy:.3f} |")


if __name__ == "__main__":
    main()
