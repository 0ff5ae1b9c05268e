"""The engine against Keras on this machine, timed in turns.

    python -m bench keras --keras-python /tmp/tf/bin/python [model ...] \\
        [--rounds 3] [--steps 60] [--out results/versus_keras]

A shared 2-core machine drifts: the same benchmark ran at half speed one minute and full
speed the next, and two separate runs of `bench epochs` and `keras_seconds.py` an
hour apart gave cnn1 4.5 and 9.0 s/epoch. So each model is timed by the engine and then at
once by Keras (``bench/keras_seconds.py`` in the Keras virtual environment, which cannot
share this one's packages), ``--rounds`` times in turn. Each timing is the median of three
runs of ``--steps`` batches after a warm-up, scaled to a 50,000-image epoch. The table
gives the medians and the median of the per-round ratios engine / Keras, against a
target of at most 1/2 (2/3 for the recurrent models).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.common import add_arguments, bench_params, step_count, write_results
from bench.epoch_seconds import seconds_per_epoch
from fmnist.core.errors import PipelineError
from fmnist.train.device import describe, select_device

KERAS_MODELS = ("cnn1", "cnn1-bn", "cnn2", "cnn3", "cifar-cnn", "vgg", "rnn", "bilstm")
TARGET = {"rnn": 2 / 3, "bilstm": 2 / 3}  # the rest: 1/2


def keras_seconds(python: Path, name: str, steps: int) -> float:
    """Keras's seconds per epoch for ``name``, from ``bench/keras_seconds.py`` run by
    ``python`` (the interpreter of a virtual environment with tensorflow-cpu)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "keras"
        script = Path(__file__).with_name("keras_seconds.py")
        cmd = [str(python), str(script), name, "--steps", str(steps), "--out", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise PipelineError(
                f"Keras timing of {name} failed ({tail[0]}); check that {python} has "
                "tensorflow-cpu (`python3 -m venv /tmp/tf && /tmp/tf/bin/pip install "
                "tensorflow-cpu`)"
            )
        return json.loads(out.with_suffix(".json").read_text())["rows"][0]["seconds_per_epoch"]


def compare(
    name: str, python: Path, rounds: int, steps: int, overrides: list[str]
) -> dict[str, float | str | bool]:
    """``rounds`` pairs of (engine, Keras) timings of ``name``, taken back to back."""
    engine, keras = [], []
    for _ in range(rounds):
        engine.append(seconds_per_epoch(name, steps, 3, overrides)["seconds_per_epoch"])
        keras.append(keras_seconds(python, name, steps))
    ratio = statistics.median(e / k for e, k in zip(engine, keras, strict=True))
    target = TARGET.get(name, 1 / 2)
    return {
        "model": name,
        # rounded: the median of an even number of rounds is a mean, 15.899999999999999
        "engine": round(statistics.median(engine), 2),
        "keras": round(statistics.median(keras), 2),
        "engine_rounds": engine,
        "keras_rounds": keras,
        "ratio": round(ratio, 3),
        "target": round(target, 3),
        "met": ratio <= target,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench keras", description=__doc__)
    parser.add_argument("models", nargs="*", default=list(KERAS_MODELS))
    parser.add_argument("--keras-python", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=step_count, default=60)
    add_arguments(parser)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models) - set(KERAS_MODELS))
    if unknown:
        raise PipelineError(f"no Keras model for {unknown}; valid: {', '.join(KERAS_MODELS)}")
    params = bench_params(args.models[0], args.set)
    device = select_device(params.train.device)
    lines = [
        f"Seconds per 50,000-image training epoch on {describe(device)}: the engine (the "
        f"train stage's function, kernels {params.train.reproducible}) and Keras (fp32) "
        f"timed in turns, {args.rounds} rounds of {args.steps} steps.",
        "",
        "| model | engine s/epoch | Keras s/epoch | engine / Keras | target | met "
        "| rounds (engine / Keras) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    print("\n".join(lines), flush=True)
    rows = []
    for name in args.models:
        row = compare(name, args.keras_python, args.rounds, args.steps, args.set)
        rows.append(row)
        pairs = ", ".join(
            f"{e} / {k}" for e, k in zip(row["engine_rounds"], row["keras_rounds"], strict=True)
        )
        lines.append(
            f"| {name} | {row['engine']} | {row['keras']} | {row['ratio']:.2f} | "
            f"{row['target']:.2f} | {'yes' if row['met'] else 'no'} | {pairs} |"
        )
        print(lines[-1], flush=True)
    for row in rows:
        row["rounds"] = ", ".join(
            f"{e} / {k}" for e, k in zip(row["engine_rounds"], row["keras_rounds"], strict=True)
        )
    write_results(
        args.out,
        {"device": describe(device), "kernels": params.train.reproducible, "rows": rows},
        title="The engine against Keras on the same CPU",
        about=lines[0],
        columns=[
            ("model", "model"),
            ("engine", "engine s/epoch"),
            ("keras", "Keras s/epoch"),
            ("ratio", "engine / Keras", "{:.2f}"),
            ("target", "target", "{:.2f}"),
            ("met", "met"),
            ("rounds", "rounds (engine / Keras)"),
        ],
    )
