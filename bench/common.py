"""What the benchmarks share: a model's recipe, real data, the engine's training rate."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from fmnist.core.atomic import write_json, write_text
from fmnist.core.machine import provenance
from fmnist.data import formats
from fmnist.data.datasets import FASHION_MNIST
from fmnist.models import build_model, list_models
from fmnist.models.classic import ClassicModel
from fmnist.review.docs import render_result
from fmnist.train.batches import to_device
from fmnist.train.device import autocast_dtype, keep_freed_memory, kernel_mode_in_effect
from fmnist.train.engine import fit, recipe_optimizer, train_epoch
from fmnist.train.inference import predict_logits
from fmnist.train.params import Params, Recipe, params_from
from fmnist.train.records import EpochRecord

DEBIAN = Path(FASHION_MNIST.debian_folder)


def load_params_for(name: str) -> Params:
    """params.yaml with ``model`` set to ``name`` (its recipe becomes ``.recipe``)."""
    raw = yaml.safe_load(Path("params.yaml").read_text())
    return params_from(raw | {"model": name}, f"params.yaml with model {name!r}")


def real_data(n: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` images of Debian's Fashion-MNIST ``split``."""
    prefix = "train" if split == "train" else "t10k"
    images = formats.read_idx(DEBIAN / f"{prefix}-images-idx3-ubyte.gz")[:n]
    labels = formats.read_idx(DEBIAN / f"{prefix}-labels-idx1-ubyte.gz")[:n].astype(np.int64)
    return images, labels


def setup(
    name: str, device: torch.device, tuned: bool = True
) -> tuple[Recipe, nn.Module, torch.optim.Optimizer]:
    """Model ``name`` (seeded) on ``device`` with its recipe's optimizer: as the train
    stage runs it (``tuned``: rewritten layers, channels_last), or exactly as the
    reference describes it in the default memory format (the plain baseline)."""
    recipe = load_params_for(name).recipe
    torch.manual_seed(0)
    fmt = torch.channels_last if tuned else torch.contiguous_format
    model = build_model(name, recipe.arch, fast=tuned).to(device, memory_format=fmt)
    return recipe, model, recipe_optimizer(recipe, model, fast=tuned)


def write_results(
    out: Path | None,
    payload: dict[str, Any],
    *,
    title: str,
    about: str,
    columns: list[tuple[str, ...]],
) -> None:
    """``<out>.json`` (the figures, the command that made them, the date and the machine)
    and ``<out>.md`` rendered from it by :mod:`fmnist.review.docs`; nothing when ``out``
    is None. The docs embed the JSON's table through the same renderer."""
    if out is None:
        return
    result = {"title": title, "about": about, "columns": columns, **payload, **provenance()}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), result)
    write_text(out.with_suffix(".md"), render_result(result))


