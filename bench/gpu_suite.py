"""Every GPU figure in one bounded run: epoch times of the zoo and their full recipes,
time to accuracy of the fast models, the share of time in kernels, peak memory.

    python -m bench gpu --out results/gpu                            # on the GPU machine
    python -m bench gpu --set train.device=cpu --tiny --out /tmp/g   # the tests' check

Written for the few minutes of a lent GPU: each part runs only while ``--budget``
seconds remain (a skipped part says so in the JSON), and the cheap parts come first.
Targets: cnn2-bn at most 1 s an epoch; every zoo recipe within 5 minutes;
the default model to 93.38 % test accuracy within 10 s of training; 95.5 % within
2 minutes. ``--tiny`` runs the same code on a few steps and a small subset, so the test
suite proves the script works without a GPU; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import (
    EPOCH_IMAGES,
    add_arguments,
    bench_params,
    busy_fraction,
    engine_rate,
    neural_models,
    real_data,
    step_count,
    time_to_accuracy,
    write_results,
)
from fmnist.train.device import autocast_dtype, describe, peak_memory_mb, select_device

TARGETS = {"cnn2-bn s/epoch": 1.0, "recipe minutes": 5.0, "s to 93.38%": 10.0, "s to 95.5%": 120.0}
ACCURACY_RUNS = (("fastcnn", 0.9338, "s to 93.38%"), ("fastcnn-wide", 0.955, "s to 95.5%"))


class Budget:
    """Seconds left of ``total``; parts ask before they start."""

    def __init__(self, total: float) -> None:
        self.end = time.monotonic() + total

    def left(self) -> float:
        return self.end - time.monotonic()


def epoch_row(name: str, steps: int, overrides: list[str]) -> dict[str, Any]:
    """One model's epoch time (``steps`` steps scaled to 50,000 images) and its full
    recipe's projected minutes."""
    recipe = bench_params(name, overrides).recipe
    data = real_data(recipe.batch_size * steps + 10)
    seconds = EPOCH_IMAGES / engine_rate(name, data, steps, 1, overrides=overrides)
    minutes = seconds * recipe.epochs / 60
    return {
        "model": name,
        "batch_size": recipe.batch_size,
        "seconds_per_epoch": round(seconds, 3),
        "epochs": recipe.epochs,
        "recipe_minutes": round(minutes, 2),
        "within_target": minutes <= TARGETS["recipe minutes"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench gpu", description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a few steps: checks the script")
    parser.add_argument("--steps", type=step_count, default=30)
    parser.add_argument("--budget", type=float, default=480, help="seconds, all parts")
    add_arguments(parser)
    args = parser.parse_args(argv)
    budget = Budget(args.budget)
    params = bench_params("fastcnn", args.set)
    device = select_device(params.train.device)
    precision = autocast_dtype(params.train.precision, device, params.train.reproducible)
    computes = "bf16 autocast" if precision is not None else "fp32"
    steps = 10 if args.tiny else args.steps
    models = ["cnn1", "cnn2-bn", "fastcnn"] if args.tiny else neural_models()
    rows, skipped = [], []
    for name in models:
        if budget.left() < 30 and not args.tiny:
            skipped.append(f"epoch time of {name}")
            continue
        rows.append(epoch_row(name, steps, args.set))
        print(rows[-1], flush=True)
    busy = round(
        busy_fraction("fastcnn", real_data(256 * steps + 10), steps, overrides=args.set), 3
    )
    accuracy: dict[str, Any] = {}
    for name, target, label in ACCURACY_RUNS:
        if budget.left() < 60 and not args.tiny:
            skipped.append(f"{label} ({name})")
            continue
        seconds, _, best = time_to_accuracy(name, target, args.tiny, args.set)
        accuracy[label] = {"seconds": seconds, "best": best, "model": name}
        print(label, accuracy[label], flush=True)
    cnn2_bn = next((r["seconds_per_epoch"] for r in rows if r["model"] == "cnn2-bn"), None)
    checks = [("cnn2-bn s/epoch", cnn2_bn)] + [
        (label, accuracy.get(label, {}).get("seconds")) for _, _, label in ACCURACY_RUNS
    ]
    targets = [
        {
            "what": what,
            "measured": value,
            "target": TARGETS[what],
            "met": None if value is None else value <= TARGETS[what],
        }
        for what, value in checks
    ]
    write_results(
        args.out,
        {
            "device": describe(device),
            "precision": computes,
            "tiny": args.tiny,
            "rows": rows,
            "time_to_accuracy": accuracy,
            "busy_fraction": busy,
            "peak_memory_mb": round(peak_memory_mb(device)),
            "skipped": skipped,
            "tables": [
                {
                    "title": "Targets",
                    "about": f"Share of fastcnn's step time in kernels: {busy:.0%}; peak "
                    f"memory {round(peak_memory_mb(device))} MB. Skipped for time: "
                    f"{', '.join(skipped) or 'nothing'}.",
                    "columns": [
                        ("what", "what"),
                        ("measured", "measured"),
                        ("target", "target"),
                        ("met", "met"),
                    ],
                    "rows": targets,
                }
            ],
        },
        title=f"GPU suite{' (tiny: figures mean nothing)' if args.tiny else ''}",
        about=f"Every model's epoch on {describe(device)} ({computes}), "
        f"{steps} steps scaled to 50,000 images, and its full recipe projected.",
        columns=[
            ("model", "model"),
            ("batch_size", "batch"),
            ("seconds_per_epoch", "s/epoch"),
            ("epochs", "recipe epochs"),
            ("recipe_minutes", "recipe minutes"),
            ("within_target", "≤ 5 min"),
        ],
    )
