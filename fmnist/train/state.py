"""The whole training state after an epoch, as plain containers and tensors (so it loads
with ``weights_only=True``), and its restoration: what makes a killed run resume
bitwise-identically on a CPU."""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from fmnist.train import distributed
from fmnist.train.records import EpochRecord, FitResult


def training_state(
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    generator: torch.Generator,
    result: FitResult,
    ema: AveragedModel | None = None,
) -> dict[str, Any]:
    """Everything needed to continue after ``epoch``: plain containers and tensors only."""
    return {
        "epoch": epoch,
        "finished": False,
        "ema": snapshot(ema) if ema is not None else None,
        "model": snapshot(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "best_state": result.best_state,
        "best_epoch": result.best_epoch,
        "best_accuracy": result.best_accuracy,
        "history": [asdict(r) for r in result.history],
    }


def restore_state(
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    generator: torch.Generator,
    result: FitResult,
    ema: AveragedModel | None = None,
) -> int:
    """Load a :func:`training_state` back; return the epoch to continue with."""
    distributed.unwrap(model).load_state_dict(state["model"])
    if ema is not None and state.get("ema") is not None:
        ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"]:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    result.best_state = state["best_state"]
    result.best_epoch = state["best_epoch"]
    result.best_accuracy = state["best_accuracy"]
    result.history = [EpochRecord(**r) for r in state["history"]]
    return state["epoch"] + 1


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    state = distributed.unwrap(model).state_dict()
    return copy.deepcopy({k: v.detach().cpu() for k, v in state.items()})
