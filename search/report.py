"""Outputs people read and compare: trial summaries, the Pareto picture, report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from search.result import Result
from search.study.progress import is_feasible  # noqa: E402
from spaces.atomic import atomic_path, write_text_atomic  # noqa: E402


def trial_summary(study: optuna.Study, quality_key: str = "val_psnr") -> dict[str, Any]:
    """Counts and every trial; each trial's proxy quality under ``quality_key`` (``val_psnr`` for
    SR, ``val_top1`` for ViT), absent for a trial never trained."""
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    return {
        "n_total": len(trials),
        "n_complete": len(done),
        "n_trained": sum(bool(t.user_attrs.get("trained")) for t in done),
        "n_untrained": sum(t.state == TrialState.PRUNED and not t.user_attrs.get("trained") for t in trials),
        "n_feasible": sum(is_feasible(t) for t in done),
        "n_failed": sum(t.state == TrialState.FAIL for t in trials),
        "n_pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "n_stopped_at_rung": sum(t.state == TrialState.PRUNED and bool(t.user_attrs.get("trained")) for t in trials),
        "trials": [
            {
                "number": t.number,
                "state": t.state.name,
                "latency_ms": t.user_attrs.get("latency_ms"),
                quality_key: t.user_attrs.get(quality_key),
                "trained": t.user_attrs.get("trained"),
                "proxy_steps": t.user_attrs.get("proxy_steps"),  # below the proxy's: stopped at that rung
                "feasible": is_feasible(t),
                "arch": t.user_attrs.get("arch"),
                "failure": t.user_attrs.get("failure"),  # why a FAIL trial failed (NaN, killed worker, Ctrl-C)
                "retry_of": t.user_attrs.get("retry_of"),  # a re-run of that failed trial's parameters
            }
            for t in trials
        ],
    }


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points (latency, quality) not dominated by a faster-and-better one, sorted by latency."""
    front: list[tuple[float, float]] = []
    for lat, q in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or q > front[-1][1]:
            front.append((lat, q))
    return front


