"""The typed config boundary: every (task, strategy) pair composes with every device and profile
and goes through the real parsers; wrong keys and types fail at compose time in one line; each
default lives in one place."""

import ast
import dataclasses
import os
from pathlib import Path

import pytest
from omegaconf import MISSING, OmegaConf

from search.app import context
from search.config.compose import CONF_DIR, check_overrides, compose_config
from search.config.schema import SCHEMAS
from search.errors import UserError
from search.runners import RUNNERS, runner_for
from search.settings import DeviceProfile, SearchSettings, task_section
from search.train_settings import TrainSettings
from tasks.sr import data as sr_data

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {g.name: sorted(p.stem for p in g.glob("*.yaml")) for g in CONF_DIR.iterdir() if g.is_dir()}
PAIRS = sorted(RUNNERS)


def test_required_groups_exist():
    for group, options in {"task": ["sr", "vit"], "device": ["cpu", "s21"], "experiment": ["smoke"],
                           "strategy": ["allinone", "dnas", "nsga2", "random", "tpe"]}.items():
        assert set(options) <= set(GROUPS[group]), group
    assert {"auto", "measured", "predictor", "published"} <= set(GROUPS["latency"])


@pytest.mark.parametrize("task,strategy", PAIRS)
@pytest.mark.parametrize("device", ["cpu", "s21"])
@pytest.mark.parametrize("experiment", [None, "smoke"])
def test_every_pair_composes_and_parses(task, strategy, device, experiment, tmp_path):
    overrides = [f"task={task}", f"strategy={strategy}", f"device={device}"]
    overrides += [f"experiment={experiment}"] if experiment else []
    cfg = compose_config(overrides)  # no key left unset (throw_on_missing), none undeclared
    ctx = context(cfg, tmp_path)
    assert (ctx.task["name"], ctx.settings.strategy, ctx.device.name) == (task, strategy, device)
    assert ctx.smoke == (experiment == "smoke")
    assert "smoke" not in ctx.task and "smoke" not in ctx.settings.strategy_options
    assert callable(runner_for(task, strategy))


@pytest.mark.parametrize("latency", GROUPS["latency"])
def test_every_latency_option_composes(latency, tmp_path):
    ctx = context(compose_config([f"latency={latency}"]), tmp_path)
    assert ctx.latency["kind"] == latency and ctx.latency["allow_extrapolation"] is False


def test_smoke_overlays_shrink_the_work():
    full, smoke = compose_config([]), compose_config(["experiment=smoke"])
    assert smoke.task.final.steps < full.task.final.steps and smoke.task.proxy.steps < full.task.proxy.steps
    assert smoke.task.space.max_blocks < full.task.space.max_blocks
    dnas = compose_config(["experiment=smoke", "strategy=dnas"]).strategy
    assert dnas.joint_steps < compose_config(["strategy=dnas"]).strategy.joint_steps
    vit = compose_config(["experiment=smoke", "task=vit"]).task
    assert vit.teacher.epochs < compose_config(["task=vit"]).task.teacher.epochs


@pytest.mark.parametrize("override,says", [
    ("search.n_trials=nan", "search.n_trials=nan: Value 'nan'"),
    ("seed=x", "seed=x: Value 'x'"),
    ("task.proxy.steps=1.5", "task.proxy.steps=1.5"),
    ("task.proxy.stepz=3", "unknown key task.proxy.stepz"),
    ("+strategy.n_startup=3", "unknown key strategy.n_startup"),
    ("task=sr3", "unknown option task=sr3; choose task=sr|vit"),
    ("latency=fast", "unknown option latency=fast; choose latency=auto|measured|predictor|published"),
])
def test_bad_overrides_are_one_line(override, says):
    with pytest.raises(UserError) as err:
        check_overrides([override])
    assert says in str(err.value) and "\n" not in str(err.value)


def test_unknown_pair_names_the_pairs_that_exist():
    with pytest.raises(UserError, match="strategy=allinone is built for task=sr only, not task=vit"):
        runner_for("vit", "allinone")


