"""NAS-Bench-201 / FBNet builders and the public latency tables (latency_models.benchnets)."""

import random
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from latency_models.benchnets import (
    FBNET_DEVICE_COLUMNS,
    FBNET_OPS,
    NB201_DEVICE_COLUMNS,
    PUBLIC_DATA_DIR,
    ChannelShuffle,
    FBNetBlock,
    fbnet_network,
    nb201_network,
    parse_nb201_arch,
    read_public_table,
)

DATA = Path(__file__).parent / "data"
NB201_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
# Row 0 of the FBNet table.
FBNET_EXAMPLE = ("k5_e6 skip k3_e1_g2 skip k5_e1 skip skip skip k5_e6 k5_e1 k3_e1_g2 k5_e1 k5_e6 k3_e6 k3_e3 "
                 "k5_e6 k3_e6 k3_e3 k5_e1 k3_e3 k5_e1 k5_e1_g2")


def nb201_all(op: str) -> str:
    return "+".join("|" + "|".join(f"{op}~{i}" for i in range(j)) + "|" for j in (1, 2, 3))


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These nets are tiny: a second intra-op thread gains nothing, and on a shared 2-core machine
    # OpenMP's spin-waiting made one forward pass take seconds instead of milliseconds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tables():
    return {s: read_public_table(PUBLIC_DATA_DIR / f"{s}_latency_ms.csv.gz") for s in ("nb201", "fbnet")}


# ---- NAS-Bench-201 -------------------------------------------------------------------------
@torch.no_grad()
def test_nb201_forward_shape():
    x = torch.randn(2, 3, 32, 32)
    for arch in (NB201_EXAMPLE, nb201_all("none"), nb201_all("avg_pool_3x3")):
        assert nb201_network(arch).eval()(x).shape == (2, 10)
    assert nb201_network(NB201_EXAMPLE, num_classes=100).eval()(x).shape == (2, 100)


@torch.no_grad()
def test_nb201_disconnected_cell_ignores_its_input():
    # Node 2 is none+none = 0, and node 3 only reads node 2: the logits cannot depend on the image.
    x1, x2 = torch.randn(2, 1, 3, 32, 32)
    net = nb201_network("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|").eval()
    assert torch.equal(net(x1), net(x2))
    net = nb201_network(NB201_EXAMPLE).eval()
    assert not torch.equal(net(x1), net(x2))


def test_nb201_parameter_counts_match_the_benchmark():
    # NAS-Bench-201's CIFAR-10 cost table gives 'params' from 0.073306 to 1.531546 (MB = 1e6
    # parameters, BN affine weights included). Worked out from the reference definition:
    #   stem 3*16*9 + 2*16 = 464; reductions (3x3 s2, 3x3, 1x1 shortcut, two BNs)
    #   16->32: 4608 + 9216 + 512 + 128 = 14464, 32->64: 18432 + 36864 + 2048 + 256 = 57600;
    #   lastact BN 128; classifier 64*10 + 10 = 650. Sum without cell parameters: 73306, the
    #   smallest net (cells of none/skip/pool only). A 3x3 ReLUConvBN edge holds 9C^2 + 2C, six per
    #   cell, five cells per stage: 5*6*(2336 + 9280 + 36992) = 1458240 -> 1531546, the largest.
    assert n_params(nb201_network(nb201_all("none"))) == 73_306
    assert n_params(nb201_network(nb201_all("skip_connect"))) == 73_306
    assert n_params(nb201_network(nb201_all("nor_conv_3x3"))) == 1_531_546
    # CIFAR-100 (64*90 + 90 more classifier weights): the benchmark's 1.537396.
    assert n_params(nb201_network(nb201_all("nor_conv_3x3"), num_classes=100)) == 1_537_396
    # 1x1 edges: C^2 + 2C each, 5*6*(288 + 1088 + 4224) = 168000 on top of the 73306.
    assert n_params(nb201_network(nb201_all("nor_conv_1x1"))) == 73_306 + 168_000


