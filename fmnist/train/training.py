"""Training in memory: :func:`train` turns params and splits into a trained model.

The one place that sets training up: threads, device and its kernels, seeds, the model
on the device (DDP-wrapped under torchrun), the autocast precision, then the engine's
fit (optimizer, schedule, EMA, resume) or scikit-learn's. It writes no file: the train
stage (:mod:`fmnist.train.outputs`) adds its files through the hooks, and every
benchmark calls the same function, so a benchmark trains exactly as ``dvc repro`` does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fmnist.core.errors import PipelineError
from fmnist.data.datasets import DATASETS, DatasetSpec
from fmnist.data.prepared import Split
from fmnist.models import build_model
from fmnist.models.classic import ClassicModel
from fmnist.models.summary import summary
from fmnist.train import distributed
from fmnist.train.batches import to_device
from fmnist.train.classic import fit_classic
from fmnist.train.device import (
    autocast_dtype,
    describe,
    keep_freed_memory,
    seed_everything,
    select_device,
    set_threads,
    set_up_kernels,
)
from fmnist.train.engine import fit
from fmnist.train.params import Params
from fmnist.train.records import EpochRecord, FitResult

OnEpoch = Callable[[EpochRecord, nn.Module], None]


@dataclass
class Trained:
    """A finished :func:`train`: the model holding the kept weights, how the fit went,
    and where it ran (what the train stage records beside the figures)."""

    model: nn.Module
    result: FitResult
    spec: DatasetSpec
    device: torch.device
    threads: int
    precision: torch.dtype | None
    world: distributed.World
    train_images: int
    resumed_from_epoch: int

    @property
    def classic(self) -> bool:
        return isinstance(self.model, ClassicModel)


def train(
    params: Params,
    train_split: Split,
    val_split: Split,
    *,
    on_epoch: OnEpoch = lambda record, model: None,
    resume: Callable[[torch.device], dict[str, Any] | None] = lambda device: None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    verbose: bool = True,
) -> Trained:
    """Train ``params.model`` with its recipe on ``train_split`` (with ``val_split`` too
    when the recipe trains on train+val), validating on ``val_split``.

    ``on_epoch`` sees each epoch's record and the model as it would be kept (the EMA's
    weights when the recipe averages them); ``resume(device)`` may return a state saved
    by ``on_checkpoint`` to continue from (the train stage's models/resume.pt).
    ``verbose``: say on stderr what trains where (benchmarks training many short runs
    turn it off).
    """
    spec = DATASETS[params.data.dataset]
    world = distributed.launched_world()
    mode = params.train.reproducible
    threads = set_threads(params.train.threads, share=world.size, reproducible=mode)
    keep_freed_memory()
    device = distributed.init(world, select_device(params.train.device))
    set_up_kernels(mode, device)
    seed_everything(params.train.seed + world.rank)  # dropout differs per process
    model = build_model(params.model, params.recipe.arch, spec.shape, len(spec.classes))
    if isinstance(model, ClassicModel) and world.distributed:
        raise PipelineError(f"{params.model} is fitted in one process; set train.launcher: python")
    model = model.to(device=device, memory_format=memory_format(device))
    if not params.recipe.held_out:
        train_split = train_split + val_split
    state = resume(device)
    (_log if verbose else _quiet)(
        f"training {params.model} on {describe(device)} ({threads} threads"
        f"{f', {world.size} processes' if world.distributed else ''}): "
        f"{len(train_split):,} train / {len(val_split):,} val images"
        f"{'' if params.recipe.held_out else ' (learnt from too: the last epoch is kept)'}, "
        + (
            f"scikit-learn, {params.recipe.arch}"
            if isinstance(model, ClassicModel)
            else f"recipe {recipe_line(params)}"
        )
    )
    precision = autocast_dtype(params.train.precision, device, mode)
    if isinstance(model, ClassicModel):
        result = fit_classic(model, train_split, val_split, params.train.seed, threads)
        on_epoch(result.history[0], model)
        if on_checkpoint is not None:
            on_checkpoint({"epoch": 1, "finished": True})  # nothing to resume
    else:
        result = fit(
            distributed.wrap(model, world, device),
            params.recipe,
            to_device(train_split.images, train_split.labels, device),
            to_device(val_split.images, val_split.labels, device),
            # augmentation differs per process; the shuffle order (seed) is shared by all
            torch.Generator(device=device).manual_seed(params.train.seed + world.rank),
            eval_batch_size=params.evaluate.batch_size,
            on_epoch=on_epoch,
            num_classes=len(spec.classes),
            resume=state,
            on_checkpoint=on_checkpoint if world.is_main else None,
            seed=params.train.seed,
            precision=precision,
        )
        if result.best_epoch:
            model.load_state_dict(result.best_state)
    distributed.shutdown(world)
    return Trained(
        model=model,
        result=result,
        spec=spec,
        device=device,
        threads=threads,
        precision=precision,
        world=world,
        train_images=len(train_split),
        resumed_from_epoch=state["epoch"] if state else 0,
    )


def reference_summary(params: Params) -> str:
    """The summary of the layers as the reference describes them (before
    :func:`~fmnist.models.speedups.speed_up`), built without moving the seeded RNG;
    '' for a classic model, whose layer shapes exist only once fitted."""
    spec = DATASETS[params.data.dataset]
    with torch.random.fork_rng(devices=[]):
        reference = build_model(
            params.model, params.recipe.arch, spec.shape, len(spec.classes), fast=False
        )
    return (
        "" if isinstance(reference, ClassicModel) else summary(reference, spec.shape, params.model)
    )


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last: measured ~1.4x faster for the zoo's convs on CPU (oneDNN)."""
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


def recipe_line(params: Params) -> str:
    r = params.recipe
    return (
        f"{r.optimizer} lr={r.lr:g} batch={r.batch_size} epochs={r.epochs} "
        f"schedule={r.schedule} patience={r.patience or 'off'}"
    )


def _quiet(message: str) -> None:
    """Say nothing (``train(verbose=False)``)."""


def _log(message: str) -> None:
    """Progress on stderr; under DDP only rank 0 speaks."""
    if distributed.launched_world().is_main:
        print(message, file=sys.stderr, flush=True)
