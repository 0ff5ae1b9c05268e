"""Every matplotlib figure the pipeline writes, as small PNGs a reviewer can open in git.

Figures are rendered with the Agg backend (no display needed) and saved atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from fmnist.core.atomic import atomic_path

DPI = 80


def _save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        # metadata without a date keeps the bytes identical from run to run
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def class_distribution(counts: dict[str, dict[str, int]], path: str | Path) -> None:
    """Grouped bars: images per class in each split (the reports' balance check)."""
    splits = list(counts)
    classes = list(next(iter(counts.values())))
    x = np.arange(len(classes))
    width = 0.8 / max(1, len(splits))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for i, split in enumerate(splits):
        values = [counts[split][c] for c in classes]
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=f"{split} ({sum(values):,})")
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel("images")
    ax.set_title("Images per class")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.25)  # headroom so the legend covers no bar
    ax.legend(loc="upper center", ncol=len(splits))
    _save(fig, path)


def image_grid(
    images: np.ndarray,
    titles: Sequence[str],
    path: str | Path,
    colors: Sequence[str] | None = None,
    cols: int = 5,
    suptitle: str = "",
) -> None:
    """A grid of grayscale images, each titled (optionally coloured: green right, red wrong)."""
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.8, rows * 2.0), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
            ax.set_title(titles[i], fontsize=8, color=colors[i] if colors else "black")
    if suptitle:
        fig.suptitle(suptitle)
    _save(fig, path)


def learning_curves(
    history: Sequence[dict[str, float | None]],
    path: str | Path,
    best_epoch: int,
    held_out: bool = True,
) -> None:
    """Train vs validation accuracy and loss per epoch, the kept epoch marked; the legend
    says so when the validation images were trained on (their curve is no estimate, and
    only the last epoch has a point: see :func:`fmnist.train.engine.fit`)."""
    epochs = [h["epoch"] for h in history]
    val = "validation" if held_out else "validation (trained on)"
    kept = "best" if held_out else "kept"
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, key, label in ((acc, "accuracy", "Accuracy"), (loss, "loss", "Loss")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", ms=3, label="train")
        validated = [h for h in history if h[f"val_{key}"] is not None]
        ax.plot(
            [h["epoch"] for h in validated],
            [h[f"val_{key}"] for h in validated],
            "o-",
            ms=3,
            label=val,
        )
        if best_epoch:
            marker = f"{kept} (epoch {best_epoch})"
            ax.axvline(best_epoch, color="gray", ls="--", lw=1, label=marker)
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def confusion_matrix(matrix: np.ndarray, classes: Sequence[str], path: str | Path) -> None:
    """The confusion matrix with counts in each cell (rows: true class, columns: predicted)."""
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=45, ha="right")
    ax.set_yticks(ticks, classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2
    for (i, j), value in np.ndenumerate(matrix):
        color = "white" if value > threshold else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=color)
    ax.set_title("Confusion matrix (test)")
    _save(fig, path)
