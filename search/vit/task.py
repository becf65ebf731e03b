"""The ViT task's pieces: settings, data, the teacher (trained once and cached), the space and
the per-trial objective (sample keep rates, time them, fine-tune selectors briefly, score)."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import torch

import tasks.vit as vit
from search.console import say
from search.errors import UserError
from search.latency import LatencyEstimator
from search.settings import cache_root
from search.study.objective import ConstrainedObjective
from search.vit.family_latency import FamilyFit
from spaces import ArchError
from spaces.atomic import atomic_path, write_text_atomic
from spaces.vit import TokenPruneSpace, default_stages
from tasks.placement import CPU, Placement
from tasks.vit.demo import (
    DEMO_STAGES,
    DemoData,
    TeacherRecipe,
    build_demo_teacher,
    load_demo_data,
    load_shipped_teacher,
    train_teacher,
)

# task.runtime -> the latency_models backend that times candidates in it on this host
RUNTIME_BACKENDS = {"onnxruntime": "onnxruntime-cpu", "torch": "torch-cpu"}


@dataclass(frozen=True)
class ViTSettings:
    model_name: str
    checkpoint: str | None
    img_size: int
    num_classes: int
    stages: tuple[int, ...] | None
    keep_ratio: tuple[float, float, float]
    min_keep: float
    budget_fraction: float
    confirm_margin: float
    batch: int
    runtime: str
    predictor: FamilyFit
    data_root: Path | None
    val_images: int
    teacher: TeacherRecipe
    proxy: vit.SelectorRecipe
    final: vit.SelectorRecipe

    @staticmethod
    def from_task(task: dict[str, Any], seed: int, placement: Placement = CPU) -> ViTSettings:
        """The settings of ``task``, the complete task section (conf/task/vit.yaml holds every
        default; the app merges the smoke block in): no key has a second default here. ``placement``:
        where the teacher and the selectors train (``train.device``, ``train.amp``)."""
        try:
            model, data, stages = task["model"], task["data"], task["stages"]
            return ViTSettings(
                model_name=str(model["name"]),
                checkpoint=model["checkpoint"],
                img_size=int(model["img_size"]),
                num_classes=int(model["num_classes"]),
                stages=None if stages is None else tuple(int(s) for s in stages),
                keep_ratio=tuple(float(v) for v in task["keep_ratio"]),  # type: ignore[arg-type]
                min_keep=float(task["min_keep"]),
                budget_fraction=float(task["budget_fraction"]),
                confirm_margin=float(task["confirm_margin"]),
                batch=int(task["batch"]),
                runtime=str(task["runtime"]),
                predictor=FamilyFit.from_task(dict(task["predictor"])),
                data_root=Path(data["root"]) if data["root"] else None,
                val_images=int(data["val_images"]),
                teacher=TeacherRecipe(seed=seed, placement=placement, **dict(task["teacher"])),
                proxy=vit.SelectorRecipe(seed=seed + 1, placement=placement, **dict(task["proxy"])),
                final=vit.SelectorRecipe(seed=seed + 2, placement=placement, **dict(task["final"])),
            )
        except KeyError as err:
            raise UserError(f"task (vit) lacks the setting {err}: conf/task/vit.yaml names every one") from None
        except (TypeError, ValueError) as err:
            raise UserError(f"task (vit) settings are malformed: {err}") from None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.budget_fraction) and 0 < self.budget_fraction <= 1):
            raise UserError(f"task.budget_fraction={self.budget_fraction!r} must lie in (0, 1]: the budget is that "
                            "share of the unpruned model's latency")
        if not (math.isfinite(self.confirm_margin) and 0 <= self.confirm_margin < 1):
            raise UserError(f"task.confirm_margin={self.confirm_margin!r} must lie in [0, 1)")
        if self.runtime not in RUNTIME_BACKENDS:
            raise UserError(f"task.runtime={self.runtime!r} is not one of {sorted(RUNTIME_BACKENDS)}: "
                            "onnxruntime times the exported graph, torch the eager model")
        if self.val_images < 1:
            raise UserError(f"task.data.val_images={self.val_images} must be at least 1: candidates are scored on "
                            "held-out validation images")


@dataclass
class ViTData:
    train: Any
    val: Any
    test: Any
    in_chans: int


def load_vit_data(settings: ViTSettings, seed: int) -> ViTData:
    """Demo: the shipped MNIST subset (train / val / held-out test). Real: ``root/train`` and
    ``root/val`` ImageFolders; candidates are scored on a seeded slice of train."""
    try:
        if settings.data_root is None:
            demo = load_demo_data(img_size=settings.img_size, held_out=1000, seed=seed)
            images, labels = demo.train
            cut = len(labels) - settings.val_images
            return ViTData((images[:cut], labels[:cut]), (images[cut:], labels[cut:]), demo.test, 1)
        train = vit.load_imagefolder(settings.data_root / "train", settings.img_size)
        test = vit.load_imagefolder(settings.data_root / "val", settings.img_size)
    except vit.TokenPruneError as err:
        raise UserError(f"{err}; set task.data.root to a folder with train/ and val/ ImageFolders") from None
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = min(settings.val_images, len(train) // 5)
    subset = torch.utils.data.Subset
    return ViTData(subset(train, order[n_val:]), subset(train, order[:n_val]), test, 3)


def cache_dir() -> Path:
    return cache_root()


def teacher_key(settings: ViTSettings, seed: int) -> str:
    """What the demo teacher's weights depend on, hashed: size, seed, recipe (not its logging nor
    where it trains), and the validation split it must not see."""
    recipe = {k: float(v) if isinstance(v, int) and k in ("epochs", "lr") else v
              for k, v in asdict(settings.teacher).items() if k not in ("log_every", "placement")}  # 100 and 100.0 alike
    spec = {"img_size": settings.img_size, "seed": seed, "recipe": recipe, "val_images": settings.val_images, "v": 2}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def load_teacher(settings: ViTSettings, data: ViTData, seed: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The unpruned model. The demo teacher is the one shipped in ``tasks/vit/assets`` when its
    key (:func:`teacher_key`) matches the settings; otherwise it is trained on first use and cached
    (state dict, loaded with ``weights_only=True``) under that key."""
    if settings.model_name != "demo":
        try:
            model = vit.load_model(settings.model_name, settings.checkpoint, num_classes=settings.num_classes)
        except vit.TokenPruneError as err:
            raise UserError(str(err)) from None
        return model.eval(), {"source": f"{settings.model_name} from {settings.checkpoint or 'random init'}"}
    key = teacher_key(settings, seed)
    path = cache_dir() / "vit" / f"demo_teacher_{key}.pt"
    model = build_demo_teacher(img_size=settings.img_size, seed=seed)
    shipped = load_shipped_teacher(key)
    if shipped is not None:
        model.load_state_dict(shipped[0])
        say(f"demo teacher: the one shipped with the project (held-out top-1 {100 * shipped[1]['test_top1']:.2f}%, "
            f"{shipped[1]['recipe']['epochs']:g} epochs)")
        return model.eval(), {"source": "demo teacher shipped in tasks/vit/assets (trained here with this recipe)",
                              "test_top1": shipped[1]["test_top1"], "train_s": shipped[1]["train_s"],
                              "steps": shipped[1]["steps"]}
    cached = _cached_teacher(build_demo_teacher(img_size=settings.img_size, seed=seed), path)
    if cached is not None:
        return cached[0].eval(), cached[1]
    say(f"training the demo teacher ({settings.teacher.epochs:g} epochs on {len(data.train[1])} digits)...")
    # The training split only: the validation images score the candidates and must stay unseen.
    demo = DemoData(*data.train, *data.test)
    log = train_teacher(model, demo, settings.teacher)
    info = {"source": f"demo teacher trained here, cached at {path}", "test_top1": log.test_top1,
            "train_s": log.seconds, "steps": log.steps}
    write_text_atomic(path.with_suffix(".json"), json.dumps(info))  # weights last: they mark the entry whole
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    say(f"demo teacher: held-out top-1 {100 * log.test_top1:.2f}% after {log.seconds:.0f} s")
    return model.eval(), info


