"""Training and inference speed of zoo models: this project's engine vs plain PyTorch.

    python -m bench.speed cnn1 cnn2-bn [--steps 40] [--repeats 3] [--out results/speed]
    python -m bench.speed cnn1 --time-to-accuracy 0.90   # also train to a test accuracy

For each model, with its recipe's batch size and on the current device, in one process:
- engine: training images/s of the train stage's loop (data resident on the device as
  uint8, batches sliced and scaled there, channels_last), median of ``--repeats`` timed
  runs of ``--steps`` steps after a warm-up;
- baseline: the same model and optimizer fed by a DataLoader over a TensorDataset with
  per-sample conversion (default settings, contiguous memory format);
- their ratio, inference images/s on the test set, peak memory (RSS on CPU,
  ``max_memory_allocated`` on CUDA), and how busy the device is during the engine's
  steps (:func:`bench.common.busy_fraction`: on CUDA the share of wall time in GPU
  kernels, on a CPU the share spent inside PyTorch operators).
Writes a markdown table and JSON (``--out``); prints the table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from bench.common import (
    busy_fraction,
    engine_rate,
    load_params_for,
    median_rate,
    precision_for,
    precision_label,
    real_data,
    setup,
    sync,
    write_results,
)
from fmnist.device import describe, peak_memory_mb, select_device, set_threads
from fmnist.engine import EpochRecord, evaluate, fit, predict_logits, to_device
from fmnist.errors import run_stage


class PerSampleDataset(Dataset):
    """The plain way: uint8 images converted to float one sample at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i].float().div(255).unsqueeze(0), self.labels[i]


def baseline_rate(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    repeats: int,
    device: torch.device,
) -> float:
    recipe, model, opt = setup(name, device, tuned=False)
    loader = DataLoader(
        PerSampleDataset(images, labels), batch_size=recipe.batch_size, shuffle=True
    )
    model.train()

    def run(limit: int) -> int:
        seen = 0
        for step, (x, y) in enumerate(loader):
            if step == limit:
                break
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(y)
        sync(device)
        return seen

    run(3)
    return median_rate(lambda _: run(steps), repeats)


def inference_rate(name: str, device: torch.device, batch: int = 500) -> float:
    _, model, _ = setup(name, device)
    test = to_device(*real_data(10_000, "test"), device)
    precision = precision_for(name, device)
    predict_logits(model, test, batch, precision=precision)  # warm-up
    sync(device)
    start = time.perf_counter()
    predict_logits(model, test, batch, precision=precision)
    sync(device)
    return len(test) / (time.perf_counter() - start)


def time_to_accuracy(name: str, target: float, device: torch.device) -> tuple[float | None, float]:
    """Seconds of training (its recipe, full data) until test accuracy >= target."""
    recipe, model, _ = setup(name, device)
    images = 50_000 if recipe.held_out else 60_000  # the default split's sizes
    train = to_device(*real_data(images), device)
    test = to_device(*real_data(10_000, "test"), device)
    reached: list[float] = []
    elapsed = 0.0

    def check(record: EpochRecord) -> None:
        nonlocal elapsed
        elapsed += record.seconds
        if not reached and evaluate(model, test, 500)[1] >= target:
            reached.append(elapsed)

    fit(
        model,
        recipe,
        train,
        test,
        torch.Generator(device=device).manual_seed(0),
        eval_batch_size=500,
        on_epoch=check,
        precision=precision_for(name, device),
    )
    return (reached[0] if reached else None), elapsed


def measure(name: str, steps: int, repeats: int, target: float | None) -> dict[str, Any]:
    """Every figure of one model's row, measured in the calling process."""
    threads = set_threads(0)
    device = select_device("auto")
    images, labels = real_data(20_000)
    # first: the engine's loop keeps freed memory for the rest of the process
    base = baseline_rate(name, images, labels, steps, repeats, device)
    fast = engine_rate(name, images, labels, steps, repeats, device)
    infer = inference_rate(name, device)
    busy = busy_fraction(name, images, labels, min(steps, 20), device)
    tta = ""
    if target:
        seconds, total = time_to_accuracy(name, target, device)
        reached = f"in {seconds:.0f}s" if seconds is not None else f"not reached in {total:.0f}s"
        tta = f"{target:.0%} {reached}"
    return {
        "model": name,
        "batch_size": load_params_for(name).recipe.batch_size,
        "device": describe(device),
        "threads": threads,
        "engine": round(fast),
        "baseline": round(base),
        "ratio": round(fast / base, 2),
        "inference": round(infer),
        "peak_mb": round(peak_memory_mb(device)),
        "busy_fraction": round(busy, 3),
        "time_to_accuracy": tta,
    }


def measure_alone(name: str, steps: int, repeats: int, target: float | None) -> dict[str, Any]:
    """:func:`measure` in a fresh process, so that the peak memory is this model's own
    (a process's peak RSS never goes down: measured in one process, every model after the
    largest would report the largest's figure)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (name, steps, repeats, target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--time-to-accuracy", type=float, metavar="ACC")
    parser.add_argument("--out", type=Path, help="write <out>.md and <out>.json")
    args = parser.parse_args()
    device = select_device("auto")
    threads = set_threads(0)
    header = [
        f"Device: {describe(device)}, {threads} threads; engine in {precision_label(device)}, "
        f"baseline in fp32; {args.steps} steps x {args.repeats} repeats (median), "
        "`python -m bench.speed`. Each model is measured in a process of its own: peak MB "
        "is that process's peak RSS (on CUDA, tensors allocated).",
        "",
        "| model | batch | engine img/s | baseline img/s | ratio | inference img/s "
        "| peak MB | busy % | time to accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    print("\n".join(header), flush=True)
    rows, lines = [], list(header)
    for name in args.models:
        load_params_for(name)  # an unknown name fails here, before a process is started
        row = measure_alone(name, args.steps, args.repeats, args.time_to_accuracy)
        rows.append(row)
        lines.append(
            f"| {name} | {row['batch_size']} | {row['engine']} | {row['baseline']} "
            f"| {row['ratio']}x | {row['inference']} | {row['peak_mb']} "
            f"| {row['busy_fraction']:.0%} | {row['time_to_accuracy']} |"
        )
        print(lines[-1], flush=True)
    payload = {"device": describe(device), "threads": threads, "rows": rows}
    write_results(args.out, lines, payload)


if __name__ == "__main__":
    run_stage(main)
