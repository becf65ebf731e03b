"""PSNR-Y that the baselines' papers report, to print beside the figures trained here.

Every figure is PSNR on the Y channel (ITU-R BT.601) with ``scale`` border pixels cropped, the
protocol :func:`tasks.sr.evaluate.evaluate` follows, on the standard Set5 / Set14 images. Each row
says which paper it comes from; a (model, scale) a paper does not report is absent.
"""

from __future__ import annotations

from typing import Any

FSRCNN_PAPER = "Dong, Loy, Tang, Accelerating the Super-Resolution Convolutional Neural Network (FSRCNN), ECCV 2016"
FSRCNN_TRAINING = "; trained on the 91 images and General-100, with augmentation"

# (family, scale) -> {eval set: PSNR-Y dB}, plus the source
PUBLISHED: dict[tuple[str, int], dict[str, Any]] = {
    ("bicubic", 2): {"set5": 33.66, "set14": 30.23, "source": FSRCNN_PAPER},
    ("bicubic", 3): {"set5": 30.39, "set14": 27.54, "source": FSRCNN_PAPER},
    ("bicubic", 4): {"set5": 28.42, "set14": 26.00, "source": FSRCNN_PAPER},
    ("fsrcnn", 2): {"set5": 37.00, "set14": 32.63, "source": FSRCNN_PAPER + FSRCNN_TRAINING},
    ("fsrcnn", 3): {"set5": 33.16, "set14": 29.43, "source": FSRCNN_PAPER + FSRCNN_TRAINING},
    ("fsrcnn", 4): {"set5": 30.71, "set14": 27.59, "source": FSRCNN_PAPER + FSRCNN_TRAINING},
}


def published(family: str, scale: int) -> dict[str, Any] | None:
    """``{"psnr": {set: dB}, "source": str}`` for a baseline, or None where its paper reports none
    at this scale (ESPCN's paper reports x3 and x4 only)."""
    row = PUBLISHED.get((family, scale))
    if row is None:
        return None
    return {"psnr": {k: v for k, v in row.items() if k != "source"}, "source": row["source"]}
