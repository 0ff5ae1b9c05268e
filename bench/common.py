"""What the benchmarks share: params as ``dvc exp run -S`` composes them, real data,
training through the train stage's own function, and one way of writing results.

Every figure of the engine comes from :func:`fmnist.train.training.train`, the function
the train stage calls: a benchmark trains exactly as ``dvc repro`` does, by construction.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from fmnist.core.atomic import write_json, write_text
from fmnist.core.config import compose
from fmnist.core.machine import provenance
from fmnist.data import formats
from fmnist.data.datasets import FASHION_MNIST
from fmnist.data.prepared import Split
from fmnist.models import build_model, list_models
from fmnist.models.classic import ClassicModel
from fmnist.review.docs import render_result
from fmnist.train.batches import to_device
from fmnist.train.device import autocast_dtype
from fmnist.train.inference import predict_logits
from fmnist.train.params import Params, params_from
from fmnist.train.records import EpochRecord
from fmnist.train.training import Trained, train

DEBIAN = Path(FASHION_MNIST.debian_folder)
EPOCH_IMAGES = 50_000  # the default split's training images: what "an epoch" means here


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--set`` and ``--out``, the same in every tool."""
    parser.add_argument(
        "--set",
        "-S",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting, spelt as for `dvc exp run -S` (e.g. train.reproducible=fastest)",
    )
    parser.add_argument("--out", type=Path, help="write <out>.json and <out>.md")


def step_count(text: str) -> int:
    """An argparse type: a timed run of at least 10 steps (fewer time the warm-up, not
    the loop)."""
    value = int(text)
    if value < 10:
        raise argparse.ArgumentTypeError(f"{value} steps; use at least 10")
    return value


def bench_params(name: str, overrides: Sequence[str] = ()) -> Params:
    """params.yaml as ``dvc exp run -S model=<name> -S <overrides>`` would compose it."""
    raw = compose([f"model={name}", *overrides])
    return params_from(raw, f"conf/ with model={name} {' '.join(overrides)}".strip())


def real_data(n: int, split: str = "train") -> Split:
    """The first ``n`` images of Debian's Fashion-MNIST ``split``."""
    prefix = "train" if split == "train" else "t10k"
    images = formats.read_idx(DEBIAN / f"{prefix}-images-idx3-ubyte.gz")[:n]
    labels = formats.read_idx(DEBIAN / f"{prefix}-labels-idx1-ubyte.gz")[:n].astype(np.int64)
    return Split(images, labels)


def neural_models() -> list[str]:
    """Every registered model that trains by gradient steps: the classic baselines are
    fitted by scikit-learn in one go, so they have no epochs or steps to time."""
    return [name for name in list_models() if not isinstance(build_model(name), ClassicModel)]


