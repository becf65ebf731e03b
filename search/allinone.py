"""``strategy=allinone``: one network, nested sub-networks per operating point, switched at run time.

Flow: order the device's operating points fastest first; search nested sub-networks that each
meet the same target latency at their own point (:mod:`search.allinone_search`); train them
together in one weight set (sandwich rule, :mod:`tasks.sr.allinone_train`); train the *fixed*
network (the fastest point's sub-network, alone) and, when asked, every other point's sub-network
alone with the same recipe; evaluate; measure (or model) every point's latency for the switched
and the fixed network; time the switch; export one weight file; write result.json, report.md
and latency.png.

Measured points (this host) train a chain of nested levels instead, the top searched with
headroom over the target (:mod:`search.allinone_levels`); each point takes its level from
timings made after training, and at run time a governor per point steps between the levels to
hold one latency band (:mod:`search.allinone_governed`, :mod:`tasks.sr.allinone_governor`).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch

import tasks.sr as sr
from search.allinone_governed import governed_points, governed_summary, make_governors
from search.allinone_levels import choose_levels, search_chain
from search.allinone_measure import final_latency, time_switch
from search.allinone_points import OperatingPoint, PointLatency, PointSet
from search.allinone_report import write_allinone_report
from search.allinone_search import PointChoice, describe_arch, search_nested, template
from search.errors import UserError
from search.settings import DeviceProfile, SearchSettings
from search.sr_task import SRSettings, train_and_evaluate
from spaces import WDSRBArch
from tasks.sr.allinone import AllInOneWDSRB, build_allinone, repoint, save_allinone
from tasks.sr.allinone_train import train_allinone

DEFAULTS: dict[str, Any] = {
    "target": 0.92, "level": 0.05, "spare_levels": 8, "level_step": 0.88, "headroom": 0.3, "band": 0.06,
    "channels": 16, "m1": 64, "m2": 16, "points": None, "n_random": None, "top_weight": 1.0,
    "compare_alone": True, "governor": True, "observations": 4,
    "search_rounds": 3, "final_rounds": 5, "switch_trials": 2000, "eval_sets": None,
    "measure": {"warmup": 3, "min_repeats": 8, "max_repeats": 20},
}


def options_from(strategy_options: dict[str, Any], smoke: bool) -> dict[str, Any]:
    """Strategy options over :data:`DEFAULTS`, with the ``smoke`` block on top for experiment=smoke."""
    opts = {**DEFAULTS, **{k: v for k, v in strategy_options.items() if k != "smoke"}}
    if smoke:
        opts.update(strategy_options.get("smoke") or {})
    if not 0 < float(opts["target"]) <= 1:
        raise UserError(f"strategy.target={opts['target']} must be in (0, 1]: the fraction of the budget aimed at")
    if not 0 < float(opts["band"]) < 1 or float(opts["headroom"]) < 0 or not float(opts["top_weight"]) > 0:
        raise UserError(f"strategy.band={opts['band']} must be in (0, 1), strategy.headroom={opts['headroom']} "
                        f">= 0 and strategy.top_weight={opts['top_weight']} > 0")
    if not 0 <= int(opts["spare_levels"]) <= 11:
        raise UserError(f"strategy.spare_levels={opts['spare_levels']} must be in [0, 11]: the levels are "
                        "assigned to the points by trying every combination")
    return opts


def slice_module(top: WDSRBArch, arch: WDSRBArch) -> AllInOneWDSRB:
    """``arch`` as it runs inside an All-in-One network whose largest point is ``top``."""
    points = {"top": top} if arch == top else {"top": top, "sub": arch}
    model = build_allinone(points)
    model.set_operating_point(list(points)[-1])
    return model


def run_allinone(task: dict[str, Any], device: DeviceProfile, settings: SearchSettings,
                 operating_points: dict[str, Any] | None, smoke: bool = False) -> dict[str, Any]:
    opts = options_from(settings.strategy_options, smoke)
    threads = device.threads or 2
    sr_settings = SRSettings.from_task(task, settings.seed, threads)
    space, scale = sr_settings.space, sr_settings.space.scale
    pointset = PointSet.from_config(operating_points, device, opts["points"])
    lat = PointLatency(pointset, device, scale, sr.build_model, protocol=opts["measure"])
    budget_ms = settings.budget_ms
    target_ms = budget_ms * float(opts["target"])
    try:
        root = template(space, int(opts["channels"]), int(opts["m1"]), int(opts["m2"]))
    except ValueError as err:
        raise UserError(str(err)) from None
    print(f"task=sr x{scale} device={device.name} strategy=allinone: {len(pointset.points)} operating points "
          f"({pointset.kind}), budget {budget_ms:g} ms, target {target_ms:.2f} ms per point; "
          f"latency {'measured on this host' if lat.measured else 'MODELLED: ' + pointset.latency_model}")

    rounds = max(1, int(opts["search_rounds"]))

    def measured(top: WDSRBArch, arch: WDSRBArch, point: OperatingPoint) -> float:
        module = slice_module(top, arch)  # as it will run; the median of rounds steadies a noisy host
        return statistics.median(lat.module_ms(module, point) for _ in range(rounds))

    spare = int(opts["spare_levels"]) if lat.measured else 0
    # With spare levels the chain's top is searched with headroom over the target, so that a point
    # can climb above the level it takes when the host runs faster than when the levels were timed.
    headroom = 1 + float(opts["headroom"]) if spare else 1.0
    started = time.monotonic()

    def search() -> list[PointChoice]:
        return search_nested(space, root, pointset.points, target_ms * headroom, lat, measured, level=opts["level"])[0]

    if spare:  # train a chain of levels; each point takes its level right before the final timing
        choices, chain = search_chain(search, space, spare, float(opts["level_step"]), headroom)
        trained = {f"level{i}": a for i, a in enumerate(chain)}
    else:
        choices = search()
        trained = _named(choices)[0]
    points, by_name = _named(choices)
    search_s = time.monotonic() - started

    try:
        patches = sr.TrainPatches(sr_settings.train_root, scale, sr_settings.final.patch_hr, seed=settings.seed + 1)
        evals = {name: sr.load_eval_set(root_dir, scale) for name, root_dir in sr_settings.eval_roots.items()
                 if not opts["eval_sets"] or name in opts["eval_sets"]}
    except sr.DataError as err:
        raise UserError(str(err)) from None
    recipe = sr_settings.final
    n_random = len(trained) if opts["n_random"] is None else int(opts["n_random"])  # None: every level, every step
    start_state = patches.state_dict()
    torch.manual_seed(settings.seed)
    model = build_allinone(trained)
    what = f"{len(trained)} nested levels" if spare else f"{len(trained)} nested sub-networks"
    print(f"training {what} together ({recipe.steps} steps, sandwich rule)")
    t0 = time.monotonic()
    try:
        train_allinone(model, patches, recipe, n_random=n_random, progress=_progress("allinone", recipe.steps),
                       top_weight=float(opts["top_weight"]))
    except sr.DivergedError as err:
        raise UserError(f"All-in-One training diverged: {err}; lower task.final.lr") from None
    train_s = time.monotonic() - t0

    t0 = time.monotonic()
    govs = None
    if spare:  # the export keeps every level: each point's governor steps down or up on them
        choices, picked, timed = _reselect(model, chain, pointset.points, lat, target_ms, opts)
        points, by_name = _named(choices)
        model = repoint(model, governed_points(chain, picked) if opts["governor"] else points)
        if opts["governor"]:
            govs = make_governors(model, picked, len(chain), timed, target_ms, float(opts["band"]))
    largest = choices[0].point.name
    # Right after the choice, in the same minutes: the fixed network is timed as a plain WDSR-B of
    # its architecture (the weights' values do not change the latency; its own are trained below).
    switched_ms, fixed_ms, rounds = final_latency(model, model.subnet(largest), points, by_name, lat,
                                                  int(opts["final_rounds"]), govs, int(opts["observations"]))
    latency_s = time.monotonic() - t0

    def alone(name: str, label: str) -> tuple[torch.nn.Module, dict[str, Any]]:
        patches.load_state_dict(start_state)  # the very batches the shared training drew
        torch.manual_seed(settings.seed)
        return train_and_evaluate(points[name], recipe, patches, evals, label)

    t0 = time.monotonic()
    fixed, fixed_scores = alone(largest, "fixed")
    alone_scores = {largest: fixed_scores}
    if opts["compare_alone"]:
        for name in list(points)[1:]:
            alone_scores[name] = alone(name, f"alone {name}")[1]
    alone_s = time.monotonic() - t0

    t0 = time.monotonic()
    switched_scores = {}
    for name in [*points, *(n for g in (govs or {}).values() for n in g.used if n not in points)]:
        model.set_operating_point(name)
        switched_scores[name] = sr.evaluate_sets(model, evals, scale)
    model.set_operating_point(largest)
    eval_s = time.monotonic() - t0
    switch = time_switch(model, int(opts["switch_trials"]))
    run_dir = settings.run_dir
    export = _export(model, fixed, run_dir, pointset, budget_ms)

    rows = []
    for c in choices:
        name = c.point.name
        row = {
            **c.point.to_dict(), **describe_arch(c.arch),
            "latency_ms": switched_ms[name], "measured": lat.measured, "search_latency_ms": c.latency_ms,
            "meets_budget": switched_ms[name] <= budget_ms,
            "eval": switched_scores[name],
            "fixed_latency_ms": fixed_ms[name], "fixed_meets_budget": fixed_ms[name] <= budget_ms,
            "fixed_eval": fixed_scores["eval"],
            "params_active": _params(c.arch),
        }
        if lat.measured:
            row["latency_rounds_ms"] = rounds["switched"][name]
            row["fixed_latency_rounds_ms"] = rounds["fixed"][name]
        if govs:
            row["latency_observations_ms"] = rounds["observations"][name]
            row["governor"] = governed_summary(govs[name], switched_scores)
        if name in alone_scores:
            row["alone_eval"] = alone_scores[name]["eval"]
            row["psnr_gap_db"] = {s: row["eval"][s]["psnr"] - alone_scores[name]["eval"][s]["psnr"] for s in evals}
        rows.append(row)
    result = {
        "task": "sr", "strategy": "allinone",
        "device": {"name": device.name, "description": device.description, "lr_hw": list(device.lr_hw)},
        "budget_ms": budget_ms, "target_ms": target_ms,
        "latency_measured": lat.measured,
        "latency_source": _latency_source(pointset, lat),
        "operating_points_kind": pointset.kind,
        "operating_points": rows,
        "latency_spread": max(switched_ms.values()) / min(switched_ms.values()),
        "fixed_latency_spread": max(fixed_ms.values()) / min(fixed_ms.values()),
        "all_meet_budget": all(r["meets_budget"] for r in rows),
        "switch_ms": switch["median_ms"], "switch": switch,
        "export": export,
        "recipe": {"steps": recipe.steps, "batch_size": recipe.batch_size, "patch_hr": recipe.patch_hr,
                   "lr": recipe.lr, "n_random": n_random},
        "timing_s": {"search": round(search_s, 1), "train_allinone": round(train_s, 1),
                     "train_alone": round(alone_s, 1), "eval_allinone": round(eval_s, 1),
                     "final_latency": round(latency_s, 1)},
        "options": {k: v for k, v in opts.items() if k != "smoke"},
    }
    write_allinone_report(result, run_dir / "report.md")
    return result


def _named(choices: list[PointChoice]) -> tuple[dict[str, WDSRBArch], dict[str, OperatingPoint]]:
    """Each point's architecture and point, by name, in the choices' order (largest first)."""
    return {c.point.name: c.arch for c in choices}, {c.point.name: c.point for c in choices}


def _reselect(model: AllInOneWDSRB, chain: list[WDSRBArch], points: tuple[OperatingPoint, ...], lat: PointLatency,
              target_ms: float, opts: dict[str, Any],
              ) -> tuple[list[PointChoice], dict[str, int], dict[tuple[int, str], float]]:
    """Time every trained level at every point (interleaved rounds, order reversed every round)
    and give each point its level (:func:`search.allinone_levels.choose_levels`). Returns the
    choices, each point's level index, and the timings ``(level, point name) -> ms``."""
    runs: dict[tuple[int, OperatingPoint], list[float]] = {(i, p): [] for i in range(len(chain)) for p in points}
    seq = list(runs)
    for r in range(max(1, int(opts["search_rounds"]))):
        for i, point in seq if r % 2 == 0 else seq[::-1]:
            model.set_operating_point(f"level{i}")
            runs[i, point].append(lat.module_ms(model, point))
    ms = {(i, p.name): statistics.median(v) for (i, p), v in runs.items()}
    # The points' levels lie within one band of each other, a band below the target (so the
    # governor's band around them stays within it; where some point fits nothing there, the target
    # itself), and below the top level when the governor runs: the top is its headroom.
    band = float(opts["band"])
    first = 1 if opts["governor"] and len(chain) > 2 else 0
    tolerance = None if opts["level"] is None else band
    picked = choose_levels(points, ms, len(chain), target_ms / (1 + band), tolerance, first)
    if not all(c.meets_aim for c in picked):
        picked = choose_levels(points, ms, len(chain), target_ms, tolerance, first)
    print(f"levels timed now ({len(chain)} levels x {len(points)} points): "
          + "; ".join(f"level{i} " + "/".join(f"{ms[i, p.name]:.1f}" for p in points) + " ms" for i in range(len(chain))))
    for c in picked:
        a = chain[c.level]
        print(f"  {c.point.name}: level{c.level}, {a.depth} blocks, C={a.channels}, "
              f"[M1, M2]={[a.blocks[0].m1, a.blocks[0].m2]}, {c.latency_ms:.2f} ms "
              f"({'meets' if c.meets_aim else 'MISSES'} target {target_ms:.2f} ms)")
    choices = [PointChoice(c.point, chain[c.level], c.latency_ms, c.meets_aim, len(runs)) for c in picked]
    return choices, {c.point.name: c.level for c in picked}, ms


