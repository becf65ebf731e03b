"""report.md and latency.png for ``strategy=allinone``: per operating point, latency and PSNR of
the fixed network and of the switched All-in-One network, and the latency spread of each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from search.result import Result  # noqa: E402
from spaces.atomic import atomic_path, write_text_atomic  # noqa: E402


def _point_label(row: dict[str, Any]) -> str:
    if "load" in row:
        return f"{row['name']} ({row['load']} load, {row['threads']} thread{'s' if row['threads'] > 1 else ''})"
    if "threads" in row:
        return f"{row['name']} ({row['threads']} thread{'s' if row['threads'] > 1 else ''})"
    return f"{row['name']} ({row['freq_mhz']:g} MHz)"


def write_allinone_report(result: Result, path: Path) -> None:
    """report.md (the table, the switching, the spread and the export) and latency.png beside it."""
    ext = result.extras
    rows, sets = ext["operating_points"], list(ext["operating_points"][0]["eval"])
    src, device, export = ext["latency_source"], result.device, ext["export"]
    governed = [r for r in rows if "governor" in r]
    modelled_note = [] if ext["latency_measured"] else [
        "**These latencies are MODELLED, not measured**: no phone is attached to this machine.",
        f"Frequency levels: {src.get('levels_source')}.", ""]
    text = [
        f"# All-in-One SR x{rows[0]['arch']['scale']} on {device['name']}",
        "",
        f"Device: {device['description']}; LR input {device['lr_hw'][0]}x{device['lr_hw'][1]}. Budget "
        f"{result.budget_ms:g} ms at every operating point (search target {ext['target_ms']:.2f} ms).",
        f"Latency: {src['source']}.",
        "",
        *modelled_note,
        "The *fixed* network is the slowest point's sub-network trained alone (the one network that meets "
        "the budget everywhere without switching): it runs unchanged at every point; its slowdown is its "
        "latency at a point over its latency at the fastest one, measured. The *All-in-One* network holds every point's nested sub-network in one weight "
        "set (trained together, sandwich rule) and switches with `model.set_operating_point(name)`. "
        f"PSNR-Y on {' / '.join(sets)}; every network used the same recipe "
        f"({ext['recipe']['steps']} steps, batch {ext['recipe']['batch_size']}, "
        f"HR patch {ext['recipe']['patch_hr']}).",
        "",
        *_table(rows, sets, "measured" if ext["latency_measured"] else "modelled"),
        *_switching(governed),
        "",
        f"Latency spread across points (max / min): **All-in-One {ext['latency_spread']:.3f}**, "
        f"fixed {ext['fixed_latency_spread']:.3f}.",
        f"Every point within budget (All-in-One): {'yes' if ext['all_meet_budget'] else 'NO'}.",
        f"Switching points: median {ext['switch']['median_ms'] * 1000:.1f} us, "
        f"p99 {ext['switch']['p99_ms'] * 1000:.1f} us over {ext['switch']['trials']} switches.",
        f"Exported `{export['path']}`: {export['bytes']:,} bytes, {export['size_ratio']:.3f}x the "
        f"largest sub-network's weights alone ({export['largest_subnet']}, `{export['largest_subnet_path']}`, "
        f"{export['largest_subnet_bytes']:,} bytes); masks are {export['mask_ints']} integers.",
        "",
        "See latency.png: each point's latency, fixed vs All-in-One"
        + (", and every governed timing in order with the band it holds." if governed else "."),
        "",
    ]
    write_text_atomic(path, "\n".join(text))
    plot_latency(result, path.with_name("latency.png"))


def _table(rows: list[dict[str, Any]], sets: list[str], how: str) -> list[str]:
    """Per operating point: sub-network, fixed and All-in-One latency and PSNR, PSNR trained alone."""
    def psnr(scores: dict[str, Any] | None) -> str:
        return " / ".join(f"{scores[s]['psnr']:.2f}" for s in sets) if scores else "n/a"

    lines = [f"| operating point | sub-network | fixed: latency ({how}, ms) | slowdown | fixed: PSNR | "
             f"All-in-One: latency ({how}, ms) | All-in-One: PSNR | trained alone: PSNR |", "|" + " --- |" * 8]
    for r in rows:
        a = r["arch"]
        sub = f"{len(a['blocks'])} blocks, C={a['channels']}, [M1, M2]={a['blocks'][0]}"
        fixed_ok = "" if r["fixed_meets_budget"] else " (over budget)"
        sw_ok = "" if r["meets_budget"] else " (over budget)"
        lines.append(f"| {_point_label(r)} | {sub} | {r['fixed_latency_ms']:.2f}{fixed_ok} | "
                     f"x{r['slowdown']:.2f} | {psnr(r['fixed_eval'])} | "
                     f"{r['latency_ms']:.2f}{sw_ok} | {psnr(r['eval'])} | {psnr(r.get('alone_eval'))} |")
    return lines


def _switching(governed: list[dict[str, Any]]) -> list[str]:
    """One paragraph on run-time level switching, where the points had governors."""
    if not governed:
        return []
    return ["", "Run-time level switching (All-in-One latency: median of every governed timing): "
            + "; ".join(f"{r['name']} ran its own level in {r['governor']['own_level_share']:.0%} of "
                        f"{sum(r['governor']['levels_used'].values())} timings, levels used "
                        f"{r['governor']['levels_used']}, {r['governor']['switches']} switches, aiming at "
                        f"{r['governor']['band_ms'][0]:.1f}-{r['governor']['band_ms'][1]:.1f} ms, PSNR weighted "
                        "by use " + " / ".join(f"{v:.2f}" for v in r["governor"]["psnr_governed"].values())
                        for r in governed) + "."]


def plot_latency(result: Result, path: Path) -> None:
    """Left: each point's latency, fixed vs All-in-One, against the budget. Right (governed runs):
    every governed timing in the order taken, per point, with the band the governors hold."""
    ext = result.extras
    rows = ext["operating_points"]
    governed = [r for r in rows if "governor" in r]
    fig, axes = plt.subplots(1, 2 if governed else 1, figsize=(11 if governed else 5.5, 4), squeeze=False)
    ax = axes[0][0]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["fixed_latency_ms"] for r in rows], 0.4, label="fixed network")
    ax.bar([i + 0.2 for i in x], [r["latency_ms"] for r in rows], 0.4, label="All-in-One, switched")
    ax.axhline(result.budget_ms, color="red", ls="--", label=f"budget {result.budget_ms:g} ms")
    ax.set_xticks(list(x), [r["name"] for r in rows])
    how = "measured" if ext["latency_measured"] else "MODELLED"
    ax.set_ylabel(f"latency, ms ({how})")
    ax.set_title(f"spread: All-in-One {ext['latency_spread']:.3f}, fixed {ext['fixed_latency_spread']:.3f}")
    ax.legend(fontsize=8)
    if governed:
        ax = axes[0][1]
        for r in governed:
            ax.plot(r["latency_observations_ms"], marker=".", label=r["name"])
        low, high = governed[0]["governor"]["band_ms"]
        ax.axhspan(low, high, color="grey", alpha=0.2, label="band held")
        ax.axhline(result.budget_ms, color="red", ls="--")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("governed timing, in order")
        ax.set_ylabel("ms")
        ax.set_title("run-time level switching")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