def sync(device: torch.device) -> None:
    """Wait for the device, so timings cover the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_steps(
    name: str,
    data: Split,
    steps: int,
    seed: int = 0,
    epochs: int = 1,
    overrides: Sequence[str] = (),
    on_epoch: Callable[[EpochRecord, torch.nn.Module], None] = lambda record, model: None,
) -> Trained:
    """``epochs`` epochs of ``steps`` batches each (a seeded sample of ``data``), trained
    by the train stage's function with ``name``'s recipe; validation on 10 images."""
    params = bench_params(name, [f"model.epochs={epochs}", f"train.seed={seed}", *overrides])
    order = np.random.default_rng(seed).permutation(len(data))[: params.recipe.batch_size * steps]
    sample = Split(data.images[order], data.labels[order])
    val = Split(data.images[:10], data.labels[:10])
    if not params.recipe.held_out:  # train() trains on train+val: keep `steps` batches
        sample = Split(sample.images[10:], sample.labels[10:])
    return train(params, sample, val, on_epoch=on_epoch, verbose=False)


def training_rate(name: str, data: Split, steps: int, seed: int = 0, **kw: Any) -> float:
    """Training images/s of ``steps`` batches: the epoch's own seconds, so model building
    and moving the data to the device are not counted (validation on 10 images is)."""
    trained = train_steps(name, data, steps, seed, **kw)
    return trained.train_images / trained.result.history[-1].seconds


def engine_rate(name: str, data: Split, steps: int, repeats: int, **kw: Any) -> float:
    """Median :func:`training_rate` over ``repeats`` seeds, after one untimed warm-up."""
    training_rate(name, data, 10, **kw)
    return statistics.median(training_rate(name, data, steps, r, **kw) for r in range(repeats))


def busy_fraction(name: str, data: Split, steps: int, **kw: Any) -> float:
    """Share of the wall time of an epoch of ``steps`` steps that the device spends in
    PyTorch's kernels: on CUDA, the summed duration of the GPU kernels; on a CPU, the
    time the calling thread spends inside operators. The rest is Python, kernel launches
    and waiting, the overhead a faster engine has to remove. The second epoch is profiled
    (the first warms up), under a profiler that adds a little overhead of its own."""
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    activities = [ProfilerActivity.CPU]
    if device_type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    prof = profile(activities=activities)
    started: list[float] = []

    def on_epoch(record: EpochRecord, model: torch.nn.Module) -> None:
        if record.epoch == 1:
            prof.start()
            started.append(time.perf_counter())

    trained = train_steps(name, data, steps, epochs=2, on_epoch=on_epoch, **kw)
    sync(trained.device)
    wall = time.perf_counter() - started[0]
    prof.stop()
    kind = DeviceType.CUDA if trained.device.type == "cuda" else DeviceType.CPU
    events = [e for e in prof.key_averages() if e.device_type == kind]
    if kind == DeviceType.CUDA:
        busy_us = sum(e.self_device_time_total for e in events)
    else:
        busy_us = sum(e.self_cpu_time_total for e in events)
    return busy_us / 1e6 / wall


def time_to_accuracy(
    name: str, target: float, tiny: bool = False, overrides: Sequence[str] = ()
) -> tuple[float | None, float, float]:
    """Train ``name`` with its recipe, as the train stage does, on Debian's training
    images and score the test set after every epoch as the evaluate stage does (the
    recipe's test-time augmentation): (training seconds until accuracy >= ``target``, or
    None; all training seconds; the best accuracy). ``tiny``: one epoch on 1,000 images,
    to check the code only."""
    params = bench_params(name, ["model.epochs=1"] if tiny else overrides)
    data, test = real_data(1_000 if tiny else 60_000), real_data(500 if tiny else 10_000, "test")
    cut = len(data) * 5 // 6  # 50,000 train, 10,000 val; train+val recipes learn from both
    train_split = Split(data.images[:cut], data.labels[:cut])
    val = Split(data.images[cut:], data.labels[cut:])
    elapsed, reached, best = 0.0, None, 0.0

    def check(record: EpochRecord, model: torch.nn.Module) -> None:
        nonlocal elapsed, reached, best
        elapsed += record.seconds
        device = next(model.parameters()).device
        scored = to_device(test.images, test.labels, device)
        logits = predict_logits(
            model,
            scored,
            params.evaluate.batch_size,
            params.recipe.tta,
            autocast_dtype(params.train.precision, device, params.train.reproducible),
            params.recipe.tta_shift,
        )
        accuracy = (logits.argmax(1) == scored.labels).float().mean().item()
        best = max(best, accuracy)
        if reached is None and accuracy >= target:
            reached = elapsed

    train(params, train_split, val, on_epoch=check, verbose=False)
    return (None if reached is None else round(reached, 2)), elapsed, round(best, 4)


def write_results(
    out: Path | None,
    payload: dict[str, Any],
    *,
    title: str,
    about: str,
    columns: list[tuple[str, ...]],
) -> None:
    """``<out>.json`` (the figures, the command that made them, the git commit, the
    date and the machine) and ``<out>.md`` rendered from it by :mod:`fmnist.review.docs`;
    nothing when ``out`` is None. The docs embed the JSON's table through the same
    renderer."""
    if out is None:
        return
    result = {"title": title, "about": about, "columns": columns, **payload, **provenance()}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), result)
    write_text(out.with_suffix(".md"), render_result(result))
