"""The host predictor against an independent interleaved harness, and shape extrapolation.

    python benchmarks/host_predictor.py [--threads 1 2] [--cache /tmp/hwnas_host_bench] [--skip-host]

1. ``latency_models.for_device("cpu", threads=t)`` is built exactly as a user gets it (cached
   under ``--cache``), then asked for networks it never saw: FSRCNN at 180x320 and 360x640,
   ESPCN at 180x320, a VGG-style stack (8 x 3x3 conv, 32 wide, 180x320), timm deit_tiny,
   resnet18 and mobilenetv3_small at 224. The harness times the seven together in interleaved
   rounds (reversed each round, least median), twice: the second timing's agreement with the
   first is printed beside each error (the host's own noise on that network).
2. Extrapolation: predictors fitted on WDSR-B networks timed only at LR 90x160 predict other
   WDSR-B networks at 180x320 and 360x640 (median |error|, the worst, and the same networks'
   re-measured agreement), learned three ways: from the network timings alone, with the
   networks' kernels profiled here, and with those kernels also profiled on 2x and 4x taller
   and wider images (``kernel_scales``).
Timings are cached as JSON in ``--cache``; delete it to re-measure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

import numpy as np

from latency_models.interleave import interleaved_ms
from latency_models.zoo import espcn, fsrcnn, sr_models, vgg_stack
from spaces import ESPCNArch, FSRCNNArch


def unseen_networks() -> list[tuple[str, object, tuple[int, ...]]]:
    import timm

    f, e = FSRCNNArch(2), ESPCNArch(2)
    return [
        ("fsrcnn 180x320", lambda: fsrcnn(f), (1, 3, 180, 320)),
        ("fsrcnn 360x640", lambda: fsrcnn(f), (1, 3, 360, 640)),
        ("espcn 180x320", lambda: espcn(e), (1, 3, 180, 320)),
        ("vgg 8x32 180x320", lambda: vgg_stack([32] * 8), (1, 3, 180, 320)),
        ("deit_tiny 224", lambda: timm.create_model("deit_tiny_patch16_224"), (1, 3, 224, 224)),
        ("resnet18 224", lambda: timm.create_model("resnet18"), (1, 3, 224, 224)),
        ("mobilenetv3_small 224", lambda: timm.create_model("mobilenetv3_small_100"), (1, 3, 224, 224)),
    ]


def cached(path: Path, compute):  # noqa: ANN001, ANN201
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.write_text(json.dumps(value))
    return value


def timed_twice(models, threads: int) -> tuple[list[float], list[float]]:  # noqa: ANN001
    """Two interleaved timings of ``models``, the host predictor's reference timed last in each."""
    from latency_models.host import REFERENCE

    built = [(build(), shape) for _, build, shape in models] + [REFERENCE()]
    first = [t.ms for t in interleaved_ms(built, threads, rounds=5, runs=3)]
    second = [t.ms for t in interleaved_ms(built, threads, rounds=5, runs=3)]
    return first, second


def host_table(threads: int, cache: Path) -> list[float]:
    import latency_models

    os.environ["HWNAS_CACHE"] = str(cache)
    predictor = latency_models.for_device("cpu", threads=threads)
    models = unseen_networks()
    first, second = cached(cache / f"unseen_ref_t{threads}.json", lambda: timed_twice(models, threads))
    # The predictor speaks for the host at the speed its zoo was timed at (its reference's ms);
    # the harness timed the same reference beside the networks, so its drift since is known.
    drift = first[-1] / predictor.manifest["zoo"]["reference_ms"]
    print(f"\n## host predictor, torch-cpu, {threads} thread(s): never-seen networks")
    print(f"host speed now vs when the zoo was timed (reference {first[-1]:.2f} ms): x{drift:.2f}; "
          "'corrected' = prediction x that factor")
    print(f"{'network':<24} {'measured ms':>11} {'predicted':>10} {'error':>8} {'corrected':>10} {'re-measured':>12}")
    errors = []
    for (name, build, shape), m, m2 in zip(models, first, second):
        p = predictor.predict(build(), shape)
        errors.append(p * drift / m - 1)
        print(f"{name:<24} {m:>11.2f} {p:>10.2f} {100 * (p / m - 1):>+7.1f}% {100 * (p * drift / m - 1):>+9.1f}% "
              f"{100 * (m2 / m - 1):>+11.1f}%")
    held = predictor.manifest.get("held_out_metrics") or {}
    if held:
        print(f"zoo held-out: {100 * held['predictor']['within_10pct']:.0f}% within 10%, re-timed "
              f"{100 * held['re_measured']['within_10pct']:.0f}%")
    return errors


