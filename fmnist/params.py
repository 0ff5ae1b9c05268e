"""Load params.yaml into typed objects, checking every value before any work starts.

All problems are collected and reported in one error, so a user fixes them in one go
rather than one rerun per typo.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from fmnist.augment import Augment
from fmnist.datasets import DATASETS
from fmnist.device import DEVICES
from fmnist.errors import PipelineError
from fmnist.models import build_model, check_arch, list_models
from fmnist.optim import OPTIMIZERS, SCHEDULES
from fmnist.sources import SOURCES

LAUNCHERS = ("python", "torchrun")
TRAIN_ON = ("train", "train+val")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class DataParams:
    dataset: str = "fashion-mnist"
    source: str = "auto"
    folder: str = ""
    url: str = ""


@dataclass(frozen=True)
class PrepareParams:
    val_size: int = 10000
    seed: int = 42
    train_limit: int = 0
    test_limit: int = 0


@dataclass(frozen=True)
class Recipe:
    """How one model trains: all of it data, none of it code."""

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 15
    patience: int = 0
    weight_decay: float = 0.0
    momentum: float = 0.0
    nesterov: bool = False
    decay_norms: bool = True  # false: no weight decay on biases and norm weights
    label_smoothing: float = 0.0
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0: off
    tta: bool = False  # evaluate with flip test-time augmentation (needs augment.hflip)
    # also average copies shifted this many pixels (needs augment.crop_padding >= it)
    tta_shift: int = 0
    schedule: str = "none"
    warmup: float = 0.0
    # "train+val": also learn from the validation split, for a recipe whose schedule is
    # fixed in advance; nothing is held out, so the last epoch is kept (no selection)
    train_on: str = "train"
    augment: Augment = field(default_factory=Augment)
    arch: dict[str, Any] = field(default_factory=dict)

    @property
    def held_out(self) -> bool:
        """Whether the validation split stays unseen, so it can pick the best epoch."""
        return self.train_on == "train"


@dataclass(frozen=True)
class TrainParams:
    seed: int = 42
    device: str = "auto"
    threads: int = 0
    eval_batch_size: int = 2000
    resume: bool = True
    launcher: str = "python"
    nproc: int = 2
    precision: str = "auto"  # auto: bf16 autocast where the GPU or CPU computes in bf16


@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int = 2000
    tta: bool = False  # average the predictions of each image and its mirror image
    grid: int = 15
    most_wrong: int = 15


@dataclass(frozen=True)
class Params:
    data: DataParams
    prepare: PrepareParams
    model: str
    recipe: Recipe
    train: TrainParams
    evaluate: EvaluateParams


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``path``; raise one PipelineError listing every problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineError(f"cannot read {path}: {exc}".replace("\n", " ")) from None
    return params_from(raw, str(path))


def params_from(raw: dict[str, Any], source: str) -> Params:
    """Validate params already read (``source`` names them in the error), e.g. params.yaml
    with one key changed by a benchmark; raise one PipelineError listing every problem."""
    problems: list[str] = []
    params = _parse(raw, problems)
    if problems:
        raise PipelineError(f"{source}: {len(problems)} problem(s): " + "; ".join(problems))
    return params


def _parse(raw: dict[str, Any], problems: list[str]) -> Params:
    data = _section(DataParams, raw.get("data"), "data", problems)
    prepare = _section(PrepareParams, raw.get("prepare"), "prepare", problems)
    train = _section(TrainParams, raw.get("train"), "train", problems)
    evaluate = _section(EvaluateParams, raw.get("evaluate"), "evaluate", problems)
    model = raw.get("model")
    recipe = Recipe()
    if model not in list_models():
        problems.append(f"model is {model!r}; valid names: {', '.join(list_models())}")
    else:
        recipe_raw = (raw.get("models") or {}).get(model)
        if recipe_raw is None:
            problems.append(f"models.{model} is missing: add the model's recipe to params.yaml")
        else:
            recipe = _recipe(model, recipe_raw, problems)
    _check_values(data, prepare, train, evaluate, problems)
    if not problems and DATASETS[data.dataset].shape != (1, 28, 28):
        problems += _check_shape(str(model), recipe, DATASETS[data.dataset].shape)
    return Params(data, prepare, str(model), recipe, train, evaluate)


def _check_shape(model: str, recipe: Recipe, shape: tuple[int, int, int]) -> list[str]:
    """A model that cannot take the dataset's images says so before any work."""
    try:
        build_model(model, recipe.arch, shape)
    except PipelineError as exc:
        return [f"model {model} cannot take {'x'.join(map(str, shape))} images: {exc}"]
    return []


def _section(cls: type, raw: Any, name: str, problems: list[str]) -> Any:
    """Build dataclass ``cls`` from dict ``raw``, noting unknown keys and wrong types."""
    raw = raw or {}
    if not isinstance(raw, dict):
        problems.append(f"{name} must be a mapping, not {type(raw).__name__}")
        return cls()
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            problems.append(f"{name}.{key} is not a known param; valid: {', '.join(known)}")
            continue
        default = known[key].default
        if isinstance(default, (int, float, str)) and not _same_type(value, default):
            problems.append(f"{name}.{key} is {value!r}; expected a {type(default).__name__}")
            continue
        values[key] = float(value) if isinstance(default, float) else value
    return cls(**values)


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(value, bool) != isinstance(default, bool):
        return False
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _recipe(model: str, raw: Any, problems: list[str]) -> Recipe:
    prefix = f"models.{model}"
    if not isinstance(raw, dict):
        problems.append(f"{prefix} must be a mapping of recipe keys")
        return Recipe()
    raw = dict(raw)
    augment = _section(Augment, raw.pop("augment", None), f"{prefix}.augment", problems)
    arch = raw.pop("arch", None) or {}
    if not isinstance(arch, dict):
        problems.append(f"{prefix}.arch must be a mapping of architecture options")
        arch = {}
    problems += check_arch(model, arch)
    recipe = _section(Recipe, raw, prefix, problems)
    recipe = Recipe(**{**recipe.__dict__, "augment": augment, "arch": arch})
    _check_recipe(prefix, recipe, problems)
    return recipe


