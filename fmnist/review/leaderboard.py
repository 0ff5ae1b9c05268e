"""The leaderboard: every DVC experiment's test accuracy beside what its report claimed.

    python -m fmnist.review.leaderboard            # reads `dvc exp show --json -A`
    python -m fmnist.review.leaderboard --out results

Writes ``leaderboard.json`` and ``leaderboard.md`` (one line per model, then the seed
summaries and every experiment), ``time_to_accuracy.png`` (accuracy against training
seconds) and ``leaderboard.png`` (measured vs reported) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from fmnist.core.atomic import write_json, write_text
from fmnist.core.errors import PipelineError, run_stage
from fmnist.core.machine import provenance
from fmnist.data.params import PrepareParams
from fmnist.models.registry import arch_defaults
from fmnist.review.docs import render_result
from fmnist.review.leaderboard_charts import bar_chart, time_to_accuracy_chart
from fmnist.review.reference import REPORTED
from fmnist.review.sweep import dvc


@dataclass(frozen=True)
class Row:
    """One experiment's figures."""

    experiment: str
    model: str
    recipe: str
    epochs_run: int
    best_epoch: int
    seconds: float
    seconds_per_epoch: float
    device: str
    test_accuracy: float  # percent
    reported: float | None  # percent, from the model's report
    note: str = ""
    comparable: bool = True
    seed: int | None = None
    peak_mb: int | None = None  # the train stage's peak memory; runs before it was recorded: None

    @property
    def difference(self) -> float | None:
        if self.reported is None or not self.comparable:
            return None
        return round(self.test_accuracy - self.reported, 2)


def _revisions(exp_show: list[dict[str, Any]]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(rank, name, entry) for every experiment, branch tip and the workspace in the JSON.

    The rank orders names when two revisions hold the same results (an experiment that was
    committed, say): an experiment's name first, then a branch, the workspace.
    A commit that no branch or tag names is an older state of a branch: its own results
    are the pipeline's history (each past `dvc repro` of the default model would be a row
    of its own, with the same accuracy and another time), so only its experiments count.
    """
    for entry in exp_show:
        rev = entry.get("rev", "")
        if rev == "workspace":
            yield 2, "workspace", entry
        elif entry.get("name"):
            yield 1, entry["name"], entry
        for experiment in entry.get("experiments") or []:
            for exp in experiment.get("revs") or []:
                yield 0, exp.get("name") or exp.get("rev", "")[:7], exp


def rows_from_exp_show(exp_show: list[dict[str, Any]]) -> list[Row]:
    """One row per distinct result (the best-named revision holding it), best first."""
    best: dict[tuple, tuple[int, Row]] = {}
    for rank, name, rev in _revisions(exp_show):
        row = _row(name, rev.get("data") or {})
        if row is None:
            continue
        key = (row.model, row.recipe, row.test_accuracy, row.seconds, row.device)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, row)
    rows = [row for _, row in best.values()]
    return sorted(rows, key=lambda r: (-r.test_accuracy, r.experiment))


def _row(name: str, data: dict[str, Any]) -> Row | None:
    metrics = data.get("metrics") or {}
    test = ((metrics.get("metrics/metrics.json") or {}).get("data") or {}).get("test")
    train = ((metrics.get("metrics/train.json") or {}).get("data") or {}).get("train")
    params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
    if not test or not train or "model" not in params:
        return None
    model = params["model"]
    recipe = (params.get("models") or {}).get(model) or {}
    if not _same_run(train, model, recipe):
        return None
    reported = REPORTED.get(model)
    return Row(
        experiment=name,
        model=model,
        recipe=_describe(model, recipe, params.get("prepare") or {}),
        epochs_run=int(train.get("epochs_run", 0)),
        best_epoch=int(train.get("best_epoch", 0)),
        seconds=float(train.get("seconds", 0.0)),
        seconds_per_epoch=float(train.get("seconds_per_epoch", 0.0)),
        device=_device(train),
        test_accuracy=round(100 * float(test["accuracy"]), 2),
        reported=reported.accuracy if reported else None,
        note=_note(reported),
        comparable=reported.comparable if reported else True,
        seed=(params.get("train") or {}).get("seed"),
        peak_mb=train.get("peak_memory_mb"),
    )


def _device(train: dict[str, Any]) -> str:
    """The device, with ``bf16`` when the run trained under bf16 autocast: its times (and
    its rounding) are not fp32's, so its seeds are summarised apart."""
    device = str(train.get("device", "?"))
    return f"{device} bf16" if train.get("precision") == "bf16" else device


