"""measure() on this machine's CPU: real timings of tiny conv nets."""

import json

import pytest
import torch
from torch import nn

from latency_models.measure import Measurement, measure
from latency_models.protocol import Protocol

SHAPE = (1, 3, 32, 32)
FAST = {"warmup": 2, "min_repeats": 8, "max_repeats": 40, "window": 4, "max_seconds": 5.0}


def conv_stack(channels: int, layers: int) -> nn.Module:
    torch.manual_seed(0)
    mods: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
    for _ in range(layers - 1):
        mods += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    mods.append(nn.Conv2d(channels, 3, 3, padding=1))
    return nn.Sequential(*mods)


@pytest.mark.parametrize("threads", [1, 2])
def test_torch_cpu_measures_and_restores_threads(threads):
    before = torch.get_num_threads()
    net = conv_stack(8, 2).train()
    m = measure(net, SHAPE, backend="torch-cpu", threads=threads, **FAST)
    assert torch.get_num_threads() == before
    assert net.training, "the module's training flag is restored"
    assert m.backend == "torch-cpu" and m.threads == threads
    assert m.median_ms > 0 and m.p10_ms <= m.median_ms <= m.p90_ms
    assert m.iqr_ms >= 0
    assert FAST["min_repeats"] <= m.n_repeats == len(m.times_ms) <= FAST["max_repeats"]
    assert m.host["cores_usable"] >= 1 and len(m.host["fingerprint"]) == 16
    assert m.host["torch"] == torch.__version__.split("+")[0]


def test_threads_are_used_during_the_measurement():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(torch.get_num_threads())
            return x * 2

    measure(Probe(), (1, 4), threads=2, **FAST)
    assert set(seen) == {2}


def test_larger_model_is_measurably_slower():
    small_net, large_net = conv_stack(4, 1), conv_stack(48, 4)
    # Interleaved, best of three: other processes on a shared machine only ever add time.
    small = min(measure(small_net, (1, 3, 64, 64), threads=1, **FAST).median_ms for _ in range(3))
    large = min(measure(large_net, (1, 3, 64, 64), threads=1, **FAST).median_ms for _ in range(3))
    # ~160x the multiply-adds; a 3x margin leaves room for a noisy shared machine.
    assert large > 3 * small, (small, large)


def test_runs_under_inference_mode_in_eval():
    modes = []

    class Probe(nn.Module):
        def forward(self, x):
            modes.append((torch.is_inference_mode_enabled(), self.training))
            return x + 1

    measure(Probe().train(), (2, 2), **FAST)
    assert set(modes) == {(True, False)}


def test_measurement_round_trips_through_json():
    m = measure(conv_stack(4, 1), SHAPE, **FAST)
    again = Measurement.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m
    assert again.protocol == Protocol(**FAST).to_dict()
    assert m.cv >= 0


def test_bad_arguments_raise_clear_errors():
    net = conv_stack(4, 1)
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        measure(net, SHAPE, backend="tpu")
    with pytest.raises(ValueError, match="threads must be an int >= 1"):
        measure(net, SHAPE, threads=0)
    with pytest.raises(ValueError, match="input_shape"):
        measure(net, (1, 3, -2, 4))
    with pytest.raises(TypeError, match="unknown protocol option"):
        measure(net, SHAPE, repeats=3)
