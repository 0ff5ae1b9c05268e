"""The training loops: one epoch (:func:`train_epoch`) and a whole fit (:func:`fit`).

The data lives on the device (:mod:`batches`); losses and accuracies accumulate there
and are read once per epoch, so the hot loop never waits for the host. Validation and
test-time augmentation are :mod:`inference`; the resumable state is :mod:`state`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from fmnist.train import distributed
from fmnist.train.augment import Augment, augment_batch
from fmnist.train.batches import DeviceSplit, batch_indices, epoch_order, scale
from fmnist.train.inference import autocast, evaluate
from fmnist.train.optim import make_optimizer, make_scheduler
from fmnist.train.params import Recipe
from fmnist.train.records import EpochRecord, FitResult
from fmnist.train.state import restore_state, snapshot, training_state


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DeviceSplit,
    *,
    batch_size: int,
    aug: Augment,
    generator: torch.Generator,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    progress: Callable[[], None] = lambda: None,
    order: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    ema: AveragedModel | None = None,
    precision: torch.dtype | None = None,
) -> tuple[float, float]:
    """One pass over ``data`` in ``order`` (default: shuffled by ``generator``); returns
    (mean loss, accuracy) measured on the fly, summed over all DDP processes."""
    model.train()
    if order is None:
        order = torch.randperm(len(data), generator=generator, device=generator.device)
    loss_sum = torch.zeros((), device=data.labels.device)
    correct = torch.zeros((), device=data.labels.device, dtype=torch.long)
    for idx in batch_indices(order, batch_size):
        idx = idx.to(data.labels.device)
        x = augment_batch(scale(data.images[idx]), aug, generator)
        y = data.labels[idx]
        with autocast(x.device, precision):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        optimizer_step(loss, model, optimizer, scheduler, ema)
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        progress()
    loss_sum, correct = distributed.sum_all(loss_sum, correct)
    return loss_sum.item() / len(data), correct.item() / len(data)


def optimizer_step(
    loss: torch.Tensor,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    ema: AveragedModel | None,
) -> None:
    """One update from ``loss``: gradients, the optimizer's step, the schedule's step and
    the weights' moving average, in that order."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    if ema is not None:
        ema.update_parameters(distributed.unwrap(model))


def fit(
    model: nn.Module,
    recipe: Recipe,
    train: DeviceSplit,
    val: DeviceSplit,
    generator: torch.Generator,
    *,
    eval_batch_size: int = 2000,
    on_epoch: Callable[[EpochRecord, nn.Module], None] = lambda record, model: None,
    num_classes: int = 10,
    resume: dict[str, Any] | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    seed: int = 0,
    precision: torch.dtype | None = None,
) -> FitResult:
    """Train ``model`` with ``recipe``; keep the weights of the best validation epoch,
    or of the last epoch when ``recipe.train_on`` says ``val`` is part of ``train``
    (a validation split the model learnt from cannot pick among its epochs). In that
    case only the last epoch is validated: earlier passes would pick nothing and cost
    5-6 % of fastcnn's training time.

    Stops early after ``recipe.patience`` epochs without a better validation accuracy
    (0: never), and at once when training diverges (a non-finite loss, or validation
    accuracy collapsing to chance after it had been better). After every epoch
    ``on_epoch`` receives the epoch's record and the model as it would be kept (the
    EMA's when there is one), and ``on_checkpoint`` the whole training state; passing
    such a state back as ``resume`` continues from the next epoch exactly as if never
    interrupted (RNG states included, so bitwise on CPU). ``seed`` fixes each epoch's
    shuffle (:func:`epoch_order`); ``generator`` drives augmentation; ``precision`` is the
    autocast dtype (None: fp32)."""
    optimizer = recipe_optimizer(recipe, model)
    # with an EMA, the averaged weights are the ones validated and kept
    ema = make_ema(model, recipe.ema)
    steps = math.ceil(len(train) / recipe.batch_size)
    scheduler = make_scheduler(
        recipe.schedule, optimizer, recipe.lr, steps * recipe.epochs, recipe.warmup
    )
    result = FitResult(best_state=snapshot(model), best_epoch=0)
    first_epoch = 1
    if resume is not None:
        first_epoch = restore_state(resume, model, optimizer, scheduler, generator, result, ema)
    for epoch in range(first_epoch, recipe.epochs + 1):
        start = time.perf_counter()
        order = epoch_order(len(train), seed, epoch).to(train.labels.device)
        with _ProgressBar(steps, f"epoch {epoch}/{recipe.epochs}") as tick:
            train_loss, train_acc = train_epoch(
                model,
                optimizer,
                train,
                batch_size=recipe.batch_size,
                aug=recipe.augment,
                generator=generator,
                scheduler=scheduler,
                progress=tick,
                order=order,
                label_smoothing=recipe.label_smoothing,
                ema=ema,
                precision=precision,
            )
        distributed.sync_buffers(model)
        val_loss = val_acc = None
        if recipe.held_out or epoch == recipe.epochs:
            val_loss, val_acc = evaluate(_evaluated(model, ema), val, eval_batch_size, precision)
        record = EpochRecord(
            epoch, train_loss, train_acc, val_loss, val_acc, time.perf_counter() - start
        )
        result.history.append(record)
        on_epoch(record, _evaluated(model, ema))
        stop = _update(
            result,
            record,
            _evaluated(model, ema),
            recipe.patience,
            num_classes,
            not recipe.held_out,
        )
        if on_checkpoint is not None:
            state = training_state(epoch, model, optimizer, scheduler, generator, result, ema)
            on_checkpoint(state | {"finished": bool(stop) or epoch == recipe.epochs})
        if stop:
            result.stop_reason = stop
            break
    return result


