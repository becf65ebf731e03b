"""The masked WDSR-B supernet: masks, gates, expected widths, derivation and sub-network weights."""

import pytest
import torch

import tasks.sr as sr
from spaces import SRSpace, WDSRBArch
from tasks.sr.supernet import BlockGates, SRSupernet, WidthMask, bernoulli_st, gumbel_softmax_st

SPACE = SRSpace(scale=2, min_blocks=1, max_blocks=4, channels=(8, 12, 16), m1=(8, 32, 8), m2=(8, 12, 1))


def flops_like(rows: torch.Tensor) -> torch.Tensor:
    """A monotone stand-in for a block latency model: MACs per pixel of [C, M1, M2, C] in k."""
    c, m1, m2, _ = rows.unbind(1)
    return (c * m1 + m1 * m2 + 9 * m2 * c) / 1000.0


def test_width_mask_prefix_expected_width_and_floor():
    mask = WidthMask([8, 16, 24, 32])
    soft = mask.soft_mask()
    assert soft.shape == (32,)
    assert torch.allclose(soft[:8], torch.ones(8))  # the floor is always kept
    assert torch.all(soft[1:] <= soft[:-1] + 1e-7)  # a prefix mask: non-increasing
    assert torch.allclose(soft.sum(), mask.expected_width())
    assert mask.derived_width() == 32  # init puts 60% on the widest choice
    g = torch.Generator().manual_seed(0)
    widths = {int(mask.sample_mask(1.0, g).sum().round()) for _ in range(200)}
    assert widths <= {8, 16, 24, 32} and len(widths) >= 3
    mask.set_width(16)
    assert mask.derived_width() == 16 and abs(float(mask.probs()[1].detach()) - 0.9) < 1e-5


def test_straight_through_samples_are_hard_and_carry_gradients():
    logits = torch.zeros(5, requires_grad=True)
    y = gumbel_softmax_st(logits, 0.5, torch.Generator().manual_seed(1))
    assert sorted(y.detach().tolist()) == [0, 0, 0, 0, 1]
    (y * torch.arange(5.0)).sum().backward()
    assert logits.grad.abs().sum() > 0
    gate_logits = torch.zeros(6, requires_grad=True)
    g = bernoulli_st(gate_logits, 0.5, torch.Generator().manual_seed(2))
    assert set(g.detach().tolist()) <= {0.0, 1.0}
    g.sum().backward()
    assert torch.all(gate_logits.grad > 0)
    with pytest.raises(ValueError):
        gumbel_softmax_st(logits, 0.0)


def test_expected_latency_gradient_signs_on_gates_and_masks():
    net = SRSupernet(SPACE)
    net.set_search(width=True, depth=True)
    lat = net.expected_latency_ms(flops_like)
    lat.backward()
    assert torch.all(net.gates.logits.grad > 0)  # keeping a block more likely costs time
    for mask in net.width_masks():
        assert mask.logits.grad[-1] > 0 > mask.logits.grad[0]  # wider costs, narrower saves
    # without depth search the gates are fully on and get no latency gradient
    net.zero_grad()
    net.set_search(width=True, depth=False)
    net.expected_latency_ms(flops_like).backward()
    assert net.gates.logits.grad is None or torch.all(net.gates.logits.grad == 0)
    full = SRSupernet(SPACE)
    assert float(full.expected_latency_ms(flops_like)) == pytest.approx(
        4 * float(flops_like(torch.tensor([[16.0, 32.0, 12.0, 16.0]]))[0]))


def test_l1_gradient_reaches_arch_parameters_in_search_mode():
    torch.manual_seed(0)
    net = SRSupernet(SPACE, seed=3)
    with torch.no_grad():  # a non-zero tail, so the trunk (and its masks) affects the output
        net.net.tail.weight.normal_(std=0.05)
    net.set_search(width=True, depth=True)
    net.train()
    x, y = torch.rand(2, 3, 12, 12), torch.rand(2, 3, 24, 24)
    (net(x) - y).abs().mean().backward()
    grads = [p.grad for p in net.arch_parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_derived_mode_equals_the_sliced_subnet():
    torch.manual_seed(0)
    net = SRSupernet(SPACE)
    for p in net.net.parameters():  # random weights everywhere, tail included
        torch.nn.init.normal_(p, std=0.1)
    net.c_mask.set_width(12)
    net.m1_masks[0].set_width(16)
    net.m2_masks[0].set_width(9)
    net.m1_masks[2].set_width(24)
    with torch.no_grad():
        net.gates.logits.copy_(torch.tensor([2.0, -2.0, 1.0, -1.0]))
    arch, kept = net.derive(mode="threshold")
    assert kept == [0, 2]
    assert arch.to_dict() == {"family": "wdsr_b", "scale": 2, "channels": 12, "blocks": [[16, 9], [24, 12]]}
    # expected mode: round(sum of keep probs) = round(0.88 + 0.12 + 0.73 + 0.27) = 2 blocks, the
    # most probable; widths nearest their expectation (M2 of block 2: 0.6 * 12 + 0.4 * 9.5 = 11)
    expected, kept_e = net.derive()
    assert kept_e == [0, 2]
    assert expected.to_dict()["blocks"] == [[16, 9], [24, 11]]
    SPACE.validate(arch)
    model = sr.build_model(expected)
    model.load_state_dict(net.subnet_state_dict(expected, kept_e))
    x = torch.rand(1, 3, 10, 14)
    net.eval()
    model.eval()
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), atol=1e-5)
        net.derive_mode = "threshold"
        thresholded = sr.build_model(arch).eval()
        thresholded.load_state_dict(net.subnet_state_dict(arch, kept))
        assert torch.allclose(net(x), thresholded(x), atol=1e-5)


def test_min_blocks_and_fixed_channels():
    space = SRSpace(scale=2, min_blocks=2, max_blocks=4, channels=(8, 16), m1=(8, 16, 8), m2=(8, 9, 1))
    net = SRSupernet(space, search_channels=False)
    with torch.no_grad():
        net.gates.logits.copy_(torch.tensor([-3.0, -1.0, -4.0, -0.5]))
    arch, kept = net.derive()
    assert kept == [1, 3] and arch.channels == 16 and isinstance(arch, WDSRBArch)
    assert len(net.arch_parameters()) == 1 + 2 * 4 + 1


def test_bad_input_raises():
    with pytest.raises(ValueError):
        SRSupernet(SPACE)(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError):
        WidthMask([])
    with pytest.raises(ValueError):
        BlockGates(0)
    net = SRSupernet(SPACE)
    with pytest.raises(ValueError):
        net.expected_latency_ms(lambda rows: rows.sum())
