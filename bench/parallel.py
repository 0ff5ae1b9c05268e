"""Parallel experiments on one machine: total training images/s of N workers, each with
its share of the cores (what ``python -m fmnist.review.sweep -j N`` sets up), against one worker
that has them all.

    python -m bench.parallel [model] [--workers 1 2] [--steps 20]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os

import torch

from bench.common import engine_rate, load_params_for, real_data
from fmnist.core.errors import run_stage


def _worker(name: str, steps: int, threads: int, out: mp.Queue) -> None:
    torch.set_num_threads(threads)
    recipe = load_params_for(name).recipe
    images, labels = real_data(recipe.batch_size * steps)
    out.put(engine_rate(name, images, labels, steps, 1, torch.device("cpu")))


def total_rate(name: str, workers: int, steps: int) -> tuple[int, float]:
    """(threads per worker, summed images/s) of ``workers`` concurrent training loops."""
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(name, steps, threads, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return threads, sum(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="cnn1")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(f"| workers | threads each | total images/s ({args.model}) |\n|---:|---:|---:|")
    for n in args.workers:
        threads, rate = total_rate(args.model, n, args.steps)
        print(f"| {n} | {threads} | {rate:.0f} |", flush=True)


if __name__ == "__main__":
    run_stage(main)
