"""The WDSR-B space: sampling, the ``params_of`` / ``FixedTrial`` round trip the search enqueues
with, membership checks and the architecture file."""

import json
import math

import optuna
import pytest

from spaces import ArchError, SRSpace, WDSRBArch, WDSRBlock, arch_from_dict, load_arch, save_arch
from spaces.sampling import RandomSuggester

SPACE = SRSpace(scale=2, min_blocks=2, max_blocks=6, channels=(8, 16, 24), m1=(8, 48, 8), m2=(8, 12, 2))


def members(n=200):
    return [SPACE.sample(RandomSuggester(seed)) for seed in range(n)]


def test_params_of_and_fixed_trial_round_trip():
    for arch in members():
        params = SPACE.params_of(arch)
        assert SPACE.sample(optuna.trial.FixedTrial(params)) == arch
        again = arch_from_dict(json.loads(json.dumps(arch.to_dict())))
        assert again == arch and again.key == arch.key


def test_enqueued_params_reach_an_optuna_trial_unchanged():
    study = optuna.create_study()
    wanted = members(5)
    for arch in wanted:
        study.enqueue_trial(SPACE.params_of(arch))
    got = []
    study.optimize(lambda t: got.append(SPACE.sample(t)) or 0.0, n_trials=len(wanted))
    assert got == wanted


def test_samples_cover_the_space_and_stay_inside():
    seen = members(400)
    for arch in seen:
        assert SPACE.validate(arch) is arch
    assert {a.depth for a in seen} == set(range(2, 7))
    assert {a.channels for a in seen} == {8, 16, 24}
    assert {b.m1 for a in seen for b in a.blocks} == {8, 16, 24, 32, 40, 48}
    assert {b.m2 for a in seen for b in a.blocks} == {8, 10, 12}


def test_smallest_and_largest_are_the_extreme_members():
    small, large = SPACE.smallest(), SPACE.largest()
    assert SPACE.validate(small) and SPACE.validate(large)

    def work(arch):  # activation elements over all ops: grows with depth and every width
        return sum(math.prod(op.output) for op in arch.ops((90, 160)))

    seen = [work(a) for a in members(100)]
    assert work(small) <= min(seen) and work(large) >= max(seen)


@pytest.mark.parametrize("arch,says", [
    (WDSRBArch(2, 12, (WDSRBlock(8, 8),) * 2), "channels 12 not in [8, 16, 24]"),
    (WDSRBArch(2, 8, (WDSRBlock(8, 8),)), "depth 1 outside [2, 6]"),
    (WDSRBArch(2, 8, (WDSRBlock(8, 8), WDSRBlock(12, 8))), "block 1 m1=12 not in range(8, 49, 8)"),
    (WDSRBArch(3, 8, (WDSRBlock(8, 8),) * 2), "scale x3 (space is x2)"),
])
def test_outside_the_space_is_named(arch, says):
    with pytest.raises(ArchError, match=says.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        SPACE.params_of(arch)


@pytest.mark.parametrize("kwargs", [{"min_blocks": 3, "max_blocks": 2}, {"m1": (8, 50, 8)}, {"channels": ()}])
def test_malformed_spaces_are_refused(kwargs):
    with pytest.raises(ArchError):
        SRSpace(**kwargs)


def test_arch_file_round_trip_and_foreign_files(tmp_path):
    arch = members(1)[0]
    path = save_arch(arch, tmp_path / "arch.json", latency_ms=12.5)
    assert load_arch(path) == arch
    doc = json.loads(path.read_text())
    assert doc["key"] == arch.key and doc["latency_ms"] == 12.5
    (tmp_path / "foreign.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ArchError):
        load_arch(tmp_path / "foreign.json")
