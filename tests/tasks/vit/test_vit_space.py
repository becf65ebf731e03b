"""The token-pruning architecture description and its space (pure Python, no torch)."""

from __future__ import annotations

import pytest

from spaces import ArchError, TokenPruneArch, TokenPruneSpace, arch_from_dict, load_arch, save_arch
from spaces.sampling import RandomSuggester


def test_arch_round_trips_through_dict_and_file(tmp_path):
    arch = TokenPruneSpace.for_model("deit_small_patch16_224").arch((0.7, 0.49, 0.343))
    assert arch.stages == (3, 6, 9) and arch.selector_dim == 96
    assert arch.kept_per_stage() == (137, 96, 67)
    assert arch_from_dict(arch.to_dict()) == arch
    assert load_arch(save_arch(arch, tmp_path / "arch.json")) == arch
    assert arch.key != TokenPruneSpace.for_model("deit_small_patch16_224").unpruned().key


def test_random_samples_are_valid_non_increasing_and_reproducible():
    space = TokenPruneSpace.for_model("demo_vit", stage_choices=((1, 2, 4), (2, 3, 5)), img_size=28, depth=6)
    archs = [space.sample(RandomSuggester(seed)) for seed in range(30)]
    assert archs[3] == space.sample(RandomSuggester(3))
    for arch in archs:
        assert all(b <= a for a, b in zip(arch.keep_rates, arch.keep_rates[1:]))
        assert 0.125 - 1e-9 <= arch.keep_rates[-1] <= 1.0
        assert arch.stages in space.stage_choices and arch.in_chans == 1 and arch.num_classes == 10
    assert len({a.keep_rates for a in archs}) > 20


def test_suggest_float_grid_and_log():
    s = RandomSuggester(0)
    grid = {s.suggest_float("g", 0.5, 1.0, step=0.1) for _ in range(200)}
    assert sorted({round(v, 9) for v in grid}) == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    logs = [s.suggest_float("l", 1e-4, 1e-1, log=True) for _ in range(200)]
    assert min(logs) < 1e-3 and max(logs) > 1e-2 and all(1e-4 <= v <= 1e-1 for v in logs)


def test_pruning_shrinks_the_op_list():
    space = TokenPruneSpace.for_model("deit_tiny_patch16_224")
    full = sum(op.output[1] for op in space.unpruned().ops() if op.kind == "sdpa")
    pruned = sum(op.output[1] for op in space.arch((0.7, 0.49, 0.343)).ops() if op.kind == "sdpa")
    assert full == 12 * 3 and pruned == full  # heads unchanged
    tokens = [op.inputs[0][2] for op in space.arch((0.7, 0.49, 0.343)).ops() if op.kind == "sdpa"]
    assert tokens == [197] * 3 + [139] * 3 + [98] * 3 + [69] * 3
    assert any(op.kind == "topk" for op in space.arch((0.5, 0.5, 0.5)).ops())
    assert not any(op.kind == "topk" for op in space.unpruned().ops())


@pytest.mark.parametrize("kwargs,needle", [
    ({"keep_rates": (0.5, 0.7, 0.3)}, "non-increasing"),
    ({"keep_rates": (0.5, 0.4, 0.0)}, "outside"),
    ({"stages": (3, 6, 12)}, "stage index 12"),
    ({"stages": (3, 6)}, "len"),
])
def test_bad_archs_raise_arch_error(kwargs, needle):
    base = dict(model="deit_tiny_patch16_224", img_size=224, patch_size=16, embed_dim=192, depth=12,
                num_heads=3, keep_rates=(0.7, 0.49, 0.343), stages=(3, 6, 9))
    with pytest.raises(ArchError, match=needle):
        TokenPruneArch(**{**base, **kwargs})
