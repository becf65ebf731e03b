"""Every option of every config group composes and yields valid typed settings."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from search.errors import UserError
from search.settings import DeviceProfile, SearchSettings, task_section

CONF = Path(__file__).resolve().parents[2] / "conf"
GROUPS = {g.name: sorted(p.stem for p in g.glob("*.yaml")) for g in CONF.iterdir() if g.is_dir()}


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_required_groups_exist():
    for group, options in {"task": ["sr", "vit"], "device": ["cpu", "s21"],
                           "strategy": ["nsga2", "random", "tpe"], "experiment": ["smoke"]}.items():
        assert set(options) <= set(GROUPS[group]), group
    assert GROUPS["latency"]


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_option_composes(group, option, tmp_path):
    cfg = compose_cfg(f"{group}={option}")
    device = DeviceProfile.from_cfg(cfg)
    settings = SearchSettings.from_cfg(cfg, device, tmp_path)
    task = task_section(cfg)
    assert task["name"] in {"sr", "vit"}
    assert settings.budget_ms == device.budget_ms
    assert settings.storage.startswith("sqlite:///") and str(tmp_path) in settings.storage


def test_s21_defaults():
    cfg = compose_cfg()
    device = DeviceProfile.from_cfg(cfg)
    assert (device.name, device.budget_ms, device.lr_hw) == ("s21", 33.3, (360, 640))


def test_smoke_profile_shrinks_sr_training():
    full = task_section(compose_cfg())
    smoke = task_section(compose_cfg("experiment=smoke"))
    assert smoke["final"]["steps"] < full["final"]["steps"]
    assert smoke["proxy"]["steps"] < full["proxy"]["steps"]
    assert "smoke" not in smoke


def test_budget_override_and_bad_budget(tmp_path):
    cfg = compose_cfg("budget_ms=16")
    assert SearchSettings.from_cfg(cfg, DeviceProfile.from_cfg(cfg), tmp_path).budget_ms == 16
    cfg = compose_cfg("budget_ms=fast")
    with pytest.raises(UserError, match="budget_ms"):
        SearchSettings.from_cfg(cfg, DeviceProfile.from_cfg(cfg), tmp_path)
    cfg = compose_cfg("budget_ms=-3")
    with pytest.raises(UserError, match="positive"):
        SearchSettings.from_cfg(cfg, DeviceProfile.from_cfg(cfg), tmp_path)


def test_short_forms_reach_the_task():
    task = task_section(compose_cfg("data.train_root=/x/train", "data.eval_roots={set14: /x/Set14}"))
    assert task["data"]["train_root"] == "/x/train" and task["data"]["eval_roots"] == {"set14": "/x/Set14"}
    assert task["data"]["val_images"] == 8  # the rest of task.data stays
    vit = task_section(compose_cfg("task=vit", "model.name=deit_small_patch16_224", "data.root=/imgs"))
    assert vit["model"]["name"] == "deit_small_patch16_224" and vit["model"]["img_size"] == 28
    assert vit["data"]["root"] == "/imgs"
