"""After ``python -m search -m ...``: one table across the sweep's jobs (``summary.md`` and
``summary.json`` in the sweep directory), read from each job's ``result.json``."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from search.console import say
from search.errors import UserError
from search.result import Result
from search.study.storage import redact
from spaces.atomic import write_text_atomic


class SweepSummary(Callback):
    """Hydra callback (``hydra.callbacks`` in conf/config.yaml). Jobs whose ``result.json`` was
    written during this multirun are summarised; older ones in the same sweep directory (an earlier
    sweep, a failed job's previous result) are left out."""

    def __init__(self) -> None:
        self.started_unix_s = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started_unix_s = time.time()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra's sweeper saves multirun.yaml, storage URL and overrides included, before any job
        # starts and outside any setting that turns it off: the first job masks it.
        redact_saved_config(Path(str(config.hydra.sweep.dir)) / "multirun.yaml", config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        redact_saved_config(sweep_dir / "multirun.yaml", config)
        rows = collect(sweep_dir, since_unix_s=self.started_unix_s - 1.0)
        if rows:
            md, js = write_summary(rows, sweep_dir)
            say(f"sweep summary ({len(rows)} jobs): {md} and {js}")


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def redact_saved_config(path: Path, config: DictConfig) -> None:
    """Rewrite ``path`` (atomically) with every storage password masked: the job's resolved
    ``search.storage`` (it may come from ``${oc.env:...}``) and any URL the text spells out."""
    if not path.is_file():
        return
    text = path.read_text()
    storage = OmegaConf.select(config, "search.storage", default=None, throw_on_resolution_failure=False)
    clean = text.replace(storage, redact(storage)) if isinstance(storage, str) and storage else text
    clean = _URL.sub(lambda m: redact(m.group(0)), clean)
    if clean != text:
        write_text_atomic(path, clean)


def collect(sweep_dir: Path, since_unix_s: float = 0.0) -> list[dict[str, Any]]:
    """One row per job: where it ran, what it searched and what it found. A job whose
    ``result.json`` is not a result of this package is listed with what is wrong with it."""
    rows = []
    for path in sorted(sweep_dir.glob("**/result.json")):
        if path.stat().st_mtime < since_unix_s:
            continue
        job = path.parent.relative_to(sweep_dir)
        try:
            rows.append(summary_row(Result.read(path), job))
        except UserError as err:
            say(f"sweep summary: {job} left out: {err}")
    return sorted(rows, key=lambda r: (r["task"], r["device"], r["budget_ms"] or 0, r["job"]))


def summary_row(result: Result, job: Path) -> dict[str, Any]:
    best = result.best or {}
    trials = result.trials or {}
    evals = {name: scores.get("psnr") for name, scores in (best.get("eval") or {}).items()
             if isinstance(scores, dict)}
    arch = best.get("arch") or {}
    return {
        "job": str(job),
        "task": result.task,
        "device": result.device.get("name"),
        "budget_ms": result.budget_ms,
        "strategy": result.strategy,
        "study": result.study.get("name"),
        "n_complete": trials.get("n_complete"),
        "n_failed": trials.get("n_failed"),
        "best_trial": best.get("trial"),
        "best_arch_key": best.get("arch_key"),
        "blocks": len(arch["blocks"]) if isinstance(arch.get("blocks"), list) else None,
        "channels": arch.get("channels"),
        "keep_rates": arch.get("keep_rates"),  # ViT
        "test_top1": best.get("test_top1"),  # ViT, %
        "latency_ms": best.get("latency_ms"),
        "val_psnr_proxy": best.get("val_psnr_proxy"),
        "eval_psnr": evals,
        "final_trained": result.final_trained and bool(evals),
        "wall_s": result.wall_s,
    }


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def write_summary(rows: list[dict[str, Any]], sweep_dir: Path) -> tuple[Path, Path]:
    """``summary.md`` (a table people read) and ``summary.json`` (the same rows)."""
    eval_names = sorted({name for row in rows for name in row["eval_psnr"]})
    vit = any(row["task"] == "vit" for row in rows)
    head = ["job", "task", "device", "budget (ms)", "strategy", "trials done", "failed", "best trial",
            "blocks", "C", "latency (ms)", "proxy val PSNR (dB)"] + [f"{n} PSNR (dB)" for n in eval_names] \
        + (["keep rates", "test top-1 (%)"] if vit else [])
    lines = ["# Sweep summary", "",
             f"{len(rows)} jobs in `{sweep_dir}`; each job's own `report.md` and `result.json` are in "
             "its directory. Latency is the budgeted model's (see each job's report).", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [f"`{r['job']}`", r["task"], r["device"], _fmt(r["budget_ms"], 1), r["strategy"],
                 r["n_complete"], r["n_failed"], r["best_trial"], r["blocks"], r["channels"],
                 _fmt(r["latency_ms"]), _fmt(r["val_psnr_proxy"])]
        cells += [_fmt(r["eval_psnr"].get(n)) for n in eval_names]
        if vit:
            rates = r.get("keep_rates")
            cells += [", ".join(f"{k:.2f}" for k in rates) if rates else None, _fmt(r.get("test_top1"))]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    md, js = sweep_dir / "summary.md", sweep_dir / "summary.json"
    write_text_atomic(md, "\n".join(lines) + "\n")
    write_text_atomic(js, json.dumps({"sweep_dir": str(sweep_dir), "jobs": rows}, indent=2) + "\n")
    return md, js
