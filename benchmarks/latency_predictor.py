"""Must-hold check of the latency predictor on this CPU (torch-cpu), printed as a table.

    python benchmarks/latency_predictor.py [--threads 1 2] [--n-fit 150] [--n-test 100]

For each thread count and family (WDSR-B SR space at LR 90x160; token-pruned deit_tiny /
deit_small at 224x224, tokens dropped at blocks 4/7/10), measure n_fit + n_test random models
(fastest run of up to ``--repeats``, see latency_models.opbench.lower_envelope_ms), time the
distinct kernels of the fitting models alone, fit an opwise predictor and a FLOPs-linear
baseline on the fitting models, and report both on the held-out ones. Then a predictor fitted on
a mix (SR + ViT + CNN zoo) predicts never-fitted FSRCNN, ESPCN, a VGG-style stack and timm
deit_tiny (goal: within +-15 %). Last, the time to predict 10,000 SR archs (goal < 5 s).
Measurements are cached as JSON under ``--cache`` so a rerun only fits.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from latency_models.evaluate import HEADER, FlopsLinear, format_row, metrics
from latency_models.features import trace_ops
from latency_models.opbench import time_module
from latency_models.predictors.opwise import fit_op_lists, measure_kernels
from latency_models.zoo import cnn_models, reference_models, sr_models, vit_models
from spaces import SRSpace
from spaces.sampling import RandomSuggester


def cached(path: Path, compute):  # noqa: ANN001, ANN201
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.write_text(json.dumps(value))
    return value


def cached_kernels(path: Path, op_lists, threads, kernels, max_kernels, seed=0):  # noqa: ANN001, ANN201
    """Time the distinct kernels of ``op_lists`` alone (cached per thread count in ``path``)."""
    from spaces.ops import Op

    if path.is_file():
        kernels.update({Op.from_dict(d): ms for d, ms in json.loads(path.read_text())})
    before = len(kernels)
    kernels.update(measure_kernels(op_lists, threads, max_kernels=max_kernels, known=kernels, seed=seed,
                                   clock=CLOCK[threads], progress=True))
    if len(kernels) != before:
        path.write_text(json.dumps([[op.to_dict(), ms] for op, ms in kernels.items()]))
    return kernels


CLOCK: dict[int, str] = {}


def measure_and_trace(models, threads, args, indices=None, trace=True):  # noqa: ANN001, ANN201
    """Build each model once (seeded random order): time it, then trace its ops. With
    ``--drift-reference`` every time is rescaled against the family's first model timed around
    it (latency_models.drift); the reference's own spread over the collection is kept."""
    from tqdm.auto import tqdm

    from latency_models.drift import DriftCorrectedTimer

    indices = list(range(len(models))) if indices is None else list(indices)
    ys, ops = [0.0] * len(indices), [None] * len(indices)
    order = list(range(len(indices)))
    random.Random(threads + (0 if trace else 100)).shuffle(order)
    timer = None
    if args.drift_reference:
        ref = models[0]
        timer = DriftCorrectedTimer(ref.build(), ref.input_shape, threads, clock=CLOCK[threads])
    raw = []
    for i in tqdm(order, desc=f"measuring (t={threads})", leave=False):
        z = models[indices[i]]
        module = z.build().eval()
        if timer is None:
            ys[i] = time_module(module, z.input_shape, threads, clock=CLOCK[threads], repeats=args.repeats, warmup=2)
        else:
            raw.append(timer.time(module, z.input_shape, repeats=args.repeats, warmup=2))
        if trace:
            ops[i] = [o.to_dict() for o in trace_ops(module, z.input_shape)]
    out = {"latency_ms": ys, "ops": ops}
    if timer is not None:
        for i, ms in zip(order, timer.corrected(raw), strict=True):
            ys[i] = ms
        out["raw_ms"] = [raw[order.index(i)] for i in range(len(indices))]
        out["drift"] = timer.summary()
    return out


