"""``python -m search task=sr device=s21``: the Hydra entry point (see conf/)."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from search.config import register
from search.config.compose import CONF_DIR, check_overrides
from search.errors import UserError

register()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    from search.app import run

    try:
        run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: the study is saved; run the same command again to resume", file=sys.stderr)
        sys.exit(130)


def cli() -> None:
    """``python -m search`` and the ``hwnas-search`` script: overrides checked before Hydra starts."""
    try:
        check_overrides(sys.argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    main()


if __name__ == "__main__":
    cli()
