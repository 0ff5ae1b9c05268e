"""The training engine: data resident on the device, batches as index slices, the loops.

Following cifar10-airbench rather than a DataLoader: each split is moved to the device
once as uint8, and every batch is sliced, scaled to [0, 1] and augmented there. Losses
and accuracies accumulate on the device and are read once per epoch, so the hot loop
never waits for the host.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from fmnist.train import distributed
from fmnist.train.augment import Augment, augment_batch
from fmnist.train.optim import make_optimizer, make_scheduler
from fmnist.train.params import Recipe

PIXEL_SCALE = 1 / 255  # the reports' input convention: x / 255, no mean/std shift


@dataclass
class DeviceSplit:
    """One split on the device: uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def to_device(images: np.ndarray, labels: np.ndarray, device: torch.device) -> DeviceSplit:
    """Move a uint8 split, (N, H, W) grayscale or (N, H, W, C) colour, to ``device`` once,
    as (N, C, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return DeviceSplit(x.to(device), y.to(device))


def scale(batch: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1], on the batch's device."""
    return batch.float().mul_(PIXEL_SCALE)


@dataclass
class EpochRecord:
    """One epoch's figures, as logged and plotted; the val figures are None for the
    epochs not validated (see :func:`fit`)."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float

    @property
    def accuracy(self) -> float:
        """The accuracy this epoch is judged by: val's, else train's."""
        return self.train_accuracy if self.val_accuracy is None else self.val_accuracy


@dataclass
class FitResult:
    """What training produced so far: the best weights and how it went."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_accuracy: float = -1.0
    history: list[EpochRecord] = field(default_factory=list)
    stop_reason: str = "completed"

    @property
    def kept_val_accuracy(self) -> float | None:
        """Validation accuracy of the kept epoch; None when it was not validated (a
        train+val run that diverged before its last epoch keeps an earlier one, judged
        by train accuracy: ``best_accuracy`` would pass that off as a val figure)."""
        kept = [r for r in self.history if r.epoch == self.best_epoch]
        return kept[0].val_accuracy if kept else None


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of epoch ``epoch``: a function of (seed, epoch) alone, so every
    DDP process agrees on it and a resumed run needs no generator state for it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def batch_indices(order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Global batches of ``order``, each cut to this process's shard; a trailing batch of
    one is dropped (batch norm cannot train on a single image)."""
    n = len(order)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        if len(idx) > 1 or n == 1:
            yield distributed.shard(idx)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DeviceSplit,
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
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update_parameters(distributed.unwrap(model))
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        progress()
    loss_sum, correct = distributed.sum_all(loss_sum, correct)
    return loss_sum.item() / len(data), correct.item() / len(data)


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Mixed precision in ``dtype`` (see :func:`fmnist.train.device.autocast_dtype`), or off."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def tta_views(x: torch.Tensor, flip: bool, shift: int = 0) -> list[torch.Tensor]:
    """The views test-time augmentation averages: the images, their mirror images
    (``flip``), and each of those moved ``shift`` pixels left, right, up and down, with
    zeros shifted in as the training crop's zero padding does."""
    bases = [x, x.flip(-1)] if flip else [x]
    views = list(bases)
    if shift:
        h, w = x.shape[-2:]
        for base in bases:
            padded = F.pad(base, (shift, shift, shift, shift))
            for dy, dx in ((0, shift), (0, -shift), (shift, 0), (-shift, 0)):
                top, left = shift + dy, shift + dx
                views.append(padded[..., top : top + h, left : left + w])
    return views


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    data: DeviceSplit,
    batch_size: int,
    tta: bool = False,
    precision: torch.dtype | None = None,
    tta_shift: int = 0,
) -> torch.Tensor:
    """Logits for every image of ``data``, in order, in large batches; with test-time
    augmentation (``tta``: mirror images; ``tta_shift``: shifted copies, see
    :func:`tta_views`) the mean of the views' logits."""
    model.eval()
    out = []
    for i in range(0, len(data), batch_size):
        x = scale(data.images[i : i + batch_size])
        with autocast(x.device, precision):
            views = tta_views(x, tta, tta_shift)
            out.append(sum(model(v).float() for v in views) / len(views))
    return torch.cat(out).float()


def evaluate(
    model: nn.Module, data: DeviceSplit, batch_size: int, precision: torch.dtype | None = None
) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) of ``model`` on ``data``."""
    logits = predict_logits(model, data, batch_size, precision=precision)
    loss = F.cross_entropy(logits, data.labels).item()
    accuracy = (logits.argmax(1) == data.labels).float().mean().item()
    return loss, accuracy


def fit(
    model: nn.Module,
    recipe: Recipe,
    train: DeviceSplit,
    val: DeviceSplit,
    generator: torch.Generator,
    eval_batch_size: int = 2000,
    on_epoch: Callable[[EpochRecord], None] = lambda record: None,
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
    ``on_checkpoint`` receives the whole training state; passing such a state back as
    ``resume`` continues from the next epoch exactly as if never interrupted (RNG states
    included, so bitwise on CPU). ``seed`` fixes each epoch's shuffle (:func:`epoch_order`);
    ``generator`` drives augmentation; ``precision`` is the autocast dtype (None: fp32).
    """
    optimizer = recipe_optimizer(recipe, model)
    # with an EMA, the averaged weights are the ones validated and kept
    ema = make_ema(model, recipe.ema)
    steps = math.ceil(len(train) / recipe.batch_size)
    scheduler = make_scheduler(
        recipe.schedule, optimizer, recipe.lr, steps * recipe.epochs, recipe.warmup
    )
    result = FitResult(best_state=_snapshot(model), best_epoch=0)
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
                recipe.batch_size,
                recipe.augment,
                generator,
                scheduler,
                tick,
                order,
                recipe.label_smoothing,
                ema,
                precision,
            )
        distributed.sync_buffers(model)
        val_loss = val_acc = None
        if recipe.held_out or epoch == recipe.epochs:
            val_loss, val_acc = evaluate(_evaluated(model, ema), val, eval_batch_size, precision)
        record = EpochRecord(
            epoch, train_loss, train_acc, val_loss, val_acc, time.perf_counter() - start
        )
        result.history.append(record)
        on_epoch(record)
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
        recipe.lr,
        recipe.weight_decay,
        recipe.momentum,
        recipe.nesterov,
        recipe.decay_norms,
        fast,
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
        result.best_state = _snapshot(model)
    elif patience and record.epoch - result.best_epoch >= patience:
        return f"early stop: no better val accuracy for {patience} epochs"
    return ""


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
        "ema": _snapshot(ema) if ema is not None else None,
        "model": _snapshot(model),
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


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    state = distributed.unwrap(model).state_dict()
    return copy.deepcopy({k: v.detach().cpu() for k, v in state.items()})


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
