"""The demo teacher shipped in tasks/vit/assets: the default task settings load it (a default
`task=vit` run must not spend 20+ minutes training one), it scores what its manifest says, and a
damaged file is refused with a clear message."""

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from search.config.compose import compose_config
from search.settings import task_section
from search.vit.task import ViTSettings, load_vit_data, teacher_key
from tasks.vit.demo import build_demo_teacher, load_shipped_teacher
from tasks.vit.errors import TokenPruneError
from tasks.vit.evaluate import evaluate_top1

ASSETS = Path(str(resources.files("tasks.vit") / "assets"))


def default_task() -> dict:
    """The task section a default ``task=vit`` run gets (conf/task/vit.yaml, no overlay)."""
    return task_section(compose_config(["task=vit"]))


def default_settings() -> ViTSettings:
    return ViTSettings.from_task(default_task(), 0)


def test_default_settings_load_the_shipped_teacher_and_it_scores_as_stated():
    settings = default_settings()
    shipped = load_shipped_teacher(teacher_key(settings, 0))
    assert shipped is not None, "conf/task/vit.yaml's teacher recipe changed: re-run python -m search.vit.ship_teacher"
    state, manifest = shipped
    model = build_demo_teacher(img_size=settings.img_size)
    model.load_state_dict(state)
    top1 = evaluate_top1(model.eval(), load_vit_data(settings, 0).test)
    assert top1 == pytest.approx(manifest["test_top1"], abs=1e-9)
    assert top1 >= 0.95
    other = default_task()
    other["teacher"]["epochs"] = 1  # only the recipe differs: another teacher
    assert load_shipped_teacher(teacher_key(ViTSettings.from_task(other, 0), 0)) is None


def test_a_damaged_shipped_teacher_is_refused(tmp_path):
    for name in ("demo_teacher.pt", "demo_teacher.json"):
        shutil.copy(ASSETS / name, tmp_path / name)
    key = json.loads((tmp_path / "demo_teacher.json").read_text())["key"]
    assert load_shipped_teacher(key, tmp_path) is not None
    with open(tmp_path / "demo_teacher.pt", "r+b") as f:
        f.seek(-10, 2)
        f.write(b"0123456789")
    with pytest.raises(TokenPruneError, match="sha256 .* does not match its manifest"):
        load_shipped_teacher(key, tmp_path)
