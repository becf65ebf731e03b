"""``strategy=allinone``: one network, nested sub-networks per operating point, switched at run time.

Flow: order the device's operating points fastest first; search nested sub-networks that each
meet the same target latency at their own point (:mod:`search.sr.allinone.chain`); train them
together in one weight set (sandwich rule, :mod:`tasks.sr.allinone_train`); train the *fixed*
network (the slowest point's sub-network, alone: what must be shipped without switching) and,
when asked, every other point's sub-network
alone with the same recipe; evaluate; measure (or model) every point's latency for the switched
and the fixed network; time the switch; export one weight file; write result.json, report.md
and latency.png.

Measured points (this host) train a chain of nested levels instead, the top searched with
headroom over the target (:mod:`search.sr.allinone.levels`); each point takes its level from
timings made after training, and at run time a governor per point steps between the levels to
hold one latency band (:mod:`search.sr.allinone.governed`, :mod:`tasks.sr.allinone_governor`).

Phases: :func:`_search`, :func:`_train`, :func:`_measure` (levels given, final latency),
:func:`_train_alone`, :func:`_evaluate`, then the result (:func:`_result`).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

import tasks.sr as sr
from search.console import say, step_progress
from search.errors import UserError
from search.result import Result
from search.settings import RunContext
from search.sr.allinone.chain import PointChoice, search_nested, template
from search.sr.allinone.governed import governed_points, make_governors
from search.sr.allinone.job import Run, options_from, prepare
from search.sr.allinone.levels import reselect, search_chain
from search.sr.allinone.measure import final_latency, time_switch
from search.sr.allinone.outputs import export_files, point_files, point_row, result_of
from search.sr.allinone.points import OperatingPoint
from search.sr.allinone.report import write_allinone_report
from search.sr.task import train_and_evaluate
from spaces import WDSRBArch
from tasks.sr.allinone import AllInOneWDSRB, build_allinone, repoint
from tasks.sr.allinone_train import train_allinone


def slice_module(top: WDSRBArch, arch: WDSRBArch) -> AllInOneWDSRB:
    """``arch`` as it runs inside an All-in-One network whose largest point is ``top``."""
    points = {"top": top} if arch == top else {"top": top, "sub": arch}
    model = build_allinone(points)
    model.set_operating_point(list(points)[-1])
    return model


def run_allinone(ctx: RunContext) -> Result:
    run = prepare(ctx)
    trained = _search(run)
    patches, evals = _data(run)
    start_state = patches.state_dict()
    model, n_random = _train(run, trained, patches)
    model, switched_ms, fixed_ms, rounds = _measure(run, model)
    fixed, alone_scores = _train_alone(run, patches, start_state, evals)
    switched_scores = _evaluate(run, model, evals)
    switch = time_switch(model, int(run.opts["switch_trials"]))
    export = export_files(model, fixed, ctx.run_dir, run.pointset, ctx.settings.budget_ms)
    export["points"] = point_files(run, model, evals)
    rows = [point_row(run, c, switched_ms, fixed_ms, rounds, switched_scores, alone_scores, list(evals))
            for c in run.choices]
    result = result_of(run, rows, switch, export, n_random)
    write_allinone_report(result, ctx.run_dir / "report.md")
    return result


def _search(run: Run) -> dict[str, WDSRBArch]:
    """The nested choices (and, with spare levels, the chain of levels under the top); returns the
    sub-networks to train, by name."""
    opts, space, lat, started = run.opts, run.sr.space, run.lat, time.monotonic()
    try:
        root = template(space, int(opts["channels"]), int(opts["m1"]), int(opts["m2"]))
    except ValueError as err:
        raise UserError(str(err)) from None
    rounds = max(1, int(opts["search_rounds"]))

    def measured(top: WDSRBArch, arch: WDSRBArch, point: OperatingPoint) -> float:
        module = slice_module(top, arch)  # as it will run; the median of rounds steadies a noisy host
        return statistics.median(lat.module_ms(module, point) for _ in range(rounds))

    # With spare levels the chain's top is searched with headroom over the target, so that a point
    # can climb above the level it takes when the host runs faster than when the levels were timed.
    headroom = 1 + float(opts["headroom"]) if run.spare else 1.0

    def search() -> list[PointChoice]:
        return search_nested(space, root, run.pointset.points, run.target_ms * headroom, lat, measured,
                             level=opts["level"])[0]

    if run.spare:  # train a chain of levels; each point takes its level right before the final timing
        run.choices, run.chain = search_chain(search, space, run.spare, float(opts["level_step"]), headroom)
        trained = {f"level{i}": a for i, a in enumerate(run.chain)}
    else:
        run.choices = search()
        trained = run.points
    run.timed("search", started)
    return trained


def _data(run: Run) -> tuple[sr.TrainPatches, dict[str, list[Any]]]:
    scale, wanted = run.sr.space.scale, run.opts["eval_sets"]
    try:
        patches = sr.TrainPatches(run.sr.train_root, scale, run.sr.final.patch_hr, seed=run.ctx.settings.seed + 1)
        evals = {name: sr.load_eval_set(root_dir, scale) for name, root_dir in run.sr.eval_roots.items()
                 if not wanted or name in wanted}
    except sr.DataError as err:
        raise UserError(str(err)) from None
    return patches, evals


def _train(run: Run, trained: dict[str, WDSRBArch], patches: sr.TrainPatches) -> tuple[AllInOneWDSRB, int]:
    """Every sub-network (or level) together in one weight set, sandwich rule."""
    recipe, started = run.sr.final, time.monotonic()
    n_random = len(trained) if run.opts["n_random"] is None else int(run.opts["n_random"])  # None: every level
    torch.manual_seed(run.ctx.settings.seed)
    model = build_allinone(trained)
    what = f"{len(trained)} nested levels" if run.spare else f"{len(trained)} nested sub-networks"
    say(f"training {what} together ({recipe.steps} steps, sandwich rule)")
    try:
        train_allinone(model, patches, recipe, n_random=n_random, progress=step_progress("allinone", recipe.steps),
                       top_weight=float(run.opts["top_weight"]))
    except sr.DivergedError as err:
        raise UserError(f"All-in-One training diverged: {err}; lower task.final.lr") from None
    run.timed("train_allinone", started)
    return model, n_random


def _measure(run: Run, model: AllInOneWDSRB) -> tuple[AllInOneWDSRB, dict[str, float], dict[str, float], Any]:
    """With spare levels, each point takes its level now (and its governor); then the final
    latency of the switched and the fixed network at every point."""
    opts, started = run.opts, time.monotonic()
    if run.spare:  # the export keeps every level: each point's governor steps down or up on them
        run.choices, picked, timed = reselect(model, run.chain, run.pointset.points, run.lat, run.target_ms, opts)
        model = repoint(model, governed_points(run.chain, picked) if opts["governor"] else run.points)
        if opts["governor"]:
            run.govs = make_governors(model, picked, len(run.chain), timed, run.target_ms, float(opts["band"]))
    # Right after the choice, in the same minutes: the fixed network is timed as a plain WDSR-B of
    # its architecture (the weights' values do not change the latency; its own are trained below).
    switched_ms, fixed_ms, rounds = final_latency(model, model.subnet(run.fixed_point), run.points, run.by_name, run.lat,
                                                  int(opts["final_rounds"]), run.govs, int(opts["observations"]))
    run.timed("final_latency", started)
    return model, switched_ms, fixed_ms, rounds


def _train_alone(run: Run, patches: sr.TrainPatches, start_state: dict[str, Any],
                 evals: dict[str, list[Any]]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The fixed network (the slowest point's sub-network alone) and, when asked, every other
    point's, each on the very batches the shared training drew."""
    points, seed, started = run.points, run.ctx.settings.seed, time.monotonic()

    def alone(name: str, label: str) -> tuple[torch.nn.Module, dict[str, Any]]:
        patches.load_state_dict(start_state)
        torch.manual_seed(seed)
        return train_and_evaluate(points[name], run.sr.final, patches, evals, label)

    fixed, fixed_scores = alone(run.fixed_point, "fixed")
    scores = {run.fixed_point: fixed_scores}
    if run.opts["compare_alone"]:
        for name in [n for n in points if n != run.fixed_point]:
            scores[name] = alone(name, f"alone {name}")[1]
    run.timed("train_alone", started)
    return fixed, scores


def _evaluate(run: Run, model: AllInOneWDSRB, evals: dict[str, list[Any]]) -> dict[str, Any]:
    """Every point's sub-network switched in the one network, and every level a governor used."""
    started, names = time.monotonic(), list(run.points)
    used = [n for g in (run.govs or {}).values() for n in g.used if n not in names]
    scores = {}
    for name in [*names, *used]:
        model.set_operating_point(name)
        scores[name] = sr.evaluate_sets(model, evals, run.sr.space.scale)
    model.set_operating_point(names[0])
    run.timed("eval_allinone", started)
    return scores


__all__ = ["options_from", "run_allinone", "slice_module"]