def precision_for(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype the train stage would use for ``name`` on ``device`` (bf16 on
    a CUDA GPU or CPU that computes in it natively, fp32 elsewhere: see
    :func:`fmnist.train.device.autocast_dtype`), so the benchmark times what users run."""
    return autocast_dtype(load_params_for(name).train.precision, device, kernel_mode_in_effect())


def neural_models() -> list[str]:
    """Every registered model that trains by gradient steps: the classic baselines are
    fitted by scikit-learn in one go, so they have no epochs or steps to time."""
    return [name for name in list_models() if not isinstance(build_model(name), ClassicModel)]


def precision_label(device: torch.device) -> str:
    """How the train stage computes on ``device`` with params.yaml's ``train.precision``,
    for a table's header: timings in bf16 and fp32 are not comparable."""
    precision = autocast_dtype(
        load_params_for(list_models()[0]).train.precision, device, kernel_mode_in_effect()
    )
    return "bf16 autocast" if precision == torch.bfloat16 else "fp32"


def sync(device: torch.device) -> None:
    """Wait for the device, so timings cover the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_loop(
    name: str, images: np.ndarray, labels: np.ndarray, device: torch.device
) -> Callable[[int, int], int]:
    """The train stage's loop for ``name`` on ``images``, warmed up: ``run(steps, seed)``
    trains ``steps`` batches of a seeded random order and returns how many images it
    trained on. Like the train stage it keeps freed memory in the process
    (:func:`~fmnist.train.device.keep_freed_memory`), for the rest of the process: a plain
    baseline to compare with runs in a process of its own (``bench/speed.py``)."""
    keep_freed_memory()
    recipe, model, opt = setup(name, device)
    data = to_device(images, labels, device)
    g = torch.Generator(device=device).manual_seed(0)
    precision = precision_for(name, device)

    def run(steps: int, seed: int) -> int:
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        order = order[: recipe.batch_size * steps].to(device)
        train_epoch(
            model,
            opt,
            data,
            batch_size=recipe.batch_size,
            aug=recipe.augment,
            generator=g,
            order=order,
            precision=precision,
        )
        sync(device)
        return len(order)

    run(3, 0)
    return run


def engine_rate(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    repeats: int,
    device: torch.device,
) -> float:
    """Training images/s of the train stage's loop: median of ``repeats`` timed runs of
    ``steps`` steps, after a warm-up."""
    run = training_loop(name, images, labels, device)
    return median_rate(lambda r: run(steps, r), repeats)


def images_per_second(run: Callable[..., int], *args: int) -> float:
    """Images/s of one call ``run(*args)``, which trains and returns how many images it
    trained on (after waiting for the device)."""
    start = time.perf_counter()
    seen = run(*args)
    return seen / (time.perf_counter() - start)


def median_rate(run: Callable[[int], int], repeats: int) -> float:
    """Median :func:`images_per_second` over ``repeats`` calls of ``run(repeat)``."""
    return statistics.median(images_per_second(run, r) for r in range(repeats))


def busy_fraction(
    name: str, images: np.ndarray, labels: np.ndarray, steps: int, device: torch.device
) -> float:
    """Share of the wall time of ``steps`` training steps that the device spends in
    PyTorch's kernels: on CUDA, the summed duration of the GPU kernels; on a CPU, the
    time the calling thread spends inside operators. The rest is Python, kernel launches
    and waiting, the overhead a faster engine has to remove. Measured under the profiler,
    which adds a little overhead of its own, so the figure is a slight underestimate."""
    run = training_loop(name, images, labels, device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        run(steps, 0)
        wall = time.perf_counter() - start
    kind = DeviceType.CUDA if device.type == "cuda" else DeviceType.CPU
    events = [e for e in prof.key_averages() if e.device_type == kind]
    if kind == DeviceType.CUDA:
        busy_us = sum(e.self_device_time_total for e in events)
    else:
        busy_us = sum(e.self_cpu_time_total for e in events)
    return busy_us / 1e6 / wall


def time_to_accuracy(
    name: str, target: float, device: torch.device, tiny: bool = False
) -> tuple[float | None, float, float]:
    """Train ``name`` with its recipe on the full training data and score the test set
    after every epoch as the evaluate stage does (the recipe's test-time augmentation):
    (training seconds until accuracy >= ``target``, or None; all training seconds; the
    best accuracy). ``tiny``: one epoch on 1,000 images, to check the code only."""
    recipe, model, _ = setup(name, device)
    n_train, n_test = (1_000, 500) if tiny else (50_000 if recipe.held_out else 60_000, 10_000)
    if tiny:
        recipe = replace(recipe, epochs=1)
    train = to_device(*real_data(n_train), device)
    test = to_device(*real_data(n_test, "test"), device)
    precision = precision_for(name, device)
    elapsed, reached, best = 0.0, None, 0.0

    def check(record: EpochRecord) -> None:
        nonlocal elapsed, reached, best
        elapsed += record.seconds
        logits = predict_logits(
            model, test, 500, recipe.tta, precision=precision, tta_shift=recipe.tta_shift
        )
        accuracy = (logits.argmax(1) == test.labels).float().mean().item()
        best = max(best, accuracy)
        if reached is None and accuracy >= target:
            reached = elapsed

    generator = torch.Generator(device=device).manual_seed(0)
    fit(
        model,
        recipe,
        train,
        test,
        generator,
        eval_batch_size=500,
        on_epoch=check,
        precision=precision,
    )
    return (None if reached is None else round(reached, 2)), elapsed, round(best, 4)
