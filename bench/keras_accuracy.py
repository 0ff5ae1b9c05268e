"""Train a report's own Keras model with its recipe here, to see what the recipe reaches.

    pip install tensorflow-cpu   # in a virtual environment of its own (see README)
    python -m bench.keras_accuracy rnn --seed 1 [--epochs 25] [--out bench/out/keras_accuracy]

Issue #3 measures each zoo model against the accuracy its report claimed. Where the
PyTorch model falls short, the question is whether the model is wrong or the claim is one
lucky run (or was measured differently). This script answers it without PyTorch: it
rebuilds the report's layers in Keras 3 (``bench.keras_seconds``), compiles them with the
recipe's optimizer, learning rate and batch size, and trains on the project's own split
(``data/prepared``: 50k train, 10k validation, 10k test; run ``dvc repro`` first). After
each epoch it records validation and test accuracy, so the figures can be read the way
the pipeline reads them (test at the best validation epoch) and the way a plain Keras
``fit`` ends (test after the last epoch). Rows are appended to ``<out>.json`` and the
markdown table beside it is rebuilt from all rows, so seeds can run one at a time.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np

from bench.keras_seconds import MODELS, _keras, compiled, model_input

PREPARED = Path("data/prepared")


def split(name: str, model: str) -> tuple[np.ndarray, np.ndarray]:
    """One prepared split as Keras wants it: float images in [0, 1], integer labels."""
    path = PREPARED / f"{name}.npz"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `dvc repro prepare` first")
    with np.load(path) as data:
        images = data["images"].astype(np.float32) / 255
        labels = data["labels"].astype(np.int64)
    return model_input(model, images), labels


def train(model_name: str, seed: int, epochs: int, lr: float | None) -> dict:
    """Fit one epoch at a time; accuracy on validation and test after each."""
    keras = _keras()
    _, optimizer, recipe_lr, batch, _ = MODELS[model_name]
    lr = recipe_lr if lr is None else lr
    model = compiled(model_name, seed, lr, metrics=("accuracy",))
    (x, y), val, test = (split(s, model_name) for s in ("train", "val", "test"))
    history: list[dict] = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        tick = time.perf_counter()
        loss = model.fit(x, y, batch_size=batch, epochs=1, verbose=0).history["loss"][-1]
        seconds = time.perf_counter() - tick
        val_acc = model.evaluate(*val, batch_size=1000, verbose=0)[1]
        test_acc = model.evaluate(*test, batch_size=1000, verbose=0)[1]
        row = {"epoch": epoch, "loss": loss, "val": val_acc, "test": test_acc, "s": seconds}
        history.append(row)
        print(
            f"{model_name} seed {seed} epoch {epoch}: loss {loss:.4f} val {val_acc:.4f} "
            f"test {test_acc:.4f} | {seconds:.1f}s",
            flush=True,
        )
        if not math.isfinite(loss):
            print(f"{model_name}: the loss is {loss}; stopping", flush=True)
            break
    return {
        "model": model_name,
        "seed": seed,
        "optimizer": optimizer,
        "lr": lr,
        "batch_size": batch,
        **summarise(history),
        "minutes": (time.perf_counter() - start) / 60,
        "keras": keras.__version__,
        "history": history,
    }


def summarise(history: list[dict]) -> dict:
    """Test accuracy read two ways: at the best validation epoch (the pipeline's
    best-checkpoint rule, first of equals) and after the last epoch (a plain ``fit``)."""
    best = max(history, key=lambda r: r["val"])
    return {
        "epochs": len(history),
        "best_epoch": best["epoch"],
        "test_at_best_val": best["test"],
        "test_at_last": history[-1]["test"],
        "val_at_best": best["val"],
        "seconds_per_epoch": statistics.median(r["s"] for r in history),
    }


def table(rows: list[dict]) -> str:
    """Markdown: one line a run, then the mean over seeds of each model and recipe."""
    lines = [
        "The reports' own Keras models, trained here with their recipes on the project's "
        "split (50k train / 10k val / 10k test), fp32, "
        "`python -m bench.keras_accuracy MODEL --seed N`.",
        "",
        "| model | lr | batch | seed | epochs | best val epoch | val % | test % at best val "
        "| test % at last epoch | s/epoch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['lr']:g} | {r['batch_size']} | {r['seed']} | {r['epochs']} "
            f"| {r['best_epoch']} | {100 * r['val_at_best']:.2f} "
            f"| {100 * r['test_at_best_val']:.2f} | {100 * r['test_at_last']:.2f} "
            f"| {r['seconds_per_epoch']:.1f} |"
        )
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["lr"], r["epochs"]), []).append(r)
    lines += ["", "| model | lr | epochs | seeds | test % at best val | test % at last |"]
    lines.append("|---|---:|---:|---:|---:|---:|")
    for (model, lr, epochs), runs in groups.items():
        lines.append(
            f"| {model} | {lr:g} | {epochs} | {len(runs)} "
            f"| {_mean_sd([r['test_at_best_val'] for r in runs])} "
            f"| {_mean_sd([r['test_at_last'] for r in runs])} |"
        )
    return "\n".join(lines) + "\n"


def _mean_sd(values: list[float]) -> str:
    mean = 100 * statistics.mean(values)
    if len(values) < 2:
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    parser.add_argument("--lr", type=float, help="default: the recipe's")
    parser.add_argument("--out", type=Path, default=Path("bench/out/keras_accuracy"))
    args = parser.parse_args()
    if args.lr is not None and args.lr <= 0:
        parser.error(f"--lr must be positive, got {args.lr}")
    epochs = args.epochs or MODELS[args.model][4]
    row = train(args.model, args.seed, epochs, args.lr)
    path = args.out.with_suffix(".json")
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
