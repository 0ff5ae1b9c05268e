"""The leaderboard: every DVC experiment's test accuracy beside what its report claimed.

    python -m fmnist.review.sweep_unit --collect   # first, to fetch a sweep's experiments
    python -m fmnist.review.leaderboard            # reads `dvc exp show --json -A`
    python -m fmnist.review.leaderboard --out results

The experiments in Git (this clone's and those pulled from a remote) are its one source:
a result that is not an experiment, a branch or the workspace here is not on it. Failed
sweep experiments (their records under ``refs/sweep-failures/``) are listed with their
reasons.

Writes ``leaderboard.json`` and ``leaderboard.md`` (one line per model, then the seed
summaries and every experiment), ``time_to_accuracy.png`` (accuracy against training
seconds) and ``leaderboard.png`` (measured vs reported) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fmnist.core.atomic import write_json, write_text
from fmnist.core.config import CONF, compose
from fmnist.core.errors import run_stage
from fmnist.core.machine import provenance
from fmnist.review.docs import render_result
from fmnist.review.leaderboard_charts import bar_chart, time_to_accuracy_chart
from fmnist.review.runs import Row, describe_recipe, rows_from_exp_show
from fmnist.review.sweep import dvc
from fmnist.review.sweep_unit import recorded_failures
from fmnist.train.params import model_recipes


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
    """One line per model, best first. Its recipe is the one run with the most seeds,
    then the highest mean test accuracy over them (a recipe run once counts as one
    seed), on one device kind: one lucky run elsewhere does not replace a mean over
    several. With ``recipes`` (model -> recipe description), that recipe only."""
    groups: dict[tuple[str, str, str], dict[Any, Row]] = {}
    for r in rows:
        if recipes is not None and recipes.get(r.model) != r.recipe:
            continue
        key = (r.model, r.recipe, r.device)
        groups.setdefault(key, {}).setdefault(r.seed if r.seed is not None else r.experiment, r)
    best_group: dict[str, tuple[tuple[int, float], tuple[str, str, str], list[Row]]] = {}
    for key, by_seed in groups.items():
        runs = list(by_seed.values())
        rank = (len(runs), statistics.mean(r.test_accuracy for r in runs))
        if key[0] not in best_group or rank > best_group[key[0]][0]:
            best_group[key[0]] = (rank, key, runs)
    summaries = []
    for model, ((_, mean), (_, recipe, device), runs) in best_group.items():
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
FAILED_COLUMNS = [
    ("experiment", "experiment"),
    ("model", "model"),
    ("commit", "commit"),
    ("reason", "reason"),
    ("host", "machine"),
    ("when", "when"),
]
ABOUT = (
    "One line per model: the recipe with the best mean test accuracy over its seeds, the "
    "best single run of that model, the mean training time of the recipe's runs and the "
    "device it trained on (`cpu bf16`: under bf16 autocast). Built by "
    "`python -m fmnist.review.leaderboard` from the experiments in Git "
    "(`dvc exp show --json -A`; `python -m fmnist.review.sweep_unit --collect` fetches a "
    "sweep's). Reported figures: the original reports (`fmnist/models/"
    "reference.py`). Train times are as measured in each run; runs that shared the machine "
    "with other work are slower than [epoch_seconds.md](epoch_seconds.md)."
)


def current_recipes(conf: Path = CONF) -> dict[str, str]:
    """Each model's recipe in conf/model/, described as the rows describe theirs."""
    prepare = compose([], conf).get("prepare") or {}
    return {
        model: describe_recipe(model, recipe, prepare)
        for model, recipe in model_recipes(conf).items()
    }


def leaderboard_payload(
    rows: list[Row],
    recipes: dict[str, str] | None = None,
    failed: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The leaderboard as a results JSON: per model first, then seeds, then every run,
    then the sweep experiments that failed; ``recipes`` (conf/model/'s) also gives each
    model's figures for its own recipe, which the model zoo table of the docs shows."""
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
            *_failed_table(failed or []),
        ],
        "experiments": experiments,
        "current_recipes": [asdict(s) for s in model_summaries(rows, recipes or {})],
        "built": True,  # rows come from many runs; each row's device says where it trained
        "seeds": [asdict(s) for s in summaries],
        "failed": failed or [],
    }


def _failed_table(failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not failed:
        return []
    about = "Sweep experiments that failed, with the reason their worker recorded."
    return [
        {"title": "Failed experiments", "about": about, "columns": FAILED_COLUMNS, "rows": failed}
    ]


def write_leaderboard(
    rows: list[Row], out: Path, failed: list[dict[str, Any]] | None = None
) -> None:
    """leaderboard.json (with the command, date and machine) and leaderboard.md rendered
    from it, the time-to-accuracy chart and the bar chart, under ``out``."""
    payload = leaderboard_payload(rows, current_recipes(), failed) | provenance()
    write_json(out / "leaderboard.json", payload)
    write_text(out / "leaderboard.md", render_result(payload))
    if rows:
        bar_chart(rows, out / "leaderboard.png")
        time_to_accuracy_chart(rows, out / "time_to_accuracy.png")


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the leaderboard from DVC experiments.")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--json", type=Path, help="read this exp-show JSON instead of running dvc")
    args = parser.parse_args()
    text = args.json.read_text() if args.json else dvc("exp", "show", "--json", "-A")
    exp_show = json.loads(text)
    write_leaderboard(rows_from_exp_show(exp_show), args.out, recorded_failures(exp_show))
    print((args.out / "leaderboard.md").read_text())


if __name__ == "__main__":
    run_stage(main)
