"""Kernel sweeps: kernels grown past the fitting sizes are real ops that build and run."""

import random

import pytest
import torch

import latency_models
from latency_models.graph import trace_graph
from latency_models.kernels import SWEEP_PER_SCALE, distinct_kernels, scaled_kernel, swept_kernels
from latency_models.opbench import op_module
from latency_models.zoo import sr_models
from spaces import SRSpace
from spaces.ops import Op


def conv(c_in=16, c_out=32, hw=(12, 20), stride=1):
    attrs = (("dilation_h", 1), ("dilation_w", 1), ("groups", 1), ("kernel_h", 3), ("kernel_w", 3),
             ("padding_h", 1), ("padding_w", 1), ("stride_h", stride), ("stride_w", stride))
    out = (1, c_out, hw[0] // stride, hw[1] // stride)
    return Op("conv2d", ((1, c_in, *hw),), out, attrs)


def test_a_grown_kernel_builds_and_runs_at_its_new_shape():
    for op in (conv(), conv(stride=2)):
        grown = scaled_kernel(op, 4)
        assert grown.inputs == ((1, 16, 48, 80),) and grown.attrs == op.attrs
        module, shape = op_module(grown)
        with torch.inference_mode():
            assert tuple(module(torch.randn(shape)).shape) == grown.output


def test_broadcast_operands_stay_broadcast_and_size_bound_kinds_are_not_grown():
    scale = Op("mul", ((1, 8, 10, 10), (1, 8, 1, 1)), (1, 8, 10, 10))
    assert scaled_kernel(scale, 2).inputs == ((1, 8, 20, 20), (1, 8, 1, 1))
    pool = Op("adaptive_avg_pool2d", ((1, 8, 10, 10),), (1, 8, 1, 1), (("out_h", 1), ("out_w", 1)))
    linear = Op("linear", ((1, 197, 192),), (1, 197, 576))
    assert scaled_kernel(pool, 2) is None and scaled_kernel(linear, 2) is None
    assert scaled_kernel(conv(64, 64, (720, 1280)), 4) is None  # GiBs: not built


def test_sweep_keeps_the_kernels_and_adds_a_bounded_sample_per_scale():
    models = sr_models(6, random.Random(0), lr_hw=(12, 20), space=SRSpace(max_blocks=3))
    own = distinct_kernels(trace_graph(m.build(), m.input_shape).ops("eager") for m in models)
    swept = swept_kernels(own, (1, 2, 4))
    assert swept[:len(own)] == own
    extra = swept[len(own):]
    assert 0 < len(extra) <= 2 * SWEEP_PER_SCALE
    assert {o.inputs[0][2] for o in extra} <= {24, 48} | {o.inputs[0][2] * f for o in own for f in (2, 4)}
    with pytest.raises(ValueError, match="whole numbers"):
        swept_kernels(own, (1, 0.5))


def test_fit_profiles_the_grown_kernels_on_the_target():
    models = sr_models(6, random.Random(3), lr_hw=(12, 20), space=SRSpace(max_blocks=2))
    samples = [(m.build(), m.input_shape, 1.0 + 0.1 * i) for i, m in enumerate(models)]
    plain = latency_models.fit(samples, kernels="torch-cpu", ensemble=1)
    swept = latency_models.fit(samples, kernels="torch-cpu", kernel_scales=(1, 2), ensemble=1)
    assert swept.manifest["kernels"]["scales"] == [1, 2] and plain.manifest["kernels"]["scales"] == [1]
    assert swept.manifest["kernels"]["n_kernels"] > plain.manifest["kernels"]["n_kernels"]