def write_pareto(study: optuna.Study, budget_ms: float, baselines: dict[str, Any], path: Path,
                 title: str, quality_key: str = "val_psnr", quality_label: str = "PSNR-Y (dB)") -> None:
    """Every trial as quality vs latency; untrained (over-budget) ones on the floor; the budget
    as a vertical line; baselines (final-trained, their own eval) marked where their latency is known."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    trained = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
               if t.user_attrs.get("trained")]
    skipped = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
               if not t.user_attrs.get("trained")]
    stopped = [(t.user_attrs["latency_ms"], t.user_attrs[quality_key])
               for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
               if t.user_attrs.get("trained") and t.user_attrs.get(quality_key) is not None]
    feasible = [(t.user_attrs["latency_ms"], t.user_attrs[quality_key]) for t in trained if is_feasible(t)]
    near = [(t.user_attrs["latency_ms"], t.user_attrs[quality_key]) for t in trained if not is_feasible(t)]
    if feasible:
        ax.scatter(*zip(*feasible), s=22, c="tab:blue", label="trial within budget")
        front = pareto_front(feasible)
        ax.plot(*zip(*front), c="tab:blue", lw=1, alpha=0.6, label="Pareto front")
    if near:
        ax.scatter(*zip(*near), s=22, c="tab:orange", label="trial just over budget")
    if stopped:
        ax.scatter(*zip(*stopped), s=10, c="0.55", alpha=0.7, label="stopped at a rung (fewer proxy steps)")
    floor = min((q for _, q in feasible + near), default=0.0)
    if skipped:
        ax.scatter([t.user_attrs["latency_ms"] for t in skipped], [floor] * len(skipped), marker="x",
                   s=18, c="0.6", label="over budget, not trained")
    ax.axvline(budget_ms, c="tab:red", ls="--", lw=1, label=f"budget {budget_ms:g} ms")
    mark_baselines(ax, baselines, quality_key, text_x=ax.get_xlim()[0])
    finish_plot(fig, ax, path, title, "latency (ms)", quality_label + " on held-out validation")


def mark_baselines(ax: Any, baselines: dict[str, Any], quality_key: str, text_x: float) -> None:
    """Baselines as stars where their latency is known, else as labelled horizontal lines."""
    for name, b in baselines.items():
        quality = b.get(quality_key)
        if quality is None:
            continue
        if b.get("latency_ms") is not None:
            ax.scatter([b["latency_ms"]], [quality], marker="*", s=90, label=f"{name} (final)")
        else:
            ax.axhline(quality, ls=":", lw=1, c="0.3")
            ax.text(text_x, quality, f" {name} (final; latency not modelled here)",
                    fontsize=7, va="bottom", color="0.3")


def finish_plot(fig: Any, ax: Any, path: Path, title: str, xlabel: str, ylabel: str) -> None:
    """Labels, grid and legend; save to ``path`` and close the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def _fmt(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def write_sr_report(result: Result, path: Path) -> None:
    assert result.best is not None
    best, budget = result.best, result.budget_ms
    sets = list(best["eval"])
    lat_src = best["latency_source"]
    head = "| model | params | latency (ms) | fits budget | " + " | ".join(
        f"{s} PSNR-Y / SSIM-Y" for s in sets) + " |"
    rows = [head, "|" + " --- |" * (4 + len(sets))]

    def row(name: str, entry: dict[str, Any], latency: float | None) -> str:
        fits = "n/a (not modelled)" if latency is None else ("yes" if latency <= budget else "no")
        scores = " | ".join(f"{entry['eval'][s]['psnr']:.2f} / {entry['eval'][s]['ssim']:.4f}" for s in sets)
        return f"| {name} | {entry['params']:,} | {_fmt(latency)} | {fits} | {scores} |"

    rows.append(row("**searched**", best, best["latency_ms"]))
    for name, entry in result.extras["baselines"].items():
        rows.append(row(name, entry, entry.get("latency_ms")))
    device = result.device
    lines = [
        f"# SR x{best['arch']['scale']} search on {device['name']}",
        "",
        f"Device: {device['description']}; LR input {device['lr_hw'][0]}x{device['lr_hw'][1]}. "
        f"Budget: {budget:g} ms.",
        f"Latency source: {lat_src['source']}" + (" (measured)" if lat_src["measured"] else " (modelled)") + ".",
        *[f"Note: {n if isinstance(n, str) else '; '.join(map(str, n))}." for n in lat_src.get("notes", [])],
        "",
        f"Searched architecture ({result.strategy}, "
        + (f"trial #{best['trial']}" if best.get("trial") is not None else "derived from one supernet") + "): "
        f"{len(best['arch']['blocks'])} blocks, C={best['arch']['channels']}, "
        f"blocks [M1, M2] = {best['arch']['blocks']}.",
        *([f"Measured on this host: {best['measured_latency_ms']:.2f} ms (median)."]
          if best.get("measured_latency_ms") is not None else []),
        "",
        "Every trained model below used the same recipe (task.final: L1, Adam, same steps, patches, data).",
        "",
        *rows,
        "",
        *_published_rows(result.extras["baselines"], sets),
        _search_summary(result),
        "",
        *_export_rows({**(best.get("export") or {}),
                       **{f: row for b in (result.extras.get("baselines") or {}).values()
                          for f, row in (b.get("export") or {}).items()}}),
    ]
    write_text_atomic(path, "\n".join(lines))


def _export_rows(files: dict[str, Any]) -> list[str]:
    """The shipped files: size, PSNR in their own runtime (difference to the reference), latency here."""
    if not files:
        return []
    sets = list(next(iter(files.values()))["eval"])
    rows = ["## Exported files", "",
            "Each file scored on the evaluation sets in its own runtime at export; latency measured on this "
            "host in that runtime (not on the device).", "",
            "| file | precision | kB | " + " | ".join(f"{s} PSNR-Y (diff)" for s in sets) + " | ms here | runtime |",
            "|" + " --- |" * (5 + len(sets))]
    for name, f in files.items():
        cells = [f"{f['eval'][s]['psnr']:.2f} ({f['psnr_diff_db'][s]:+.3f})" for s in sets]
        rows.append(f"| `{name}` | {f['precision']} | {f['bytes'] / 1e3:.0f} | " + " | ".join(cells)
                    + f" | {f['latency_ms_here']:.2f} | {f['latency_runtime']} |")
    return rows + [""]


def _published_rows(baselines: dict[str, Any], sets: list[str]) -> list[str]:
    """The baselines' published PSNR-Y beside the one trained here, each with its recipe or source."""
    rows = [f"| {name} | {s} | {b['eval'][s]['psnr']:.2f} | "
            + (f"{b['published']['psnr'][s]:.2f} | {b['published']['source']}"
               if (b.get("published") or {}).get("psnr", {}).get(s) is not None else "n/a | not reported by its paper")
            + " |" for name, b in baselines.items() if "eval" in b for s in sets]
    if not rows:
        return []
    recipe = next((b["recipe"] for b in baselines.values() if b.get("recipe")), "trained here")
    return ["## Baselines: trained here vs published", "",
            f"Trained here: {recipe}. Published: the figure its paper reports, from that paper's training.", "",
            "| baseline | set | PSNR-Y here | published | source |", "| --- | --- | --- | --- | --- |", *rows, ""]


def _search_summary(result: Result) -> str:
    net = result.extras.get("supernet")
    if net is None:
        t = result.trials or {}
        return (f"Trials: {t['n_total']} in total, {t['n_trained']} trained, {t['n_feasible']} within budget. "
                "See pareto.png.")
    start = "the supernet's weights" if net.get("final_init") == "supernet" else "scratch"
    return (f"Supernet: {net['steps']} steps (phases {net['phases']}), latency weight lambda "
            f"{net['latency_lambda']:g}; net read off it {net['read_off_ms']:.2f} ms, fitted to the budget "
            f"with {net['greedy_moves']} greedy moves; its final training started from "
            f"{start}. "
            "See pareto.png for the supernet's trajectory.")
