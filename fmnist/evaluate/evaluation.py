"""The evaluate stage's work: test-set metrics (stable nested keys), confusion, figures.

metrics.json holds only what is a pure function of the data, params and seed (no
timings), so two runs of the same pipeline produce identical bytes.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import classification_report
from sklearn.metrics import confusion_matrix as sk_confusion

from fmnist.core import layout, plots
from fmnist.core.atomic import atomic_group, atomic_path, write_json
from fmnist.data.prepared import load_split
from fmnist.train.batches import to_device
from fmnist.train.checkpoint import load_checkpoint
from fmnist.train.device import autocast_dtype, select_device, set_threads
from fmnist.train.inference import predict_logits
from fmnist.train.params import Params


def run_evaluation(params: Params) -> dict[str, Any]:
    """Evaluate models/model.pt on the test split; write metrics, predictions and plots."""
    set_threads(params.train.threads, reproducible=params.train.reproducible)
    device = select_device(params.train.device)
    model, meta = load_checkpoint(layout.MODEL, device)
    classes = tuple(meta["classes"])
    test = load_split(layout.split_path("test"))
    data = to_device(test.images, test.labels, device)
    # test-time augmentation is part of the model's recipe (saved in its checkpoint)
    recipe = meta["extra"].get("recipe", {})
    tta = bool(recipe.get("tta"))
    precision = autocast_dtype(params.train.precision, device, params.train.reproducible)
    logits = predict_logits(
        model, data, params.evaluate.batch_size, tta, precision, int(recipe.get("tta_shift", 0))
    )
    loss = F.cross_entropy(logits, data.labels).item()
    probs = torch.softmax(logits, 1).cpu().numpy()
    predicted = probs.argmax(1)

    metrics = {"test": classification_metrics(test.labels, predicted, loss, classes)}
    matrix = sk_confusion(test.labels, predicted, labels=range(len(classes)))
    with atomic_group() as stage:  # all of them, or (a failure) none and the last good ones
        write_json(stage(layout.METRICS_JSON), metrics)
        write_predictions(stage(layout.PREDICTIONS_CSV), test.labels, predicted, classes)
        plots.confusion_matrix(matrix, classes, stage(layout.PLOTS / "confusion.png"))
        prediction_figures(test.images, test.labels, probs, classes, params, stage)
    return metrics


def classification_metrics(
    labels: np.ndarray, predicted: np.ndarray, loss: float, classes: tuple[str, ...]
) -> dict[str, Any]:
    """Accuracy, loss and per-class precision/recall/F1/support with macro/weighted averages."""
    report = classification_report(
        labels,
        predicted,
        labels=list(range(len(classes))),
        target_names=list(classes),
        output_dict=True,
        zero_division=0,
    )

    def rounded(row: dict[str, float]) -> dict[str, float | int]:
        return {
            "precision": round(row["precision"], 6),
            "recall": round(row["recall"], 6),
            "f1": round(row["f1-score"], 6),
            "support": int(row["support"]),
        }

    return {
        "accuracy": round(float((labels == predicted).mean()), 6),
        "loss": round(loss, 6),
        "per_class": {name: rounded(report[name]) for name in classes},
        "macro_avg": rounded(report["macro avg"]),
        "weighted_avg": rounded(report["weighted avg"]),
    }


def write_predictions(
    path: Path, labels: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]
) -> None:
    """actual,predicted class names per test image: the input of DVC's confusion plot."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["actual", "predicted"])
        writer.writerows((classes[a], classes[p]) for a, p in zip(labels, predicted, strict=True))


def prediction_figures(
    images: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    classes: tuple[str, ...],
    params: Params,
    stage: Callable[[Path], Path] = lambda path: path,
) -> None:
    """The first test images titled with their prediction, and the most confident errors
    (written where ``stage`` says)."""
    predicted = probs.argmax(1)
    n = min(params.evaluate.grid, len(labels))
    right = predicted[:n] == labels[:n]
    plots.image_grid(
        images[:n],
        [f"{classes[p]} ({probs[i, p]:.0%})" for i, p in enumerate(predicted[:n])],
        stage(layout.PLOTS / "predictions.png"),
        colors=["green" if ok else "red" for ok in right],
        suptitle="Test predictions (green: right, red: wrong)",
    )
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][
        : params.evaluate.most_wrong
    ]
    plots.image_grid(
        images[worst],
        [
            f"{classes[predicted[i]]} {probs[i, predicted[i]]:.0%}\ntrue: {classes[labels[i]]}"
            for i in worst
        ],
        stage(layout.PLOTS / "most_wrong.png"),
        colors=["red"] * len(worst),
        suptitle="Most confidently wrong test predictions",
    )