@pytest.mark.parametrize(("arch", "named"), [
    ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "conv_5x5~0"),
    ("|none~0|+|none~0|none~1|+|none~0|skip~1|none~2|", "skip~1"),
    ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "nor_conv_3x3~1"),
    ("|none~0|+|none~0|none1|+|none~0|none~1|none~2|", "none1"),
    ("|none~0|+|none~0|none~1|none~2|+|none~0|none~1|none~2|", "|none~0|none~1|none~2|"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "none~0|"),
    ("|none~0|+|none~0|none~1|", "got 2"),
    ("", "got 1"),
])
def test_nb201_bad_arch_names_the_token(arch, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        nb201_network(arch)


# ---- FBNet ---------------------------------------------------------------------------------
@torch.no_grad()
def test_fbnet_forward_shape():
    x = torch.randn(2, 3, 32, 32)
    for ops in (FBNET_EXAMPLE, ["k5_e6"] * 22, ["skip"] * 22, ["k3_e1_g2"] * 22):
        assert fbnet_network(ops).eval()(x).shape == (2, 100)
    assert fbnet_network(FBNET_EXAMPLE.split(), num_classes=10).eval()(x).shape == (2, 10)


def test_fbnet_skip_and_grouped_ops():
    # All skip: stem 3*16*9 + 32 = 464; one 1x1 conv + BN per stage whose first layer changes the
    # shape: 16->24: 432, 24->32: 832, 32->64: 2176, 64->112: 7392, 112->184: 20976, 184->352: 65472;
    # head 352*1504 + 2*1504 = 532416; fc 1504*100 + 100 = 150500. Total 780660.
    net = fbnet_network(["skip"] * 22)
    assert n_params(net) == 780_660
    assert isinstance(net.layers[0], nn.Identity) and isinstance(net.layers[2], nn.Identity)
    assert net.layers[5][0].stride == (2, 2) and isinstance(net.layers[5][2], nn.ReLU)  # 24 -> 32, s2
    block = fbnet_network(FBNET_EXAMPLE).layers[2]  # k3_e1_g2, 24 -> 24
    assert isinstance(block, FBNetBlock) and isinstance(block.shuffle, ChannelShuffle)
    assert (block.conv1.groups, block.conv2.groups, block.conv3.groups) == (2, 24, 2)
    # 1x1 24->24 in 2 groups: 288 (+48 BN), depthwise 3x3: 216 (+48), 1x1: 288 (+48).
    assert n_params(block) == 936


@torch.no_grad()
def test_fbnet_residual_only_when_shape_is_kept():
    x = torch.randn(1, 16, 8, 8)
    for c_out, stride, residual in ((16, 1, True), (24, 1, False), (16, 2, False)):
        block = FBNetBlock(16, c_out, k=5, e=3, stride=stride).eval()
        nn.init.zeros_(block.bn3.weight)  # the branch now outputs exactly 0
        out = block(x)
        assert torch.equal(out, x) if residual else not out.any()


def test_channel_shuffle_order():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]


@pytest.mark.parametrize(("ops", "named"), [
    (FBNET_EXAMPLE.replace("k3_e6", "k7_e6", 1), "'k7_e6'"),
    (["k3_e1"] * 21, "got 21"),
    (FBNET_EXAMPLE + " skip", "got 23"),
])
def test_fbnet_bad_ops_name_the_token(ops, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        fbnet_network(ops)


# ---- the tables ----------------------------------------------------------------------------
@pytest.mark.parametrize(("space", "n_rows", "devices"), [
    ("nb201", 700, NB201_DEVICE_COLUMNS), ("fbnet", 400, FBNET_DEVICE_COLUMNS)])
def test_subsets_read(space, n_rows, devices):
    rows = read_public_table(DATA / f"{space}_public_subset.csv")
    assert len(rows) == n_rows and {r.space for r in rows} == {space}
    for r in rows:
        assert tuple(r.latency_ms) == devices
        assert all(isinstance(v, float) and v > 0 for v in r.latency_ms.values())
        if space == "nb201":
            parse_nb201_arch(r.arch_str)
            assert isinstance(r.cell_connected, bool)
        else:
            assert [FBNET_OPS[i] for i in r.op_idx] == r.arch_str.split()


def test_subsets_are_the_seeded_rows_of_the_shipped_tables(tables):
    assert (len(tables["nb201"]), len(tables["fbnet"])) == (15_625, 5_000)
    for space, k in (("nb201", 700), ("fbnet", 400)):
        full = tables[space]
        assert [r.index for r in full] == list(range(len(full)))
        subset = read_public_table(DATA / f"{space}_public_subset.csv")
        assert [r.index for r in subset] == sorted(random.Random(0).sample(range(len(full)), k))
        assert all(full[r.index] == r for r in subset)


def test_read_public_table_rejects_bad_files(tmp_path):
    bad_header = tmp_path / "x.csv"
    bad_header.write_text("index,arch,gpu\n0,a,1.0\n")
    with pytest.raises(ValueError, match="header"):
        read_public_table(bad_header)
    lines = (DATA / "fbnet_public_subset.csv").read_text().splitlines()[:3]
    fields = lines[2].split(",")  # help_index, op_idx_list, arch_str, 1080ti_1, ...
    fields[3] = "oops"
    lines[2] = ",".join(fields)
    bad_value = tmp_path / "y.csv"
    bad_value.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"y\.csv:3"):
        read_public_table(bad_value)
