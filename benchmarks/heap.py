"""Heap kept or not while timing (latency_models.heap): the same networks, alone and interleaved.

Each setting runs in its own process (the allocator's state is process-wide), the two processes
alternating A B B A, so each figure comes twice: the table shows both, and the ratio of the
settings in the same pass. Per network: timed alone (``latency_models.measure``) and in one
interleaved schedule with the others (least round median), torch-cpu at ``--threads``.

    python benchmarks/heap.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, sys, torch
import latency_models
from latency_models.interleave import interleaved_ms
from spaces.sr import WDSRBArch, WDSRBlock
import tasks.sr as sr
threads = int(sys.argv[1])
def wdsr(c, m1, m2, d): return sr.build_model(WDSRBArch(2, c, tuple(WDSRBlock(m1, m2) for _ in range(d))))
nets = [("wdsr3 C8 180x320", wdsr(8, 64, 14, 3), (1, 3, 180, 320)),
        ("wdsr3 C8 180x320 (twin)", wdsr(8, 64, 14, 3), (1, 3, 180, 320)),
        ("wdsr6 C32 180x320", wdsr(32, 128, 26, 6), (1, 3, 180, 320)),
        ("wdsr6 C32 360x640", wdsr(32, 128, 26, 6), (1, 3, 360, 640))]
alone = [latency_models.measure(m, s, threads=threads, warmup=3, min_repeats=8, max_repeats=20) for _, m, s in nets]
inter = interleaved_ms([(m, s) for _, m, s in nets], threads, rounds=3, runs=5, warmup=2)
print(json.dumps({"heap": alone[0].host["heap"], "rows": [
    {"name": n, "alone_ms": a.median_ms, "interleaved_ms": t.ms, "spread": t.spread}
    for (n, _, _), a, t in zip(nets, alone, inter)]}))
"""


def _pass(heap: str, threads: int) -> dict:
    env = {**os.environ, "HWNAS_HEAP": heap}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(threads)], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    threads = parser.parse_args().threads
    runs: dict[str, list[dict]] = {"kept": [], "default": []}
    for heap in ("kept", "default", "default", "kept"):
        runs[heap].append(_pass(heap, threads))
    print(f"torch-cpu, {threads} thread(s); each figure from two passes (A B B A), ms")
    print(f"{'network':26} {'kept alone':>14} {'kept inter':>14} {'default alone':>15} {'default inter':>15} "
          f"{'default/kept inter':>19}")
    for i, row in enumerate(runs["kept"][0]["rows"]):
        k = [r["rows"][i] for r in runs["kept"]]
        d = [r["rows"][i] for r in runs["default"]]

        def pair(rows: list[dict], key: str) -> str:
            return "/".join(f"{r[key]:.1f}" for r in rows)

        ratio = "/".join(f"{dd['interleaved_ms'] / kk['interleaved_ms']:.2f}" for kk, dd in zip(k, reversed(d)))
        print(f"{row['name']:26} {pair(k, 'alone_ms'):>14} {pair(k, 'interleaved_ms'):>14} "
              f"{pair(d, 'alone_ms'):>15} {pair(d, 'interleaved_ms'):>15} {ratio:>19}")
    print(f"heap: {runs['kept'][0]['heap']} | {runs['default'][0]['heap']}")


if __name__ == "__main__":
    main()
