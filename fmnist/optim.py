"""Optimizers by name, with Keras's defaults where they differ from PyTorch's.

The reports trained in Keras: Adam/Adamax/RMSprop use epsilon 1e-7, RMSprop's decay
rho is 0.9 (PyTorch's alpha default is 0.99) and Adagrad starts its accumulator at 0.1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

OPTIMIZERS = ("adam", "adamw", "adamax", "adadelta", "adagrad", "rmsprop", "sgd")
SCHEDULES = ("none", "onecycle", "cosine")


def make_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    nesterov: bool = False,
    decay_norms: bool = True,
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` (one of :data:`OPTIMIZERS`).

    ``decay_norms=False`` exempts biases and normalisation weights (every 1-D parameter)
    from weight decay, as modern recipes do.
    """
    params = list(params)
    if weight_decay and not decay_norms:
        params = [
            {"params": [p for p in params if p.ndim > 1]},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
        ]
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, eps=1e-7, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=1e-7, weight_decay=weight_decay)
    if name == "adamax":
        return torch.optim.Adamax(params, lr=lr, eps=1e-7, weight_decay=weight_decay)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, rho=0.95, eps=1e-7, weight_decay=weight_decay)
    if name == "adagrad":
        return torch.optim.Adagrad(
            params, lr=lr, initial_accumulator_value=0.1, eps=1e-7, weight_decay=weight_decay
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=lr, alpha=0.9, eps=1e-7, momentum=momentum, weight_decay=weight_decay
        )
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        )
    raise ValueError(f"optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")


def make_scheduler(
    name: str, optimizer: torch.optim.Optimizer, lr: float, total_steps: int, warmup: float
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-step learning-rate schedule, or None for a constant rate (the reports' way).

    ``onecycle`` warms up over the first ``warmup`` fraction of steps to ``lr`` then anneals;
    ``cosine`` warms up linearly the same way, then follows a half cosine to zero.
    """
    if name == "none":
        return None
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total_steps, pct_start=max(warmup, 1e-3)
        )
    if name == "cosine":
        warm = int(warmup * total_steps)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            progress = (step - warm) / max(1, total_steps - warm)
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    raise ValueError(f"schedule {name!r}; valid: {', '.join(SCHEDULES)}")
