"""Load params.yaml into typed objects, checking every value before any work starts.

The data side (``data``, ``prepare``) is :mod:`fmnist.data.params`; this module adds the
model and its recipe (the ``model`` section: ``name`` and how it trains, composed from
conf/model/<name>.yaml), ``train`` and ``evaluate``, and checks the whole file.
The dataclasses' defaults are the one source of defaults: conf/config.yaml spells the
shared ones out (a test keeps them equal), a recipe file only what it changes.

All problems are collected and reported in one error, so a user fixes them in one go
rather than one rerun per typo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmnist.core import kernels
from fmnist.core.config import (
    CONF,
    compose,
    failed_checks,
    raise_problems,
    read_params_file,
    section,
)
from fmnist.data.datasets import DATASETS
from fmnist.data.params import MAX_SEED, DataParams, PrepareParams, parse_data
from fmnist.models import check_arch, list_models
from fmnist.train.augment import Augment
from fmnist.train.device import DEVICES, PORTABLE_BF16, portable_bf16_refused
from fmnist.train.optim import OPTIMIZERS, SCHEDULES

LAUNCHERS = ("python", "torchrun")
TRAIN_ON = ("train", "train+val")
PRECISIONS = ("auto", "fp32", "bf16")


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
    resume: bool = True
    launcher: str = "python"
    nproc: int = 2
    precision: str = "auto"  # auto: bf16 autocast where the GPU or CPU computes in bf16
    reproducible: str = "portable"  # portable: the same result on every x86 CPU; fastest


@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int = 500  # validation and test batches
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
    return params_from(read_params_file(path), str(path))


def params_from(raw: dict[str, Any], source: str) -> Params:
    """Validate params already read (``source`` names them in the error), e.g. params.yaml
    with one key changed by a benchmark; raise one PipelineError listing every problem."""
    problems: list[str] = []
    params = _parse(raw, problems)
    raise_problems(source, problems)
    return params


def selected_recipe(raw: dict[str, Any]) -> tuple[Any, Any]:
    """The model's name and its recipe (a mapping) in params read from params.yaml.

    Experiments made before the recipes moved to conf/model/ hold ``model: <name>`` and
    every recipe under ``models:``; they read the same way, so the leaderboard and the
    comparison report keep working on them."""
    model = raw.get("model")
    if isinstance(model, dict):
        recipe = {k: v for k, v in model.items() if k != "name"}
        return model.get("name"), recipe
    return model, (raw.get("models") or {}).get(model)


def model_recipes(conf: Path = CONF) -> dict[str, dict[str, Any]]:
    """Every recipe in ``conf``/model/, composed as ``-S model=<file>`` composes it."""
    names = sorted(p.stem for p in (Path(conf) / "model").glob("*.yaml"))
    return {name: selected_recipe(compose([f"model={name}"], conf))[1] for name in names}


def _parse(raw: dict[str, Any], problems: list[str]) -> Params:
    data, prepare = parse_data(raw, problems)
    train = section(TrainParams, raw.get("train"), "train", problems)
    evaluate = section(EvaluateParams, raw.get("evaluate"), "evaluate", problems)
    model, recipe_raw = selected_recipe(raw)
    recipe = Recipe()
    if model not in list_models():
        problems.append(
            f"model.name is {model!r}; valid names: {', '.join(list_models())} "
            "(select one with -S model=<name>)"
        )
    elif recipe_raw is None:
        problems.append(f"the recipe of {model} is missing: add conf/model/{model}.yaml")
    else:
        recipe = _recipe(model, recipe_raw, problems)
    _check_values(train, evaluate, problems)
    if not problems and DATASETS[data.dataset].shape != (1, 28, 28):
        problems += _check_shape(str(model), recipe, DATASETS[data.dataset].shape)
    return Params(data, prepare, str(model), recipe, train, evaluate)


def _check_shape(model: str, recipe: Recipe, shape: tuple[int, int, int]) -> list[str]:
    """A model that cannot take the dataset's images says so before any work."""
    problems = check_arch(model, recipe.arch, shape)
    return [f"model {model} cannot take {'x'.join(map(str, shape))} images: {p}" for p in problems]


def _recipe(model: str, raw: Any, problems: list[str]) -> Recipe:
    prefix = "model"
    if not isinstance(raw, dict):
        problems.append(f"{prefix} must be a mapping of recipe keys")
        return Recipe()
    raw = dict(raw)
    augment = section(Augment, raw.pop("augment", None), f"{prefix}.augment", problems)
    arch = raw.pop("arch", None) or {}
    if not isinstance(arch, dict):
        problems.append(f"{prefix}.arch must be a mapping of architecture options")
        arch = {}
    problems += check_arch(model, arch)
    recipe = section(Recipe, raw, prefix, problems)
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
        (0 < r.lr < math.inf, "lr", r.lr, "a positive learning rate, e.g. 0.001"),
        (r.batch_size >= 1, "batch_size", r.batch_size, "at least 1"),
        (r.epochs >= 1, "epochs", r.epochs, "at least 1"),
        (r.patience >= 0, "patience", r.patience, "0 (off) or more epochs"),
        (0 <= r.weight_decay < math.inf, "weight_decay", r.weight_decay, "0 or more"),
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
        (0 <= r.augment.tones <= 1, "augment.tones", r.augment.tones, "0 (off) to 1"),
    ]
    problems += failed_checks(checks, prefix=f"{prefix}.")
    if r.tta and not r.augment.hflip:
        # measured: fastcnn trained without flips fell from 92.63% to 88.74% with flip TTA
        problems.append(f"{prefix}.tta needs {prefix}.augment.hflip: true (or set tta: false)")
    if not 0 <= r.tta_shift <= r.augment.crop_padding:
        # a model never shown shifted images has no reason to agree with itself on them
        problems.append(
            f"{prefix}.tta_shift is {r.tta_shift!r}; use 0 to {prefix}.augment.crop_padding "
            f"({r.augment.crop_padding}), the shifts the model was trained on"
        )


def _check_values(train: TrainParams, evaluate: EvaluateParams, problems: list[str]) -> None:
    if train.precision not in PRECISIONS:
        problems.append(f"train.precision is {train.precision!r}; valid: {', '.join(PRECISIONS)}")
    if train.reproducible not in kernels.MODES:
        problems.append(
            f"train.reproducible is {train.reproducible!r}; valid: {', '.join(kernels.MODES)}"
        )
    elif portable_bf16_refused(train.precision, train.reproducible, train.device):
        problems.append(PORTABLE_BF16)
    if train.launcher not in LAUNCHERS:
        problems.append(f"train.launcher is {train.launcher!r}; valid: {', '.join(LAUNCHERS)}")
    if train.device not in DEVICES:
        problems.append(f"train.device is {train.device!r}; valid: {', '.join(DEVICES)}")
    problems += failed_checks(
        [
            (
                0 <= train.seed <= MAX_SEED - train.nproc,
                "train.seed",
                train.seed,
                f"0 to {MAX_SEED - train.nproc} (each process seeds with it plus its rank)",
            ),
            (train.threads >= 0, "train.threads", train.threads, "0 (all cores) or more"),
            (train.nproc >= 1, "train.nproc", train.nproc, "at least 1 process"),
            (evaluate.batch_size >= 1, "evaluate.batch_size", evaluate.batch_size, "at least 1"),
            (evaluate.grid >= 1, "evaluate.grid", evaluate.grid, "at least 1"),
            (evaluate.most_wrong >= 1, "evaluate.most_wrong", evaluate.most_wrong, "at least 1"),
        ]
    )
