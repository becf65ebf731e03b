"""What a run tells its user: on the console and, under Hydra, in the job's log file too.

``python -m search`` configures the ``hwnas`` logger through Hydra (``conf/hydra/job_logging/
hwnas.yaml``: bare lines on stdout, time-stamped ones in ``<run dir>/<job name>.log``). Called
outside Hydra (a test, a notebook) with no handler set up, lines are printed as they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from search.tracking import scalar

LOGGER = logging.getLogger("hwnas")


def say(message: str) -> None:
    """One line (or a few) of progress or outcome."""
    if LOGGER.handlers:
        LOGGER.info(message)
        for handler in LOGGER.handlers:
            handler.flush()  # progress lines are read while the run goes on
    else:
        print(message, flush=True)


def step_progress(label: str, steps: int, every_s: float = 20.0) -> Callable[[int, float], None]:
    """``progress(step, loss)`` for a training loop: a line every ``every_s`` seconds and at the
    end (rate, time left), and every 10th step's loss to the tracker (``train/<label>/l1``)."""
    started = time.monotonic()
    last = [started]

    def progress(step: int, loss: float) -> None:
        if step % 10 == 0 or step == steps:
            scalar(f"train/{label}/l1", loss, step)
        now = time.monotonic()
        if now - last[0] > every_s or step == steps:
            rate = step / max(now - started, 1e-9)
            left = (steps - step) / max(rate, 1e-9)
            say(f"  [{label}] step {step}/{steps} L1 {loss:.4f} | {rate:.1f} steps/s, "
                f"left ~{int(left // 60)}m{int(left % 60):02d}s")
            last[0] = now

    return progress
