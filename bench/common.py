"""What the benchmarks share: a model's recipe, real data, the engine's training rate."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from fmnist import formats
from fmnist.datasets import FASHION_MNIST
from fmnist.engine import to_device, train_epoch
from fmnist.models import build_model
from fmnist.optim import make_optimizer
from fmnist.params import Params, Recipe, load_params

DEBIAN = Path(FASHION_MNIST.debian_folder)


def load_params_for(name: str) -> Params:
    """params.yaml with ``model`` set to ``name`` (its recipe becomes ``.recipe``)."""
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["model"] = name
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(raw, f)
    try:
        return load_params(f.name)
    finally:
        Path(f.name).unlink()


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
    return recipe, model, make_optimizer(recipe.optimizer, model.parameters(), recipe.lr)


def sync(device: torch.device) -> None:
    """Wait for the device, so timings cover the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    recipe, model, opt = setup(name, device)
    data = to_device(images, labels, device)
    g = torch.Generator(device=device).manual_seed(0)
    n = recipe.batch_size * steps
    warm = to_device(images[: recipe.batch_size * 3], labels[: recipe.batch_size * 3], device)
    train_epoch(model, opt, warm, recipe.batch_size, recipe.augment, g)
    rates = []
    for r in range(repeats):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(r))[:n]
        sync(device)
        start = time.perf_counter()
        train_epoch(model, opt, data, recipe.batch_size, recipe.augment, g, order=order.to(device))
        sync(device)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)
