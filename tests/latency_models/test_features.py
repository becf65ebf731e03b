"""Tracing torch modules into spaces.ops.Op records, FLOPs and bytes."""

import random

import pytest
import torch
from torch import nn

from latency_models.features import UntraceableOpError, flops, memory_bytes, total_flops, trace_ops
from latency_models.zoo import WDSRB, PrunedViT, espcn, fsrcnn, sr_models
from spaces import ESPCNArch, FSRCNNArch
from spaces.ops import OP_KINDS
from spaces.vit import TokenPruneSpace


def kinds(ops):
    return [o.kind for o in ops]


def test_sr_trace_equals_analytic_ops():
    for z in sr_models(3, random.Random(0), lr_hw=(12, 20)):
        assert trace_ops(WDSRB(z.arch), z.input_shape) == z.arch.ops((12, 20))
    for arch, build in ((FSRCNNArch(3), fsrcnn), (ESPCNArch(2), espcn)):
        assert trace_ops(build(arch), (1, 3, 20, 30)) == arch.ops((20, 30))


def test_conv_variants_and_flops():
    net = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2), nn.Conv2d(16, 16, 3, padding=1, groups=16),
                        nn.ConvTranspose2d(16, 4, 4, stride=2, padding=1))
    a, b, c = trace_ops(net, (1, 8, 32, 32))
    assert (a.kind, a.output, a.attr("groups"), a.attr("stride_h")) == ("conv2d", (1, 16, 16, 16), 2, 2)
    assert flops(a) == 2 * 16 * 16 * 16 * (8 // 2) * 9
    assert b.attr("groups") == 16 and flops(b) == 2 * 16 * 16 * 16 * 9
    assert c.kind == "conv_transpose2d" and c.output == (1, 4, 32, 32)
    assert flops(c) == 2 * 16 * 16 * 16 * 4 * 16
    assert memory_bytes(a) == {"in": 4 * 8 * 32 * 32, "weights": 4 * 16 * 4 * 9, "out": 4 * 16 * 16 * 16}


class Misc(nn.Module):
    def forward(self, x):
        b, c, h, w = x.shape
        y = nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
        y = nn.functional.max_pool2d(y, 2) * torch.sigmoid(x)
        t = y.flatten(2).transpose(1, 2)                      # view: no kernel
        t = torch.softmax(t @ t.transpose(1, 2), -1) @ t      # bmm, softmax, bmm
        idx = torch.topk(t.sum(-1), 5).indices                # data-dependent
        t = torch.gather(t, 1, idx.unsqueeze(-1).expand(-1, -1, c))
        return torch.cat([t, t.mean(1, keepdim=True)], 1), nn.functional.layer_norm(t, (c,))


def test_misc_ops_are_featurised():
    got = kinds(trace_ops(Misc(), (1, 4, 8, 8)))
    for kind in ("interpolate", "max_pool2d", "sigmoid", "mul", "matmul", "softmax", "topk", "slice", "concat",
                 "reduce", "layer_norm"):
        assert kind in got, (kind, got)
    assert set(got) <= set(OP_KINDS)


def test_pruned_vit_trace_and_logits():
    space = TokenPruneSpace.for_model("demo_vit")
    arch = space.arch((0.7, 0.49, 0.343))
    shape = (1, arch.in_chans, arch.img_size, arch.img_size)
    net = PrunedViT(arch).eval()
    ops = trace_ops(net, shape)
    assert kinds(ops).count("topk") == 3 and kinds(ops).count("sdpa") == arch.depth
    sdpa_tokens = [o.inputs[0][2] for o in ops if o.kind == "sdpa"]
    assert sdpa_tokens[0] == 1 + arch.num_patches and sdpa_tokens[-1] == 1 + arch.kept_per_stage()[-1] + 1
    full = PrunedViT(space.unpruned()).eval()
    assert total_flops(ops) < 0.8 * total_flops(trace_ops(full, shape))
    # keep rate 1.0: selectors skipped, same logits as the plain timm model
    x = torch.randn(2, *shape[1:])
    with torch.no_grad():
        assert torch.equal(full(x), full.vit(x))


def test_timm_deit_tiny_traces():
    timm = pytest.importorskip("timm")
    ops = trace_ops(timm.create_model("deit_tiny_patch16_224"), (1, 3, 224, 224))
    assert kinds(ops).count("sdpa") == 12 and kinds(ops).count("linear") == 49
    assert total_flops(ops) / 1e9 == pytest.approx(2.51, abs=0.02)


class Weird(nn.Module):
    def forward(self, x):
        return torch.special.erfinv(x.clamp(-0.5, 0.5))


def test_unknown_op_is_counted_as_copy_or_raises():
    ops = trace_ops(Weird(), (1, 3, 4, 4))
    assert ops[-1].kind == "copy" and ops[-1].attr("aten") == "erfinv"
    with pytest.raises(UntraceableOpError, match="erfinv"):
        trace_ops(Weird(), (1, 3, 4, 4), strict=True)
