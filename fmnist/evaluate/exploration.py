"""The data exploration the reports did, written by the prepare stage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fmnist.core import layout, plots
from fmnist.core.atomic import atomic_group, write_json
from fmnist.data.datasets import DatasetSpec
from fmnist.data.prepared import Split, exploration


def explore(spec: DatasetSpec, splits: dict[str, Split], form: str) -> None:
    """metrics/data.json (shape, dtype, range, per-class counts) and two figures."""
    with atomic_group() as stage:  # all three, or (a failure) none and the last good ones
        _write(spec, splits, form, stage)


def _write(
    spec: DatasetSpec, splits: dict[str, Split], form: str, stage: Callable[[Path], Path]
) -> None:
    stats = {name: exploration(split, spec.classes) for name, split in splits.items()}
    write_json(stage(layout.DATA_JSON), {"data": {"dataset": spec.name, "form": form, **stats}})
    plots.class_distribution(
        {name: s["per_class"] for name, s in stats.items()},
        stage(layout.PLOTS / "class_distribution.png"),
    )
    train = splits["train"]
    first = [
        int(np.flatnonzero(train.labels == c)[0])
        for c in range(len(spec.classes))
        if (train.labels == c).any()
    ]
    others = [i for i in range(min(25, len(train))) if i not in first]
    shown = (first + others)[:25]
    plots.image_grid(
        train.images[shown],
        [spec.classes[train.labels[i]] for i in shown],
        stage(layout.PLOTS / "samples.png"),
        suptitle="Training images (one of each class first)",
    )
