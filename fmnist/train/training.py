"""The train stage's work: prepared splits in, best checkpoint, logs and curves out."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from fmnist.core import kernels, layout, plots
from fmnist.core.atomic import atomic_path, write_json, write_text
from fmnist.core.errors import PipelineError
from fmnist.core.machine import machine_info
from fmnist.data.datasets import DATASETS, DatasetSpec
from fmnist.data.prepared import Split, load_split
from fmnist.models import build_model
from fmnist.models.classic import ClassicModel
from fmnist.models.summary import keras_param_counts, summary
from fmnist.train import distributed
from fmnist.train.batches import to_device
from fmnist.train.checkpoint import save_checkpoint
from fmnist.train.classic import fit_classic
from fmnist.train.device import (
    autocast_dtype,
    describe,
    keep_freed_memory,
    peak_memory_mb,
    seed_everything,
    select_device,
    set_threads,
    set_up_kernels,
)
from fmnist.train.engine import fit
from fmnist.train.params import Params
from fmnist.train.records import EpochRecord, FitResult

RESUME = layout.MODELS / "resume.pt"


@dataclass
class _Run:
    """Everything set up before the first epoch: where, on what, from which state."""

    spec: DatasetSpec
    world: distributed.World
    threads: int
    device: torch.device
    train_split: Split
    val_split: Split
    model: torch.nn.Module  # the model as built (DDP wraps it as ``trained``)
    trained: torch.nn.Module
    generator: torch.Generator
    precision: torch.dtype | None
    fingerprint: str
    resume: dict[str, Any] | None
    summary: str

    @property
    def classic(self) -> bool:
        return isinstance(self.model, ClassicModel)


def run_training(params: Params) -> dict[str, Any]:
    """Train ``params.model`` with its recipe; write the model, summary, logs and curves.

    Three steps a reader can take one at a time: set up (threads, device, seeds, data
    on the device, the model, a resumable state), fit, write the outputs (rank 0 only).
    """
    run = _set_up(params)
    result = _fit(run, params)
    distributed.shutdown(run.world)
    if not run.world.is_main:
        return {}
    return _write_outputs(run, params, result)


def _set_up(params: Params) -> _Run:
    spec = DATASETS[params.data.dataset]
    world = distributed.launched_world()
    mode = params.train.reproducible
    threads = set_threads(params.train.threads, share=world.size, reproducible=mode)
    keep_freed_memory()
    device = distributed.init(world, select_device(params.train.device))
    set_up_kernels(mode, device)
    seed_everything(params.train.seed + world.rank)  # dropout differs per process
    train_split, val_split = _splits(params)
    model = build_model(params.model, params.recipe.arch, spec.shape, len(spec.classes))
    if isinstance(model, ClassicModel) and world.distributed:
        raise PipelineError(f"{params.model} is fitted in one process; set train.launcher: python")
    summary_text = (
        ""
        if isinstance(model, ClassicModel)
        else reference_summary(params, spec.shape, len(spec.classes))
    )
    if world.is_main and summary_text:
        print(summary_text, file=sys.stderr)
    model = model.to(device=device, memory_format=_memory_format(device))
    fingerprint = run_fingerprint(params, device)
    return _Run(
        spec=spec,
        world=world,
        threads=threads,
        device=device,
        train_split=train_split,
        val_split=val_split,
        model=model,
        trained=distributed.wrap(model, world, device),
        # augmentation differs per process; the shuffle order (seed) is shared by all
        generator=torch.Generator(device=device).manual_seed(params.train.seed + world.rank),
        precision=autocast_dtype(params.train.precision, device, mode),
        fingerprint=fingerprint,
        resume=load_resume(fingerprint) if params.train.resume else None,
        summary=summary_text,
    )


def _fit(run: _Run, params: Params) -> FitResult:
    """Fit the model (scikit-learn's fit for a classic one), logging every epoch."""
    train, val = (
        to_device(s.images, s.labels, run.device) for s in (run.train_split, run.val_split)
    )
    _log(
        f"training {params.model} on {describe(run.device)} ({run.threads} threads"
        f"{f', {run.world.size} processes' if run.world.distributed else ''}): "
        f"{len(train):,} train / {len(val):,} val images"
        f"{'' if params.recipe.held_out else ' (learnt from too: the last epoch is kept)'}, "
        + (
            f"scikit-learn, {params.recipe.arch}"
            if run.classic
            else f"recipe {_recipe_line(params)}"
        )
    )
    replay = [EpochRecord(**r) for r in run.resume["history"]] if run.resume else []
    with _LiveLogger(replay, active=run.world.is_main) as log_epoch:
        if run.classic:
            result = fit_classic(
                run.model, run.train_split, run.val_split, params.train.seed, run.threads
            )
            log_epoch(result.history[0])
            save_resume({"epoch": 1, "finished": True}, run.fingerprint)  # nothing to resume
            return result
        return fit(
            run.trained,
            params.recipe,
            train,
            val,
            run.generator,
            eval_batch_size=params.train.eval_batch_size,
            on_epoch=log_epoch,
            num_classes=len(run.spec.classes),
            resume=run.resume,
            on_checkpoint=(lambda state: save_resume(state, run.fingerprint))
            if run.world.is_main
            else None,
            seed=params.train.seed,
            precision=run.precision,
        )


def _write_outputs(run: _Run, params: Params, result: FitResult) -> dict[str, Any]:
    """The checkpoint, summary, learning curves and train.json of a finished fit."""
    held_out = params.recipe.held_out
    if result.best_epoch == 0:
        raise PipelineError(f"{result.stop_reason}; no checkpoint was kept")
    _log(
        f"{result.stop_reason}; "
        + (f"best val accuracy at epoch {result.best_epoch}" if held_out else "last epoch kept")
    )
    summary_text = run.summary
    if run.classic:  # its layer shapes exist only once fitted
        summary_text = summary(run.model, run.spec.shape, params.model)
        print(summary_text, file=sys.stderr)
    save_checkpoint(
        layout.MODEL,
        model_name=params.model,
        arch=params.recipe.arch,
        state_dict=result.best_state,
        classes=run.spec.classes,
        in_shape=run.spec.shape,
        extra={"recipe": _recipe_dict(params), "best_epoch": result.best_epoch},
    )
    write_text(layout.SUMMARY, summary_text)
    history = [asdict(r) for r in result.history]
    plots.learning_curves(
        history, layout.PLOTS / "learning_curves.png", result.best_epoch, held_out
    )
    where = {
        "model": params.model,
        "device": describe(run.device),
        "precision": "bf16" if run.precision == torch.bfloat16 else "fp32",
        "threads": run.threads,
        "processes": run.world.size,
        "resumed_from_epoch": run.resume["epoch"] if run.resume else 0,
        "train_images": len(run.train_split),
        "val_held_out": held_out,  # false: val was trained on, its accuracy is no estimate
        "peak_memory_mb": round(peak_memory_mb(run.device)),  # RSS; on CUDA, tensors allocated
        # another CPU kind computes other last digits: say which one this was, and which
        # kernels ran (`python -m fmnist.review.verify` reads both)
        "machine": machine_info(),
        "kernels": kernels.in_effect(params.train.reproducible),
    }
    info = {"train": where | _outcome(params, result, history, run.model)}
    write_json(layout.TRAIN_JSON, info)
    return info


def _splits(params: Params) -> tuple[Split, Split]:
    """The train and val splits; with ``train_on: train+val`` the first holds both."""
    train, val = (load_split(layout.split_path(s)) for s in ("train", "val"))
    return (train, val) if params.recipe.held_out else (train + val, val)


def _outcome(
    params: Params, result: FitResult, history: list[dict[str, Any]], model: torch.nn.Module
) -> dict[str, Any]:
    """What train.json says of the run beside where it ran: recipe knobs, epochs, time."""
    seconds = sum(h["seconds"] for h in history)  # epochs of earlier, resumed sessions too
    trainable, non_trainable = keras_param_counts(model)
    return {
        "epochs_run": len(history),
        # the recipe's main knobs, so `dvc exp show` has one column each for every model
        "optimizer": params.recipe.optimizer,
        "lr": params.recipe.lr,
        "batch_size": params.recipe.batch_size,
        "max_epochs": params.recipe.epochs,
        "best_epoch": result.best_epoch,
        "best_val_accuracy": _rounded(result.kept_val_accuracy),  # of the epoch kept
        "stop_reason": result.stop_reason,
        "seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / len(history), 3),
        "params": {"total": trainable + non_trainable, "trainable": trainable},
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def reference_summary(params: Params, shape: tuple[int, int, int], classes: int) -> str:
    """The summary of the layers as the reference describes them (before
    :func:`~fmnist.models.speedups.speed_up`), built without moving the seeded RNG."""
    with torch.random.fork_rng(devices=[]):
        reference = build_model(params.model, params.recipe.arch, shape, classes, fast=False)
    return summary(reference, shape, params.model)


def _memory_format(device: torch.device) -> torch.memory_format:
    """channels_last: measured ~1.4x faster for the zoo's convs on CPU (oneDNN)."""
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


def _recipe_dict(params: Params) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(params.recipe)))


