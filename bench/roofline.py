"""How close each model's training runs to this machine's arithmetic peak, and whether
issue #4's CPU targets (a fraction of Keras's seconds per epoch) fit under that peak.

    python -m bench.roofline [model ...] [--steps 20] [--out results/roofline]

For each model: the floating-point operations of one training image (forward + backward,
counted by ``torch.utils.flop_counter`` on the reference layers, with oneDNN off so that
the LSTM kernel decomposes into the matrix products it is made of), the engine's training
rate (the train stage's loop, as ``bench.speed`` times it) and so its achieved GFLOP/s;
the peak, measured as the best of large square matrix products on the same threads, in
the precision the engine trains in (bf16 where ``train.precision: auto`` picks it);
and the GFLOP/s a model would need to meet its target. A target that needs more than the
peak cannot be met by any engine running that model's math on this machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench.common import (
    engine_rate,
    load_params_for,
    precision_label,
    real_data,
    write_results,
)
from bench.epoch_seconds import EPOCH_IMAGES
from fmnist.core.errors import run_stage
from fmnist.models import build_model
from fmnist.train.device import describe, select_device, set_threads

# Keras 3 / TensorFlow seconds per training epoch on this 2-core CPU, and the share of it
# issue #4 asks for (one half for the CNNs, two thirds for the recurrent models)
KERAS_SECONDS = {
    "cnn1": 9.3,
    "cnn1-bn": 21.6,
    "cnn2": 21.3,
    "cnn3": 17.6,
    "cifar-cnn": 20.2,
    "vgg": 67.7,
    "rnn": 19.6,
    "bilstm": 111.0,
}
TARGET_SHARE = {"rnn": 2 / 3, "bilstm": 2 / 3}


def training_flops(name: str, batch: int = 8) -> float:
    """Floating-point operations of one training image of ``name`` (forward, backward)."""
    model = build_model(name, load_params_for(name).recipe.arch, fast=False)
    x, y = torch.rand(batch, 1, 28, 28), torch.arange(batch) % 10
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as count:
        F.cross_entropy(model(x), y).backward()
    return count.get_total_flops() / batch


def matmul_peak(
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    sizes: tuple[int, ...] = (1024, 2048),
) -> float:
    """Best GFLOP/s of square ``dtype`` matrix products: the arithmetic ceiling."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(2):
            a @ b
        repeats = max(2, int(2e10 / (2 * n**3)))
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def row(name: str, steps: int, peak: float, device: torch.device) -> dict:
    recipe = load_params_for(name).recipe
    flops = training_flops(name)
    images, labels = real_data(recipe.batch_size * steps)
    rate = engine_rate(name, images, labels, steps, 1, device)
    keras = KERAS_SECONDS.get(name)
    target = keras * TARGET_SHARE.get(name, 1 / 2) if keras else None
    needed = EPOCH_IMAGES * flops / target / 1e9 if target else None
    achieved = rate * flops / 1e9
    return {
        "model": name,
        "mflop_per_image": round(flops / 1e6, 1),
        "seconds_per_epoch": round(EPOCH_IMAGES / rate, 1),
        "gflops": round(achieved, 1),
        "share_of_peak": round(achieved / peak, 2),
        "floor_seconds": round(EPOCH_IMAGES * flops / peak / 1e9, 1),
        "keras_seconds": keras,
        "target_seconds": round(target, 1) if target else None,
        "target_gflops": round(needed, 1) if needed else None,
        "target_above_peak": bool(needed and needed > peak),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(KERAS_SECONDS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, help="write <out>.md and <out>.json")
    args = parser.parse_args()
    threads = set_threads(0)
    device = select_device("auto")
    label = precision_label(device)
    dtype = torch.bfloat16 if label.startswith("bf16") else torch.float32
    peak = matmul_peak(device, dtype)
    lines = [
        f"Arithmetic of one training epoch (50,000 images) on {describe(device)}, {threads} "
        f"threads, engine in {label}; peak {peak:.0f} GFLOP/s (best square "
        f"{str(dtype).removeprefix('torch.')} matrix product); "
        f"`python -m bench.roofline`. Floor: the epoch's operations at the peak.",
        "",
        "| model | MFLOP / image | s/epoch | GFLOP/s | of peak | floor s | Keras s "
        "| target s | GFLOP/s needed | possible |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    print("\n".join(lines), flush=True)
    rows = []
    for name in args.models:
        r = row(name, args.steps, peak, device)
        rows.append(r)
        possible = "no: above the peak" if r["target_above_peak"] else "yes"
        lines.append(
            f"| {name} | {r['mflop_per_image']} | {r['seconds_per_epoch']} | {r['gflops']} "
            f"| {r['share_of_peak']:.0%} | {r['floor_seconds']} | {r['keras_seconds'] or ''} "
            f"| {r['target_seconds'] or ''} | {r['target_gflops'] or ''} "
            f"| {possible if r['target_seconds'] else ''} |"
        )
        print(lines[-1], flush=True)
    for r in rows:
        r["possible"] = (
            ("no: above the peak" if r["target_above_peak"] else "yes")
            if r["target_seconds"]
            else None
        )
    payload = {
        "device": describe(device),
        "threads": threads,
        "precision": label,
        "peak_gflops": round(peak, 1),
        "rows": rows,
    }
    write_results(
        args.out,
        payload,
        title="Roofline: the engine against the CPU's peak",
        about=lines[0],
        columns=[
            ("model", "model"),
            ("mflop_per_image", "MFLOP / image"),
            ("seconds_per_epoch", "s/epoch"),
            ("gflops", "GFLOP/s"),
            ("share_of_peak", "of peak", "{:.0%}"),
            ("floor_seconds", "floor s"),
            ("keras_seconds", "Keras s (issue)"),
            ("target_seconds", "target s"),
            ("target_gflops", "GFLOP/s needed"),
            ("possible", "possible"),
        ],
    )


if __name__ == "__main__":
    run_stage(main)
