#!/usr/bin/env python3
"""Benchmark: the CNI plugin's ADD and DEL, one container at a time as a runtime calls them.

Side by side in the same run, each in its own throwaway sandbox (run as root):

- ``netwrap-cni`` (type ``netwrap``, with a port mapping and ``ipMasq``), through the launcher that
  ``netwrap-cni --install`` writes into a plugin directory; its first call starts the warm helper, which
  serves the rest (see :mod:`netwrap.cni.helper`) and is stopped by pid at the end;
- the reference chain from Debian's ``containernetworking-plugins``:
  ``bridge`` (with ``host-local``) then ``portmap``, DEL in the reverse order,
  each given the previous result, as libcni does.

With N attachments already there (``--sizes``, default 10 and 100), it
times ADD then DEL of ``--runs`` more containers, one after the other, and
prints the median and the 95th percentile of each. Every plugin is started
as its own process, from inside the sandbox, as a runtime starts it. Figures
only: nothing here asserts a time.

    sudo .venv/bin/python scripts/bench_cni.py [--sizes 10 100] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from netwrap.command import Command
from netwrap.host.sandbox import Sandbox, top_mount

REFERENCE = Path("/usr/lib/cni")
NETWRAP_CNI = Path(sys.executable).parent / "netwrap-cni"
LAUNCHERS = Path("/run/bench-plugins")  # inside the sandbox: the launcher `netwrap-cni --install` writes
SUBNET = "10.90.0.0/16"


def _conf(kind: str, n: int) -> list[dict[str, Any]]:
    """The plugins of one network, in the order ADD calls them."""
    ports = {"portMappings": [{"hostPort": 20000 + n, "containerPort": 80, "protocol": "tcp"}]}
    if kind == "netwrap":
        return [{"cniVersion": "1.0.0", "name": "bench", "type": "netwrap", "subnet": SUBNET, "ipMasq": True,
                 "dataDir": "/run/bench-data", "stateDir": "/run/bench-state",
                 "capabilities": {"portMappings": True}, "runtimeConfig": ports}]  # fmt: skip
    return [
        {"cniVersion": "1.0.0", "name": "bench", "type": "bridge", "bridge": "cni-bench", "isGateway": True,
         "ipMasq": True, "ipam": {"type": "host-local", "subnet": SUBNET, "dataDir": "/run/bench-data"}},
        {"cniVersion": "1.0.0", "name": "bench", "type": "portmap", "capabilities": {"portMappings": True},
         "runtimeConfig": ports},
    ]  # fmt: skip


def _call(plugin: str, command: str, n: int, conf: dict[str, Any]) -> dict[str, Any]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command, "CNI_CONTAINERID": f"bench-{n}",
           "CNI_NETNS": f"/run/netns/b{n}", "CNI_IFNAME": "eth0", "CNI_PATH": str(REFERENCE)}  # fmt: skip
    path = str(LAUNCHERS / "netwrap") if plugin == "netwrap" else str(REFERENCE / plugin)
    done = subprocess.run([path], input=json.dumps(conf), env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{plugin} {command} of container {n} failed: {done.stdout}{done.stderr}")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def add(kind: str, n: int) -> None:
    previous: dict[str, Any] | None = None
    for conf in _conf(kind, n):
        given = {**conf, "prevResult": previous} if previous is not None else conf
        previous = _call(conf["type"], "ADD", n, given)


def delete(kind: str, n: int) -> None:
    for conf in reversed(_conf(kind, n)):
        _call(conf["type"], "DEL", n, conf)


def inside(kind: str, existing: int, runs: int) -> dict[str, list[float]]:
    """Measured from within a sandbox (refuses to run anywhere else)."""
    top = top_mount(Path("/proc/self/mountinfo").read_text(), "/run")
    if top is None or top[0] != "netwrap-sandbox":
        raise SystemExit("--inside runs only inside a netwrap sandbox")
    LAUNCHERS.mkdir(mode=0o700)
    subprocess.run([str(NETWRAP_CNI), "--install", str(LAUNCHERS)], check=True, capture_output=True)
    for n in range(existing + runs):
        subprocess.run(["ip", "netns", "add", f"b{n}"], check=True)
    times: dict[str, list[float]] = {"ADD": [], "DEL": []}
    try:
        for n in range(existing):
            add(kind, n)
        for n in range(existing, existing + runs):
            start = time.perf_counter()
            add(kind, n)
            times["ADD"].append(time.perf_counter() - start)
            start = time.perf_counter()
            delete(kind, n)
            times["DEL"].append(time.perf_counter() - start)
    finally:
        helper = subprocess.run([str(NETWRAP_CNI), "--helper-pid"], capture_output=True, text=True, check=False)
        if helper.returncode == 0:  # the warm helper the first call started, in this sandbox: stopped by pid
            os.kill(int(helper.stdout), signal.SIGTERM)
    return times


def totals(n: int) -> tuple[float, float]:
    """The reference chain for ``n`` containers one after another, each namespace made (``ip netns add``) and
    its ADD chain called, then each DEL chain and ``ip netns del``: setup and teardown seconds (run in a
    sandbox; for scripts/bench.py)."""
    top = top_mount(Path("/proc/self/mountinfo").read_text(), "/run")
    if top is None or top[0] != "netwrap-sandbox":
        raise SystemExit("--totals runs only inside a netwrap sandbox")
    start = time.perf_counter()
    for i in range(n):
        subprocess.run(["ip", "netns", "add", f"b{i}"], check=True)
        add("reference", i)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(n):
        delete("reference", i)
        subprocess.run(["ip", "netns", "del", f"b{i}"], check=True)
    return setup, time.perf_counter() - start


def measure(kind: str, existing: int, runs: int) -> dict[str, list[float]]:
    with Sandbox(timeout=600) as sandbox:
        argv = (str(Path(__file__).resolve()), "--inside", kind, str(existing), str(runs))
        env = ("env", f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}")
        result = sandbox.runner.run(Command(env[0], (*env[1:], sys.executable, *argv), mutates=False))
        times: dict[str, list[float]] = json.loads(result.stdout)
        return times


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100], help="attachments already there")
    parser.add_argument("--runs", type=int, default=20, help="containers added and deleted, one at a time")
    parser.add_argument("--inside", nargs=3, metavar=("KIND", "N", "RUNS"), help=argparse.SUPPRESS)
    parser.add_argument("--totals", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.totals is not None:
        print(json.dumps(totals(args.totals)))
        return 0
    if args.inside:
        kind, existing, runs = args.inside
        print(json.dumps(inside(kind, int(existing), int(runs))))
        return 0
    print(f"{'attachments':>11}  {'plugin':<28} {'ADD median':>10} {'ADD p95':>8} {'DEL median':>10} {'DEL p95':>8}")
    for existing in args.sizes:
        for kind, label in (("netwrap", "netwrap-cni"), ("reference", "bridge+host-local+portmap")):
            times = measure(kind, existing, args.runs)
            add_ms = [t * 1000 for t in times["ADD"]]
            del_ms = [t * 1000 for t in times["DEL"]]
            print(f"{existing:>11}  {label:<28} {statistics.median(add_ms):>8.1f}ms {_p95(add_ms):>6.1f}ms "
                  f"{statistics.median(del_ms):>8.1f}ms {_p95(del_ms):>6.1f}ms", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
