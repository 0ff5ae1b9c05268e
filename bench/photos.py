"""How the model does on real photos that are not Fashion-MNIST images.

    python -m bench photos --folder ../shared/photos [--model models/model.pt]
                           [--out results/photos]

The folder holds a ``labels.csv`` (``path,folder,fashion_mnist_classes``: the classes
that count as right, ``|``-separated, none for garments no class fits). For each photo
folder it prints top-1 and top-3 (a right class among the first one or three), and how
many answers are "unsure" (:mod:`fmnist.serve.answer`), converted as ``fmnist-predict``
converts them (the garment isolated) and, for comparison, by brightness alone. Then
the share of answers marked unsure at several thresholds, on the photos no class fits,
on the right answers, and on Fashion-MNIST's own 10,000 test images: what the
threshold in fmnist/serve/answer.py was chosen from. Keep the photos out of training.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import real_data, write_results
from fmnist.core.errors import PipelineError
from fmnist.serve import answer
from fmnist.serve.images import convert_file, load_image, to_dataset_convention
from fmnist.train.batches import to_device
from fmnist.train.checkpoint import load_checkpoint
from fmnist.train.inference import predict_logits

NONE_FITS = "none of the ten"  # the row of the photos no Fashion-MNIST class fits
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5)
COLUMNS = [
    ("folder", "folder"),
    ("photos", "photos"),
    ("top1", "top-1 %", "{:.0f}"),
    ("top3", "top-3 %", "{:.0f}"),
    ("unsure", "unsure %", "{:.0f}"),
    ("plain_top1", "top-1 % by brightness", "{:.0f}"),
    ("plain_top3", "top-3 % by brightness", "{:.0f}"),
]


def read_labels(folder: Path) -> list[dict[str, Any]]:
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise PipelineError(f"{labels} is missing; give a folder with a labels.csv")
    with labels.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["right"] = set(filter(None, row["fashion_mnist_classes"].split("|")))
    return rows


def probabilities(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    data = to_device(images, np.zeros(len(images), np.int64), torch.device("cpu"))
    return torch.softmax(predict_logits(model, data, 256), 1).numpy()


def ranks(p: np.ndarray, classes: list[str], right: set[str]) -> tuple[bool, bool]:
    order = [classes[i] for i in np.argsort(-p, kind="stable")]
    return order[0] in right, bool(right & set(order[:3]))


def summarise(name: str, picks: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(picks)
    share = lambda key: round(100 * sum(p[key] for p in picks) / n, 1)  # noqa: E731
    return {
        "folder": name,
        "photos": n,
        "top1": share("top1"),
        "top3": share("top3"),
        "unsure": share("unsure"),
        "plain_top1": share("plain_top1"),
        "plain_top3": share("plain_top3"),
    }


def measure(folder: Path, model_path: Path) -> dict[str, Any]:
    model, meta = load_checkpoint(model_path, torch.device("cpu"))
    classes, shape = meta["classes"], tuple(meta["input"]["shape"])
    rows = read_labels(folder)
    converted = [convert_file(folder / r["path"], shape) for r in rows]
    plain = np.stack([to_dataset_convention(load_image(folder / r["path"])) for r in rows])
    probs = probabilities(model, np.stack([c.pixels for c in converted]))
    plain_probs = probabilities(model, plain)
    picks = []
    for row, c, p, q in zip(rows, converted, probs, plain_probs, strict=True):
        top1, top3 = ranks(p, classes, row["right"])
        plain_top1, plain_top3 = ranks(q, classes, row["right"])
        unsure = bool(answer.unsure_reason(p, classes, c.problem))
        picks.append(
            {
                "folder": row["folder"] if row["right"] else NONE_FITS,
                "top1": top1,
                "top3": top3,
                "unsure": unsure,
                "plain_top1": plain_top1,
                "plain_top3": plain_top3,
                "max": float(p.max()),
                "isolated": not c.problem,
            }
        )
    folders = sorted({p["folder"] for p in picks} - {NONE_FITS})
    table = [summarise(f, [p for p in picks if p["folder"] == f]) for f in folders]
    fits = [p for p in picks if p["folder"] != NONE_FITS]
    table.append(summarise("all ten-class photos", fits))
    table.append(summarise(NONE_FITS, [p for p in picks if p["folder"] == NONE_FITS]))
    test = real_data(10_000, "test")
    test_max = probabilities(model, test.images).max(1)
    return {"rows": table, "thresholds": sweep(picks, test_max), "model": meta["model"]}


def sweep(picks: list[dict[str, Any]], test_max: np.ndarray) -> list[dict[str, Any]]:
    """Share marked unsure at each threshold (isolation failures are unsure at any)."""
    none_fits = [p for p in picks if p["folder"] == NONE_FITS]
    right = [p for p in picks if p["folder"] != NONE_FITS and p["top1"]]
    out = []
    for t in THRESHOLDS:

        def unsure(p: dict[str, Any], t: float = t) -> bool:
            return not p["isolated"] or p["max"] < t

        out.append(
            {
                "threshold": t,
                "none_fits_unsure": round(100 * float(np.mean([unsure(p) for p in none_fits])), 1),
                "right_unsure": round(100 * float(np.mean([unsure(p) for p in right])), 1),
                "test_unsure": round(100 * float(np.mean(test_max < t)), 2),
            }
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench photos", description=__doc__)
    parser.add_argument("--folder", type=Path, default=Path("../shared/photos"))
    parser.add_argument("--model", type=Path, default=Path("models/model.pt"))
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    result = measure(args.folder, args.model)
    for row in result["rows"]:
        print(row)
    for row in result["thresholds"]:
        print(row)
    write_results(
        args.out,
        {
            "rows": result["rows"],
            "tables": [
                {
                    "title": "Unsure at other thresholds",
                    "about": "Share of answers marked unsure: on the photos no class fits "
                    "(should be high), on the right answers and on Fashion-MNIST's test "
                    "images (should be low). fmnist/serve/answer.py uses "
                    f"{answer.UNSURE_BELOW}.",
                    "columns": [
                        ("threshold", "top probability under"),
                        ("none_fits_unsure", "none-fits photos unsure %"),
                        ("right_unsure", "right answers unsure %"),
                        ("test_unsure", "test images unsure %"),
                    ],
                    "rows": result["thresholds"],
                }
            ],
        },
        title="Real photos",
        about=(
            f"Model {result['model']} on {args.folder.name}/ (phone photos "
            "of clothes on floors, beds and hangers; none used in training): top-1 and "
            "top-3 against the classes that count as right, and the share answered "
            "unsure, with the garment isolated as fmnist-predict and the server do; "
            "beside them the same model with the conversion by brightness alone."
        ),
        columns=COLUMNS,
    )
