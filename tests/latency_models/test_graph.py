"""What a compiled runtime runs: dead, constant, identity and repeated ops dropped; BN and
activations after a conv marked fused; eager keeps every launched kernel."""

from torch import nn

from latency_models.benchnets import nb201_network
from latency_models.features import trace_ops
from latency_models.graph import OpGraph, trace_graph


def kinds(ops):
    return [o.kind + ("*" if o.attr("fused") else "") for o in ops]


class DeadBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used, self.unused = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 1)

    def forward(self, x):
        _ = self.unused(x).relu()  # computed, never used
        return self.used(x)


def test_dead_branch_is_dropped_only_when_compiled():
    g = trace_graph(DeadBranch(), (1, 3, 8, 8))
    assert kinds(g.ops("eager")) == ["conv2d", "relu", "conv2d"]
    assert kinds(g.ops("compiled")) == ["conv2d"]
    assert g.ops("compiled")[0].attr("kernel_h") == 3


class ZeroAndIdentity(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        zero = self.conv(x).mul(0.0)  # NAS "none" edge: a constant, its conv is dead
        return sum([x, zero]).relu()  # 0 + x + zero: two identities


def test_zero_op_and_identities_fold_away():
    g = trace_graph(ZeroAndIdentity(), (1, 3, 8, 8))
    assert kinds(g.ops("eager")) == ["conv2d", "mul", "add", "add", "relu"]
    assert kinds(g.ops("compiled")) == ["relu"]


class SharedRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.a(x.relu()) + self.b(x.relu())  # the same relu twice: computed once


def test_common_subexpression_is_computed_once():
    g = trace_graph(SharedRelu(), (1, 4, 8, 8))
    assert kinds(g.ops("eager")).count("relu") == 2
    assert kinds(g.ops("compiled")) == ["relu", "conv2d", "conv2d", "add"]  # the convs differ (own weights)


def test_conv_bn_relu_is_marked_fused():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.ReLU())
    g = trace_graph(net, (1, 3, 12, 12))
    assert kinds(g.ops("compiled")) == ["conv2d", "batch_norm*", "relu*", "max_pool2d", "relu"]


def test_eager_equals_trace_ops_and_round_trips():
    net = nb201_network("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|")
    g = trace_graph(net, (1, 3, 32, 32))
    assert g.ops("eager") == trace_ops(net, (1, 3, 32, 32))
    again = OpGraph.from_dict(g.to_dict())
    assert again.ops("compiled") == g.ops("compiled") and again.ops("eager") == g.ops("eager")


def test_nb201_disconnected_cell_runs_nothing_compiled():
    # node 3 reads only "none" edges: the cell's output is a constant, so is the whole network's
    net = nb201_network("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|none~2|")
    g = trace_graph(net, (1, 3, 32, 32))
    assert len(g.ops("eager")) > 200 and g.ops("compiled") == []
    connected = trace_graph(nb201_network("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"),
                            (1, 3, 32, 32))
    # node 3 = x: every cell is an identity and node 1's conv is dead
    assert "conv2d" in kinds(connected.ops("compiled"))  # stem and reductions still run
    assert len(connected.ops("compiled")) < len(connected.ops("eager")) / 3


def test_op_lists_run_in_both_modes():
    ops = trace_ops(nn.Conv2d(3, 4, 3), (1, 3, 8, 8))
    g = OpGraph.from_ops(ops)
    assert g.ops("eager") == g.ops("compiled") == ops


def test_analytic_lists_fuse_as_their_traces_do():
    """predict_archs reads arch.ops(); a compiled-graph predictor must see the same fused list
    that tracing the built network gives, or it predicts a different network."""
    import random

    from latency_models.zoo import WDSRB, espcn, fsrcnn, sr_models
    from spaces import ESPCNArch, FSRCNNArch

    cases = [(WDSRB(z.arch), z.arch, (12, 20)) for z in sr_models(3, random.Random(0), lr_hw=(12, 20))]
    cases += [(fsrcnn(FSRCNNArch(3)), FSRCNNArch(3), (20, 30)), (espcn(ESPCNArch(2)), ESPCNArch(2), (20, 30))]
    for net, arch, hw in cases:
        traced = trace_graph(net, (1, 3, *hw))
        for mode in ("eager", "compiled"):
            assert OpGraph.from_chain(arch.ops(hw)).ops(mode) == traced.ops(mode), (arch, mode)
    assert "relu*" in kinds(OpGraph.from_chain(cases[0][1].ops((12, 20))).ops("compiled"))
