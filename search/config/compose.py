"""Composing conf/ outside Hydra's entry point: the early one-line check of a command's
overrides, and the compose that tests and tools use."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from search.config.schema import register
from search.errors import UserError


def _conf_dir() -> Path:
    """``search/conf`` in an installed wheel (setup.py maps the checkout's ``conf/`` there), else
    the checkout's top-level ``conf/`` (an editable install or a plain checkout)."""
    here = Path(__file__).resolve()
    installed = here.parents[1] / "conf"
    return installed if (installed / "config.yaml").is_file() else here.parents[2] / "conf"


CONF_DIR = _conf_dir()


def compose_config(overrides: list[str]) -> DictConfig:
    """The job config ``python -m search OVERRIDES`` runs with (Hydra's own keys left out)."""
    register()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(_one_line(err)) from None
    check_declared(cfg)
    return cfg


def check_declared(cfg: DictConfig, where: str = "") -> None:
    """Refuse keys that no schema declares (``+task.foo=1`` adds one past the schema's guard):
    a setting no code reads is a typo that would silently do nothing."""
    kind = OmegaConf.get_type(cfg)
    declared = {f.name for f in dataclasses.fields(kind)} if dataclasses.is_dataclass(kind) else None
    for key in cfg.keys():
        name = f"{where}{key}"
        if declared is not None and key not in declared:
            raise UserError(f"unknown key {name}: it is not a setting (python -m search --cfg job lists them all)")
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing():
            check_declared(node, f"{name}.")


def check_overrides(argv: list[str]) -> None:
    """Compose the config of a single run before Hydra does, so that an unknown key, a wrong type
    or an unknown option is one ``error:`` line (exit 2) before any work. Sweeps (``-m``) and
    Hydra's own flags are left to Hydra."""
    if any(a.startswith("-") for a in argv):  # -m, --help, --cfg, --info ...
        return
    try:
        parsed = OverridesParser.create().parse_overrides(argv)
    except HydraException as err:
        raise UserError(_one_line(err)) from None
    if any(o.is_sweep_override() for o in parsed):
        return
    compose_config([a for a in argv if not a.startswith(("hydra.", "hydra/", "+hydra", "~hydra"))])


def _one_line(err: Exception) -> str:
    """Hydra's and OmegaConf's multi-line messages as one line that names the key and the fix."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    cause = err.__cause__
    first = lines[0] if lines else type(err).__name__
    unknown = re.search(r"Could not override '([^']+)'", first) or re.search(r"Key '([^']+)' not in", first)
    if unknown:
        return f"unknown key {unknown.group(1)}: it is not a setting (python -m search --cfg job lists them all)"
    missing = re.search(r"Could not find '([^'/]+)/([^']+)'", first)
    if missing:
        group, option = missing.groups()
        options = [line for line in lines[2:] if "=" not in line and ":" not in line and not line.startswith("schema")]
        return f"unknown option {group}={option}; choose {group}=" + "|".join(options)
    if first.startswith("Error merging override") and cause is not None:
        reason = str(cause).splitlines()[0]
        return f"{first.removeprefix('Error merging override').strip()}: {reason}"
    return first