def run_family(name, models, n_fit, threads, cache, kernels, args, rows, max_kernels):  # noqa: ANN001, ANN201
    from spaces.ops import Op

    slug = name.split()[0].lower()
    data = cached(cache / f"{slug}-t{threads}-n{len(models)}.json", lambda: measure_and_trace(models, threads, args))
    if "drift" in data:
        print(f"{name} t={threads}: reference spread over the collection {data['drift']['reference_spread']:.3f}x "
              "(drift-corrected)", flush=True)
    ys = data["latency_ms"]
    ops = [[Op.from_dict(d) for d in m] for m in data["ops"]]
    cached_kernels(cache / f"kernels-t{threads}.json", ops[:n_fit], threads, kernels, max_kernels, threads)
    t0 = time.perf_counter()
    pred = fit_op_lists(ops[:n_fit], ys[:n_fit], threads=threads, kernels=kernels)
    fit_s = time.perf_counter() - t0
    p = pred.predict_op_lists(ops[n_fit:])
    g = [sum(model_flops) / 1e9 for model_flops in ([_flops(o) for o in m] for m in ops)]
    base = FlopsLinear().fit(g[:n_fit], ys[:n_fit]).predict(g[n_fit:])
    y = ys[n_fit:]
    rows.append(format_row(f"{name} t={threads} opwise (fit {fit_s:.0f}s)", metrics(y, p)))
    rows.append(format_row(f"{name} t={threads} FLOPs-linear", metrics(y, base)))
    if args.noise_floor:  # the same held-out models measured again: the best any predictor can do
        again = cached(cache / f"{slug}-t{threads}-n{len(models)}-again.json",
                       lambda: measure_and_trace(models, threads, args, range(n_fit, len(models)), trace=False))
        again = again["latency_ms"]
        rows.append(format_row(f"{name} t={threads} re-measured (floor)", metrics(y, again)))
    print("\n".join(rows[-3 if args.noise_floor else -2:]), flush=True)
    return ops[:n_fit], ys[:n_fit]


def _flops(op):  # noqa: ANN001, ANN202
    from latency_models.features import flops

    return flops(op)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n-fit", type=int, default=150)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--vit-n-fit", type=int, default=0, help="fitting ViTs (default: --n-fit)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--max-kernels", type=int, default=1500)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/hwnas_latency_bench"))
    ap.add_argument("--vit-max-kernels", type=int, default=700)
    ap.add_argument("--noise-floor", action="store_true",
                    help="re-measure the held-out models and report measured-vs-re-measured agreement")
    ap.add_argument("--drift-reference", action="store_true",
                    help="time a reference net around every model and rescale (latency_models.drift)")
    ap.add_argument("--families", nargs="+", default=["sr", "vit", "reference"])
    ap.add_argument("--clock", choices=["wall", "thread_cpu"], default="wall",
                    help="thread_cpu: time 1-thread runs by thread CPU time (for a shared, loaded host)")
    args = ap.parse_args()
    for t in args.threads:
        CLOCK[t] = args.clock if t == 1 else "wall"
    args.cache.mkdir(parents=True, exist_ok=True)
    n = args.n_fit + args.n_test
    rows: list[str] = [HEADER]
    print(HEADER, flush=True)
    for threads in args.threads:
        kernels: dict = {}
        fits = {}
        if "sr" in args.families:
            fits["sr"] = run_family("SR WDSR-B 90x160", sr_models(n, random.Random(10)), args.n_fit, threads,
                                    args.cache, kernels, args, rows, args.max_kernels)
        if "vit" in args.families:
            n_vit = args.vit_n_fit or args.n_fit
            fits["vit"] = run_family("ViT pruned tiny/small 224", vit_models(n_vit + args.n_test, random.Random(20)), n_vit,
                                     threads, args.cache, kernels, args, rows, args.vit_max_kernels)
        if "reference" in args.families and len(fits) == 2:
            cnns = cnn_models(80, random.Random(30))
            from spaces.ops import Op

            data = cached(args.cache / f"cnn-t{threads}-n80.json",
                          lambda c=cnns, t=threads: measure_and_trace(c, t, args))
            ys_cnn = data["latency_ms"]
            ops_cnn = [[Op.from_dict(d) for d in m] for m in data["ops"]]
            mix_ops = fits["sr"][0][:100] + fits["vit"][0][:100] + ops_cnn
            mix_ys = fits["sr"][1][:100] + fits["vit"][1][:100] + ys_cnn
            cached_kernels(args.cache / f"kernels-t{threads}.json", ops_cnn, threads, kernels, args.max_kernels)
            mixed = fit_op_lists(mix_ops, mix_ys, threads=threads, kernels=kernels)
            refs = reference_models()
            ys_ref = cached(args.cache / f"reference-t{threads}.json",
                            lambda r=refs, t=threads: [time_module(z.build().eval(), z.input_shape, t, clock=CLOCK[t],
                                                                   repeats=20) for z in r])
            for z, y in zip(refs, ys_ref, strict=True):
                p = mixed.predict(z.build(), z.input_shape)
                line = f"  never fitted {z.name:<10} t={threads}: measured {y:8.2f} ms, predicted {p:8.2f} ms, error {100 * (p - y) / y:+6.1f}%"
                rows.append(line)
                print(line, flush=True)
    if "sr" in args.families:
        sr_ops, sr_ys = fits["sr"]
        pred = fit_op_lists(sr_ops, sr_ys, threads=args.threads[-1], kernels=kernels)
        space = SRSpace()
        archs = [space.sample(RandomSuggester(s)) for s in range(10_000)]
        t0 = time.perf_counter()
        ms = pred.predict_archs(archs, (90, 160))
        line = f"predict_archs: 10,000 SR archs in {time.perf_counter() - t0:.2f} s (median {np.median(ms):.1f} ms)"
        rows.append(line)
        print(line)
    print("\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
