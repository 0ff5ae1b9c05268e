"""Seconds per training epoch of each zoo model with its own recipe, on this machine.

    python -m bench epochs [model ...] [--steps 30] [--out results/epoch_seconds]

Trains ``--steps`` batches (after a short warm-up) with the train stage's own function
and scales to a 50,000-image epoch (the default split): the recipe's batch size,
augmentation, precision and kernels, exactly as ``dvc repro`` trains.
"""

from __future__ import annotations

import argparse
import json

from bench.common import (
    EPOCH_IMAGES,
    add_arguments,
    bench_params,
    engine_rate,
    neural_models,
    real_data,
    step_count,
    write_results,
)
from fmnist.core import kernels
from fmnist.train.device import describe, select_device


def seconds_per_epoch(
    name: str, steps: int, repeats: int = 1, overrides: list[str] | tuple[str, ...] = ()
) -> dict:
    """Time ``steps`` training steps of ``name`` with its recipe (the median of
    ``repeats`` timings); scale to one epoch."""
    recipe = bench_params(name, overrides).recipe
    data = real_data(recipe.batch_size * steps + 10)
    rate = engine_rate(name, data, steps, repeats, overrides=overrides)
    return {
        "model": name,
        "batch_size": recipe.batch_size,
        "seconds_per_epoch": round(EPOCH_IMAGES / rate, 1),
        "images_per_second": round(rate),
        "epochs": recipe.epochs,
        "full_recipe_minutes": round(EPOCH_IMAGES / rate * recipe.epochs / 60, 1),
        "pinned": kernels.is_pinned(),  # the portable AVX2 baseline, or all the CPU has
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench epochs", description=__doc__)
    parser.add_argument("models", nargs="*", default=neural_models())
    parser.add_argument("--steps", type=step_count, default=30)
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    add_arguments(parser)
    args = parser.parse_args(argv)
    params = bench_params(args.models[0], args.set)
    device = select_device(params.train.device)
    about = (
        f"Seconds per training epoch (50,000 images) on {describe(device)}, kernels "
        f"{params.train.reproducible}, measured over {args.steps} steps after a warm-up by "
        "the train stage's own function."
    )
    print(about, flush=True)
    rows = []
    for name in args.models:
        rows.append(seconds_per_epoch(name, args.steps, overrides=args.set))
        if not args.json:
            print(rows[-1], flush=True)
    if args.json:
        print(json.dumps(rows))
    write_results(
        args.out,
        {"device": describe(device), "kernels": params.train.reproducible, "rows": rows},
        title="Seconds per training epoch of every model",
        about=about,
        columns=[
            ("model", "model"),
            ("batch_size", "batch"),
            ("seconds_per_epoch", "s/epoch"),
            ("images_per_second", "images/s"),
            ("epochs", "recipe epochs"),
            ("full_recipe_minutes", "full recipe (min)"),
        ],
    )
