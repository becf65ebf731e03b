"""Super-resolution task library: models, data, metrics, training, evaluation, export.

Plain typed objects; no configuration system and no search logic. Depends on :mod:`spaces` only
(never on ``latency_models`` or ``search``).
"""

from tasks.sr import data, evaluate, export, metrics, models, train
from tasks.sr.data import (
    DEFAULT_EVAL_ROOTS,
    DEFAULT_TRAIN_ROOT,
    DataError,
    EvalImage,
    TrainPatches,
    load_eval_set,
)
from tasks.sr.evaluate import evaluate_sets
from tasks.sr.export import export_onnx, load_weights, save_weights
from tasks.sr.metrics import psnr_y, rgb_to_y, ssim_y
from tasks.sr.models import build_model, num_params
from tasks.sr.train import DivergedError, TrainRecipe, TrainStats

__all__ = [
    "DEFAULT_EVAL_ROOTS",
    "DEFAULT_TRAIN_ROOT",
    "DataError",
    "DivergedError",
    "EvalImage",
    "TrainPatches",
    "TrainRecipe",
    "TrainStats",
    "build_model",
    "data",
    "evaluate",
    "evaluate_sets",
    "export",
    "export_onnx",
    "load_eval_set",
    "load_weights",
    "metrics",
    "models",
    "num_params",
    "psnr_y",
    "rgb_to_y",
    "save_weights",
    "ssim_y",
    "train",
]
