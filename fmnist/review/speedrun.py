"""What training time buys on a CPU: the fewest training seconds recorded to reach 93, 94
and 95 % test accuracy (the mean over a recipe's seeds), in fp32 with the portable
kernels and in bf16 with the fastest, as the fast-training literature's speedrun tables.

    python -m fmnist.review.speedrun [--out results/speedrun]

Built from recorded runs only, never from a new one: every seed of every experiment in
results/leaderboard.json, and the budget runs in results/budget.json. A cell no recorded
recipe reaches within an hour of training stays empty, and says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from fmnist.core.atomic import write_json, write_text
from fmnist.core.errors import run_stage
from fmnist.core.machine import provenance
from fmnist.review.docs import render_result

TARGETS = (93.0, 94.0, 95.0)
HOUR = 3600.0
KINDS = {  # the leaderboard's device label -> how the run computed
    "cpu": "fp32 (portable)",
    "cpu bf16": "bf16 (fastest)",
}


def recorded_runs(results: Path) -> list[dict[str, Any]]:
    """One entry per recipe and device kind: mean test %, seeds, mean training seconds."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run in json.loads((results / "leaderboard.json").read_text())["experiments"]:
        key = (run["device"], run["model"], run["recipe"])
        groups.setdefault(key, []).append(run)
    runs = [
        {
            "kind": kind,
            "recipe": f"`{model}` {recipe}",
            "mean": round(statistics.mean(r["test_accuracy"] for r in group), 2),
            "seeds": len(group),
            "seconds": statistics.mean(r["seconds"] for r in group),
        }
        for (kind, model, recipe), group in groups.items()
    ]
    budget = results / "budget.json"
    if budget.is_file():  # trained as the train stage trains, on the AVX2-only CPU, fp32
        runs += [
            {
                "kind": "cpu",
                "recipe": f"`{row['model']}` {row['variant'].split(' ', 1)[1]} (budget.json)"
                if " " in row["variant"]
                else f"`{row['model']}` (budget.json)",
                "mean": row["mean"],
                "seeds": row["seeds"],
                "seconds": row["seconds"],
            }
            for row in json.loads(budget.read_text())["rows"]
        ]
    return runs


def fastest_to(target: float, runs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The row for ``target`` and ``kind``: the recipe with the fewest mean seconds whose
    mean accuracy reaches it within an hour, or an empty row that says so."""
    row = {"target": f"{target:.0f} %", "kind": KINDS[kind]}
    reaching = [
        r for r in runs if r["kind"] == kind and r["mean"] >= target and r["seconds"] <= HOUR
    ]
    if not reaching:
        return row | {"recipe": "none recorded within an hour of training"}
    best = min(reaching, key=lambda r: r["seconds"])
    return row | {
        "seconds": round(best["seconds"]),
        "accuracy": best["mean"],
        "seeds": best["seeds"],
        "recipe": best["recipe"],
    }


def speedrun(results: Path = Path("results")) -> dict[str, Any]:
    """The table as a results payload: one row per target accuracy and kind of run."""
    runs = recorded_runs(results)
    rows = [fastest_to(target, runs, kind) for target in TARGETS for kind in KINDS]
    return {
        "title": "Training seconds to a test accuracy on a 2-core CPU",
        "about": (
            "The fewest training seconds recorded to reach each test accuracy (the mean "
            "over the recipe's seeds), from every experiment in results/leaderboard.json "
            "and the runs in results/budget.json. fp32: an AMD EPYC with AVX2 only, where "
            "portable and fastest kernels are the same AVX2 code; bf16: a CPU with native "
            "bf16, where `train.reproducible: fastest` lets `train.precision: auto` choose "
            "it. A row without seconds: no recorded recipe reached the accuracy within an "
            "hour of training."
        ),
        "columns": [
            ("target", "test accuracy"),
            ("kind", "computed in"),
            ("seconds", "training s"),
            ("accuracy", "test % (mean)"),
            ("seeds", "seeds"),
            ("recipe", "model and recipe"),
        ],
        "rows": rows,
        "built": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=Path("results/speedrun"))
    args = parser.parse_args()
    payload = speedrun(args.results) | provenance()
    write_json(args.out.with_suffix(".json"), payload)
    write_text(args.out.with_suffix(".md"), render_result(payload))
    print(render_result(payload))


if __name__ == "__main__":
    run_stage(main)
