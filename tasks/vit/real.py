"""Real use: a timm ViT from a local checkpoint and an ImageFolder dataset (nothing downloaded)."""

from __future__ import annotations

import pickle
from pathlib import Path

import timm
import torch
from torch import nn

from spaces.vit import TokenPruneArch
from tasks.vit.demo import build_demo_teacher
from tasks.vit.errors import TokenPruneError
from tasks.vit.patch import TokenPrunedViT, patch_from_arch

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_model(name: str = "deit_small_patch16_224", checkpoint: str | Path | None = None,
               num_classes: int = 1000) -> nn.Module:
    """``timm.create_model(name, pretrained=False)`` in eval mode, weights from ``checkpoint``.

    The checkpoint is loaded with ``torch.load(weights_only=True)``; a plain state dict or one
    nested under ``"model"`` / ``"state_dict"`` (timm and DeiT training outputs) is accepted.
    Missing files, non-weight files and mismatched keys or shapes raise TokenPruneError.
    """
    if not timm.is_model(name):
        raise TokenPruneError(f"unknown timm model {name!r}; e.g. deit_small_patch16_224")
    model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    if checkpoint is not None:
        path = Path(checkpoint)
        model.load_state_dict(_checked(_read_state_dict(path), model, path, name))
    return model.eval()


def build_pruned(arch: TokenPruneArch, checkpoint: str | Path | None = None) -> TokenPrunedViT:
    """The network ``arch`` describes, in eval mode: the timm model ``arch.model`` (or the demo
    teacher for ``"demo_vit"``) with weights from ``checkpoint`` (backbone only; selectors fresh)."""
    if arch.model != "demo_vit":
        return patch_from_arch(load_model(arch.model, checkpoint, arch.num_classes), arch).eval()
    if arch.in_chans != 1 or arch.num_classes != 10:
        raise TokenPruneError("demo_vit is the 1-channel, 10-class digit model")
    vit = build_demo_teacher(img_size=arch.img_size, patch_size=arch.patch_size, embed_dim=arch.embed_dim,
                             depth=arch.depth, num_heads=arch.num_heads, mlp_ratio=arch.mlp_ratio,
                             stem_chans=arch.stem_chans)
    if checkpoint is not None:
        path = Path(checkpoint)
        vit.load_state_dict(_checked(_read_state_dict(path), vit, path, "demo_vit"))
    return patch_from_arch(vit, arch).eval()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise TokenPruneError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise TokenPruneError(f"checkpoint {path} is not a weights-only torch file: {err}") from err
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TokenPruneError(f"checkpoint {path} holds no state dict of tensors")
    return state


def _checked(state: dict[str, torch.Tensor], ref: nn.Module, path: Path, name: str) -> dict[str, torch.Tensor]:
    want = ref.state_dict()
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in want.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise TokenPruneError(
            f"checkpoint {path} does not fit {name}: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, shape mismatches {shapes[:5]}"
        )
    return state


def load_imagefolder(root: str | Path, img_size: int = 224):
    """``torchvision.datasets.ImageFolder`` with the DeiT eval transform (resize to 256/224 of
    ``img_size``, center crop, ImageNet normalisation). Missing or empty folders raise."""
    from torchvision import datasets, transforms

    root = Path(root)
    if not root.is_dir():
        raise TokenPruneError(f"image folder {root} not found")
    tf = transforms.Compose([
        transforms.Resize(int(img_size * 256 / 224)),
        transforms.CenterCrop(img_size),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    try:
        return datasets.ImageFolder(str(root), transform=tf)
    except (FileNotFoundError, RuntimeError) as err:
        raise TokenPruneError(f"image folder {root} has no class folders with images: {err}") from err
