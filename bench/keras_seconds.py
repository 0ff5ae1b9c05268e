"""Keras's seconds per training epoch for the reports' own models, on this machine.

    pip install tensorflow-cpu   # in a virtual environment of its own (see README)
    python bench/keras_seconds.py [model ...] [--steps 60] [--out bench/out/keras_seconds]

The engine is compared with Keras on the same CPU (``python -m bench keras``). This
script rebuilds each report's model in Keras 3 (the reports'
layers, Keras's defaults: fp32, Glorot init) and times ``model.fit`` on this machine, so
the engine's figures (``python -m bench epochs``) can be set beside Keras's from
the same CPU. It imports neither torch nor this project's packages, so TensorFlow can
live in a virtual environment of its own (its NumPy pin differs from the project's).
Each figure is the median over three ``fit`` calls of ``--steps`` batches (after a
warm-up call) of the time per step, taken inside ``fit`` after its first two steps so
that the call's own set-up is left out, scaled to a 50,000-image epoch.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
EPOCH_IMAGES = 50_000
SKIPPED_STEPS = 2  # of each timed fit: the first steps also start its data pipeline
DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def _keras() -> ModuleType:
    """Keras, imported late: a clear message when TensorFlow is not installed."""
    try:
        import keras
    except ImportError:
        raise SystemExit(
            "bench/keras_seconds.py needs Keras: pip install tensorflow-cpu "
            "(in a virtual environment of its own)"
        ) from None
    return keras


def _cnn(layers: Callable[[ModuleType], list]) -> Callable[[], object]:
    def build() -> object:
        keras = _keras()
        return keras.Sequential([keras.Input((28, 28, 1)), *layers(keras.layers)])

    return build


def _cnn1(bn: bool) -> Callable[[], object]:
    def layers(kl: ModuleType) -> list:
        blocks = []
        for filters in (32, 64):
            blocks.append(kl.Conv2D(filters, 3, activation="relu"))
            if bn:
                blocks += [kl.BatchNormalization(), kl.Dropout(0.1)]
            blocks.append(kl.MaxPooling2D())
        return [*blocks, kl.Flatten(), kl.Dropout(0.5), kl.Dense(10, activation="softmax")]

    return _cnn(layers)


def _cnn2(kl: ModuleType) -> list:
    def leaky() -> object:
        return kl.LeakyReLU(negative_slope=0.1)

    return [
        kl.Conv2D(32, 3, padding="same"),
        leaky(),
        kl.MaxPooling2D(),
        kl.Dropout(0.3),
        kl.Conv2D(64, 3, padding="same"),
        leaky(),
        kl.MaxPooling2D(),
        kl.Dropout(0.5),
        kl.Conv2D(128, 3),
        leaky(),
        kl.Flatten(),
        kl.Dense(128),
        leaky(),
        kl.Dropout(0.3),
        kl.Dense(10, activation="softmax"),
    ]


def _tutorial(hidden: int) -> Callable[[], object]:
    def layers(kl: ModuleType) -> list:
        return [
            kl.Conv2D(32, 3, activation="relu"),
            kl.MaxPooling2D(),
            kl.Conv2D(64, 3, activation="relu"),
            kl.MaxPooling2D(),
            kl.Conv2D(64, 3, activation="relu"),
            kl.Flatten(),
            kl.Dense(hidden, activation="relu"),
            kl.Dense(10, activation="softmax"),
        ]

    return _cnn(layers)


def _vgg(kl: ModuleType) -> list:
    layers: list = []
    for filters, rate in ((32, 0.2), (64, 0.3), (128, 0.4)):
        for _ in range(2):
            layers += [
                kl.Conv2D(filters, 3, padding="same", activation="tanh"),
                kl.BatchNormalization(),
            ]
        layers += [kl.MaxPooling2D(), kl.Dropout(rate)]
    return [
        *layers,
        kl.Flatten(),
        kl.Dense(16, activation="relu"),
        kl.BatchNormalization(),
        kl.Dropout(0.5),
        kl.Dense(10, activation="softmax"),
    ]


def _rnn() -> object:
    keras = _keras()
    kl = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            kl.SimpleRNN(256, activation="relu", return_sequences=True),
            kl.SimpleRNN(128, activation="relu", return_sequences=True),
            kl.SimpleRNN(64, activation="relu"),
            kl.BatchNormalization(),
            kl.Dense(10, activation="softmax"),
        ]
    )


def _bilstm() -> object:
    keras = _keras()
    kl = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            kl.Bidirectional(kl.LSTM(256, return_sequences=True)),
            kl.Bidirectional(kl.LSTM(128)),
            kl.Dense(256, activation="relu"),
            kl.Dropout(0.3),
            kl.Dense(128, activation="relu"),
            kl.Dropout(0.3),
            kl.Dense(10, activation="softmax"),
        ]
    )


# name: (builder, optimizer, learning rate, batch size, epochs), as in params.yaml
# (a test holds them to it: this module cannot import the project to read it)
MODELS: dict[str, tuple[Callable[[], object], str, float, int, int]] = {
    "cnn1": (_cnn1(bn=False), "adam", 1e-3, 128, 15),
    "cnn1-bn": (_cnn1(bn=True), "adam", 1e-3, 128, 120),
    "cnn2": (_cnn(_cnn2), "adam", 1e-3, 70, 50),
    "cnn3": (_tutorial(54), "adam", 1e-3, 32, 10),
    "cifar-cnn": (_tutorial(64), "adam", 1e-3, 32, 10),
    "vgg": (_cnn(_vgg), "rmsprop", 1e-4, 100, 150),
    "rnn": (_rnn, "sgd", 1e-2, 65, 25),
    "bilstm": (_bilstm, "adam", 1e-3, 64, 20),
}


def compiled(name: str, seed: int, lr: float | None = None, metrics: tuple = ()) -> object:
    """Model ``name`` built from ``seed`` and compiled with its recipe's optimizer and
    learning rate (``lr`` overrides it), Keras's defaults otherwise."""
    keras = _keras()
    build, optimizer, recipe_lr, _, _ = MODELS[name]
    keras.utils.set_random_seed(seed)
    model = build()
    optimizers = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    rate = recipe_lr if lr is None else lr
    model.compile(
        optimizers[optimizer](learning_rate=rate),
        "sparse_categorical_crossentropy",
        metrics=list(metrics),
    )
    return model


