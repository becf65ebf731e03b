"""Search strategies at the same wall-clock budget: TPE, NSGA-II, random search and dnas.

For each latency budget (Galaxy S21, published block model) and strategy this runs the real CLI,
``python -m search task=sr device=s21 strategy=S budget_ms=B``, with ``search.timeout_s`` as the
common wall-clock cap on the search phase (Optuna: no new trial after it; dnas: the supernet
phases shrink to fit it), the same final training for the winner (``task.final``), no baselines,
then prints one table: predicted latency, PSNR-Y on the held-out validation images and on Set5
and Set14 after the final training, and wall times. The last lines check, per budget, that the
better of TPE and dnas beats random search on Set5.

dnas's final training fine-tunes the supernet's weights (``strategy.final_init=supernet``, the
paper's last phase): its search time also trains the weights it hands on. For comparison, the
table's notes give the same derived net trained from scratch with the common recipe.

One final training is a noisy score of an architecture: at these budgets the strategies' winners
often differ by less than the final training's seed-to-seed spread. ``--final-seeds K`` trains
each winner K-1 more times (same recipe, other seeds; identical winners share their trainings) and
the check compares the mean Set5 PSNR-Y over the K trainings.

    python benchmarks/strategies.py                       # 3 budgets x 4 strategies, ~1 h on 2 cores
    python benchmarks/strategies.py --search-s 90 --final-steps 400 --budgets 33.3
    python benchmarks/strategies.py --search-s 150 --final-steps 800 --final-seeds 3

Timings on a shared machine are noisy; the search phase is capped by wall clock, so a loaded
machine gives every strategy fewer steps or trials. Results go to ``--out`` (one run dir each;
rerunning resumes/reuses finished runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

STRATEGIES = ("tpe", "nsga2", "random", "dnas")
ROOT = Path(__file__).resolve().parents[1]


def task_config() -> dict:
    """conf/task/sr.yaml as a plain dict (what the CLI's task=sr starts from)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "task" / "sr.yaml"))


def cpu_training():
    """Where the benchmark's own re-trainings run: this CPU, 2 threads, float32."""
    from search.train_settings import TrainSettings
    from tasks.placement import CPU

    return TrainSettings(CPU, threads=2, requested="cpu", worker=0)


def run_dir_of(out: str, strategy: str, budget_ms: float) -> Path:
    return Path(out) / f"{strategy}-{budget_ms:g}ms"


def inherited_weights(run_dir: Path, result: dict) -> dict | None:
    """The supernet weights a dnas run's final training started from (``final_init=supernet``),
    sliced again from the run's supernet checkpoint; None for every other run."""
    sup = result.get("supernet") or {}
    if sup.get("final_init") != "supernet":
        return None
    import torch

    from search.sr.task import SRSettings
    from spaces import arch_from_dict
    from tasks.sr.supernet import SRSupernet

    space = SRSettings.from_task(task_config(), 0, cpu_training()).space
    arch = arch_from_dict(result["best"]["arch"])
    net = SRSupernet(space, search_channels=bool(sup.get("search_channels", True)))
    doc = torch.load(run_dir / "supernet_checkpoint.pt", weights_only=True, map_location="cpu")
    net.load_state_dict(doc["net"])
    return net.subnet_state_dict(arch, sup["kept_blocks"])


def retrain_set5(arch: dict, seed: int, final_steps: int, cache: Path, init: dict | None = None,
                 init_key: str = "scratch") -> float:
    """Set5 PSNR-Y of ``arch`` after the task's final training with ``seed``, from ``init`` (a
    state dict, named ``init_key`` in the cache) or from scratch (cached by arch, seed, init)."""
    key = json.dumps({"arch": arch, "seed": seed, "steps": final_steps}
                     | ({"init": init_key} if init is not None else {}), sort_keys=True)
    done = json.loads(cache.read_text()) if cache.exists() else {}
    if key in done:
        return done[key]
    from search.sr.task import SRSettings, load_data, train_and_evaluate
    from spaces import arch_from_dict

    task = task_config()
    task["final"]["steps"] = final_steps
    settings = SRSettings.from_task(task, seed, cpu_training())
    data = load_data(settings, seed)
    patches, evals = data.final_patches, data.evals
    _, scores = train_and_evaluate(arch_from_dict(arch), settings.final, patches, {"set5": evals["set5"]},
                                   f"seed {seed}", init_state=init)
    done[key] = scores["eval"]["set5"]["psnr"]
    cache.write_text(json.dumps(done, indent=0))
    return done[key]


def run_one(strategy: str, budget_ms: float, args: argparse.Namespace) -> dict:
    run_dir = run_dir_of(args.out, strategy, budget_ms)
    result_path = run_dir / "result.json"
    if result_path.exists() and not args.rerun:
        return json.loads(result_path.read_text())
    cmd = [sys.executable, "-m", "search", "task=sr", "device=s21", f"strategy={strategy}", f"budget_ms={budget_ms:g}",
           f"search.timeout_s={args.search_s:g}", "search.n_trials=100000", f"task.final.steps={args.final_steps}",
           "task.baselines=[]", f"seed={args.seed}", f"hydra.run.dir={run_dir}"]
    started = time.monotonic()
    with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}; see {run_dir.parent / (run_dir.name + '.log')}",
                "wall_s": time.monotonic() - started}
    return json.loads(result_path.read_text())


