"""Every SR builder: output shapes, parameter counts and conv shapes against ``arch.ops``."""

import pytest
import torch
from torch import nn

import tasks.sr as sr
from spaces import BicubicArch, ESPCNArch, FSRCNNArch, WDSRBArch, WDSRBlock
from spaces.base import registered_families
from tasks.sr.models import registered_families as builder_families
from tasks.sr.resize import imresize


def archs(scale: int) -> list:
    return [
        WDSRBArch(scale, 16, (WDSRBlock(64, 13), WDSRBlock(24, 9), WDSRBlock(8, 20))),
        FSRCNNArch(scale),
        FSRCNNArch(scale, d=32, s=8, m=2),
        ESPCNArch(scale),
        BicubicArch(scale),
    ]


def expected_params(arch) -> int:
    """Weights + biases (+ PReLU slopes), from the description alone."""
    def conv(c_in, c_out, k):
        return c_in * c_out * k * k + c_out

    if isinstance(arch, WDSRBArch):
        c, out_c = arch.channels, 3 * arch.scale**2
        body = sum(conv(c, b.m1, 1) + conv(b.m1, b.m2, 1) + conv(b.m2, c, 3) for b in arch.blocks)
        return conv(3, c, 3) + body + conv(c, out_c, 3) + conv(3, out_c, 5)
    if isinstance(arch, FSRCNNArch):
        d, s = arch.d, arch.s
        return (conv(3, d, 5) + d + conv(d, s, 1) + s + arch.m * (conv(s, s, 3) + s)
                + conv(s, d, 1) + d + d * 3 * 81 + 3)
    if isinstance(arch, ESPCNArch):
        return conv(3, arch.c1, 5) + conv(arch.c1, arch.c2, 3) + conv(arch.c2, 3 * arch.scale**2, 3)
    return 0


def traced_convs(model: nn.Module, x: torch.Tensor) -> list[tuple]:
    """(kind, input shape, output shape, kernel, stride, groups) of each conv, in call order."""
    seen: list[tuple] = []

    def hook(module, inputs, output):
        kind = "conv_transpose2d" if isinstance(module, nn.ConvTranspose2d) else "conv2d"
        seen.append((kind, tuple(inputs[0].shape), tuple(output.shape), module.kernel_size[0],
                     module.stride[0], module.groups))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen


def analytic_convs(arch, lr_hw) -> list[tuple]:
    return [(op.kind, op.inputs[0], op.output, op.attr("kernel_h"), op.attr("stride_h"), op.attr("groups"))
            for op in arch.ops(lr_hw) if op.kind in ("conv2d", "conv_transpose2d")]


def test_every_registered_sr_family_has_a_builder():
    import spaces.sr
    import spaces.vit  # every architecture module registered, so a new family cannot hide

    sr_families = {f for f, cls in registered_families().items() if cls.__module__ == spaces.sr.__name__}
    assert sr_families == set(builder_families())
    assert set(registered_families()) - sr_families == {spaces.vit.TokenPruneArch.family}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shapes_params_and_ops_match_the_description(scale):
    for arch in archs(scale):
        model = sr.build_model(arch)
        assert model.arch == arch
        x = torch.rand(2, 3, 11, 17)
        with torch.no_grad():
            y = model(x)
        assert y.shape == (2, 3, 11 * scale, 17 * scale) and y.dtype == torch.float32, arch
        assert sr.num_params(model) == expected_params(arch), arch
        # the module runs exactly the convolutions the analytic op list predicts, in order
        # (the batch of 2 is the ops' batch)
        ops = [(k, (2, *i[1:]), (2, *o[1:]), kk, st, g) for k, i, o, kk, st, g in analytic_convs(arch, (11, 17))]
        assert traced_convs(model, x) == ops, arch


def test_the_published_search_reference_has_14_6k_parameters():
    arch = WDSRBArch(2, 16, (WDSRBlock(64, 13),) * 3)
    assert sr.num_params(sr.build_model(arch)) == 14563  # the "14.6k" of the paper's 3-block S21 search result (arXiv 2207.12577)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_model_is_matlab_imresize(scale):
    x = torch.rand(1, 3, 13, 10, generator=torch.Generator().manual_seed(scale))
    with torch.no_grad():
        y = sr.build_model(BicubicArch(scale))(x)
    assert torch.allclose(y, imresize(x, scale), atol=2e-6)
    assert sr.build_model(BicubicArch(scale)).state_dict() == {}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_untrained_wdsr_b_is_bicubic_away_from_the_border(scale):
    """Its global skip starts as bicubic and its tail at zero (zero-padded, so the border differs)."""
    torch.manual_seed(0)
    model = sr.build_model(WDSRBArch(scale, 8, (WDSRBlock(16, 8),)))
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        y, ref = model(x), imresize(x, scale)
    b = 3 * scale
    assert torch.allclose(y[..., b:-b, b:-b], ref[..., b:-b, b:-b], atol=1e-5)


def test_unknown_family_is_a_clear_error():
    class Other:
        family = "unet"

    with pytest.raises(ValueError, match="no SR model builder for family 'unet'"):
        sr.build_model(Other())
