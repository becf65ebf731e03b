"""The latency predictor on devices this project's machines are not: public measured tables.

    python benchmarks/public_latency.py [--spaces nb201 fbnet] [--devices titan_rtx_1 ...]
                                        [--n-train 50 100 300 1000] [--cache /tmp/hwnas_public]

Data: ``benchmarks/data/public_latency/`` (NAS-Bench-201 and FBNet-space networks measured by
others on desktop GPUs, Xeons, a Raspberry Pi 4 and phones; see its PROVENANCE.md). Networks
are built as torch modules (:mod:`latency_models.benchnets`) and fitted through the public API,
``latency_models.fit(samples)``, on whole-network timings only. Per device and training size:
share within +-5 % / +-10 %, MAPE and Spearman on 1,000 held-out networks, beside a one-hot
linear model (one indicator per layer/edge and op) and a FLOPs-linear one. Then the
leave-one-device-out table: 50 networks of a device with ``prior=`` the predictors fitted
(300 networks each) on every other physical device, against the same 50 without a prior.
Last, per device, what its own timings allow: how often a held-out network lies within +-10 % of
the other networks that run exactly the same kernels (the ceiling of any predictor that sees the
kernels and not their order), and the lag-1 correlation of the predictor's errors in table order
(the order the networks were measured in: a high value means the device drifted during its campaign,
which no model of the architecture can predict).
Traced op graphs are cached as JSON in ``--cache`` (tracing 2,000 networks takes minutes).
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

import latency_models
from latency_models.benchnets import (
    FBNET_OPS,
    NB201_OPS,
    PUBLIC_DATA_DIR,
    fbnet_network,
    nb201_network,
    parse_nb201_arch,
    read_public_table,
)
from latency_models.evaluate import FlopsLinear, metrics
from latency_models.features import total_flops
from latency_models.graph import OpGraph, trace_graph
from latency_models.predictors.additive import op_key

N_TEST, POOL = 1000, 2000


def batch_of(column: str) -> int:
    head, _, tail = column.rpartition("_")
    return int(tail) if head and tail.isdigit() and not column.startswith(("gold", "silver")) else 1


def physical(column: str) -> str:
    return column.rpartition("_")[0] if batch_of(column) != 1 or column.endswith("_1") else column


def one_hot(space: str, arch_str: str) -> list[float]:
    if space == "nb201":
        ops = [op for node in parse_nb201_arch(arch_str) for op in node]
        vocab = NB201_OPS
    else:
        ops, vocab = arch_str.split(), FBNET_OPS
    return [float(op == v) for op in ops for v in vocab] + [1.0]


def graphs(space: str, rows, batch: int, cache: Path) -> list[OpGraph]:  # noqa: ANN001
    path = cache / f"{space}_b{batch}_graphs.json.gz"
    if path.is_file():
        with gzip.open(path, "rt") as fh:
            return [OpGraph.from_dict(d) for d in json.load(fh)]
    build = nb201_network if space == "nb201" else fbnet_network
    out = [trace_graph(build(r.arch_str), (batch, 3, 32, 32)) for r in rows]
    with gzip.open(path, "wt") as fh:
        json.dump([g.to_dict() for g in out], fh)
    return out


def row(name: str, m: dict) -> str:
    return (f"| {name} | {100 * m['within_5pct']:.1f} | {100 * m['within_10pct']:.1f} | {m['mape_pct']:.2f} | "
            f"{m['spearman_rho']:.3f} |")


def baselines(space, rows, train, test, y, g) -> tuple[dict, dict]:  # noqa: ANN001
    x = np.array([one_hot(space, rows[i].arch_str) for i in range(len(rows))])
    coef = np.linalg.lstsq(x[train] / y[train, None], np.ones(len(train)), rcond=None)[0]
    onehot = metrics(y[test], np.maximum(x[test] @ coef, 1e-3))
    gf = [total_flops(g[i].ops("eager")) / 1e9 for i in range(len(rows))]
    flin = FlopsLinear().fit([gf[i] for i in train], y[train]).predict([gf[i] for i in test])
    return onehot, metrics(y[test], flin)


def device_table(space, rows, column, g, n_trains, fitted) -> list[str]:  # noqa: ANN001
    y = np.array([r.latency_ms[column] for r in rows])
    ok = np.flatnonzero(y > 0)
    test, pool = ok[:N_TEST], ok[N_TEST:]
    lines = []
    for n in n_trains:
        train = pool[:n]
        pred = latency_models.fit([(g[i], None, y[i]) for i in train], device=column, ensemble=1)
        p = pred.predict_op_lists([pred.ops_of(g[i], None) for i in test])
        onehot, flin = baselines(space, rows, train, test, y, g)
        m = metrics(y[test], p)
        lines += [row(f"{space} {column} n={n} **ours** ({pred.graph})", m), row(f"{space} {column} n={n} one-hot", onehot),
                  row(f"{space} {column} n={n} FLOPs-linear", flin)]
        if n == 300:
            fitted[column] = pred
    return lines


def few_sample(space, rows, columns, g_by_batch, fitted, n: int = 50) -> list[str]:  # noqa: ANN001
    lines = []
    for column in columns:
        y = np.array([r.latency_ms[column] for r in rows])
        ok = np.flatnonzero(y > 0)
        test, train = ok[:N_TEST], ok[N_TEST:N_TEST + n]
        g = g_by_batch[batch_of(column)]
        priors = [p for c, p in fitted.items() if physical(c) != physical(column)]
        samples = [(g[i], None, y[i]) for i in train]
        scratch = latency_models.fit(samples, device=column, ensemble=1)
        adapted = latency_models.fit(samples, device=column, prior=priors, ensemble=1)
        ms = {k: metrics(y[test], p.predict_op_lists([p.ops_of(g[i], None) for i in test]))
              for k, p in (("scratch", scratch), ("prior", adapted))}
        lines.append(f"| {space} {column} | {100 * ms['prior']['within_10pct']:.1f} | "
                     f"{100 * ms['scratch']['within_10pct']:.1f} | {adapted.manifest['predictor']['candidate']} |")
    return lines


def kernel_ceiling(y: np.ndarray, keys: list[tuple], test: np.ndarray) -> tuple[float, int]:
    """Share of ``test`` networks within +-10 % of the median of the others running the same
    kernels, and how many test networks have such twins."""
    members: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        members.setdefault(k, []).append(i)
    hits = [abs(y[i] / np.median([y[j] for j in members[keys[i]] if j != i]) - 1) <= 0.10
            for i in test if len(members[keys[i]]) > 1]
    return (float(np.mean(hits)) if hits else float("nan")), len(hits)


def floor_table(space, rows, columns, g_by_batch, fitted) -> list[str]:  # noqa: ANN001
    lines = []
    for column in columns:
        g = g_by_batch[batch_of(column)]
        y = np.array([r.latency_ms[column] for r in rows])
        ok = np.flatnonzero(y > 0)
        pred = fitted[column]
        keys = [tuple(sorted(op_key(op) for op in pred.ops_of(gr, None))) for gr in g]
        share, n = kernel_ceiling(y, keys, ok[:N_TEST])
        p = pred.predict_op_lists([pred.ops_of(g[i], None) for i in ok])
        order = np.argsort([rows[i].index for i in ok], kind="stable")
        r = (y[ok] / p - 1)[order]
        lines.append(f"| {space} {column} | {100 * share:.1f} ({n}) | {np.corrcoef(r[:-1], r[1:])[0, 1]:+.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spaces", nargs="+", default=["nb201", "fbnet"])
    ap.add_argument("--devices", nargs="+", default=None, help="device columns (default: batch 1 and 32 + CPUs)")
    ap.add_argument("--n-train", type=int, nargs="+", default=[50, 100, 300, 1000])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/hwnas_public"))
    ap.add_argument("--no-few-sample", action="store_true")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    for space in args.spaces:
        rows = read_public_table(PUBLIC_DATA_DIR / f"{space}_latency_ms.csv.gz")
        order = np.random.default_rng(0).permutation(len(rows))[:POOL]
        rows = [rows[i] for i in order]
        columns = args.devices or [c for c in rows[0].latency_ms if batch_of(c) in (1, 32)]
        columns = [c for c in columns if c in rows[0].latency_ms]
        g_by_batch = {b: graphs(space, rows, b, args.cache) for b in sorted({batch_of(c) for c in columns})}
        print(f"\n## {space}: {N_TEST} held-out networks\n\n| device / model | <=5% | <=10% | MAPE % | Spearman |\n"
              "| --- | --- | --- | --- | --- |", flush=True)
        fitted: dict = {}
        for column in columns:
            for line in device_table(space, rows, column, g_by_batch[batch_of(column)], args.n_train, fitted):
                print(line, flush=True)
        if not args.no_few_sample and 300 in args.n_train:
            print(f"\n## {space}: 50 networks of a held-out device, prior= the other devices' predictors\n\n"
                  "| device | <=10% with prior | <=10% from scratch | chosen |\n| --- | --- | --- | --- |")
            for line in few_sample(space, rows, columns, g_by_batch, fitted):
                print(line, flush=True)
        if 300 in args.n_train:
            print(f"\n## {space}: what each device's timings allow (predictor fitted on 300)\n\n"
                  "| device | same kernels, <=10% (test networks with twins) | error lag-1 correlation, table order |"
                  "\n| --- | --- | --- |")
            for line in floor_table(space, rows, columns, g_by_batch, fitted):
                print(line, flush=True)


if __name__ == "__main__":
    main()
