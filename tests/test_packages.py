"""Our top-level packages are the ones imported, not PyPI's unrelated `spaces` / `tasks`."""

from pathlib import Path

import latency_models
import search
import spaces
import tasks
import tasks.sr
import tasks.vit

ROOT = Path(__file__).resolve().parents[1]


def test_packages_come_from_this_project():
    for module in (spaces, tasks, tasks.sr, tasks.vit, search, latency_models):
        path = Path(module.__file__).resolve()
        assert ROOT in path.parents, f"{module.__name__} imported from {path}, not {ROOT}"


def test_spaces_is_ours():
    assert hasattr(spaces, "SRSpace") and hasattr(spaces, "WDSRBArch")