def _cached_teacher(model: torch.nn.Module, path: Path) -> tuple[torch.nn.Module, dict[str, Any]] | None:
    """``model`` with the cached teacher's weights and its info, or None when there is no entry
    or it does not load (torn by a kill, another format): then it is trained again, from the
    untouched model of the caller."""
    if not path.is_file():
        return None
    try:
        model.load_state_dict(torch.load(path, weights_only=True))
        info = json.loads(path.with_suffix(".json").read_text())
        top1 = float(info["test_top1"])
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError) as err:
        say(f"demo teacher cache {path} does not load ({type(err).__name__}: {str(err)[:120]}); "
            "training it again")
        return None
    say(f"demo teacher loaded from {path} (held-out top-1 {100 * top1:.2f}%)")
    return model, info


def build_space(settings: ViTSettings, teacher: torch.nn.Module, in_chans: int) -> TokenPruneSpace:
    depth = len(teacher.blocks)
    try:
        return TokenPruneSpace(
            model="demo_vit" if settings.model_name == "demo" else settings.model_name,
            img_size=teacher.patch_embed.img_size[0], patch_size=teacher.patch_embed.patch_size[0],
            embed_dim=teacher.embed_dim, depth=depth, num_heads=teacher.blocks[0].attn.num_heads,
            in_chans=in_chans, num_classes=teacher.num_classes, num_prefix_tokens=teacher.num_prefix_tokens,
            stage_choices=(settings.stages or (DEMO_STAGES if settings.model_name == "demo" else default_stages(depth)),),
            stem_chans=_stem_chans(teacher),
            ratio_range=settings.keep_ratio, min_keep=settings.min_keep,
        )
    except ArchError as err:
        raise UserError(f"task (vit): {err}") from None


