"""Entry point: ``python -m latency_models ...`` (see :mod:`latency_models.cli`)."""

import sys

from latency_models.cli import main

sys.exit(main())
