"""``python -m latency_models collect | fit | evaluate | export | predict``.

    python -m latency_models collect --zoo sr --n 200 --threads 1 --out sr_t1.jsonl
    python -m latency_models fit sr_t1.jsonl --out sr_t1.hwlat [--holdout 0.3]
    python -m latency_models evaluate sr_t1.hwlat sr_t1.jsonl
    python -m latency_models export --device s21 --scale 2 --out s21.hwlat
    python -m latency_models predict sr_t1.hwlat --arch arch.json --input-hw 90 160

Datasets are the measurement half's ``.jsonl`` / ``.csv`` files (rows carry their traced ops),
so fitting needs no model code. By default nothing is timed at fit time (per-op costs are
learned from the whole-network timings); ``--kernels BACKEND`` profiles the kernels on that
backend (``adb`` for a phone), ``--prior FILE`` adapts other devices' predictors.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Any

ZOOS = ("host", "sr", "vit", "cnn", "reference")


def _zoo(name: str, n: int, seed: int, quick: bool) -> list[Any]:
    from latency_models import host, zoo

    rng = random.Random(seed)
    if name == "host":
        return host.host_zoo(rng, quick)
    if name == "reference":
        return zoo.reference_models()
    return {"sr": zoo.sr_models, "vit": zoo.vit_models, "cnn": zoo.cnn_models}[name](n, rng)


def cmd_collect(args: argparse.Namespace) -> int:
    from latency_models.collect import collect
    from latency_models.features import trace_ops

    if args.device not in ("cpu", "torch-cpu") and args.backend == "torch-cpu":
        raise SystemExit(f"error: device {args.device!r} is not this host; pass --backend adb (phone) or another "
                         "backend that runs on it")
    models = _zoo(args.zoo, args.n, args.seed, args.quick)
    summary = collect([(z.name, z.build, z.input_shape) for z in models], args.out, backend=args.backend,
                      threads=args.threads, seed=args.seed, progress=True, featurize=trace_ops,
                      meta={"zoo": args.zoo, "zoo_seed": args.seed, "device": args.device},
                      max_repeats=args.max_repeats)
    print(f"measured {summary.n_measured} models ({summary.n_skipped} already in {args.out}) in "
          f"{summary.elapsed_s:.0f} s; max reference drift {summary.max_abs_drift_pct:.1f}%")
    return 0


def _read(path: str) -> tuple[dict[str, Any], list[Any], list[float], int]:
    from latency_models.dataset import read_dataset
    from latency_models.opbench import lower_envelope_ms

    meta, records = read_dataset(path)
    rows = [r for r in records if r.role == "model"]
    if not rows or any(r.ops is None for r in rows):
        raise SystemExit(f"error: {path} has no model rows with traced ops; collect with "
                         "`python -m latency_models collect ...` (it stores ops per row)")
    threads = {r.threads for r in rows}
    if len(threads) != 1:
        raise SystemExit(f"error: {path} mixes thread counts {sorted(threads)}; fit one predictor per count")
    return meta, [list(r.ops) for r in rows], [lower_envelope_ms(r.times_ms) for r in rows], threads.pop()


def cmd_fit(args: argparse.Namespace) -> int:
    import latency_models
    from latency_models.evaluate import FlopsLinear, compare
    from latency_models.features import total_flops

    meta, ops, ys, threads = _read(args.dataset)
    order = list(range(len(ys)))
    random.Random(args.seed).shuffle(order)
    n_test = int(round(args.holdout * len(ys)))
    test, train = order[:n_test], order[n_test:]
    priors = [latency_models.load(p) for p in args.prior or []]
    pred = latency_models.fit([(ops[i], None, ys[i]) for i in train], kernels=args.kernels, prior=priors or None,
                              graph=args.graph, threads=threads, device=str(meta.get("device", "unknown")),
                              backend=meta.get("backend"), seed=args.seed, progress=True, max_kernels=args.max_kernels,
                              kernel_scales=args.kernel_scales)
    if test:
        g = [total_flops(o) / 1e9 for o in ops]
        base = FlopsLinear().fit([g[i] for i in train], [ys[i] for i in train]).predict([g[i] for i in test])
        p = pred.predict_op_lists([ops[i] for i in test])
        pred.manifest["held_out_metrics"] = compare([ys[i] for i in test], p, base)
        print(json.dumps(pred.manifest["held_out_metrics"], indent=2))
    print(f"learned from {pred.manifest['predictor']['learned_from']} ({pred.manifest['provenance']['text']})")
    print(f"wrote {pred.save(args.out)}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import latency_models
    from latency_models.evaluate import HEADER, FlopsLinear, format_row, metrics
    from latency_models.features import total_flops

    pred = latency_models.load(args.predictor)
    _, ops, ys, threads = _read(args.dataset)
    if pred.manifest.get("threads") not in (None, threads):
        print(f"warning: predictor fitted at {pred.manifest['threads']} threads, data measured at {threads}")
    g = [total_flops(o) / 1e9 for o in ops]
    print(HEADER)
    print(format_row("predictor", metrics(ys, pred.predict_op_lists(ops))))
    print(format_row("FLOPs-linear (fitted on this data)", metrics(ys, FlopsLinear().fit(g, ys).predict(g))))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import latency_models

    if args.predictor:
        pred = latency_models.load(args.predictor)
    elif args.device:
        pred = latency_models.for_device(args.device, threads=args.threads, scale=args.scale, quick=args.quick)
    else:
        raise SystemExit("error: give a predictor file or --device (e.g. --device s21 --scale 2, --device cpu)")
    if args.lut or args.surrogate:
        from latency_models.predictors import BlockLUTPredictor
        from latency_models.predictors.surrogate import distill
        from spaces import SRSpace

        space, hw = SRSpace(scale=args.scale), tuple(args.input_hw)
        pred = BlockLUTPredictor.from_teacher(pred, space, hw) if args.lut else distill(pred, space, hw)
    print(f"wrote {pred.save(args.out)}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import latency_models
    from spaces import load_arch

    pred = latency_models.load(args.predictor) if args.predictor else latency_models.for_device(
        args.device, threads=args.threads, scale=args.scale)
    archs = [load_arch(p) for p in args.arch]
    hw = tuple(args.input_hw) if args.input_hw else None
    for path, ms in zip(args.arch, pred.predict_archs(archs, hw), strict=True):
        print(f"{path}\t{ms:.3f} ms")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m latency_models", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="measure a model zoo into a dataset file (progress bar, resumable)")
    c.add_argument("--zoo", choices=ZOOS, default="host")
    c.add_argument("--n", type=int, default=100, help="models for the sr/vit/cnn zoos")
    c.add_argument("--device", default="cpu")
    c.add_argument("--backend", default="torch-cpu")
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--quick", action="store_true")
    c.add_argument("--max-repeats", type=int, default=30)
    c.add_argument("--out", required=True)
    f = sub.add_parser("fit", help="fit an additive per-op predictor on a dataset (whole-network timings)")
    f.add_argument("dataset")
    f.add_argument("--out", required=True)
    f.add_argument("--holdout", type=float, default=0.25)
    f.add_argument("--kernels", default=None, metavar="BACKEND",
                   help="also profile each distinct kernel alone on BACKEND (torch-cpu, torch-cuda, onnxruntime-cpu, "
                        "adb); default: learn per-op costs from the network timings, timing nothing")
    f.add_argument("--prior", nargs="+", metavar="FILE", help="predictor files of other devices to adapt from")
    f.add_argument("--graph", choices=["auto", "eager", "compiled"], default="auto")
    f.add_argument("--max-kernels", type=int, default=3000)
    f.add_argument("--kernel-scales", type=int, nargs="+", default=[1], metavar="N",
                   help="with --kernels: also profile a sample of the image kernels on N x taller and wider images "
                        "(e.g. 1 2 4), for predictions beyond the dataset's sizes")
    f.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("evaluate", help="accuracy of a predictor on a dataset, beside FLOPs-linear")
    e.add_argument("predictor")
    e.add_argument("dataset")
    x = sub.add_parser("export", help="write a predictor artefact (optionally as SR lookup table / surrogate)")
    x.add_argument("predictor", nargs="?")
    x.add_argument("--device")
    x.add_argument("--threads", type=int, default=1)
    x.add_argument("--scale", type=int, default=2)
    x.add_argument("--quick", action="store_true")
    x.add_argument("--lut", action="store_true", help="tabulate over the SR space (block lookup table)")
    x.add_argument("--surrogate", action="store_true", help="distil the differentiable SR surrogate")
    x.add_argument("--input-hw", type=int, nargs=2, default=[90, 160])
    x.add_argument("--out", required=True)
    p = sub.add_parser("predict", help="predict arch.json files (spaces.save_arch)")
    p.add_argument("predictor", nargs="?")
    p.add_argument("--device", default="s21")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--arch", nargs="+", required=True)
    p.add_argument("--input-hw", type=int, nargs=2)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler = {"collect": cmd_collect, "fit": cmd_fit, "evaluate": cmd_evaluate, "export": cmd_export,
               "predict": cmd_predict}[args.command]
    try:
        return handler(args)
    except (ValueError, FileNotFoundError) as err:  # our errors name the problem and the fix
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