def _recipe_line(params: Params) -> str:
    r = params.recipe
    return (
        f"{r.optimizer} lr={r.lr:g} batch={r.batch_size} epochs={r.epochs} "
        f"schedule={r.schedule} patience={r.patience or 'off'}"
    )


def run_fingerprint(params: Params, device: torch.device) -> str:
    """What a resumable checkpoint must match: model, recipe, seed, device type and data."""
    digest = hashlib.sha256()
    key = {
        "model": params.model,
        "recipe": _recipe_dict(params),
        "seed": params.train.seed,
        "device": device.type,
        "precision": params.train.precision,
        "reproducible": params.train.reproducible,
        "dataset": params.data.dataset,
    }
    digest.update(json.dumps(key, sort_keys=True).encode())
    for split in ("train", "val"):
        with open(layout.split_path(split), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def load_resume(fingerprint: str) -> dict[str, Any] | None:
    """The unfinished training state in models/resume.pt, if it belongs to this run."""
    if not RESUME.is_file():
        return None
    try:
        saved = torch.load(RESUME, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable checkpoint means: start fresh, and say so
        _log(f"{RESUME} is unreadable ({exc}); starting fresh")
        return None
    if saved.get("fingerprint") != fingerprint:
        _log(f"{RESUME} belongs to other params or data; starting fresh")
        return None
    if saved["state"]["finished"]:
        return None  # a finished run is not resumed: running again means retraining
    _log(
        f"resuming after epoch {saved['state']['epoch']} from {RESUME} "
        "(set train.resume: false to start fresh)"
    )
    return saved["state"]


def save_resume(state: dict[str, Any], fingerprint: str) -> None:
    """Write the training state after an epoch, atomically (a kill never leaves half)."""
    with atomic_path(RESUME) as tmp:
        torch.save({"fingerprint": fingerprint, "state": state}, tmp)


class _LiveLogger:
    """DVCLive for per-epoch metrics (dvc plots), plus one readable line per epoch.

    A resumed run starts DVCLive afresh and replays the epochs its checkpoint holds, so
    the TSVs always agree with the checkpoint: a kill between an epoch's log line and its
    checkpoint would otherwise leave that epoch logged twice.
    """

    def __init__(self, replay: list[EpochRecord], active: bool = True) -> None:
        self.replay = replay
        self.active = active  # DDP: only rank 0 logs
        self.live = None

    def __enter__(self) -> Callable[[EpochRecord], None]:
        from dvclive import Live

        if not self.active:
            return lambda record: None
        layout.LIVE.mkdir(parents=True, exist_ok=True)
        self.live = Live(
            str(layout.LIVE), dvcyaml=None, save_dvc_exp=False, report=None, resume=False
        )
        for record in self.replay:
            self._log_metrics(record)
        return self._log_epoch

    def _log_metrics(self, r: EpochRecord) -> list[tuple[str, float, float]]:
        splits = [("train", r.train_loss, r.train_accuracy)]
        if r.val_accuracy is not None:  # not validated: no point, not a fake one
            splits.append(("val", r.val_loss, r.val_accuracy))
        for split, loss, acc in splits:
            self.live.log_metric(f"{split}/loss", round(loss, 6), plot=True)
            self.live.log_metric(f"{split}/accuracy", round(acc, 6), plot=True)
        self.live.next_step()
        return splits

    def _log_epoch(self, r: EpochRecord) -> None:
        splits = self._log_metrics(r)
        figures = " | ".join(f"{s} loss {loss:.4f} acc {acc:.4f}" for s, loss, acc in splits)
        _log(f"epoch {r.epoch}: {figures} | {r.seconds:.1f}s")

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.end()


def _log(message: str) -> None:
    """Progress on stderr; under DDP only rank 0 speaks."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(message, file=sys.stderr, flush=True)
