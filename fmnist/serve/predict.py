"""Predict the garment class of your own pictures with a trained model.

    fmnist-predict photo.jpg shirts/ [--model models/model.pt] [--top-k 3]
                   [--csv predictions.csv] [--show figures/]
    python -m fmnist.serve.predict ...   (the same)

Each picture is converted to the dataset's convention (see :mod:`fmnist.serve.images`) and the
images are classified in batches on the best device. A file that cannot be read is
reported (stderr, and a 'skipped' row in the CSV) while the others are still predicted;
the exit code is then 1.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmnist.core import layout
from fmnist.core.atomic import atomic_path
from fmnist.core.errors import PipelineError, run_stage
from fmnist.serve.answer import unsure_reason
from fmnist.serve.images import ImageError, convert_file, image_files
from fmnist.train.batches import to_device
from fmnist.train.checkpoint import load_checkpoint
from fmnist.train.device import select_device
from fmnist.train.inference import predict_logits


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image, or why it was skipped."""

    path: Path
    top: list[tuple[str, float]]
    image: np.ndarray | None = None
    error: str = ""
    unsure: str = ""  # why the answer is "unsure" (fmnist.serve.answer), or ""


def predict_files(
    paths: list[Path], model_path: Path, top_k: int = 3, device: str = "auto", batch: int = 256
) -> list[Prediction]:
    """Predict every readable file of ``paths``; unreadable ones carry their error."""
    dev = select_device(device, "--device")
    model, meta = load_checkpoint(model_path, dev)
    classes = meta["classes"]
    inputs: list[np.ndarray] = []
    problems: list[str] = []
    readable: list[Path] = []
    results: dict[Path, Prediction] = {}
    shape = tuple(meta["input"]["shape"])
    for path in paths:
        try:
            converted = convert_file(path, shape)
            inputs.append(converted.pixels)
            problems.append(converted.problem)
            readable.append(path)
        except ImageError as exc:
            results[path] = Prediction(path, [], error=str(exc))
    if readable:
        images = np.stack(inputs)
        data = to_device(images, np.zeros(len(images), np.int64), dev)
        probs = torch.softmax(predict_logits(model, data, batch), 1).cpu().numpy()
        k = min(top_k, len(classes))
        for path, image, p, problem in zip(readable, images, probs, problems, strict=True):
            order = np.argsort(-p, kind="stable")[:k]
            top = [(classes[i], float(p[i])) for i in order]
            unsure = unsure_reason(p, classes, problem)
            results[path] = Prediction(path, top, image, unsure=unsure)
    return [results[p] for p in paths]


def write_csv(path: Path, predictions: list[Prediction], top_k: int) -> None:
    """One row per image: path, status (ok, unsure or skipped), top-k classes and
    probabilities, and the error or the reason for "unsure"."""
    header = ["path", "status"]
    for i in range(1, top_k + 1):
        header += [f"class{i}", f"probability{i}"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*header, "error"])
        for p in predictions:
            cells = [str(p.path), "skipped" if p.error else "unsure" if p.unsure else "ok"]
            for i in range(top_k):
                cells += [p.top[i][0], f"{p.top[i][1]:.6f}"] if i < len(p.top) else ["", ""]
            writer.writerow([*cells, p.error or p.unsure])


def figure_names(paths: list[Path]) -> dict[Path, str]:
    """A file name per picture, unique even where two pictures share a name
    (``a/item.jpg`` and ``b/item.jpg`` give ``a__item.png`` and ``b__item.png``)."""
    stems = [p.with_suffix("").as_posix() for p in paths]
    common = os.path.commonpath([str(Path(s).parent) for s in stems]) if stems else ""
    names = {}
    for path, stem in zip(paths, stems, strict=True):
        relative = os.path.relpath(stem, common) if common else stem
        names[path] = relative.replace("/", "__").replace("..", "up") + ".png"
    return names


def save_figure(prediction: Prediction, path: Path) -> Path:
    """Report C's view, written to ``path``: the 28x28 input as the model saw it and the
    class probabilities (titled "unsure" when the answer is)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fmnist.core.plots import _save

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(8, 3.2), width_ratios=(1, 1.6), layout="constrained"
    )
    left.imshow(
        prediction.image, cmap="gray" if prediction.image.ndim == 2 else None, vmin=0, vmax=255
    )
    left.axis("off")
    name, prob = prediction.top[0]
    left.set_title("unsure" if prediction.unsure else f"{name} ({prob:.2%})")
    labels = [c for c, _ in prediction.top][::-1]
    right.barh(labels, [p for _, p in prediction.top][::-1], color="tab:blue")
    right.set_xlim(0, 1)
    right.set_xlabel("probability")
    fig.suptitle(str(prediction.path))
    _save(fig, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Classify garment pictures.")
    parser.add_argument("paths", nargs="+", help="image files or folders")
    parser.add_argument("--model", type=Path, default=layout.MODEL)
    parser.add_argument("--top-k", type=_at_least_one, default=3)
    parser.add_argument("--csv", type=Path, help="write one row per image here")
    parser.add_argument("--show", type=Path, metavar="DIR", help="save a figure per image here")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=_at_least_one, default=256)
    args = parser.parse_args(argv)
    if args.csv is not None:  # refused before any work, not after the predictions print
        _check_writable_folder(args.csv.parent, "--csv")
    predictions = predict_files(
        image_files(args.paths), args.model, args.top_k, args.device, args.batch_size
    )
    names = figure_names([p.path for p in predictions])
    for p in predictions:
        if p.error:
            print(f"skipped {p.error}", file=sys.stderr)
            continue
        guesses = " | ".join(f"{c} {prob:.1%}" for c, prob in p.top)
        print(f"{p.path}: " + (f"unsure: {p.unsure} (guesses: {guesses})" if p.unsure else guesses))
        if args.show:
            save_figure(p, args.show / names[p.path])
    if args.csv:
        write_csv(args.csv, predictions, args.top_k)
    if all(p.error for p in predictions):
        raise PipelineError("no image could be predicted")
    return 1 if any(p.error for p in predictions) else 0


def _at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}; use at least 1")
    return value


def _check_writable_folder(folder: Path, option: str) -> None:
    folder = folder if str(folder) else Path(".")
    if not folder.is_dir():
        raise PipelineError(f"{option}: {folder} is not a folder; create it or name another")
    if not os.access(folder, os.W_OK):
        raise PipelineError(f"{option}: cannot write in {folder}; check its permissions")


def cli() -> None:
    """Console-script entry point (fmnist-predict)."""
    run_stage(lambda: sys.exit(main()))


if __name__ == "__main__":
    cli()