def row(strategy: str, budget_ms: float, result: dict) -> dict:
    if "error" in result:
        return {"budget_ms": budget_ms, "strategy": strategy, "error": result["error"]}
    best = result["best"]
    final_s = best.get("train_s", 0.0)
    searched = (result["supernet"]["steps"], "supernet steps") if "supernet" in result else (
        result["trials"]["n_trained"], "trials trained")
    return {
        "budget_ms": budget_ms, "strategy": strategy, "latency_ms": best["latency_ms"],
        "val_psnr": best.get("val_psnr"), "set5": best["eval"]["set5"]["psnr"], "set14": best["eval"]["set14"]["psnr"],
        "depth": len(best["arch"]["blocks"]), "channels": best["arch"]["channels"],
        "search_s": result["wall_s"] - final_s, "final_s": final_s, "searched": f"{searched[0]} {searched[1]}",
    }


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", type=float, nargs="+", default=[16.0, 33.3, 66.0])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--search-s", type=float, default=240.0, help="wall-clock cap on each search phase (s)")
    ap.add_argument("--final-steps", type=int, default=1000, help="task.final.steps for every winner")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--final-seeds", type=int, default=1, help="final trainings per winner (mean Set5 compared)")
    ap.add_argument("--out", default="runs/bench-strategies")
    ap.add_argument("--rerun", action="store_true", help="run again even where a result.json exists")
    return ap.parse_args()


def with_retrainings(r: dict, strategy: str, budget: float, result: dict, args: argparse.Namespace) -> None:
    """The winner's further final trainings (``--final-seeds``), and for dnas the same net from scratch."""
    run_dir, cache = run_dir_of(args.out, strategy, budget), Path(args.out) / "retrain.json"
    init = inherited_weights(run_dir, result)
    runs = [r["set5"]] + [
        retrain_set5(result["best"]["arch"], args.seed + 1000 * k, args.final_steps, cache, init,
                     f"supernet:{run_dir.resolve()}") for k in range(1, args.final_seeds)]
    r["set5_runs"] = runs
    r["set5_mean"] = statistics.mean(runs)
    if init is not None:  # the same net without the supernet's weights, for comparison
        r["set5_scratch"] = statistics.mean(
            retrain_set5(result["best"]["arch"], args.seed + 1000 * k, args.final_steps, cache)
            for k in range(args.final_seeds))


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\nsearch cap {args.search_s:g} s per run, final training {args.final_steps} steps, seed {args.seed}, "
          f"{args.final_seeds} final training(s) per winner\n")
    print("| budget ms | strategy | latency ms | val PSNR-Y | Set5 PSNR-Y | Set5 mean (runs) | Set14 PSNR-Y | blocks "
          "| C | searched | search s | final s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "error" in r:
            print(f"| {r['budget_ms']:g} | {r['strategy']} | error: {r['error']} |")
            continue
        runs = ", ".join(f"{v:.2f}" for v in r["set5_runs"])
        print(f"| {r['budget_ms']:g} | {r['strategy']} | {r['latency_ms']:.2f} | {r['val_psnr'] or float('nan'):.2f} | "
              f"{r['set5']:.2f} | {r['set5_mean']:.3f} ({runs}) | {r['set14']:.2f} | {r['depth']} | {r['channels']} | "
              f"{r['searched']} | "
              f"{r['search_s']:.0f} | {r['final_s']:.0f} |")
    print()
    for r in rows:
        if "set5_scratch" in r:
            print(f"{r['budget_ms']:g} ms dnas: its derived net trained from scratch instead of from the supernet's "
                  f"weights: Set5 mean {r['set5_scratch']:.3f} (vs {r['set5_mean']:.3f} fine-tuned)")
    print()


def beats_random(rows: list[dict], args: argparse.Namespace) -> bool:
    """Per budget: does the better of TPE and dnas beat random search on mean Set5 PSNR-Y?"""
    ok = True
    for budget in args.budgets:
        got = {r["strategy"]: r for r in rows if r["budget_ms"] == budget and "error" not in r}
        if "random" not in got or not ({"tpe", "dnas"} & set(got)):
            continue
        best = max((got[s] for s in ("tpe", "dnas") if s in got), key=lambda r: r["set5_mean"])
        beats = best["set5_mean"] > got["random"]["set5_mean"]
        ok &= beats
        print(f"{budget:g} ms: best of TPE/dnas = {best['strategy']} {best['set5_mean']:.3f} dB vs random "
              f"{got['random']['set5_mean']:.3f} dB on Set5 (mean of {args.final_seeds}) -> "
              f"{'beats' if beats else 'does NOT beat'} random")
    return ok


def main() -> int:
    args = parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    rows = []
    for budget in args.budgets:
        for strategy in args.strategies:
            print(f"running {strategy} at {budget:g} ms ...", flush=True)
            result = run_one(strategy, budget, args)
            rows.append(row(strategy, budget, result))
            if "error" not in rows[-1]:
                with_retrainings(rows[-1], strategy, budget, result, args)
            print(f"  {rows[-1]}", flush=True)
    print_table(rows, args)
    return 0 if beats_random(rows, args) else 1


if __name__ == "__main__":
    sys.exit(main())