def published_rows(path: Path) -> list[Row]:
    """The rows of a leaderboard.json written before (none when there is none).

    Experiments are git refs local to the clone that ran them; the committed
    leaderboard is the project's record of them, so a rebuild in another clone keeps
    those rows instead of dropping every result it cannot see."""
    if not path.is_file():
        return []
    names = {f.name for f in fields(Row)}
    saved = json.loads(path.read_text())
    rows = saved["experiments"] if "experiments" in saved else saved.get("rows", [])
    return [Row(**{k: v for k, v in row.items() if k in names}) for row in rows]


def merge(current: list[Row], published: list[Row]) -> list[Row]:
    """``current`` plus the published rows of experiments it does not have (by name):
    a rerun experiment, or a new ``main``, replaces its old row."""
    seen = {r.experiment for r in current}
    return current + [r for r in published if r.experiment not in seen]


def _same_run(train: dict[str, Any], model: str, recipe: dict[str, Any]) -> bool:
    """Whether the metrics were produced by these params. A failed experiment, or a commit
    that changed a recipe without rerunning, carries older metrics beside newer params:
    such a revision is left out rather than credited with another run's accuracy."""
    recorded = {"model": model}
    for key, train_key in (("lr", "lr"), ("batch_size", "batch_size"), ("epochs", "max_epochs")):
        if key in recipe and train_key in train:
            recorded[train_key] = recipe[key]
    return all(train.get(k, v) == v for k, v in recorded.items())


@dataclass(frozen=True)
class SeedSummary:
    """One recipe run with several seeds: what a user can expect, not a lucky draw."""

    model: str
    recipe: str
    device: str
    seeds: tuple[int, ...]
    mean: float  # percent
    std: float  # sample standard deviation, percent points
    low: float
    high: float
    mean_seconds: float


def seed_summaries(rows: list[Row]) -> list[SeedSummary]:
    """Mean and spread of test accuracy for each recipe trained with two or more seeds."""
    groups: dict[tuple[str, str, str], dict[int, Row]] = {}
    for r in rows:
        if r.seed is not None:
            groups.setdefault((r.model, r.recipe, r.device), {}).setdefault(r.seed, r)
    summaries = []
    for (model, recipe, device), by_seed in groups.items():
        if len(by_seed) < 2:
            continue
        accuracies = [r.test_accuracy for r in by_seed.values()]
        summaries.append(
            SeedSummary(
                model=model,
                recipe=recipe,
                device=device,
                seeds=tuple(sorted(by_seed)),
                mean=round(statistics.mean(accuracies), 2),
                std=round(statistics.stdev(accuracies), 2),
                low=min(accuracies),
                high=max(accuracies),
                mean_seconds=statistics.mean(r.seconds for r in by_seed.values()),
            )
        )
    return sorted(summaries, key=lambda s: -s.mean)


def _note(reported: Any) -> str:
    if reported is None:
        return ""
    source = (
        "publisher's benchmark" if reported.report == "benchmark" else f"report {reported.report}"
    )
    return source + (f": {reported.note}" if reported.note else "")


DEFAULT_VAL_SIZE = PrepareParams().val_size


def _describe(model: str, recipe: dict[str, Any], prepare: dict[str, Any] | None = None) -> str:
    if "optimizer" not in recipe:  # a classic baseline: its options are the recipe
        options = ", ".join(_option(k, v) for k, v in (recipe.get("arch") or {}).items())
        return f"scikit-learn ({options})" if options else "scikit-learn"
    parts = [
        str(recipe.get("optimizer", "?")),
        f"lr {recipe.get('lr', '?')}",
        f"batch {recipe.get('batch_size', '?')}",
        f"{recipe.get('epochs', '?')} ep",
    ]
    if recipe.get("momentum"):
        parts.append(
            f"momentum {recipe['momentum']}" + (" nesterov" if recipe.get("nesterov") else "")
        )
    if recipe.get("weight_decay"):
        spared = "" if recipe.get("decay_norms", True) else " (not on norms, biases)"
        parts.append(f"wd {recipe['weight_decay']}{spared}")
    if recipe.get("schedule", "none") != "none":
        parts.append(str(recipe["schedule"]))
    if recipe.get("train_on", "train") != "train":
        parts.append(f"on {recipe['train_on']}")
    val_size = (prepare or {}).get("val_size", DEFAULT_VAL_SIZE)
    if val_size != DEFAULT_VAL_SIZE:  # another split is another recipe (report A's 10 %)
        parts.append(f"{val_size} held out")
    if recipe.get("patience"):
        parts.append(f"patience {recipe['patience']}")
    augment = [_option(k, v) for k, v in (recipe.get("augment") or {}).items() if v]
    if augment:
        parts.append(f"augment ({', '.join(augment)})")
    if recipe.get("tta_shift"):  # flip TTA is the modern recipes' default, shifts are not
        parts.append(f"TTA shift {recipe['tta_shift']}")
    return ", ".join(parts + _arch_changes(model, recipe.get("arch") or {}))


