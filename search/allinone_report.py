"""report.md and latency.png for ``strategy=allinone``: per operating point, latency and PSNR of
the fixed network and of the switched All-in-One network, and the latency spread of each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from spaces.atomic import atomic_path, write_text_atomic  # noqa: E402


def _point_label(row: dict[str, Any]) -> str:
    if "threads" in row:
        return f"{row['name']} ({row['threads']} thread{'s' if row['threads'] > 1 else ''})"
    return f"{row['name']} ({row['freq_mhz']:g} MHz)"


def write_allinone_report(result: dict[str, Any], path: Path) -> None:
    rows = result["operating_points"]
    sets = list(rows[0]["eval"])
    budget = result["budget_ms"]
    src = result["latency_source"]
    how = "measured" if result["latency_measured"] else "modelled"
    head = (f"| operating point | sub-network | fixed: latency ({how}, ms) | fixed: PSNR | "
            f"All-in-One: latency ({how}, ms) | All-in-One: PSNR | trained alone: PSNR |")
    lines = [head, "|" + " --- |" * 7]
    for r in rows:
        a = r["arch"]
        sub = f"{len(a['blocks'])} blocks, C={a['channels']}, [M1, M2]={a['blocks'][0]}"
        fixed_ok = "" if r["fixed_meets_budget"] else " (over budget)"
        sw_ok = "" if r["meets_budget"] else " (over budget)"

        def psnr(scores: dict[str, Any] | None) -> str:
            if not scores:
                return "n/a"
            return " / ".join(f"{scores[s]['psnr']:.2f}" for s in sets)

        lines.append(f"| {_point_label(r)} | {sub} | {r['fixed_latency_ms']:.2f}{fixed_ok} | {psnr(r['fixed_eval'])} | "
                     f"{r['latency_ms']:.2f}{sw_ok} | {psnr(r['eval'])} | {psnr(r.get('alone_eval'))} |")
    export = result["export"]
    governed = [r for r in rows if "governor" in r]
    if governed:
        lines += ["", "Run-time level switching (All-in-One latency: median of every governed timing): "
                  + "; ".join(f"{r['name']} ran its own level in {r['governor']['own_level_share']:.0%} of "
                              f"{sum(r['governor']['levels_used'].values())} timings, levels used "
                              f"{r['governor']['levels_used']}, {r['governor']['switches']} switches, aiming at "
                              f"{r['governor']['band_ms'][0]:.1f}-{r['governor']['band_ms'][1]:.1f} ms, PSNR weighted "
                              "by use " + " / ".join(f"{v:.2f}" for v in r["governor"]["psnr_governed"].values())
                              for r in governed) + "."]
    modelled_note = [] if result["latency_measured"] else [
        "**These latencies are MODELLED, not measured**: no phone is attached to this machine.",
        f"Frequency levels: {src.get('levels_source')}.", ""]
    text = [
        f"# All-in-One SR x{rows[0]['arch']['scale']} on {result['device']['name']}",
        "",
        f"Device: {result['device']['description']}; LR input {result['device']['lr_hw'][0]}x"
        f"{result['device']['lr_hw'][1]}. Budget {budget:g} ms at every operating point "
        f"(search target {result['target_ms']:.2f} ms).",
        f"Latency: {src['source']}.",
        "",
        *modelled_note,
        "The *fixed* network is the fastest point's sub-network trained alone: it runs unchanged at "
        "every point. The *All-in-One* network holds every point's nested sub-network in one weight "
        "set (trained together, sandwich rule) and switches with `model.set_operating_point(name)`. "
        f"PSNR-Y on {' / '.join(sets)}; every network used the same recipe "
        f"({result['recipe']['steps']} steps, batch {result['recipe']['batch_size']}, "
        f"HR patch {result['recipe']['patch_hr']}).",
        "",
        *lines,
        "",
        f"Latency spread across points (max / min): **All-in-One {result['latency_spread']:.3f}**, "
        f"fixed {result['fixed_latency_spread']:.3f}.",
        f"Every point within budget (All-in-One): {'yes' if result['all_meet_budget'] else 'NO'}.",
        f"Switching points: median {result['switch']['median_ms'] * 1000:.1f} us, "
        f"p99 {result['switch']['p99_ms'] * 1000:.1f} us over {result['switch']['trials']} switches.",
        f"Exported `{export['path']}`: {export['bytes']:,} bytes, {export['size_ratio']:.3f}x the "
        f"largest sub-network's weights alone ({export['largest_subnet']}, "
        f"`{export['largest_subnet_path']}`, "
        f"{export['largest_subnet_bytes']:,} bytes); masks are {export['mask_ints']} integers.",
        "",
        "See latency.png: each point's latency, fixed vs All-in-One"
        + (", and every governed timing in order with the band it holds." if governed else "."),
        "",
    ]
    write_text_atomic(path, "\n".join(text))
    plot_latency(result, path.with_name("latency.png"))


def plot_latency(result: dict[str, Any], path: Path) -> None:
    """Left: each point's latency, fixed vs All-in-One, against the budget. Right (governed runs):
    every governed timing in the order taken, per point, with the band the governors hold."""
    rows = result["operating_points"]
    governed = [r for r in rows if "governor" in r]
    fig, axes = plt.subplots(1, 2 if governed else 1, figsize=(11 if governed else 5.5, 4), squeeze=False)
    ax = axes[0][0]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["fixed_latency_ms"] for r in rows], 0.4, label="fixed network")
    ax.bar([i + 0.2 for i in x], [r["latency_ms"] for r in rows], 0.4, label="All-in-One, switched")
    ax.axhline(result["budget_ms"], color="red", ls="--", label=f"budget {result['budget_ms']:g} ms")
    ax.set_xticks(list(x), [r["name"] for r in rows])
    how = "measured" if result["latency_measured"] else "MODELLED"
    ax.set_ylabel(f"latency, ms ({how})")
    ax.set_title(f"spread: All-in-One {result['latency_spread']:.3f}, fixed {result['fixed_latency_spread']:.3f}")
    ax.legend(fontsize=8)
    if governed:
        ax = axes[0][1]
        for r in governed:
            ax.plot(r["latency_observations_ms"], marker=".", label=r["name"])
        low, high = governed[0]["governor"]["band_ms"]
        ax.axhspan(low, high, color="grey", alpha=0.2, label="band held")
        ax.axhline(result["budget_ms"], color="red", ls="--")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("governed timing, in order")
        ax.set_ylabel("ms")
        ax.set_title("run-time level switching")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
