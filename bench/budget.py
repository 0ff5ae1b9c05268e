"""What a training budget buys: test accuracy (mean ± sd over seeds) and training seconds
of recipe variants, each trained as the train stage trains it, on this machine.

    python -m bench.budget fastcnn "fastcnn epochs=7" "fastcnn arch.width=24" \\
        --seeds 42 1 2 --out results/budget

A variant is a model name and overrides of its recipe (``models.<name>.<key>=<value>``,
``arch.width=24`` and ``augment.crop_padding=1`` included). Each run pins the kernels as
params.yaml's ``train.reproducible`` says, seeds as the stage does, learns from the
pipeline's prepared splits (``--data``, default data/prepared: ``dvc repro prepare``
makes them) and scores the test split with the recipe's test-time augmentation. So the
default variant with seed 42 reproduces ``dvc repro``'s metrics.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

from fmnist.core import kernels
from fmnist.core.errors import PipelineError, run_stage


def pinned_params() -> tuple[dict[str, Any], str]:
    """params.yaml as read, and its ``train.reproducible`` mode, with the CPU kernels
    pinned to that mode: before torch loads, as the stages do."""
    raw = yaml.safe_load(Path("params.yaml").read_text())
    mode = (raw.get("train") or {}).get("reproducible", "portable")
    kernels.pin(mode)
    return raw, mode


def require_prepared(data: Path) -> None:
    """A one-line error unless ``data`` holds the three prepared splits."""
    missing = [s for s in ("train", "val", "test") if not (data / f"{s}.npz").is_file()]
    if missing:
        raise PipelineError(
            f"no prepared {', '.join(missing)} split in {data}: run `dvc repro prepare`"
        )


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"MODEL key=value ..."`` into the model name and its recipe overrides."""
    words = text.split()
    if not words:
        raise PipelineError("an empty variant: give a model name, then key=value overrides")
    overrides: dict[str, Any] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise PipelineError(
                f"variant {text!r}: {word!r} is not key=value (e.g. epochs=7, arch.width=24)"
            )
        overrides[key] = yaml.safe_load(value)
    return words[0], overrides


def variant_params(raw: dict[str, Any], model: str, overrides: dict[str, Any]) -> Any:
    """params.yaml (``raw``) with ``model`` selected and its recipe overridden, checked
    as the stages check it (an unknown key or a bad value is a one-line error)."""
    from fmnist.train.params import params_from

    raw = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy
    raw["model"] = model
    recipe = (raw.setdefault("models", {}).get(model)) or {}
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = recipe
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    raw["models"][model] = recipe
    return params_from(raw, f"params.yaml with model {model!r} and {overrides or 'its recipe'}")


