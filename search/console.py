"""What a run tells its user: on the console and, under Hydra, in the job's log file too.

``python -m search`` configures the ``hwnas`` logger through Hydra (``conf/hydra/job_logging/
hwnas.yaml``: bare lines on stdout, time-stamped ones in ``<run dir>/<job name>.log``). Called
outside Hydra (a test, a notebook) with no handler set up, lines are printed as they are.
"""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("hwnas")


def say(message: str) -> None:
    """One line (or a few) of progress or outcome."""
    if LOGGER.handlers:
        LOGGER.info(message)
        for handler in LOGGER.handlers:
            handler.flush()  # progress lines are read while the run goes on
    else:
        print(message, flush=True)