def _check_recipe(prefix: str, r: Recipe, problems: list[str]) -> None:
    if r.optimizer not in OPTIMIZERS:
        problems.append(f"{prefix}.optimizer is {r.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    if r.schedule not in SCHEDULES:
        problems.append(f"{prefix}.schedule is {r.schedule!r}; valid: {', '.join(SCHEDULES)}")
    if r.train_on not in TRAIN_ON:
        problems.append(f"{prefix}.train_on is {r.train_on!r}; valid: {', '.join(TRAIN_ON)}")
    elif not r.held_out and r.patience:
        problems.append(
            f"{prefix}.patience needs held-out validation images; with train_on: "
            f"{r.train_on} set patience: 0 (or train_on: train)"
        )
    checks = [
        (0 <= r.warmup < 1, "warmup", r.warmup, "a fraction of the steps in [0, 1)"),
        (r.lr > 0, "lr", r.lr, "a positive learning rate, e.g. 0.001"),
        (r.batch_size >= 1, "batch_size", r.batch_size, "at least 1"),
        (r.epochs >= 1, "epochs", r.epochs, "at least 1"),
        (r.patience >= 0, "patience", r.patience, "0 (off) or more epochs"),
        (r.weight_decay >= 0, "weight_decay", r.weight_decay, "0 or more"),
        (0 <= r.momentum < 1, "momentum", r.momentum, "in [0, 1)"),
        (0 <= r.label_smoothing < 1, "label_smoothing", r.label_smoothing, "in [0, 1)"),
        (0 <= r.ema < 1, "ema", r.ema, "0 (off) or a decay in (0, 1), e.g. 0.999"),
        (
            0 <= r.augment.crop_padding <= 8,
            "augment.crop_padding",
            r.augment.crop_padding,
            "0-8 pixels",
        ),
        (0 <= r.augment.erasing <= 1, "augment.erasing", r.augment.erasing, "a probability"),
        (0 <= r.augment.shift < 0.5, "augment.shift", r.augment.shift, "a fraction in [0, 0.5)"),
        (0 <= r.augment.rotation <= 180, "augment.rotation", r.augment.rotation, "0-180 degrees"),
        (0 <= r.augment.zoom < 1, "augment.zoom", r.augment.zoom, "a fraction in [0, 1)"),
    ]
    problems += [f"{prefix}.{k} is {v!r}; use {fix}" for ok, k, v, fix in checks if not ok]
    if r.tta and not r.augment.hflip:
        # measured: fastcnn trained without flips fell from 92.63% to 88.74% with flip TTA
        problems.append(f"{prefix}.tta needs {prefix}.augment.hflip: true (or set tta: false)")
    if not 0 <= r.tta_shift <= r.augment.crop_padding:
        # a model never shown shifted images has no reason to agree with itself on them
        problems.append(
            f"{prefix}.tta_shift is {r.tta_shift!r}; use 0 to {prefix}.augment.crop_padding "
            f"({r.augment.crop_padding}), the shifts the model was trained on"
        )


def _check_values(
    data: DataParams,
    prepare: PrepareParams,
    train: TrainParams,
    evaluate: EvaluateParams,
    problems: list[str],
) -> None:
    if data.dataset not in DATASETS:
        problems.append(f"data.dataset is {data.dataset!r}; valid: {', '.join(DATASETS)}")
    if data.source not in SOURCES:
        problems.append(f"data.source is {data.source!r}; valid: {', '.join(SOURCES)}")
    if train.precision not in PRECISIONS:
        problems.append(f"train.precision is {train.precision!r}; valid: {', '.join(PRECISIONS)}")
    if train.launcher not in LAUNCHERS:
        problems.append(f"train.launcher is {train.launcher!r}; valid: {', '.join(LAUNCHERS)}")
    if train.device not in DEVICES:
        problems.append(f"train.device is {train.device!r}; valid: {', '.join(DEVICES)}")
    checks = [
        (prepare.val_size >= 1, "prepare.val_size", prepare.val_size, "at least 1"),
        (prepare.train_limit >= 0, "prepare.train_limit", prepare.train_limit, "0 (all) or more"),
        (prepare.test_limit >= 0, "prepare.test_limit", prepare.test_limit, "0 (all) or more"),
        (train.threads >= 0, "train.threads", train.threads, "0 (all cores) or more"),
        (train.nproc >= 1, "train.nproc", train.nproc, "at least 1 process"),
        (train.eval_batch_size >= 1, "train.eval_batch_size", train.eval_batch_size, "at least 1"),
        (evaluate.batch_size >= 1, "evaluate.batch_size", evaluate.batch_size, "at least 1"),
        (evaluate.grid >= 1, "evaluate.grid", evaluate.grid, "at least 1"),
        (evaluate.most_wrong >= 1, "evaluate.most_wrong", evaluate.most_wrong, "at least 1"),
    ]
    problems += [f"{k} is {v!r}; use {fix}" for ok, k, v, fix in checks if not ok]
