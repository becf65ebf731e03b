"""This host's torch-cpu predictor, fitted where it is used (first call of ``for_device("cpu")``).

The zoo spans the shapes the project's tasks run: WDSR-B SR networks at every LR size a device
config names (90x160 fitting size, 180x320 for ``device=cpu``, 360x640 for the phones' 720p),
FSRCNN/ESPCN-like and VGG-style stacks at 180x320, mobilenet- and resnet-like CNNs and
token-pruned DeiTs at 224, and the demo MNIST ViT. It is timed in interleaved rounds against a
fixed reference (:mod:`latency_models.interleave`), a fifth is held out, and the held-out set is
timed a second time: the agreement of the two timings is the best any predictor can show here,
printed beside the predictor's own held-out accuracy.
"""

from __future__ import annotations

import random
import statistics
import warnings
from collections.abc import Sequence
from typing import Any

from torch import nn

from latency_models.zoo import ZooModel, cnn_models, mobilenet224, sr_models, vgg_stack, vit_models

SR_LR_HW = ((90, 160), (180, 320), (360, 640))  # every lr_hw of conf/device/ (a test checks)
CHUNK = 12  # models per interleaved group: rounds stay short enough that drift is shared
POOR_WITHIN_15 = 0.8  # held-out share within +-15 % below which the predictor is called poor


def REFERENCE() -> tuple[nn.Module, tuple[int, ...]]:  # noqa: N802 (a constant, built fresh)
    """Timed in every group: a 4 x 32 VGG-style stack at 180x320 that streams memory as the SR nets do."""
    return vgg_stack([32] * 4), (1, 3, 180, 320)


