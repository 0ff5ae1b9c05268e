"""Training and inference speed of zoo models: this project's engine vs plain PyTorch.

    python -m bench speed cnn1 cnn2-bn [--steps 40] [--repeats 3] [--warmup 100] \\
        [--out results/speed]
    python -m bench speed cnn1 --time-to-accuracy 0.90   # also train to a test accuracy

For each model, with its recipe's batch size and on the current device:
- engine: training images/s of the train stage's own function
  (:func:`fmnist.train.training.train`: data resident on the device as uint8, batches
  sliced and scaled there, channels_last, the recipe's precision and kernels);
- baseline: the same model and optimizer fed by a DataLoader over a TensorDataset with
  per-sample conversion (default settings, contiguous memory format);
- their ratio. Each loop runs in a process of its own, warmed up, and the two are timed
  in turns, ``--repeats`` rounds of ``--steps`` steps (baseline, then engine). A shared
  machine's speed drifts by tens of percent within a minute: timing all of one loop and
  then all of the other put bilstm's ratio anywhere from 1.48x to 2.23x. Turns expose
  both loops to the same drift, and the ratio is the median of the rounds' ratios. The
  processes also keep the engine's allocator setting
  (:func:`fmnist.train.device.keep_freed_memory`) away from the baseline, which keeps
  glibc's defaults;
- from the engine's process: inference images/s on the test set, its peak memory (RSS
  on CPU, ``max_memory_allocated`` on CUDA), and how busy the device is during the
  engine's steps (:func:`bench.common.busy_fraction`: on CUDA the share of wall time in
  GPU kernels, on a CPU the share spent inside PyTorch operators).
Writes a markdown table and JSON (``--out``); prints the table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from bench.common import (
    add_arguments,
    bench_params,
    busy_fraction,
    real_data,
    step_count,
    sync,
    time_to_accuracy,
    training_rate,
    write_results,
)
from fmnist.data.prepared import Split
from fmnist.models import build_model
from fmnist.train.batches import to_device
from fmnist.train.device import (
    autocast_dtype,
    describe,
    peak_memory_mb,
    select_device,
    set_threads,
)
from fmnist.train.inference import predict_logits
from fmnist.train.optim import make_optimizer
from fmnist.train.training import memory_format


class PerSampleDataset(Dataset):
    """The plain way: uint8 images converted to float one sample at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i].float().div(255).unsqueeze(0), self.labels[i]


def baseline_loop(name: str, data: Split) -> Callable[[int, int], float]:
    """The plain loop for ``name``, warmed up: ``run(steps, seed)`` trains ``steps``
    batches in a seeded shuffle and returns its images/s. What a tutorial writes: the
    reference layers in the default memory format, the recipe's optimizer without its
    fused kernel, a DataLoader converting one sample at a time, fp32."""
    params = bench_params(name)
    recipe = params.recipe
    set_threads(params.train.threads, reproducible=params.train.reproducible)  # as the engine
    device = select_device(params.train.device)
    torch.manual_seed(0)
    model = build_model(name, recipe.arch, fast=False).to(device)
    opt = make_optimizer(recipe.optimizer, model.parameters(), lr=recipe.lr, fast=False)
    dataset = PerSampleDataset(data.images, data.labels)
    model.train()

    def run(steps: int, seed: int) -> float:
        order = torch.Generator().manual_seed(seed)
        loader = DataLoader(dataset, batch_size=recipe.batch_size, shuffle=True, generator=order)
        seen, start = 0, time.perf_counter()
        for step, (x, y) in enumerate(loader):
            if step == steps:
                break
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(y)
        sync(device)
        return seen / (time.perf_counter() - start)

    run(3, 0)
    return run


def engine_loop(name: str, data: Split) -> Callable[[int, int], float]:
    """The train stage's function for ``name``: ``run(steps, seed)`` trains ``steps``
    batches of a seeded sample and returns its images/s."""
    return lambda steps, seed: training_rate(name, data, steps, seed)


LOOPS = {"baseline": baseline_loop, "engine": engine_loop}


def serve(
    conn: Connection, loop: str, name: str, steps: int, warmup: int, target: float | None
) -> None:
    """One loop in a process of its own: trains ``warmup`` untimed steps, then times
    ``steps`` steps for every seed it is sent and answers with images/s; sent None, it
    answers with the figures that belong to the engine's process (see
    :func:`engine_figures`), or an empty dict, and ends.

    The warm-up is long because glibc's malloc raises its mmap threshold as it sees
    large blocks freed: the plain bilstm loop sped up from ~1,000 to ~1,450 images/s over
    its first ~80 steps, then held. A short warm-up timed that climb, not the loop."""
    data = real_data(20_000)
    run = LOOPS[loop](name, data)
    run(warmup, 0)
    conn.send(None)  # warmed up
    while (seed := conn.recv()) is not None:
        conn.send(run(steps, seed))
    if loop != "engine":
        conn.send({})
        return
    conn.send(engine_figures(name, data, steps, target))


def engine_figures(name: str, data: Split, steps: int, target: float | None) -> dict[str, Any]:
    """Inference rate, busy share, time to ``target`` and peak memory, in the engine's
    process: its peak is the train stage's, with no baseline in it."""
    device = select_device(bench_params(name).train.device)
    figures: dict[str, Any] = {
        "device": describe(device),
        "inference": round(inference_rate(name, device)),
        "busy_fraction": round(busy_fraction(name, data, max(steps, 10)), 3),
        "time_to_accuracy": "",
    }
    if target:
        seconds, total, _ = time_to_accuracy(name, target)
        reached = f"in {seconds:.0f}s" if seconds is not None else f"not reached in {total:.0f}s"
        figures["time_to_accuracy"] = f"{target:.0%} {reached}"
    figures["peak_mb"] = round(peak_memory_mb(device))
    return figures