def test_s21_defaults_and_budget_override(tmp_path):
    cfg = compose_config([])
    device = DeviceProfile.from_cfg(cfg)
    assert (device.name, device.budget_ms, device.lr_hw) == ("s21", 33.3, (360, 640))
    cfg = compose_config(["budget_ms=16"])
    assert SearchSettings.from_cfg(cfg, DeviceProfile.from_cfg(cfg), tmp_path).budget_ms == 16
    cfg = compose_config(["budget_ms=-3"])
    with pytest.raises(UserError, match="positive"):
        SearchSettings.from_cfg(cfg, DeviceProfile.from_cfg(cfg), tmp_path)


def test_thread_policy_is_named_once():
    s21, cpu = (DeviceProfile.from_cfg(compose_config([f"device={d}"])) for d in ("s21", "cpu"))
    assert s21.measure_threads == 1  # modelled device: a host check times at one thread
    assert cpu.measure_threads == 2  # conf/device/cpu.yaml: threads 2
    for device in ("s21", "cpu"):  # training takes this machine's cores, whatever the target times with
        train = TrainSettings.from_cfg(compose_config([f"device={device}"]), cuda_count=0)
        assert train.threads == len(os.sched_getaffinity(0))


def test_short_forms_reach_the_task():
    task = task_section(compose_config(["data.train_root=/x/train", "data.eval_roots={set14: /x/Set14}"]))
    assert task["data"]["train_root"] == "/x/train" and task["data"]["eval_roots"] == {"set14": "/x/Set14"}
    assert task["data"]["val_images"] == 8  # the rest of task.data stays
    vit = task_section(compose_config(["task=vit", "model.name=deit_small_patch16_224", "data.root=/imgs"]))
    assert vit["model"]["name"] == "deit_small_patch16_224" and vit["model"]["img_size"] == 28
    assert vit["data"]["root"] == "/imgs"


def _yaml_keys(group: str) -> set[str]:
    keys: set[str] = set()
    for path in (CONF_DIR / group).glob("*.yaml"):
        keys |= set(OmegaConf.load(path).keys())
    return keys


def test_a_default_lives_in_one_place():
    """A schema field either has its value in the schema (no YAML of its group sets it) or is
    MISSING there and set by the YAML; never both."""
    both = []
    for (group, _), node in SCHEMAS.items():
        if group is None:
            continue
        for f in dataclasses.fields(node):
            has_default = f.default is not MISSING and f.default is not dataclasses.MISSING
            if has_default and f.name in _yaml_keys(group.removeprefix("schema/")):
                both.append(f"{group}.{f.name}")
    assert not both


def _schema_keys() -> set[str]:
    keys = set()
    for node in SCHEMAS.values():
        keys |= {f.name for f in dataclasses.fields(node)}
    return keys


def test_no_config_default_written_again_in_code():
    """``opts.get("key", literal)`` on a configured key would be a second default that can drift
    from the YAML (five did: dnas ``select``, ViT ``img_size``, ...)."""
    keys, found = _schema_keys(), []
    for path in sorted((ROOT / "search").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and "manifest" not in ast.unparse(node.func.value)  # a predictor file's keys, not config
                    and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value in keys and not (isinstance(node.args[1], ast.Constant)
                                                            and node.args[1].value is None)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .get({node.args[0].value!r}, ...)")
    assert not found


def test_train_root_names_the_shipped_sets_or_folders():
    from search.sr.task import train_roots

    assert train_roots(None) == (sr_data.DEFAULT_TRAIN_ROOT,)
    assert train_roots(["T91", "BSDS200"]) == tuple(sr_data.SHIPPED_TRAIN_SETS.values())
    assert train_roots("/data/div2k") == (Path("/data/div2k"),)
    with pytest.raises(UserError, match="task.data.train_root"):
        train_roots([])
    assert len(list((sr_data.ASSETS / "BSDS200").glob("*.png"))) == 200
