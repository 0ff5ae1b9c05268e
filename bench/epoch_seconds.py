"""Seconds per training epoch of each zoo model with its own recipe, on this machine.

Times a fixed number of training steps after a warm-up and scales to a 50,000-image
epoch (the default split), with the same engine the train stage uses (data on the
device as uint8, channels_last, the recipe's batch size and augmentation).

    python -m bench.epoch_seconds [model ...] [--steps 30] [--out results/epoch_seconds]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench.common import (
    engine_rate,
    load_params_for,
    neural_models,
    precision_label,
    real_data,
    write_results,
)
from fmnist.core.errors import run_stage
from fmnist.train.device import describe, select_device, set_threads

EPOCH_IMAGES = 50_000


def seconds_per_epoch(name: str, steps: int, device: torch.device, repeats: int = 1) -> dict:
    """Time ``steps`` training steps of ``name`` with its recipe (the median of
    ``repeats`` timings); scale to one epoch."""
    recipe = load_params_for(name).recipe
    images, labels = real_data(recipe.batch_size * steps)
    rate = engine_rate(name, images, labels, steps, repeats, device)
    return {
        "model": name,
        "batch_size": recipe.batch_size,
        "seconds_per_epoch": round(EPOCH_IMAGES / rate, 1),
        "images_per_second": round(rate),
        "epochs": recipe.epochs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=neural_models())
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, help="also write the table (markdown) and .json here")
    args = parser.parse_args()
    threads = set_threads(0)
    device = select_device("auto")
    lines = [
        f"Seconds per training epoch (50,000 images) on {describe(device)}, {threads} threads, "
        f"{precision_label(device)}, "
        f"measured over {args.steps} steps after a warm-up by `python -m bench.epoch_seconds`.",
        "",
        "| model | batch | s/epoch | images/s | recipe epochs | full recipe (min) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    rows = []
    for name in args.models:
        row = seconds_per_epoch(name, args.steps, device)
        rows.append(row)
        full = row["seconds_per_epoch"] * row["epochs"] / 60
        lines.append(
            f"| {name} | {row['batch_size']} | {row['seconds_per_epoch']} | "
            f"{row['images_per_second']} | {row['epochs']} | {full:.0f} |"
        )
        print(lines[-1], flush=True)
    for row in rows:
        row["full_recipe_minutes"] = round(row["seconds_per_epoch"] * row["epochs"] / 60, 1)
    write_results(
        args.out,
        {"device": describe(device), "threads": threads, "rows": rows},
        title="Seconds per training epoch of every model",
        about=lines[0],
        columns=[
            ("model", "model"),
            ("batch_size", "batch"),
            ("seconds_per_epoch", "s/epoch"),
            ("images_per_second", "images/s"),
            ("epochs", "recipe epochs"),
            ("full_recipe_minutes", "full recipe (min)"),
        ],
    )


if __name__ == "__main__":
    run_stage(main)