def model_input(name: str, images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) images as model ``name`` reads them: rows as steps for the recurrent
    models, one channel for the rest."""
    return images if name in ("rnn", "bilstm") else images[..., None]


def training_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` Fashion-MNIST training images (x / 255) and labels."""
    with gzip.open(DEBIAN / "train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    with gzip.open(DEBIAN / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return images.astype(np.float32) / 255, labels.astype(np.int64)


def _step_clock(keras: ModuleType, skip: int) -> object:
    """A callback timing the steps of one ``fit`` after its first ``skip``.

    Each ``fit`` call first builds a tf.data pipeline from the arrays, which costs a
    varying few tenths of a second. Timing the whole call charged that to a 60-step
    sample as if every step paid it: in one run, rnn read 33.3 s/epoch timed around
    the call and 16.3 s timed inside it, and a full 770-step ``fit`` epoch took 10 s.
    Timing from the end of step ``skip`` to the end of the last step leaves it out,
    as a long epoch amortises it."""

    class StepClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.start = self.end = 0.0
            self.steps = 0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            now = time.perf_counter()
            if batch == skip - 1:
                self.start = now
            elif batch >= skip:
                self.end, self.steps = now, batch - skip + 1

        def seconds_per_step(self) -> float:
            if not self.steps:
                raise SystemExit(f"--steps must exceed the {skip} untimed steps")
            return (self.end - self.start) / self.steps

    return StepClock()


def seconds_per_epoch(name: str, steps: int) -> dict:
    """Median seconds of three ``fit`` calls of ``steps`` batches, scaled to an epoch."""
    keras = _keras()
    batch = MODELS[name][3]
    model = compiled(name, seed=0)
    x, y = training_images(batch * steps)
    x = model_input(name, x)
    model.fit(x[: batch * 5], y[: batch * 5], batch_size=batch, epochs=1, verbose=0)
    times = []
    for _ in range(3):
        clock = _step_clock(keras, skip=SKIPPED_STEPS)
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
        times.append(clock.seconds_per_step())
    seconds = statistics.median(times) * EPOCH_IMAGES / batch
    return {"model": name, "batch_size": batch, "seconds_per_epoch": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(MODELS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", type=Path, help="write <out>.md and <out>.json")
    args = parser.parse_args()
    keras = _keras()
    threads = len(os.sched_getaffinity(0))
    lines = [
        f"Keras {keras.__version__} (backend {keras.backend.backend()}, fp32) seconds per "
        f"training epoch (50,000 images) on this CPU, {threads} cores; median of 3 fits of "
        f"{args.steps} batches; `python bench/keras_seconds.py`.",
        "",
        "| model | batch | Keras s/epoch |",
        "|---|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    rows = []
    for name in args.models:
        row = seconds_per_epoch(name, args.steps)
        rows.append(row)
        lines.append(f"| {name} | {row['batch_size']} | {row['seconds_per_epoch']} |")
        print(lines[-1], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
        payload = {"keras": keras.__version__, "threads": threads, "rows": rows}
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
