"""SR images: training patches and evaluation sets, from folders of image files.

Two folder layouts are read:

- a flat folder of images (``T91/t1.bmp``...): LR images are made here with MATLAB-exact bicubic
  (:func:`tasks.sr.resize.imresize`, antialiased) from the HR image cropped to a multiple of the
  scale;
- DIV2K style ``HR/name.png`` + ``LR_bicubic/X{s}/name.png`` (or ``namex{s}.png``): the LR files are
  used as they are and the HR image is cropped to ``s`` times the LR size.

Images are ``(1, C, H, W)`` float32 tensors in [0, 1]. LR images are always RGB (a grayscale image
is repeated on three channels for the model); a grayscale HR image keeps one channel so that it is
scored on its own gray values (see :mod:`tasks.sr.metrics`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from tasks.sr.augment import dihedral
from tasks.sr.resize import imresize

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_TRAIN_ROOT = ASSETS / "T91"
SHIPPED_TRAIN_SETS = {"T91": ASSETS / "T91", "BSDS200": ASSETS / "BSDS200"}  # T91 + BSDS200: the "291" set
DEFAULT_EVAL_ROOTS: dict[str, Path] = {"set5": ASSETS / "Set5", "set14": ASSETS / "Set14"}
SSIM_WINDOW = 11  # tasks.sr.metrics.ssim_y's Gaussian window
IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm")


class DataError(ValueError):
    """A data folder is missing, empty or inconsistent; the message says how to fix it."""


@dataclass(frozen=True)
class EvalImage:
    """One evaluation pair: ``lr`` is ``(1, 3, h, w)``, ``hr`` is ``(1, C, s*h, s*w)``, [0, 1]."""

    name: str
    lr: torch.Tensor
    hr: torch.Tensor

    @property
    def gray(self) -> bool:
        return self.hr.shape[1] == 1


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path) -> torch.Tensor:
    """``(C, H, W)`` uint8, C = 3 for colour, 1 for grayscale, from any bit depth and mode.

    EXIF orientation is applied; palettes are expanded; an alpha channel is dropped (warned once
    per process); 16-bit and integer images are scaled to 8 bits (``round(v / 257)``, so an 8-bit
    image stored in 16 bits reads back exactly), as SR benchmarks score 8-bit images; float images
    are taken as [0, 1]. An unreadable, empty or zero-size file is a :class:`DataError` naming it.
    """
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            arr = _eight_bit(path, im)
    except (OSError, ValueError, SyntaxError) as err:  # PIL raises all three on broken files
        raise DataError(f"{path}: cannot read this image ({err}); remove it or replace the file") from err
    if arr.size == 0:
        raise DataError(f"{path}: the image has no pixels ({arr.shape}); remove it or replace the file")
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


_WARNED: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, stacklevel=4)


def _eight_bit(path: Path, im: Image.Image) -> np.ndarray:
    """uint8 ``(H, W)`` or ``(H, W, 3)`` from a PIL image of any mode."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        _warn_once("alpha", f"{path}: alpha channel dropped (colour kept as is); further images with alpha "
                            "are read the same way")
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        wide = np.array(im, dtype=np.float64)
        return np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8)
    if im.mode == "F":
        return np.clip(np.round(np.array(im, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    if im.mode in ("L", "LA", "1"):
        return np.array(im.convert("L"), dtype=np.uint8)
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")
        return np.array(im, dtype=np.uint8)[..., :3]
    return np.array(im.convert("RGB"), dtype=np.uint8)


def to_float(img: torch.Tensor) -> torch.Tensor:
    """uint8 ``(..., C, H, W)`` -> float32 in [0, 1]."""
    return img.to(torch.float32) / 255.0


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """float ``(..., C, H, W)`` in [0, 1] -> uint8 (rounded, clamped), as saving a PNG does."""
    return (img.clamp(0, 1) * 255.0).round().to(torch.uint8)


def to_rgb(img: torch.Tensor) -> torch.Tensor:
    return img.expand(*img.shape[:-3], 3, *img.shape[-2:]) if img.shape[-3] == 1 else img


def bicubic_downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB ``imresize(hr, 1/scale, 'bicubic')`` of a uint8 ``(C, H, W)`` image -> uint8, HR first
    cropped to a multiple of ``scale``."""
    h, w = (hr.shape[-2] // scale) * scale, (hr.shape[-1] // scale) * scale
    lr = imresize(to_float(hr[..., :h, :w]), 1.0 / scale, out_hw=(h // scale, w // scale))
    return to_uint8(lr)


def _lr_file(lr_dir: Path, name: str, scale: int) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for stem in (name, f"{name}x{scale}"):
            path = lr_dir / f"{stem}{suffix}"
            if path.is_file():
                return path
    return None


def _check_folder(root: Path, what: str, hint: str) -> None:
    if not root.is_dir():
        raise DataError(f"{what} folder {root} does not exist; point {hint} at a folder of images")


def load_pairs(root: str | Path, scale: int, what: str = "image", hint: str = "data.train_root=/path/to/images",
               ) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, lr, hr)`` uint8 ``(C, h, w)`` / ``(C, s*h, s*w)`` pairs from either layout, sorted."""
    root = Path(root)
    _check_folder(root, what, hint)
    hr_dir = root / "HR" if (root / "HR").is_dir() else root
    files = list_images(hr_dir)
    if not files:
        raise DataError(
            f"{what} folder {hr_dir} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
            f"copy images there or point {hint} at another folder"
        )
    lr_dir = root / "LR_bicubic" / f"X{scale}"
    pairs = []
    for path in files:
        hr = read_image(path)
        lr_path = _lr_file(lr_dir, path.stem, scale) if lr_dir.is_dir() else None
        if lr_path is None:
            if lr_dir.is_dir():
                raise DataError(f"{lr_dir} has no LR file for {path.name}; add it or remove {lr_dir}")
            lr = bicubic_downscale(hr, scale)
        else:
            lr = read_image(lr_path)
            if lr.shape[0] != hr.shape[0] or lr.shape[1] * scale > hr.shape[1] or lr.shape[2] * scale > hr.shape[2]:
                raise DataError(f"{lr_path} {tuple(lr.shape)} does not match x{scale} of {path} {tuple(hr.shape)}")
        hr = hr[:, : lr.shape[1] * scale, : lr.shape[2] * scale]
        pairs.append((path.stem, lr, hr))
    return pairs


def load_eval_set(root: str | Path, scale: int) -> list[EvalImage]:
    """Every image of ``root`` as an :class:`EvalImage`, sorted by name.

    Uses shipped MATLAB-bicubic LR files (``LR_bicubic/X{scale}``) when present, else makes them.
    """
    pairs = load_pairs(root, scale, "evaluation", "data.eval_roots={name: /path/to/images}")
    for name, _, hr in pairs:
        if min(hr.shape[-2:]) - 2 * scale < SSIM_WINDOW:
            raise DataError(f"{root}: image {name} is {hr.shape[-2]}x{hr.shape[-1]} pixels, too small for the "
                            f"{SSIM_WINDOW}x{SSIM_WINDOW} SSIM window after cropping a {scale}-pixel border; "
                            "remove it from the evaluation folder")
    return [EvalImage(name, to_rgb(to_float(lr))[None].contiguous(), to_float(hr)[None]) for name, lr, hr in pairs]


class TrainPatches:
    """Random aligned (LR, HR) patches from a folder of training images, held in memory.

    LR images are made once per image (or read from ``LR_bicubic/X{s}``); each batch draws an
    image per sample (uniformly), a patch position, and one of the 8 flips/rotations by 90
    degrees, applied identically to both patches on the batch's device (:func:`tasks.sr.augment.dihedral`,
    kornia). All random draws come from one CPU generator seeded with ``seed``, so the batches are the
    same on any device and a resumed training draws the ones it would have. :meth:`to` moves the
    images once (a GPU then crops and augments without copies per batch).

    ``val_images`` > 0 holds that many images (evenly spaced in name order) out of training;
    :meth:`val_set` returns them as evaluation images.
    """

    def __init__(self, root: str | Path | Sequence[str | Path] = DEFAULT_TRAIN_ROOT, scale: int = 2,
                 patch_hr: int = 96, seed: int = 0, val_images: int = 0) -> None:
        roots = [Path(root)] if isinstance(root, str | Path) else [Path(r) for r in root]
        self.scale = scale
        self.patch_hr = (patch_hr // scale) * scale  # e.g. 64 at x3 -> 63
        self.patch_lr = self.patch_hr // scale
        if self.patch_lr < 1:
            raise ValueError(f"patch_hr={patch_hr} is smaller than the scale x{scale}")
        # several folders (e.g. T91 and BSDS200): one pool, names prefixed by their folder
        pairs = [(f"{r.name}/{name}" if len(roots) > 1 else name, lr, hr)
                 for r in roots for name, lr, hr in load_pairs(r, scale, "training")]
        if not 0 <= val_images < len(pairs):
            raise DataError(f"val_images={val_images} leaves no training image out of {len(pairs)} in "
                            + ", ".join(map(str, roots)))
        held = set(np.linspace(0, len(pairs) - 1, val_images).round().astype(int).tolist()) if val_images else set()
        self._val = [pairs[i] for i in sorted(held)]
        train = [(name, to_rgb(lr).contiguous(), to_rgb(hr).contiguous())
                 for i, (name, lr, hr) in enumerate(pairs) if i not in held]
        self._images = [p for p in train if min(p[1].shape[-2:]) >= self.patch_lr]
        if not self._images:
            raise DataError(f"no training image in {', '.join(map(str, roots))} is at least {self.patch_hr} px on each side; "
                            "use a smaller patch_hr or larger images")
        self.names = [name for name, _, _ in self._images]
        self._gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self._images)

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lr, hr)``: ``(B, 3, p, p)`` and ``(B, 3, s*p, s*p)`` float32 in [0, 1]."""
        g, s, p = self._gen, self.scale, self.patch_lr
        which = torch.randint(len(self._images), (batch_size,), generator=g).tolist()
        pos = torch.rand(batch_size, 2, generator=g)
        flips = torch.rand(batch_size, 3, generator=g) < 0.5
        lr_list, hr_list = [], []
        for i, (fy, fx) in zip(which, pos.tolist()):
            _, lr, hr = self._images[i]
            y = int(fy * (lr.shape[1] - p + 1))
            x = int(fx * (lr.shape[2] - p + 1))
            lr_list.append(lr[:, y:y + p, x:x + p])
            hr_list.append(hr[:, s * y:s * (y + p), s * x:s * (x + p)])
        lr_b = to_float(torch.stack(lr_list))
        hr_b = to_float(torch.stack(hr_list))
        return dihedral(lr_b, hr_b, flips)

    def to(self, device: str | torch.device) -> TrainPatches:
        """Keep the training images on ``device`` (batches are then made there); returns self."""
        self._images = [(name, lr.to(device), hr.to(device)) for name, lr, hr in self._images]
        return self

    def val_set(self) -> list[EvalImage]:
        """The held-out images (``val_images``), as evaluation images."""
        return [EvalImage(name, to_rgb(to_float(lr))[None].contiguous(), to_float(hr)[None])
                for name, lr, hr in self._val]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The sampler's generator state, so a resumed training draws the batches it would have."""
        return {"generator": self._gen.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._gen.set_state(state["generator"])