def inference_rate(name: str, device: torch.device, batch: int = 500) -> float:
    """Test images/s of ``name``'s layers as the train stage builds them (untrained)."""
    params = bench_params(name)
    model = build_model(name, params.recipe.arch).to(device, memory_format=memory_format(device))
    test = real_data(10_000, "test")
    scored = to_device(test.images, test.labels, device)
    precision = autocast_dtype(params.train.precision, device, params.train.reproducible)
    predict_logits(model, scored, batch, precision=precision)  # warm-up
    sync(device)
    start = time.perf_counter()
    predict_logits(model, scored, batch, precision=precision)
    sync(device)
    return len(scored) / (time.perf_counter() - start)


def measure(
    name: str, steps: int, repeats: int, target: float | None, warmup: int = 100
) -> dict[str, Any]:
    """Every figure of one model's row: the baseline and the engine in two processes of
    their own (:func:`serve`), timed in turns (:func:`take_turns`)."""
    context = multiprocessing.get_context("spawn")
    pipes, workers = {}, {}
    for loop in LOOPS:
        ours, theirs = context.Pipe()
        worker = context.Process(target=serve, args=(theirs, loop, name, steps, warmup, target))
        worker.start()
        theirs.close()  # the worker's end: if it dies, recv() raises instead of waiting
        pipes[loop] = ours
        workers[loop] = worker
    try:
        for pipe in pipes.values():
            pipe.recv()  # both warmed up before the first round
        rounds = take_turns({loop: _timer(pipe) for loop, pipe in pipes.items()}, repeats)
        pipes["baseline"].send(None)
        pipes["baseline"].recv()
        workers["baseline"].join()  # gone before the engine's inference is timed
        pipes["engine"].send(None)
        figures = pipes["engine"].recv()
    finally:
        for worker in workers.values():
            worker.join()
    return {
        "model": name,
        "batch_size": bench_params(name).recipe.batch_size,
        **summarise(rounds),
        **figures,  # device and threads as the engine's process saw them
    }


def _timer(pipe: Connection) -> Callable[[int], float]:
    """Images/s of one timed run, with ``seed``, by the loop at the other end of ``pipe``."""

    def time_it(seed: int) -> float:
        pipe.send(seed)
        return pipe.recv()

    return time_it


def take_turns(timers: dict[str, Callable[[int], float]], repeats: int) -> list[dict[str, float]]:
    """``repeats`` rounds, each timing every loop once, in turn: a drift of the machine's
    speed then reaches every loop alike instead of the one that ran last."""
    return [{loop: time_it(r) for loop, time_it in timers.items()} for r in range(repeats)]


def summarise(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """Median images/s of each loop and the median of the rounds' own ratios (each
    round's two figures were taken a moment apart, so their ratio is the least drifted)."""
    return {
        "engine": round(statistics.median(r["engine"] for r in rounds)),
        "baseline": round(statistics.median(r["baseline"] for r in rounds)),
        "ratio": round(statistics.median(r["engine"] / r["baseline"] for r in rounds), 2),
        "rounds": [{loop: round(rate) for loop, rate in r.items()} for r in rounds],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench speed", description=__doc__)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--steps", type=step_count, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=100, help="untimed steps first")
    parser.add_argument("--time-to-accuracy", type=float, metavar="ACC")
    add_arguments(parser)
    args = parser.parse_args(argv)
    params = bench_params(args.models[0], args.set)
    header = [
        f"Engine: the train stage's function (kernels {params.train.reproducible}, "
        f"precision {params.train.precision}); plain loop: fp32 eager PyTorch. Each in a "
        f"process of its own, warmed up ({args.warmup} steps), timed in turns: "
        f"{args.repeats} rounds of {args.steps} steps, medians (ratio: median of the "
        "rounds' ratios). Peak MB: the engine process's peak RSS (on CUDA, tensors "
        "allocated).",
        "",
        "| model | batch | engine img/s | baseline img/s | ratio | inference img/s "
        "| peak MB | busy % | time to accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    print("\n".join(header), flush=True)
    rows, lines = [], list(header)
    for name in args.models:
        bench_params(name)  # an unknown name fails here, before a process is started
        row = measure(name, args.steps, args.repeats, args.time_to_accuracy, args.warmup)
        rows.append(row)
        lines.append(
            f"| {name} | {row['batch_size']} | {row['engine']} | {row['baseline']} "
            f"| {row['ratio']}x | {row['inference']} | {row['peak_mb']} "
            f"| {row['busy_fraction']:.0%} | {row['time_to_accuracy']} |"
        )
        print(lines[-1], flush=True)
    write_results(
        args.out,
        {"device": rows[0]["device"], "kernels": params.train.reproducible, "rows": rows},
        title="The engine against a plain PyTorch loop",
        about=header[0],
        columns=[
            ("model", "model"),
            ("batch_size", "batch"),
            ("engine", "engine img/s"),
            ("baseline", "plain loop img/s"),
            ("ratio", "ratio", "{:.2f}x"),
            ("inference", "inference img/s"),
            ("peak_mb", "peak MB"),
            ("busy_fraction", "busy", "{:.0%}"),
            ("time_to_accuracy", "time to accuracy"),
        ],
    )
