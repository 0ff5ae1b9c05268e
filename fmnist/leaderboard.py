"""The leaderboard: every DVC experiment's test accuracy beside what its report claimed.

    python -m fmnist.leaderboard            # reads `dvc exp show --json -A`
    python -m fmnist.leaderboard --out results

Writes ``leaderboard.md`` (a sorted markdown table), ``leaderboard.png`` (a bar chart,
measured vs reported), ``time_to_accuracy.png`` (accuracy against training seconds) and
``leaderboard.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from fmnist.atomic import write_json, write_text
from fmnist.errors import PipelineError, run_stage
from fmnist.models.registry import arch_defaults
from fmnist.params import PrepareParams
from fmnist.reference import REPORTED
from fmnist.sweep import dvc


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
    rows = json.loads(path.read_text()).get("rows", [])
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


def seeds_markdown(summaries: list[SeedSummary]) -> str:
    """The seed summaries as a markdown table."""
    return _table(
        [
            "model",
            "recipe",
            "device",
            "seeds",
            "test acc. % mean ± sd",
            "min – max",
            "mean train time",
        ],
        "llllrrr",
        [
            [
                s.model,
                s.recipe,
                s.device,
                ", ".join(map(str, s.seeds)),
                f"{s.mean:.2f} ± {s.std:.2f}",
                f"{s.low:.2f} – {s.high:.2f}",
                _duration(s.mean_seconds),
            ]
            for s in summaries
        ],
    )


def _table(header: list[str], align: str, cells: list[list[str]]) -> str:
    """A markdown table; ``align`` holds one letter a column: l (text) or r (figures)."""
    rule = {"l": "---|", "r": "---:|"}
    lines = ["| " + " | ".join(header) + " |", "|" + "".join(rule[a] for a in align)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


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


def markdown(rows: list[Row]) -> str:
    """The leaderboard as a markdown table, best test accuracy first."""
    return _table(
        [
            "#",
            "experiment",
            "model",
            "recipe",
            "epochs run (best)",
            "train time",
            "s/epoch",
            "device",
            "peak MB",
            "test acc. %",
            "reported %",
            "difference",
            "about the reported figure",
        ],
        "rlllrrrlrrrrl",
        [
            [
                str(i),
                r.experiment,
                r.model,
                r.recipe,
                f"{r.epochs_run} ({r.best_epoch})",
                _duration(r.seconds),
                f"{r.seconds_per_epoch:.1f}",
                r.device,
                "" if r.peak_mb is None else str(r.peak_mb),
                f"{r.test_accuracy:.2f}",
                "" if r.reported is None else f"{r.reported:.2f}",
                "" if r.difference is None else f"{r.difference:+.2f}",
                r.note,
            ]
            for i, r in enumerate(rows, 1)
        ],
    )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def bar_chart(rows: list[Row], path: Path) -> None:
    """Measured test accuracy per experiment, the report's figure beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fmnist.plots import _save

    labels = [
        r.experiment if r.model in r.experiment else f"{r.experiment} ({r.model})" for r in rows
    ]
    y = range(len(rows))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    ax.barh([i + 0.2 for i in y], [r.test_accuracy for r in rows], 0.4, label="measured (test)")
    reported = [(i, r.reported) for i, r in enumerate(rows) if r.difference is not None]
    ax.barh(
        [i - 0.2 for i, _ in reported],
        [v for _, v in reported],
        0.4,
        label="reported (same dataset)",
    )
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    low = min([r.test_accuracy for r in rows] + [v for _, v in reported])
    ax.set_xlim(max(0, low - 5), 100)
    ax.set_xlabel("accuracy (%)")
    ax.set_title("Leaderboard: measured vs reported accuracy")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def family(row: Row) -> str:
    """reference (a report's model), classic (the publisher's benchmark) or modern."""
    reported = REPORTED.get(row.model)
    if reported is None:
        return "modern"
    return "classic" if reported.report == "benchmark" else "reference"


FAMILY_COLOURS = {"reference": "tab:blue", "classic": "tab:gray", "modern": "tab:red"}
BEST_REPORT = 93.38  # cnn2-bn, report A: the figure the modern models must beat


def time_to_accuracy_chart(rows: list[Row], path: Path) -> None:
    """Test accuracy against training seconds, one point per experiment: the models up and
    to the left dominate. Marker by device (CPU circle, GPU triangle), colour by family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fmnist.plots import _save

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for r in rows:
        gpu = r.device.startswith(("cuda", "mps"))
        ax.scatter(
            max(r.seconds, 0.1),
            r.test_accuracy,
            marker="^" if gpu else "o",
            s=60,
            color=FAMILY_COLOURS[family(r)],
            edgecolor="black",
            linewidth=0.5,
        )
        ax.annotate(
            r.model,
            (max(r.seconds, 0.1), r.test_accuracy),
            fontsize=8,
            xytext=(4, 3),
            textcoords="offset points",
        )
    ax.axhline(BEST_REPORT, color="tab:blue", linestyle="--", linewidth=1)
    ax.text(
        0.01,
        BEST_REPORT,
        "best report (93.38%)",
        va="bottom",
        fontsize=8,
        transform=ax.get_yaxis_transform(),
    )
    for name, colour in FAMILY_COLOURS.items():
        ax.scatter([], [], color=colour, edgecolor="black", label=name)
    ax.scatter([], [], marker="o", color="white", edgecolor="black", label="CPU")
    ax.scatter([], [], marker="^", color="white", edgecolor="black", label="GPU")
    ax.set_xscale("log")
    ax.set_xlabel("training time (s, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Time to accuracy: up and to the left is better")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def write_leaderboard(rows: list[Row], out: Path) -> None:
    """leaderboard.md, .png, time_to_accuracy.png and .json under ``out``."""
    header = (
        "# Leaderboard\n\nBuilt by `python -m fmnist.leaderboard` from `dvc exp show --json -A`, "
        "keeping the rows of experiments run in other clones from the previous "
        "leaderboard.json (`--fresh`: this clone's only). Device `cpu bf16`: trained "
        "under bf16 autocast. "
        "Reported figures come from the original reports (`fmnist/reference.py`). Train "
        "times are as measured in each run; runs that shared the machine with other work "
        "are slower than [epoch_seconds.md](epoch_seconds.md) (seconds per epoch of every "
        "model measured alone).\n\n"
    )
    summaries = seed_summaries(rows)
    seeds = (
        "\n## Over seeds\n\nRecipes trained with several `train.seed` values: the mean is "
        "what to expect from one run, the spread how much a single figure can mislead.\n\n"
        + seeds_markdown(summaries)
        if summaries
        else ""
    )
    write_text(out / "leaderboard.md", header + markdown(rows) + seeds)
    write_json(
        out / "leaderboard.json",
        {
            "rows": [asdict(r) | {"difference": r.difference} for r in rows],
            "seeds": [asdict(s) for s in summaries],
        },
    )
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
    print(markdown(rows))


if __name__ == "__main__":
    run_stage(main)
