"""The ViT run's ``report.md`` and, where no study was run (keep_schedule), its final plot; both
read the typed :class:`~search.result.Result`."""

from __future__ import annotations

from pathlib import Path

from search import report
from search.result import Result
from spaces.atomic import write_text_atomic


def write_vit_report(result: Result, path: Path) -> None:
    """The searched model against EViT at the same keep rates and the unpruned teacher."""
    assert result.best is not None, "a search-only result has no report"
    best, base = result.best, result.extras["baselines"]
    arch, runtime = best["arch"], best.get("runtime") or {"name": "torch"}
    rows = [
        f"| model | keep rates | measured latency (ms, {runtime['name']}) | held-out top-1 (%) |",
        "| --- | --- | --- | --- |",
        f"| **searched, fine-tuned selectors** | {arch['keep_rates']} | "
        f"{best['measured_latency_ms']:.2f} | {best['test_top1']:.2f} |",
        f"| EViT-style, training-free | {base['evit']['keep_rates']} | {base['evit']['latency_ms']:.2f} | "
        f"{base['evit']['test_top1']:.2f} |",
        f"| unpruned teacher | 1.0 | {base['unpruned']['latency_ms']:.2f} | {base['unpruned']['test_top1']:.2f} |",
    ]
    lines = [
        f"# ViT token-pruning search on {result.device['name']}",
        "",
        f"Budget: {result.budget_ms:.2f} ms ({result.budget_rule}); "
        f"latency source: {best['latency_source']['source']}.",
        f"Searched keep rates {arch['keep_rates']} at stages {arch['stages']} "
        f"({best['chosen_by']}, {result.strategy}).",
        f"Runtime: {_runtime_line(runtime)}.",
        f"Measured after fine-tuning ({best.get('measured_as', 'the fine-tuned model')}): "
        f"{best['measured_latency_ms']:.2f} ms "
        f"({best['latency_ratio_to_unpruned']:.2f} x the unpruned model timed beside it, median of per-round ratios), "
        f"{'within' if best['meets_budget'] else 'OVER'} the budget"
        f"{'' if result.budget_rule == 'given' else ' (judged by that ratio)'}; top-1 drop vs teacher "
        f"{best['top1_drop_vs_teacher']:.2f} points.",
        "",
        *rows,
        "",
        _search_line(result),
        "",
        *_check_lines(best.get("latency_check")),
        *_export_rows(best.get("export") or {}),
    ]
    write_text_atomic(path, "\n".join(lines))


def _runtime_line(runtime: dict) -> str:
    if "backend" not in runtime:  # a result written before task.runtime existed: eager torch
        return "torch (eager)"
    return (f"{runtime['name']} (`{runtime['backend']}` backend, {runtime['threads']} thread(s), batch "
            f"{runtime['batch']}, {runtime['where']}): the search, the budget and these figures")


def _export_rows(files: dict) -> list[str]:
    """The shipped files: size, top-1 in their own runtime, agreement with PyTorch, latency here."""
    if not files:
        return []
    rows = ["## Exported files", "",
            "Each file scored on the held-out test images in its own runtime at export; latency measured on "
            "this host in that runtime (not on the device).", "",
            "| file | precision | kB | top-1 % (diff) | same top class as PyTorch | ms here | runtime |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, f in files.items():
        rows.append(f"| `{name}` | {f['precision']} | {f['bytes'] / 1e3:.0f} | {f['test_top1']:.2f} "
                    f"({f['top1_diff_vs_pytorch']:+.2f}) | {f['agreement_with_pytorch']:.1%} | "
                    f"{f['latency_ms_here']:.2f} | {f['latency_runtime']} |")
    return rows + [""]


def _check_lines(check: dict | None) -> list[str]:
    """The fitted predictor against timings of the same run (latency_predictor.png)."""
    if not check:
        return []
    held, members = check["held_out"], check["members_in_sample"]
    text = (f"Latency predictor (point prediction vs timed beside the unpruned model): "
            f"{members['n']} fitting members in sample, median error {members['median_abs_error_pct']:.1f}%")
    if held:
        text += (f"; {held['n']} held out (re-timed candidates, final model), median error "
                 f"{held['median_abs_error_pct']:.1f}%, worst {held['worst_error_pct']:+.1f}%, timed at or under "
                 f"the constraint's {check['bound']} in {check['held_out_under_bound']:.0%}")
    return [text + ". See latency_predictor.png.", ""]


def _search_line(result: Result) -> str:
    if result.trials is not None:
        t = result.trials
        return f"Trials: {t['n_total']} in total, {t['n_trained']} trained, {t['n_feasible']} within budget. See pareto.png."
    summary = (result.extras.get("search") or {}).get("summary") or ""
    return f"No trials ({result.strategy}): {summary} See pareto.png."


def plot_final(result: Result, path: Path, title: str) -> None:
    """No population to draw: the chosen model against the baselines and the budget."""
    import matplotlib.pyplot as plt  # search.report chose the Agg backend on import

    assert result.best is not None
    best = result.best
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([best["measured_latency_ms"]], [best["val_top1"]], c="tab:red", s=60, label="searched (fine-tuned)")
    ax.axvline(result.budget_ms, ls="--", c="tab:red", lw=1, label=f"budget {result.budget_ms:.1f} ms")
    report.mark_baselines(ax, result.extras["baselines"], "val_top1", best["measured_latency_ms"])
    report.finish_plot(fig, ax, path, title, "measured latency (ms)", "top-1 (%)")
