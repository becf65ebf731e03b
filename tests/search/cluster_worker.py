"""A test-only study worker: the very ``open_study`` / ``run_study`` path of ``python -m search``
with a cheap real objective instead of SR training (it sleeps ``--trial-s`` seconds and scores the
sampled point), so several of them can share one study in a few seconds.

    python tests/search/cluster_worker.py STORAGE_URL STUDY_NAME N_TRIALS [--trial-s 0.5] ...
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from search.errors import UserError
from search.settings import SearchSettings
from search.study.engine import open_study, run_study


def objective(trial, trial_s: float, nan_at: int | None) -> float:
    x = trial.suggest_float("x", -3.0, 3.0)
    width = trial.suggest_categorical("width", [8, 12, 16, 20, 24])
    time.sleep(trial_s)
    if nan_at is not None and trial.number == nan_at:
        raise FloatingPointError("loss is NaN")
    return -((x - 1.0) ** 2) + math.log(width)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("storage")
    parser.add_argument("study_name")
    parser.add_argument("n_trials", type=int)
    parser.add_argument("--trial-s", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategy", default="tpe")
    parser.add_argument("--heartbeat-s", type=int, default=1)
    parser.add_argument("--grace-s", type=int, default=3)
    parser.add_argument("--nan-at", type=int, default=None, help="this trial number raises (NaN loss)")
    parser.add_argument("--go", type=Path, default=None,
                        help="touch GO.ready once the study is open, then wait for GO to exist")
    args = parser.parse_args(argv)
    settings = SearchSettings(
        strategy=args.strategy, strategy_options={"n_startup_trials": 4, "multivariate": True}, n_trials=args.n_trials,
        timeout_s=120.0, storage=args.storage, study_name=args.study_name, near_budget=1.1,
        budget_ms=33.3, seed=args.seed, run_dir=Path("."), heartbeat_s=args.heartbeat_s,
        grace_s=args.grace_s, max_retry=2, run_final=False, budget_given=True,
    )
    study = open_study(settings)
    if args.go is not None:  # line workers up so that they really run concurrently
        Path(f"{args.go}.{os.getpid()}.ready").touch()
        while not args.go.exists():
            time.sleep(0.05)
    try:
        run_study(study, lambda t: objective(t, args.trial_s, args.nan_at), settings,
                  describe=lambda t: f"#{t.number}", catch=(FloatingPointError,))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