def train(params: Any, seed: int, data: Path) -> tuple[Any, list[Any], float, Any]:
    """Train ``params``' model with ``seed`` as the train stage does, from the prepared
    splits in ``data``: the model (its kept weights loaded), the splits on the device
    (train, val, test; train includes val when the recipe learns from it), the training
    seconds and the autocast dtype."""
    import torch

    from fmnist.data.prepared import load_split
    from fmnist.models import build_model
    from fmnist.train.batches import to_device
    from fmnist.train.device import autocast_dtype, seed_everything, select_device
    from fmnist.train.engine import fit

    recipe, mode = params.recipe, params.train.reproducible
    train, val, test = (load_split(data / f"{s}.npz") for s in ("train", "val", "test"))
    if not recipe.held_out:
        train = train + val
    device = select_device(params.train.device)
    seed_everything(seed)
    model = build_model(params.model, recipe.arch).to(device, memory_format=torch.channels_last)
    splits = [to_device(s.images, s.labels, device) for s in (train, val, test)]
    precision = autocast_dtype(params.train.precision, device, mode)
    result = fit(
        model,
        recipe,
        splits[0],
        splits[1],
        torch.Generator(device=device).manual_seed(seed),
        eval_batch_size=params.train.eval_batch_size,
        on_epoch=lambda r: print(
            f"  seed {seed} epoch {r.epoch}/{recipe.epochs}: train loss {r.train_loss:.4f}, "
            f"{r.seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        ),
        seed=seed,
        precision=precision,
    )
    model.load_state_dict(result.best_state)
    # to the millisecond: a tiny test run trains in well under 0.1 s
    return model, splits, round(sum(r.seconds for r in result.history), 3), precision


def test_accuracy(params: Any, model: Any, test: Any, precision: Any) -> float:
    """Percent of the ``test`` split right, with the test-time augmentation the evaluate
    stage would use for ``params``."""
    from fmnist.train.inference import predict_logits

    tta = params.evaluate.tta or params.recipe.tta  # as the evaluate stage decides
    logits = predict_logits(
        model, test, params.evaluate.batch_size, tta, precision, params.recipe.tta_shift
    )
    return round(100 * (logits.argmax(1) == test.labels).float().mean().item(), 2)


def train_and_score(params: Any, seed: int, data: Path) -> dict[str, Any]:
    """Train ``params``' model with ``seed`` as the train stage does; its test accuracy
    (the recipe's TTA) and training seconds."""
    model, splits, seconds, precision = train(params, seed, data)
    accuracy = test_accuracy(params, model, splits[2], precision)
    return {"seed": seed, "test_accuracy": accuracy, "seconds": seconds}


def summarise(variant: str, params: Any, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row: the variant's accuracy over seeds and its mean training time."""
    accuracies = [r["test_accuracy"] for r in runs]
    return {
        "variant": variant,
        "model": params.model,
        "epochs": params.recipe.epochs,
        "seeds": len(runs),
        "mean": round(statistics.mean(accuracies), 2),
        "sd": round(statistics.stdev(accuracies), 2) if len(runs) > 1 else None,
        "low": min(accuracies),
        "high": max(accuracies),
        "seconds": round(statistics.mean(r["seconds"] for r in runs), 1),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help='"MODEL [key=value ...]"')
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, help="also write the table (markdown) and .json here")
    args = parser.parse_args()
    raw, mode = pinned_params()
    parsed = [(v, *parse_variant(v)) for v in args.variants]
    checked = [(v, variant_params(raw, model, over)) for v, model, over in parsed]
    require_prepared(args.data)
    from fmnist.train.device import set_threads

    threads = set_threads(raw.get("train", {}).get("threads", 0), reproducible=mode)
    rows = []
    for variant, params in checked:
        runs = []
        for seed in args.seeds:
            runs.append(train_and_score(params, seed, args.data))
            print(
                f"{variant} seed {seed}: {runs[-1]['test_accuracy']} % test in "
                f"{runs[-1]['seconds']} s of training",
                file=sys.stderr,
                flush=True,
            )
        rows.append(summarise(variant, params, runs))
    write(args, rows, threads, mode)


def write(args: argparse.Namespace, rows: list[dict[str, Any]], threads: int, mode: str) -> None:
    """Print the table; with ``--out`` write it as results JSON and markdown."""
    from bench.common import write_results

    about = (
        f"Test accuracy (with each recipe's test-time augmentation, mean ± sd over seeds "
        f"{' '.join(map(str, args.seeds))}) and training seconds of recipe variants, trained "
        f"as the train stage trains them ({threads} threads, {mode} kernels), by "
        "`python -m bench.budget`."
    )
    print(about)
    for row in rows:
        print(f"| {row['variant']} | {row['mean']} ± {row['sd']} | {row['seconds']} s |")
    write_results(
        args.out,
        {"seeds": args.seeds, "threads": threads, "kernels": mode, "rows": rows},
        title="What a training budget buys",
        about=about,
        columns=[
            ("variant", "variant"),
            ("epochs", "epochs"),
            ("mean", "test % (mean)"),
            ("sd", "sd"),
            ("low", "low"),
            ("high", "high"),
            ("seconds", "training s"),
        ],
    )


if __name__ == "__main__":
    run_stage(main)