class _Basic(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                                  nn.ReLU(), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.short = (nn.Identity() if stride == 1 and c_in == c_out else
                      nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: Any) -> Any:
        return (self.body(x) + self.short(x)).relu()


def resnet_like(rng: random.Random) -> nn.Module:
    """A random ResNet-style classifier: 7x7 stem, max pool, 2-4 stages of basic blocks."""
    c = rng.choice([16, 32, 48, 64])
    layers: list[nn.Module] = [nn.Conv2d(3, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    for stage in range(rng.randint(2, 4)):
        c_out = c * 2 if stage else c
        for b in range(rng.randint(1, 2)):
            layers.append(_Basic(c, c_out, 2 if stage and b == 0 else 1))
            c = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000)]
    return nn.Sequential(*layers)


def host_zoo(rng: random.Random, quick: bool = False, sr_lr_hw: Sequence[tuple[int, int]] = SR_LR_HW
             ) -> list[ZooModel]:
    """The host predictor's training networks. ``quick`` (tests): 16 small ones."""
    if quick:
        return (sr_models(8, rng, lr_hw=(24, 40)) + vit_models(3, rng, models=("demo_vit",))
                + cnn_models(5, rng, hw=(24, 40)))
    counts = {(90, 160): 28, (180, 320): 28, (360, 640): 8}
    out = [m for hw in sr_lr_hw for m in sr_models(counts.get(tuple(hw), 8), rng, lr_hw=tuple(hw))]
    out += cnn_models(24, rng, hw=(180, 320))  # VGG-style, mobilenet-like (at 2x), FSRCNN-, ESPCN-like
    for i in range(12):
        seed = rng.randrange(2**31)
        out.append(ZooModel(f"resnet-{seed}", "cnn", (1, 3, 224, 224), lambda s=seed: resnet_like(random.Random(s))))
        widths = [rng.choice([16, 32, 64, 96]) for _ in range(rng.randint(3, 7))]
        out.append(ZooModel(f"vgg224-{i}", "cnn", (1, 3, 224, 224), lambda w=widths: vgg_stack(w, (0, 2, 4), True)))
        seed = rng.randrange(2**31)
        out.append(ZooModel(f"mobile224-{seed}", "cnn", (1, 3, 224, 224), lambda s=seed: mobilenet224(random.Random(s))))
    return out + vit_models(14, rng) + vit_models(4, rng, models=("demo_vit",))


def time_zoo(models: Sequence[ZooModel], threads: int, *, rounds: int = 5, runs: int = 3, seed: int = 0,
             progress: bool = True, reference_ms: float | None = None) -> tuple[list[float], float]:
    """ms of each model, interleaved in seeded random groups of :data:`CHUNK` with a reference:
    a model's least round median, times ``reference_ms`` over the reference's least round median
    in its group (default ``reference_ms``: the median of those over the groups), so a group
    timed while the host ran slow is brought back to the collection's speed. One factor per
    group, not per round: a round's reference is itself noisy, and the least of noisy rescaled
    rounds would be biased low. Returns the ms and the reference ms used."""
    from tqdm.auto import tqdm

    from latency_models.interleave import interleaved_ms

    order = list(range(len(models)))
    random.Random(seed).shuffle(order)
    groups: list[tuple[list[int], list[float], float]] = []  # members, their least medians, reference's
    bar = tqdm(total=len(models), desc=f"timing the zoo (t={threads})", disable=not progress)
    for start in range(0, len(order), CHUNK):
        group = order[start:start + CHUNK]
        items = [(models[i].build(), models[i].input_shape) for i in group] + [REFERENCE()]
        *timed, ref = interleaved_ms(items, threads, rounds=rounds, runs=runs, settle=1)
        groups.append((group, [t.ms for t in timed], ref.ms))
        bar.update(len(group))
    bar.close()
    nominal = reference_ms or statistics.median(ref_ms for _, _, ref_ms in groups)
    out = [0.0] * len(models)
    for group, ms, ref_ms in groups:
        for i, m in zip(group, ms):
            out[i] = m * nominal / ref_ms
    return out, nominal


def build_host_predictor(threads: int = 1, quick: bool = False, progress: bool = True, seed: int = 0) -> Any:
    """Time :func:`host_zoo` here, fit on 4/5, report the rest beside the host's own agreement."""
    from latency_models.evaluate import metrics
    from latency_models.learn import fit

    models = host_zoo(random.Random(seed), quick)
    if progress:
        print(f"latency_models: no cached predictor for this host at {threads} thread(s); timing {len(models)} "
              "networks in interleaved rounds (one-off)", flush=True)
    ms, reference_ms = time_zoo(models, threads, seed=seed, progress=progress, rounds=3 if quick else 5)
    order = list(range(len(models)))
    random.Random(seed).shuffle(order)
    test, train = order[: len(models) // 5], order[len(models) // 5:]
    predictor = fit(((models[i].build(), models[i].input_shape, ms[i]) for i in train), threads=threads,
                    device="cpu", backend="torch-cpu", seed=seed)
    again, _ = time_zoo([models[i] for i in test], threads, seed=seed + 1, progress=False,
                        rounds=3 if quick else 5, reference_ms=reference_ms)
    measured = [ms[i] for i in test]
    pred = [predictor.predict(models[i].build(), models[i].input_shape) for i in test]
    predictor.manifest["held_out_metrics"] = {"predictor": metrics(measured, pred),
                                              "re_measured": metrics(measured, again)}
    from latency_models.hostinfo import host_info

    predictor.manifest["host"] = host_info()
    predictor.manifest["zoo"] = {
        "n_fit": len(train), "n_held_out": len(test), "reference_ms": reference_ms,
        "timing": "interleaved in groups of 12 with a reference, one settling run before each timing, each group "
                  "rescaled by its reference's least round median",
        "networks": [{"name": m.name, "input_shape": list(m.input_shape), "ms": ms[i], "held_out": i in test}
                     for i, m in enumerate(models)]}
    report(predictor)
    return predictor


def report(predictor: Any) -> None:
    """Print held-out accuracy beside the re-measured agreement; warn, naming the cause, if poor."""
    held = predictor.manifest["held_out_metrics"]
    p, r = held["predictor"], held["re_measured"]
    print(f"latency_models: held-out {p['n']} networks: {100 * p['within_10pct']:.0f}% within +-10%, "
          f"{100 * p['within_15pct']:.0f}% within +-15% (MAPE {p['mape_pct']:.1f}%); the same networks "
          f"re-timed agree {100 * r['within_10pct']:.0f}% within +-10% (MAPE {r['mape_pct']:.1f}%)", flush=True)
    if p["within_15pct"] >= POOR_WITHIN_15:
        return
    cause = ("this host's timings do not repeat (re-timed networks disagree as much): rebuild it on an idle "
             "machine (delete the cached file)" if r["within_15pct"] < POOR_WITHIN_15 else
             "the model form misses something these networks do: inspect predictor.manifest['predictor'] "
             "and fit on timings of the networks you will predict")
    warnings.warn(f"latency predictor for this host is poor ({100 * p['within_15pct']:.0f}% of held-out networks "
                  f"within +-15%): {cause}", stacklevel=3)

