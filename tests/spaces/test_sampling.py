"""The search-free sampler: seeded, on the grid, and the same call shapes as an Optuna trial."""

import pytest

from spaces.sampling import RandomSuggester


def test_same_seed_same_draws_and_params_recorded():
    a, b = RandomSuggester(3), RandomSuggester(3)
    draws = [(a.suggest_int("i", 0, 10, step=2), a.suggest_float("f", 0.3, 1.0, step=0.05),
              a.suggest_categorical("c", ["x", "y"])) for _ in range(20)]
    assert draws == [(b.suggest_int("i", 0, 10, step=2), b.suggest_float("f", 0.3, 1.0, step=0.05),
                      b.suggest_categorical("c", ["x", "y"])) for _ in range(20)]
    assert set(a.params) == {"i", "f", "c"}


def test_grid_and_bounds():
    s = RandomSuggester(0)
    ints = {s.suggest_int("i", 8, 48, step=8) for _ in range(300)}
    assert ints == {8, 16, 24, 32, 40, 48}
    floats = [s.suggest_float("f", 0.3, 1.0, step=0.05) for _ in range(300)]
    assert all(0.3 <= f <= 1.0 and abs((f - 0.3) / 0.05 - round((f - 0.3) / 0.05)) < 1e-6 for f in floats)
    logs = [s.suggest_float("g", 1e-4, 1e-1, log=True) for _ in range(300)]
    assert all(1e-4 <= g <= 1e-1 for g in logs)


def test_step_and_log_together_are_refused():
    with pytest.raises(ValueError, match="step and log"):
        RandomSuggester(0).suggest_float("f", 0.1, 1.0, step=0.1, log=True)