def _option(key: str, value: Any) -> str:
    return key if value is True else f"{key} {value}"


def _arch_changes(model: str, arch: dict[str, Any]) -> list[str]:
    """The arch options that differ from the model's defaults (``width 48``): two runs of
    one model with other layers must not read as the same recipe."""
    try:
        defaults = arch_defaults(model)
    except PipelineError:  # a model this checkout no longer registers
        return [_option(k, v) for k, v in arch.items()]
    return [_option(k, v) for k, v in arch.items() if defaults.get(k, v) != v]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class ModelSummary:
    """One model's line of the leaderboard: its best recipe and what to expect from it."""

    model: str
    recipe: str
    device: str
    seeds: int
    accuracy: str  # "94.85 ± 0.12" over seeds, or the one run's figure
    mean: float
    best: float  # the best single run of this model, any recipe
    seconds: float  # mean training time of the best recipe's runs
    train_time: str
    reported: float | None


def model_summaries(rows: list[Row], recipes: dict[str, str] | None = None) -> list[ModelSummary]:
    """One line per model, best first. Its recipe is the one with the highest mean test
    accuracy over seeds (a recipe run once counts as one seed), on one device kind; with
    ``recipes`` (model -> recipe description), that recipe only."""
    groups: dict[tuple[str, str, str], dict[Any, Row]] = {}
    for r in rows:
        if recipes is not None and recipes.get(r.model) != r.recipe:
            continue
        key = (r.model, r.recipe, r.device)
        groups.setdefault(key, {}).setdefault(r.seed if r.seed is not None else r.experiment, r)
    best_group: dict[str, tuple[float, tuple[str, str, str], list[Row]]] = {}
    for key, by_seed in groups.items():
        runs = list(by_seed.values())
        mean = statistics.mean(r.test_accuracy for r in runs)
        if key[0] not in best_group or mean > best_group[key[0]][0]:
            best_group[key[0]] = (mean, key, runs)
    summaries = []
    for model, (mean, (_, recipe, device), runs) in best_group.items():
        accuracies = [r.test_accuracy for r in runs]
        spread = f" ± {statistics.stdev(accuracies):.2f}" if len(runs) > 1 else ""
        seconds = statistics.mean(r.seconds for r in runs)
        summaries.append(
            ModelSummary(
                model=model,
                recipe=recipe,
                device=device,
                seeds=len(runs),
                accuracy=f"{mean:.2f}{spread}",
                mean=round(mean, 2),
                best=max(r.test_accuracy for r in rows if r.model == model),
                seconds=round(seconds, 1),
                train_time=_duration(seconds),
                reported=runs[0].reported if runs[0].comparable else None,
            )
        )
    return sorted(summaries, key=lambda s: -s.mean)


