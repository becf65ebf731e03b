"""Architecture descriptions and search spaces, in pure Python.

Every other package consumes these descriptions: builders in ``tasks`` turn them into
``torch.nn.Module`` objects, ``latency_models`` predicts their latency from the analytic op
lists they emit, and ``search`` samples them. Nothing here imports torch.
"""

from spaces.base import (
    ArchError,
    Architecture,
    Suggester,
    arch_from_dict,
    load_arch,
    register_arch,
    save_arch,
)
from spaces.ops import Op
from spaces.sr import (
    BicubicArch,
    ESPCNArch,
    FSRCNNArch,
    SRSpace,
    WDSRBArch,
    WDSRBlock,
)

__all__ = [
    "ArchError",
    "Architecture",
    "BicubicArch",
    "ESPCNArch",
    "FSRCNNArch",
    "Op",
    "SRSpace",
    "Suggester",
    "WDSRBArch",
    "WDSRBlock",
    "arch_from_dict",
    "load_arch",
    "register_arch",
    "save_arch",
]

from spaces.vit import TokenPruneArch, TokenPruneSpace  # noqa: E402

__all__ += ["TokenPruneArch", "TokenPruneSpace"]
