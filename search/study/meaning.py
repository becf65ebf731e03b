"""What a study's trials mean: a study holds trials of one setup only (shared storages)."""

from __future__ import annotations

import json
from typing import Any

import optuna

from search.errors import UserError

MEANING_ATTR = "trial_meaning"


def check_meaning(study: optuna.Study, meaning: dict[str, Any]) -> None:
    """Record what a trial's numbers mean (search space, data, proxy recipe, latency model) on a
    new study; refuse to join one recorded with other values, naming the keys that differ."""
    mine = json.loads(json.dumps(meaning, sort_keys=True, default=str))
    theirs = study.user_attrs.get(MEANING_ATTR)
    if theirs is None:
        study.set_user_attr(MEANING_ATTR, mine)
        return
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if differ:
        raise UserError(f"study {study.study_name!r} holds trials of another setup ({', '.join(differ)} differ: "
                        f"{', '.join(f'{k}={theirs.get(k)!r}' for k in differ)}); its trials mean something else "
                        "here. Use another search.study_name, or the same settings as the study")