def _stem_chans(teacher: torch.nn.Module) -> int:
    """Channels of the demo ViT's 3x3 conv stem (0 for timm's plain patch embedding)."""
    stem = getattr(teacher.patch_embed, "stem", None)
    return int(stem[0].out_channels) if stem is not None else 0


def pruned(teacher: torch.nn.Module, arch: Any) -> vit.TokenPrunedViT:
    """A student with fresh selectors on a copy of the teacher's weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return vit.patch_from_arch(copy.deepcopy(teacher), arch).eval()


def vit_objective(space: TokenPruneSpace, teacher: torch.nn.Module, data: ViTData, estimator: LatencyEstimator,
                  budget_ms: float, near_budget: float, recipe: vit.SelectorRecipe,
                  two_objectives: bool) -> ConstrainedObjective:
    """One trial: keep rates -> latency -> constraint -> short selector training (candidates
    within ``near_budget``) -> top-1 on the validation split."""

    def score(arch: Any, report: Any) -> float:  # one fidelity: the selectors train in seconds
        student = pruned(teacher, arch)
        vit.train_selectors(student, teacher, data.train, recipe)
        return 100.0 * vit.evaluate_top1(student, data.val)

    return ConstrainedObjective(sample=space.sample, latency_ms=estimator.latency_ms, score=score,
                                budget_ms=budget_ms, near_budget=near_budget, quality_key="val_top1",
                                two_objectives=two_objectives)


def describe_trial(trial: optuna.trial.FrozenTrial) -> str:
    arch = trial.user_attrs.get("arch") or {}
    rates = ",".join(f"{r:.2f}" for r in arch.get("keep_rates", []))
    lat = trial.user_attrs.get("latency_ms")
    if lat is None:
        return f"#{trial.number}"
    if not trial.user_attrs.get("trained"):
        return f"#{trial.number} keep ({rates}) {lat:.2f} ms (over budget, not trained)"
    return f"#{trial.number} keep ({rates}) {lat:.2f} ms top-1 {trial.user_attrs['val_top1']:.2f}%"
