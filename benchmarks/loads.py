"""How much each background load slows WDSR-B networks on this host: the slowdowns behind
``device=cpu``'s All-in-One operating points (``operating_points.kind: load``).

Every (network, load) pair is one item of one interleaved schedule (order reversed each round, the
load switched by the measurement itself, one untimed run after each switch); a figure is the least
round median, and its spread the slowest over the fastest round. Slowdown = under load / idle, per
round side by side, median over rounds (the range over rounds beside it).

    python benchmarks/loads.py [--threads 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics

import tasks.sr as sr
from latency_models.interleave import interleaved_ms
from search.sr.allinone.load import apply_load, stop_loads
from search.sr.allinone.points import AtPoint, OperatingPoint
from spaces import WDSRBArch, WDSRBlock

LOADS = [("idle", "idle", 1.0), ("cpu 25%", "cpu", 0.25), ("cpu 50%", "cpu", 0.5), ("cpu 100%", "cpu", 1.0),
         ("memory", "memory", 1.0)]
NETS = [("3 blocks C=16", 3), ("6 blocks C=16", 6), ("12 blocks C=16", 12)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    shape = (1, 3, 180, 320)
    items, labels = [], []
    for net_name, depth in NETS:
        model = sr.build_model(WDSRBArch(2, 16, tuple(WDSRBlock(64, 16) for _ in range(depth))))
        for load_name, kind, duty in LOADS:
            point = OperatingPoint(load_name, threads=args.threads, load=kind, duty=duty)
            items.append((AtPoint(model, point), shape))
            labels.append((net_name, load_name))
    try:
        timed = interleaved_ms(items, args.threads, rounds=args.rounds, runs=8, warmup=2, settle=1)
    finally:
        apply_load("idle")
        stop_loads()
    by = dict(zip(labels, timed))
    print(f"torch-cpu, {args.threads} thread(s), LR 180x320, {args.rounds} interleaved rounds of 8 runs; ms (spread)")
    print(f"{'network':16}" + "".join(f"{name:>22}" for name, _, _ in LOADS))
    for net_name, _ in NETS:
        idle = by[net_name, "idle"]
        cells = []
        for load_name, _, _ in LOADS:
            t = by[net_name, load_name]
            ratios = [r / i for r, i in zip(t.round_ms, idle.round_ms)]
            cells.append(f"{t.ms:.1f} x{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]")
        print(f"{net_name:16}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