EXTRAPOLATION_HW = ((180, 320), (360, 640))
FITS = {  # name -> latency_models.fit options: what each way of learning is given beyond the 90x160 timings
    "networks only": {},
    "+ kernels": {"kernels": "torch-cpu", "graph": "eager"},
    "+ kernels x1,2,4": {"kernels": "torch-cpu", "graph": "eager", "kernel_scales": (1, 2, 4)},
}


def extrapolation_timings(threads: int, cache: Path, n_fit: int, n_test: int) -> tuple[list, list, dict]:
    """(fitting networks, test archs, ms): every network timed in one collection, interleaved
    in groups with the host predictor's reference (so the fitting and test timings share the
    host's speed), the test networks timed a second time for the agreement."""
    from latency_models.host import time_zoo
    from latency_models.zoo import WDSRB, ZooModel

    rng = random.Random(7)
    fit_models = sr_models(n_fit, rng, lr_hw=(90, 160))
    test_archs = [m.arch for m in sr_models(n_test, rng)]
    tests = [ZooModel(f"{hw}-{i}", "sr", (1, 3, *hw), lambda a=a: WDSRB(a)) for hw in EXTRAPOLATION_HW
             for i, a in enumerate(test_archs)]

    def measure() -> dict[str, list[float]]:
        ms, ref = time_zoo(fit_models + tests, threads)
        again, _ = time_zoo(tests, threads, seed=1, reference_ms=ref)
        return {"fit": ms[:n_fit], "test": ms[n_fit:], "test_again": again, "reference_ms": [ref]}

    return fit_models, test_archs, cached(cache / f"extrapolation_v2_t{threads}.json", measure)


def extrapolation(threads: int, cache: Path, n_fit: int = 40, n_test: int = 16) -> None:
    import latency_models

    fit_models, test_archs, ms = extrapolation_timings(threads, cache, n_fit, n_test)
    measured = np.array(ms["test"]).reshape(len(EXTRAPOLATION_HW), -1)
    again = np.array(ms["test_again"]).reshape(measured.shape)
    print(f"\n## extrapolation, {threads} thread(s): fitted on {n_fit} WDSR-B timed at LR 90x160 only")
    print(f"{'fit':<18} {'size':<8} {'n':>3} {'median |err|':>13} {'worst':>7} {'within 15%':>11} "
          f"{'re-measured median / worst':>27}")
    for name, options in FITS.items():
        predictor = latency_models.fit(((m.build(), m.input_shape, y) for m, y in zip(fit_models, ms["fit"])),
                                       threads=threads, device="cpu", backend="torch-cpu", **options)
        for (h, w), m, m2 in zip(EXTRAPOLATION_HW, measured, again):
            err = np.abs(predictor.predict_archs(test_archs, (h, w)) / m - 1)
            agree = np.abs(m2 / m - 1)
            print(f"{name:<18} {f'{h}x{w}':<8} {len(err):>3} {100 * np.median(err):>12.1f}% {100 * err.max():>6.1f}% "
                  f"{100 * np.mean(err <= 0.15):>10.0f}% {100 * np.median(agree):>17.1f}% / {100 * agree.max():.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/hwnas_host_bench"))
    ap.add_argument("--skip-host", action="store_true", help="only the extrapolation table")
    ap.add_argument("--skip-extrapolation", action="store_true", help="only the host predictor table")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    errors = []
    for t in args.threads:
        if not args.skip_host:
            errors += host_table(t, args.cache)
        if not args.skip_extrapolation:
            extrapolation(t, args.cache)
    if errors:
        e = np.abs(errors)
        print(f"\nnever-seen networks (drift-corrected): {int((e <= 0.15).sum())} of {len(e)} within +-15%, "
              f"worst {100 * e.max():.1f}%")


if __name__ == "__main__":
    main()