def _params(arch: WDSRBArch) -> int:
    return sr.num_params(sr.build_model(arch))


def _progress(label: str, steps: int) -> Any:
    started = time.monotonic()
    last = [started]

    def progress(step: int, loss: float) -> None:
        now = time.monotonic()
        if now - last[0] > 20 or step == steps:
            rate = step / max(now - started, 1e-9)
            left = (steps - step) / max(rate, 1e-9)
            print(f"  [{label}] step {step}/{steps} L1 {loss:.4f} | {rate:.1f} steps/s, "
                  f"left ~{int(left // 60)}m{int(left % 60):02d}s", flush=True)
            last[0] = now

    return progress


def _export(model: AllInOneWDSRB, fixed: torch.nn.Module, run_dir: Path, pointset: PointSet,
            budget_ms: float) -> dict[str, Any]:
    """``allinone.pt`` (every point and level, one file), ``fixed.pt`` (the fixed network) and
    ``largest_subnet.pt``: the largest sub-network in the file (the first level) as a plain WDSR-B,
    the reference size for the All-in-One file."""
    path = save_allinone(model, run_dir / "allinone.pt", extra={
        "operating_points": {p.name: p.threads or p.freq_mhz for p in pointset.points},
        "kind": pointset.kind, "budget_ms": budget_ms,
        "fallback_levels": [n for n in model.point_names if n not in {p.name for p in pointset.points}]})
    sr.save_weights(fixed, run_dir / "fixed.pt")
    largest = model.point_names[0]
    ref = sr.save_weights(model.subnet(largest), run_dir / "largest_subnet.pt")
    size, ref_size = path.stat().st_size, ref.stat().st_size
    return {"path": path.name, "bytes": size, "largest_subnet": largest, "largest_subnet_path": ref.name,
            "largest_subnet_bytes": ref_size, "size_ratio": size / ref_size, "mask_ints": int(model.point_widths.numel()),
            "fixed_path": "fixed.pt", "loads_with": "tasks.sr.allinone.load_allinone (torch.load weights_only=True)"}


def _latency_source(pointset: PointSet, lat: PointLatency) -> dict[str, Any]:
    if lat.measured:
        return {"measured": True, "source": pointset.source}
    return {"measured": False,
            "source": f"MODELLED, not measured: published speed model at f_max ({lat.model_source}), "
                      f"scaled per level: {pointset.latency_model}",
            "levels_source": pointset.source}


__all__ = ["options_from", "run_allinone", "slice_module"]
