"""The train stage's files around :func:`~fmnist.train.training.train`: the resumable
state after every epoch (models/resume.pt), DVCLive's per-epoch logs, and at the end the
checkpoint, the summary, the learning curves and metrics/train.json (rank 0 only)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmnist.core import kernels, layout, plots
from fmnist.core.atomic import atomic_group, atomic_path, write_json, write_text
from fmnist.core.errors import PipelineError
from fmnist.core.machine import machine_info
from fmnist.data.prepared import load_split
from fmnist.models.summary import keras_param_counts, summary
from fmnist.train import distributed
from fmnist.train.checkpoint import save_checkpoint
from fmnist.train.device import describe, peak_memory_mb
from fmnist.train.params import Params
from fmnist.train.records import EpochRecord, FitResult
from fmnist.train.training import Trained, reference_summary, train

RESUME = layout.MODELS / "resume.pt"


def run_training(params: Params) -> dict[str, Any]:
    """Train ``params.model`` with its recipe on the prepared splits; write the model,
    summary, logs and curves. Returns train.json's content ({} on DDP ranks but 0)."""
    is_main = distributed.launched_world().is_main
    if is_main:
        hold_training_lock()
    summary_text = reference_summary(params)
    if is_main and summary_text:
        print(summary_text, file=sys.stderr)
    train_split, val_split = (load_split(layout.split_path(s)) for s in ("train", "val"))
    saved = ResumeFile(params)
    # every output appears together at the end, or (a crash, divergence, a full disk)
    # none does and the last good run's stay: they are `persist` outputs in dvc.yaml
    with atomic_group() as stage:
        with LiveLogger(stage(layout.LIVE), active=is_main) as live:

            def resume(device: torch.device) -> dict[str, Any] | None:
                state = saved.load(device)
                live.replay([EpochRecord(**r) for r in state["history"]] if state else [])
                return state

            trained = train(
                params,
                train_split,
                val_split,
                on_epoch=live.log_epoch,
                resume=resume,
                on_checkpoint=saved.save,
            )
        return write_outputs(trained, params, summary_text, stage) if is_main else {}


LOCK = layout.MODELS / ".train.lock"
_held: dict[Path, Any] = {}  # open lock files, by path: held for the rest of this process


def hold_training_lock() -> None:
    """One training run at a time writes models/: a second one (another ``dvc exp run``
    in this workspace, or a stage left running) is refused before it touches anything,
    and never adopts the checkpoint a live run is writing. The lock is the kernel's, so
    it ends with its process, however that ends."""
    import fcntl

    where = LOCK.resolve()
    if where in _held:  # this process holds it already (a notebook training twice)
        return
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    handle = open(LOCK, "a+")  # noqa: SIM115 (held open on purpose, for the process)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise PipelineError(
            f"another training run ({owner}) is writing {layout.MODELS}/ in this "
            "workspace; wait for it to end or stop it, and run several experiments with "
            "`dvc exp run --queue` or `--temp`"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    _held[where] = handle


