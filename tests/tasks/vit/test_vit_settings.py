"""ViTSettings read the task section as the app composes it: conf/task/vit.yaml is the one place
for its defaults (the smoke overlay on top for experiment=smoke), and a missing key is named."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from search.config.compose import compose_config
from search.errors import UserError
from search.settings import task_section
from search.vit.task import ViTSettings

SMOKE = Path(__file__).parents[3] / "conf" / "overlay" / "task" / "smoke_vit.yaml"


def test_settings_carry_the_yaml_values():
    task = task_section(compose_config(["task=vit"]))
    got = ViTSettings.from_task(task, 7)
    assert (got.img_size, got.batch, got.keep_ratio, got.confirm_margin, got.min_keep) == (
        task["model"]["img_size"], task["batch"], tuple(task["keep_ratio"]), task["confirm_margin"], task["min_keep"])
    assert (got.val_images, got.teacher.epochs, got.proxy.steps, got.final.hard_steps) == (
        task["data"]["val_images"], task["teacher"]["epochs"], task["proxy"]["steps"], task["final"]["hard_steps"])
    assert (got.teacher.seed, got.proxy.seed, got.final.seed) == (7, 8, 9)


def test_smoke_overlay_reaches_the_settings():
    smoke = OmegaConf.to_container(OmegaConf.load(SMOKE))
    got = ViTSettings.from_task(task_section(compose_config(["task=vit", "experiment=smoke"])), 0)
    assert got.budget_fraction == smoke["budget_fraction"] and got.teacher.epochs == smoke["teacher"]["epochs"]
    assert got.final.steps == smoke["final"]["steps"] and got.val_images == smoke["data"]["val_images"]


@pytest.mark.parametrize("path", [("batch",), ("model", "img_size"), ("data", "val_images")])
def test_a_missing_setting_is_named_not_defaulted(path):
    task = task_section(compose_config(["task=vit"]))
    section = task
    for key in path[:-1]:
        section = section[key]
    del section[path[-1]]
    with pytest.raises(UserError, match=f"lacks the setting '{path[-1]}'"):
        ViTSettings.from_task(task, 0)