def recipe_optimizer(recipe: Recipe, model: nn.Module, fast: bool = True) -> torch.optim.Optimizer:
    """The optimizer ``recipe`` names, with all its settings, over ``model``'s parameters
    (``fast``: its fused kernel, see :func:`fmnist.train.optim.make_optimizer`)."""
    return make_optimizer(
        recipe.optimizer,
        model.parameters(),
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        decay_norms=recipe.decay_norms,
        fast=fast,
    )


def make_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of the weights (and BN buffers), or None for 0."""
    if not decay:
        return None
    return AveragedModel(
        distributed.unwrap(model), multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True
    )


def _evaluated(model: nn.Module, ema: AveragedModel | None) -> nn.Module:
    return ema.module if ema is not None else distributed.unwrap(model)


def _update(
    result: FitResult,
    record: EpochRecord,
    model: nn.Module,
    patience: int,
    num_classes: int,
    keep_last: bool = False,
) -> str:
    """Keep the best (or, with ``keep_last``, the latest) weights; return why training
    must stop now, or ''."""
    diverged = _divergence(record, result.best_accuracy, num_classes)
    if diverged:
        return diverged
    if keep_last or record.accuracy > result.best_accuracy:
        result.best_accuracy, result.best_epoch = record.accuracy, record.epoch
        result.best_state = snapshot(model)
    elif patience and record.epoch - result.best_epoch >= patience:
        return f"early stop: no better val accuracy for {patience} epochs"
    return ""


def _divergence(record: EpochRecord, best_accuracy: float, num_classes: int) -> str:
    """A message if this epoch shows divergence, else ''."""
    losses = (record.train_loss, record.val_loss)
    if not all(math.isfinite(loss) for loss in losses if loss is not None):
        return f"diverged at epoch {record.epoch}: the loss is not finite; lower the lr"
    chance = 1 / num_classes
    if best_accuracy > 2 * chance and record.accuracy <= chance + 0.02:
        split = "train" if record.val_accuracy is None else "val"
        return (
            f"diverged at epoch {record.epoch}: {split} accuracy collapsed to "
            f"{record.accuracy:.1%} (chance); lower the lr"
        )
    return ""


class _ProgressBar:
    """A tqdm bar per epoch on a terminal; nothing otherwise (fit prints a line per epoch)."""

    def __init__(self, total: int, desc: str) -> None:
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=False, unit="batch")

    def __enter__(self) -> Callable[[], None]:
        return self.bar.update if self.bar is not None else (lambda: None)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
