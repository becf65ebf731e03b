"""Local backends on this machine: onnxruntime-cpu timings, torch-cuda's error without CUDA."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from latency_models.backends import BackendUnavailable, get_backend, registered_backends
from latency_models.backends.onnx_export import export_onnx
from latency_models.measure import measure

FAST = {"warmup": 2, "min_repeats": 8, "max_repeats": 40, "window": 4, "max_seconds": 5.0}


def conv_stack(channels: int, layers: int) -> nn.Module:
    torch.manual_seed(0)
    mods: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
    for _ in range(layers - 1):
        mods += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*mods, nn.Conv2d(channels, 3, 3, padding=1))


def test_registry_lists_the_four_backends():
    assert set(registered_backends()) >= {"torch-cpu", "torch-cuda", "onnxruntime-cpu", "adb"}


@pytest.mark.parametrize("threads", [1, 2])
def test_onnxruntime_cpu_measures(threads):
    before = torch.get_num_threads()
    m = measure(conv_stack(8, 2), (1, 3, 32, 32), backend="onnxruntime-cpu", threads=threads, **FAST)
    assert torch.get_num_threads() == before
    assert m.backend == "onnxruntime-cpu" and m.threads == threads
    assert m.median_ms > 0 and FAST["min_repeats"] <= m.n_repeats <= FAST["max_repeats"]
    assert m.host["onnxruntime"] == ort.__version__


def test_onnxruntime_cpu_larger_model_is_slower():
    small_net, large_net = conv_stack(4, 1), conv_stack(48, 4)
    # Best of three: other processes on a shared machine only ever add time.
    small = min(measure(small_net, (1, 3, 64, 64), backend="onnxruntime-cpu", **FAST).median_ms for _ in range(3))
    large = min(measure(large_net, (1, 3, 64, 64), backend="onnxruntime-cpu", **FAST).median_ms for _ in range(3))
    assert large > 3 * small, (small, large)


def test_onnx_export_matches_torch(tmp_path):
    net = conv_stack(8, 2).eval()
    path = export_onnx(net, (1, 3, 16, 16), tmp_path / "m.onnx")
    x = torch.randn(1, 3, 16, 16)
    (y,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
    with torch.inference_mode():
        np.testing.assert_allclose(y, net(x).numpy(), atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_torch_cuda_raises_a_clear_error_without_cuda():
    backend = get_backend("torch-cuda")  # constructing it is fine; using it is not
    with pytest.raises(BackendUnavailable, match="needs a CUDA device.*torch-cpu"):
        measure(conv_stack(4, 1), (1, 3, 8, 8), backend=backend)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_cuda_measures_on_a_gpu():
    m = measure(conv_stack(8, 2), (1, 3, 64, 64), backend="torch-cuda", **FAST)
    assert m.median_ms > 0 and "gpu_model" in m.host


@pytest.mark.parametrize("onednn", [True, False])
def test_torch_cpu_conv_kernels_are_chosen_recorded_and_restored(onednn):
    before = torch.backends.mkldnn.enabled
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(torch.backends.mkldnn.enabled)
            return x * 2

    m = measure(Probe(), (1, 3, 8, 8), backend="torch-cpu", backend_options={"onednn": onednn}, **FAST)
    assert set(seen) == {onednn}
    assert m.extra == {"conv_kernels": "onednn" if onednn else "native"}
    assert torch.backends.mkldnn.enabled == before
    with pytest.raises(ValueError, match="onednn must be true, false or null"):
        get_backend("torch-cpu", onednn="off")
