"""What a ``strategy=allinone`` run leaves: the exported weights (``allinone.pt``, ``fixed.pt``,
``largest_subnet.pt``) and the typed result, one row per operating point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import tasks.sr as sr
from search.result import Result, budget_rule, device_info, study_info
from search.sr.allinone.chain import PointChoice, describe_arch
from search.sr.allinone.governed import governed_summary
from search.sr.allinone.job import Run
from search.sr.allinone.points import PointSet
from search.sr.ship import calibration_sampler, export_all
from spaces import WDSRBArch
from tasks.sr.allinone import AllInOneWDSRB, save_allinone


def point_row(run: Run, c: PointChoice, switched_ms: dict[str, float], fixed_ms: dict[str, float], rounds: Any,
         switched_scores: dict[str, Any], alone_scores: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """One operating point's line of the result: its sub-network, latency and scores."""
    name, budget_ms, fixed = c.point.name, run.ctx.settings.budget_ms, run.fixed_point
    row = {
        **c.point.to_dict(), **describe_arch(c.arch),
        "latency_ms": switched_ms[name], "measured": run.lat.measured, "search_latency_ms": c.latency_ms,
        "meets_budget": switched_ms[name] <= budget_ms, "eval": switched_scores[name],
        "fixed_latency_ms": fixed_ms[name], "fixed_meets_budget": fixed_ms[name] <= budget_ms,
        "fixed_eval": alone_scores[fixed]["eval"], "params_active": _params(c.arch),
        "slowdown": fixed_ms[name] / min(fixed_ms.values()),  # the fixed network here over its fastest point
    }
    if run.lat.measured:
        row["latency_rounds_ms"] = rounds["switched"][name]
        row["fixed_latency_rounds_ms"] = rounds["fixed"][name]
    if run.govs:
        row["latency_observations_ms"] = rounds["observations"][name]
        row["governor"] = governed_summary(run.govs[name], switched_scores)
    if name in alone_scores:
        row["alone_eval"] = alone_scores[name]["eval"]
        row["psnr_gap_db"] = {s: row["eval"][s]["psnr"] - alone_scores[name]["eval"][s]["psnr"] for s in sets}
    return row


def result_of(run: Run, rows: list[dict[str, Any]], switch: dict[str, float], export: dict[str, Any],
            n_random: int) -> Result:
    """``best``: the fastest point's sub-network (the largest, every other one nested in it);
    ``latency_ms`` is its latency there, the number every runner's ``best`` carries, and
    ``latency_ms_by_point`` the switched network's latency at every point."""
    ctx, recipe, top = run.ctx, run.sr.final, rows[0]
    switched = [r["latency_ms"] for r in rows]
    fixed = [r["fixed_latency_ms"] for r in rows]
    best = {"arch": top["arch"], "arch_key": WDSRBArch.from_dict(top["arch"]).key, "point": top["name"],
            "latency_ms": top["latency_ms"], "latency_source": _latency_source(run),
            "latency_ms_by_point": {r["name"]: r["latency_ms"] for r in rows}, "eval": top["eval"],
            "all_meet_budget": all(r["meets_budget"] for r in rows)}
    extras = {
        "target_ms": run.target_ms, "latency_measured": run.lat.measured, "latency_source": _latency_source(run),
        "operating_points_kind": run.pointset.kind, "operating_points": rows,
        "latency_spread": max(switched) / min(switched), "fixed_latency_spread": max(fixed) / min(fixed),
        "all_meet_budget": best["all_meet_budget"], "switch_ms": switch["median_ms"], "switch": switch,
        "export": export, "timing_s": run.timing_s, "options": run.opts,
        "recipe": {"steps": recipe.steps, "batch_size": recipe.batch_size, "patch_hr": recipe.patch_hr,
                   "lr": recipe.lr, "n_random": n_random},
    }
    return Result(task="sr", strategy="allinone", device=device_info(ctx.device), budget_ms=ctx.settings.budget_ms,
                  budget_rule=budget_rule(ctx.settings, ctx.device), best=best, study=study_info(ctx.settings),
                  trials=None, extras=extras)


def _params(arch: WDSRBArch) -> int:
    return sr.num_params(sr.build_model(arch))


def export_files(model: AllInOneWDSRB, fixed: torch.nn.Module, run_dir: Path, pointset: PointSet,
            budget_ms: float) -> dict[str, Any]:
    """``allinone.pt`` (every point and level, one file), ``fixed.pt`` (the fixed network) and
    ``largest_subnet.pt``: the largest sub-network in the file (the first level) as a plain WDSR-B,
    the reference size for the All-in-One file."""
    path = save_allinone(model, run_dir / "allinone.pt", extra={
        "operating_points": {p.name: p.to_dict() for p in pointset.points},
        "kind": pointset.kind, "budget_ms": budget_ms,
        "fallback_levels": [n for n in model.point_names if n not in {p.name for p in pointset.points}]})
    sr.save_weights(fixed, run_dir / "fixed.pt")
    largest = model.point_names[0]
    ref = sr.save_weights(model.subnet(largest), run_dir / "largest_subnet.pt")
    size, ref_size = path.stat().st_size, ref.stat().st_size
    return {"path": path.name, "bytes": size, "largest_subnet": largest, "largest_subnet_path": ref.name,
            "largest_subnet_bytes": ref_size, "size_ratio": size / ref_size, "mask_ints": int(model.point_widths.numel()),
            "fixed_path": "fixed.pt", "loads_with": "tasks.sr.allinone.load_allinone (torch.load weights_only=True)"}


def point_files(run: Run, model: AllInOneWDSRB, evals: dict[str, list]) -> dict[str, Any]:
    """The deployable files of each operating point's sub-network (``export:``), in
    ``points/<point>/``: what a phone without the switching runtime would load per level. Timed
    here only where the points are this host's own (thread counts): frequency levels are the
    device's, modelled, and a host timing would say nothing about them."""
    ctx = run.ctx
    calibration = calibration_sampler(run.sr.train_root, run.sr.space.scale, ctx.settings.seed)
    files = {}
    for name, arch in run.points.items():
        point = run.by_name[name]
        out = ctx.run_dir / "points" / name
        out.mkdir(parents=True, exist_ok=True)
        threads = point.threads or ctx.device.measure_threads
        written = export_all(model.subnet(name), arch, ctx.export, evals, calibration,
                             tuple(ctx.device.lr_hw), threads, out, label=f"points/{name}/",
                             timed=run.pointset.measured)
        files[name] = {f"points/{name}/{f}": row for f, row in written.items()}
    return files


def _latency_source(run: Run) -> dict[str, Any]:
    pointset, estimator = run.pointset, run.lat.estimator
    if run.lat.measured:
        return {"measured": True, "source": pointset.source}
    return {"measured": False,
            "source": f"MODELLED, not measured: {estimator.source}, at f_max, "
                      f"scaled per level: {pointset.latency_model}",
            "levels_source": pointset.source, "estimator": estimator.describe()}