MODEL_COLUMNS = [
    ("model", "model"),
    ("recipe", "best recipe"),
    ("seeds", "seeds"),
    ("accuracy", "test % (mean ± sd)"),
    ("best", "best run %", "{:.2f}"),
    ("train_time", "train time"),
    ("device", "device"),
    ("reported", "reported %", "{:.2f}"),
]
SEED_COLUMNS = [
    ("model", "model"),
    ("recipe", "recipe"),
    ("device", "device"),
    ("seeds", "seeds"),
    ("accuracy", "test % mean ± sd"),
    ("range", "min – max"),
    ("train_time", "mean train time"),
]
EXPERIMENT_COLUMNS = [
    ("experiment", "experiment"),
    ("model", "model"),
    ("recipe", "recipe"),
    ("epochs", "epochs run (best)"),
    ("train_time", "train time"),
    ("seconds_per_epoch", "s/epoch", "{:.1f}"),
    ("device", "device"),
    ("peak_mb", "peak MB"),
    ("test_accuracy", "test %", "{:.2f}"),
    ("reported", "reported %", "{:.2f}"),
    ("difference", "difference", "{:+.2f}"),
    ("note", "about the reported figure"),
]
ABOUT = (
    "One line per model: the recipe with the best mean test accuracy over its seeds, the "
    "best single run of that model, the mean training time of the recipe's runs and the "
    "device it trained on (`cpu bf16`: under bf16 autocast). Built by "
    "`python -m fmnist.review.leaderboard` from `dvc exp show --json -A`, keeping the rows "
    "of experiments run in other clones from the previous leaderboard.json (`--fresh`: "
    "this clone's only). Reported figures: the original reports (`fmnist/models/"
    "reference.py`). Train times are as measured in each run; runs that shared the machine "
    "with other work are slower than [epoch_seconds.md](epoch_seconds.md)."
)


def current_recipes(params_file: Path = Path("params.yaml")) -> dict[str, str]:
    """Each model's recipe in params.yaml, described as the rows describe theirs."""
    raw = yaml.safe_load(params_file.read_text()) if params_file.is_file() else {}
    return {
        model: _describe(model, recipe or {}, raw.get("prepare") or {})
        for model, recipe in (raw.get("models") or {}).items()
    }


def leaderboard_payload(rows: list[Row], recipes: dict[str, str] | None = None) -> dict[str, Any]:
    """The leaderboard as a results JSON: per model first, then seeds, then every run;
    ``recipes`` (params.yaml's) also gives each model's figures for its own recipe, which
    the model zoo table of the docs shows."""
    summaries = seed_summaries(rows)
    experiments = [asdict(r) | {"difference": r.difference} for r in rows]
    log = [
        e
        | {
            "epochs": f"{e['epochs_run']} ({e['best_epoch']})",
            "train_time": _duration(e["seconds"]),
        }
        for e in experiments
    ]
    seeds = [
        asdict(s)
        | {
            "accuracy": f"{s.mean:.2f} ± {s.std:.2f}",
            "range": f"{s.low:.2f} – {s.high:.2f}",
            "train_time": _duration(s.mean_seconds),
        }
        for s in summaries
    ]
    return {
        "title": "Leaderboard",
        "about": ABOUT,
        "columns": MODEL_COLUMNS,
        "rows": [asdict(s) for s in model_summaries(rows)],
        "images": ["time_to_accuracy.png", "leaderboard.png"],
        "tables": [
            {
                "title": "Over seeds",
                "about": "Recipes trained with several `train.seed` values: the mean is what "
                "to expect from one run, the spread how much a single figure can mislead.",
                "columns": SEED_COLUMNS,
                "rows": seeds,
            },
            {"title": "Every experiment", "columns": EXPERIMENT_COLUMNS, "rows": log},
        ],
        "experiments": experiments,
        "current_recipes": [asdict(s) for s in model_summaries(rows, recipes or {})],
        "built": True,  # rows come from many runs; each row's device says where it trained
        "seeds": [asdict(s) for s in summaries],
    }


def write_leaderboard(rows: list[Row], out: Path) -> None:
    """leaderboard.json (with the command, date and machine) and leaderboard.md rendered
    from it, the time-to-accuracy chart and the bar chart, under ``out``."""
    payload = leaderboard_payload(rows, current_recipes()) | provenance()
    write_json(out / "leaderboard.json", payload)
    write_text(out / "leaderboard.md", render_result(payload))
    if rows:
        bar_chart(rows, out / "leaderboard.png")
        time_to_accuracy_chart(rows, out / "time_to_accuracy.png")


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the leaderboard from DVC experiments.")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--json", type=Path, help="read this exp-show JSON instead of running dvc")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="only this clone's experiments (default: keep the published rows of others)",
    )
    args = parser.parse_args()
    text = args.json.read_text() if args.json else dvc("exp", "show", "--json", "-A")
    rows = rows_from_exp_show(json.loads(text))
    if not args.fresh:
        rows = merge(rows, published_rows(args.out / "leaderboard.json"))
        rows.sort(key=lambda r: (-r.test_accuracy, r.experiment))
    write_leaderboard(rows, args.out)
    print((args.out / "leaderboard.md").read_text())


if __name__ == "__main__":
    run_stage(main)
