#!/usr/bin/env python3
"""Benchmark: a 3-machine cluster applied in parallel against one machine after another.

Three sandboxes stand in for machines on one underlay (netwrap.topology.lab.Lab); each
gets N containers on a cross-host network (host-gw or vxlan). Prints the median
of several runs for a parallel apply, a sequential apply, and the destroy.
Figures only: nothing here asserts a time.

    sudo .venv/bin/python scripts/bench_multihost.py [--per-machine 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from netwrap.topology import multihost as mh
from netwrap.topology.lab import Lab


def once(per_machine: int, method: str, parallel: bool) -> tuple[float, float]:
    names = ("a", "b", "c")
    with Lab(names) as lab, tempfile.TemporaryDirectory(prefix="netwrap-bench-") as state:
        containers = {m: tuple(f"{m}{i}" for i in range(per_machine)) for m in names}
        supernet = "10.250.0.0/16" if method == "host-gw" else "10.251.0.0/22"
        cluster = mh.Cluster("bench", "pods", supernet, method, lab.machines(), containers)  # type: ignore[arg-type]
        start = time.perf_counter()
        mh.apply(cluster, state, parallel=parallel)
        applied = time.perf_counter() - start
        start = time.perf_counter()
        mh.destroy(cluster, state)
        return applied, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-machine", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"3 machines x {args.per_machine} containers, median of {args.runs} runs")
    print(f"{'method':<8} {'parallel apply':>15} {'one after another':>18} {'ratio':>6} {'destroy':>8}")
    for method in ("host-gw", "vxlan"):
        parallel = [once(args.per_machine, method, True) for _ in range(args.runs)]
        serial = [once(args.per_machine, method, False) for _ in range(args.runs)]
        p = statistics.median(a for a, _ in parallel)
        s = statistics.median(a for a, _ in serial)
        d = statistics.median(b for _, b in parallel)
        print(f"{method:<8} {p:>14.3f}s {s:>17.3f}s {s / p:>5.2f}x {d:>7.3f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
