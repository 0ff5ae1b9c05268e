"""What portable kernels cost: seconds per training epoch with ``train.reproducible:
portable`` (AVX2, fp32, 2 threads) against ``fastest`` (all the CPU has), timed in turns.

    python -m bench kernels [model ...] [--rounds 2] [--steps 20] [--out results/kernels]

Each timing runs in a process of its own: the kernel libraries read the pin once, when
they first compute (:mod:`fmnist.core.kernels`). The modes alternate, and which goes
first swaps each round, so a busy machine slows both alike; the table keeps each
mode's median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from fmnist.core import kernels

DEFAULT_MODELS = ("fastcnn", "fastcnn-wide", "cnn2-bn", "bilstm")


def time_in_child(mode: str, model: str, steps: int) -> float:
    """Seconds per 50,000-image epoch of ``model`` in a fresh process pinned for ``mode``
    (``python -m bench`` pins before torch loads)."""
    child = [sys.executable, "-m", "bench", "epochs", model, "--steps", str(steps), "--json"]
    child += ["--set", f"train.reproducible={mode}", "--set", "train.device=cpu"]
    # this process was pinned as params.yaml says: a fastest child must not inherit it
    env = {k: v for k, v in os.environ.items() if k not in kernels.PORTABLE_ENV}
    run = subprocess.run(child, capture_output=True, text=True, timeout=1800, env=env)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(child)} failed: {run.stderr.strip().splitlines()[-1:]}")
    (row,) = json.loads(run.stdout.strip().splitlines()[-1])
    if row["pinned"] != (mode == "portable"):
        raise SystemExit(f"the {mode} child ran {'pinned' if row['pinned'] else 'unpinned'}")
    return row["seconds_per_epoch"]


def measure(models: list[str], rounds: int, steps: int) -> list[dict]:
    """Each model's median seconds per epoch in each mode, and portable's cost."""
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        for model in models:
            order = kernels.MODES if r % 2 == 0 else kernels.MODES[::-1]
            for mode in order:
                seconds = time_in_child(mode, model, steps)
                times.setdefault((model, mode), []).append(seconds)
                print(f"round {r + 1}: {model} {mode} {seconds:.1f} s/epoch", flush=True)
    rows = []
    for model in models:
        portable, fastest = (round(statistics.median(times[model, m]), 1) for m in kernels.MODES)
        cost = round(portable / fastest, 2)
        rows.append({"model": model, "portable": portable, "fastest": fastest, "cost": cost})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench kernels", description=__doc__)
    parser.add_argument("models", nargs="*", default=list(DEFAULT_MODELS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, help="write <out>.json and <out>.md")
    args = parser.parse_args(argv)
    rows = measure(args.models, args.rounds, args.steps)
    from bench.common import write_results  # loads torch: after the children are timed

    about = (
        "Seconds per training epoch (50,000 images) on the CPU with portable kernels "
        f"(AVX2, fp32, {kernels.PORTABLE_THREADS} threads) and the fastest (all the CPU "
        f"has, all cores), the median of {args.rounds} turns of {args.steps} steps each, "
        "by `python -m bench kernels`; cost: portable / fastest."
    )
    print(about)
    for row in rows:
        print(f"| {row['model']} | {row['portable']} | {row['fastest']} | {row['cost']} |")
    write_results(
        args.out,
        {"rounds": args.rounds, "steps": args.steps, "rows": rows},
        title="Portable kernels against the fastest",
        about=about,
        columns=[
            ("model", "model"),
            ("portable", "portable s/epoch"),
            ("fastest", "fastest s/epoch"),
            ("cost", "cost"),
        ],
    )
