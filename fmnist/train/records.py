"""What training reports: one record per epoch, and the result of a whole fit."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


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