class ResumeFile:
    """models/resume.pt: the training state after the last epoch, adopted only by a run
    of the same model, recipe, seed, device type and data (its fingerprint)."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.fingerprint = ""

    def load(self, device: torch.device) -> dict[str, Any] | None:
        """The unfinished state of this run, if models/resume.pt holds one."""
        self.fingerprint = run_fingerprint(self.params, device)
        if not self.params.train.resume or not RESUME.is_file():
            return None
        try:
            saved = torch.load(RESUME, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unreadable checkpoint means: start fresh, and say so
            _log(f"{RESUME} is unreadable ({exc}); starting fresh")
            return None
        if saved.get("fingerprint") != self.fingerprint:
            _log(f"{RESUME} belongs to other params or data; starting fresh")
            return None
        if saved["state"]["finished"]:
            return None  # a finished run is not resumed: running again means retraining
        _log(
            f"resuming after epoch {saved['state']['epoch']} from {RESUME} "
            "(set train.resume: false to start fresh)"
        )
        return saved["state"]

    def save(self, state: dict[str, Any]) -> None:
        """Write the state after an epoch, atomically (a kill never leaves half)."""
        with atomic_path(RESUME) as tmp, open(tmp, "wb") as f:  # a path would name
            torch.save({"fingerprint": self.fingerprint, "state": state}, f)  # the archive


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


def write_outputs(
    trained: Trained, params: Params, summary_text: str, stage: Callable[[Path], Path]
) -> dict[str, Any]:
    """The checkpoint, summary, learning curves and train.json of a finished fit, each
    written where ``stage`` says (:func:`~fmnist.core.atomic.atomic_group`)."""
    result = trained.result
    held_out = params.recipe.held_out
    if result.best_epoch == 0:
        raise PipelineError(f"{result.stop_reason}; no checkpoint was kept")
    _log(
        f"{result.stop_reason}; "
        + (f"best val accuracy at epoch {result.best_epoch}" if held_out else "last epoch kept")
    )
    if trained.classic:  # its layer shapes exist only once fitted
        summary_text = summary(trained.model, trained.spec.shape, params.model)
        print(summary_text, file=sys.stderr)
    save_checkpoint(
        stage(layout.MODEL),
        model_name=params.model,
        arch=params.recipe.arch,
        state_dict=result.best_state,
        classes=trained.spec.classes,
        in_shape=trained.spec.shape,
        extra={"recipe": _recipe_dict(params), "best_epoch": result.best_epoch},
    )
    write_text(stage(layout.SUMMARY), summary_text)
    history = [asdict(r) for r in result.history]
    plots.learning_curves(
        history, stage(layout.PLOTS / "learning_curves.png"), result.best_epoch, held_out
    )
    where = {
        "model": params.model,
        "device": describe(trained.device),
        "precision": "bf16" if trained.precision == torch.bfloat16 else "fp32",
        "threads": trained.threads,
        "processes": trained.world.size,
        "resumed_from_epoch": trained.resumed_from_epoch,
        "train_images": trained.train_images,
        "val_held_out": held_out,  # false: val was trained on, its accuracy is no estimate
        "peak_memory_mb": round(peak_memory_mb(trained.device)),  # RSS; on CUDA, allocated
        # another CPU kind computes other last digits: say which one this was, and which
        # kernels ran (`python -m fmnist.review.verify` reads both)
        "machine": machine_info(),
        "kernels": kernels.in_effect(params.train.reproducible),
    }
    info = {"train": where | _outcome(params, result, history, trained.model)}
    write_json(stage(layout.TRAIN_JSON), info)
    return info


def _outcome(
    params: Params, result: FitResult, history: list[dict[str, Any]], model: nn.Module
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


def _recipe_dict(params: Params) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(params.recipe)))


class LiveLogger:
    """DVCLive for per-epoch metrics (dvc plots), plus one readable line per epoch.

    A resumed run starts DVCLive afresh and replays the epochs its checkpoint holds, so
    the TSVs always agree with the checkpoint: a kill between an epoch's log line and its
    checkpoint would otherwise leave that epoch logged twice.
    """

    def __init__(self, folder: Path, active: bool = True) -> None:
        self.folder = folder
        self.active = active  # DDP: only rank 0 logs
        self.live = None

    def __enter__(self) -> LiveLogger:
        from dvclive import Live

        if self.active:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.live = Live(
                str(self.folder), dvcyaml=None, save_dvc_exp=False, report=None, resume=False
            )
        return self

    def replay(self, records: list[EpochRecord]) -> None:
        """Log the epochs a resumed state already holds, without printing them again."""
        for record in records:
            self._log_metrics(record)

    def log_epoch(self, r: EpochRecord, model: nn.Module | None = None) -> None:
        """Log one finished epoch, and print its line."""
        splits = self._log_metrics(r)
        figures = " | ".join(f"{s} loss {loss:.4f} acc {acc:.4f}" for s, loss, acc in splits)
        _log(f"epoch {r.epoch}: {figures} | {r.seconds:.1f}s")

    def _log_metrics(self, r: EpochRecord) -> list[tuple[str, float, float]]:
        splits = [("train", r.train_loss, r.train_accuracy)]
        if r.val_accuracy is not None:  # not validated: no point, not a fake one
            splits.append(("val", r.val_loss, r.val_accuracy))
        if self.live is not None:
            for split, loss, acc in splits:
                self.live.log_metric(f"{split}/loss", round(loss, 6), plot=True)
                self.live.log_metric(f"{split}/accuracy", round(acc, 6), plot=True)
            self.live.next_step()
        return splits

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.end()


def _log(message: str) -> None:
    """Progress on stderr; under DDP only rank 0 speaks."""
    if distributed.launched_world().is_main:
        print(message, file=sys.stderr, flush=True)
