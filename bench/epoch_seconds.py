"""Seconds per training epoch of each zoo model with its own recipe, on this machine.

Times a fixed number of training steps after a warm-up and scales to a 50,000-image
epoch (the default split), with the same engine the train stage uses (data on the
device as uint8, channels_last, the recipe's batch size and augmentation).

    python -m bench.epoch_seconds [model ...] [--steps 30] [--out results/epoch_seconds.md]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from fmnist.device import describe, select_device, set_threads
from fmnist.engine import to_device, train_epoch
from fmnist.models import build_model, list_models
from fmnist.optim import make_optimizer
from fmnist.params import Params, load_params

EPOCH_IMAGES = 50_000


def seconds_per_epoch(name: str, steps: int, device: torch.device) -> dict:
    """Time ``steps`` training steps of ``name`` with its recipe; scale to one epoch."""
    recipe = load_params_for(name).recipe
    torch.manual_seed(0)
    model = build_model(name, recipe.arch).to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(recipe.optimizer, model.parameters(), recipe.lr)
    rng = np.random.default_rng(0)
    n = recipe.batch_size * steps
    data = to_device(
        rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n), device
    )
    g = torch.Generator(device=device).manual_seed(0)
    warm = to_device(
        rng.integers(0, 256, (recipe.batch_size * 3, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, recipe.batch_size * 3),
        device,
    )
    train_epoch(model, optimizer, warm, recipe.batch_size, recipe.augment, g)
    start = time.perf_counter()
    train_epoch(model, optimizer, data, recipe.batch_size, recipe.augment, g)
    elapsed = time.perf_counter() - start
    return {
        "model": name,
        "batch_size": recipe.batch_size,
        "seconds_per_epoch": round(elapsed / n * EPOCH_IMAGES, 1),
        "images_per_second": round(n / elapsed),
        "epochs": recipe.epochs,
    }


def load_params_for(name: str) -> Params:
    """params.yaml with ``model`` set to ``name``."""
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["model"] = name
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(raw, f)
    try:
        return load_params(f.name)
    finally:
        Path(f.name).unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list_models())
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, help="also write the table (markdown) and .json here")
    args = parser.parse_args()
    threads = set_threads(0)
    device = select_device("auto")
    lines = [
        f"Seconds per training epoch (50,000 images) on {describe(device)}, {threads} threads, "
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
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        payload = {"device": describe(device), "threads": threads, "rows": rows}
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
