"""DVC experiments, the short way: a table of the useful columns, and promoting the best.

    python -m fmnist.review.experiments table [-A] [--md]   # model, accuracies, recipe, time
    python -m fmnist.review.experiments promote [NAME] [--branch BRANCH]

``promote`` without a name picks the experiment with the highest test accuracy and
turns it into a git branch (``dvc exp branch``), ready for a pull request.
"""

from __future__ import annotations

import argparse
import json

from fmnist.core.errors import PipelineError, run_stage
from fmnist.review.sweep import dvc

# Column names of `dvc exp show` to keep: regexes matched from the start of the name, so
# each ends in $ (`model$`: the model of experiments made before conf/model/).
USEFUL_COLUMNS = (
    r"Experiment$|Created$|model$|model\.name$|test\.accuracy$|"
    r"train\.(best_val_accuracy|val_held_out|epochs_run|max_epochs|lr|batch_size|optimizer|"
    r"seconds|device)$"
)


def table(extra: list[str]) -> str:
    """`dvc exp show` restricted to the useful columns, sorted by test accuracy."""
    args = ["exp", "show", "--no-pager", "--drop", ".*", "--keep", USEFUL_COLUMNS]
    return dvc(*args, "--sort-by", "test.accuracy", "--sort-order", "desc", *extra)


def best_experiment() -> tuple[str, float]:
    """(name, test accuracy) of the best experiment of the current commit."""
    best: tuple[str, float] | None = None
    for entry in json.loads(dvc("exp", "show", "--json")):
        for experiment in entry.get("experiments") or []:
            for rev in experiment.get("revs") or []:
                metrics = ((rev.get("data") or {}).get("metrics") or {}).get(
                    "metrics/metrics.json"
                ) or {}
                accuracy = ((metrics.get("data") or {}).get("test") or {}).get("accuracy")
                if accuracy is not None and (best is None or accuracy > best[1]):
                    best = (rev.get("name") or rev["rev"], float(accuracy))
    if best is None:
        raise PipelineError("no finished experiment on this commit; run `dvc exp run` first")
    return best


def promote(name: str | None, branch: str | None) -> str:
    """Make experiment ``name`` (default: the best) a branch; returns the branch name."""
    if name is None:
        name, accuracy = best_experiment()
        print(f"best experiment: {name} (test accuracy {accuracy:.4f})")
    branch = branch or f"exp-{name}"
    dvc("exp", "branch", name, branch)
    return branch


def main() -> None:
    parser = argparse.ArgumentParser(description="DVC experiments, the short way.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "table",
        help="the experiments table, useful columns only; other options "
        "(-A, --md, ...) go to dvc exp show",
    )
    up = sub.add_parser("promote", help="turn an experiment (default: the best) into a branch")
    up.add_argument("name", nargs="?")
    up.add_argument("--branch")
    args, extra = parser.parse_known_args()
    if args.command == "table":
        print(table(extra))
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    else:
        branch = promote(args.name, args.branch)
        print(f"created branch {branch}: git checkout {branch} && dvc checkout")


if __name__ == "__main__":
    run_stage(main)
