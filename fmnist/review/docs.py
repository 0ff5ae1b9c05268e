"""Render results/*.json into results/*.md and into the tables of README.md and docs/.

    python -m fmnist.review.docs            # rewrite every generated table
    python -m fmnist.review.docs --check    # exit 1 if any would change (the tests run it)

A results JSON describes itself: ``title``, ``about`` (one paragraph), ``columns``
(``[key, label, format]``), ``rows``, optional further ``tables`` and ``images``, and
where it came from: ``command``, ``date``, ``machine``. In markdown, a block between
``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` holds results/NAME.json's first
table, and ``<!-- zoo -->`` / ``<!-- results-index -->`` the model zoo and the list of
results files. So a table in the docs can never disagree with its JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from fmnist.core.atomic import write_text
from fmnist.core.config import CONF
from fmnist.core.errors import PipelineError, run_stage
from fmnist.core.machine import describe_machine
from fmnist.review.tables import markdown_table
from fmnist.train.params import model_recipes

RESULTS = Path("results")
PAGES = [Path("README.md"), *sorted(Path("docs").glob("*.md"))]
BLOCK = re.compile(
    r"(<!-- (results:[\w-]+|zoo|layers|results-index) -->\n)(.*?)(<!-- /\2 -->)", re.S
)


def load_result(path: Path) -> dict[str, Any]:
    """A results JSON, checked for the fields every one must have."""
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PipelineError(f"cannot read {path}: {exc}") from None
    missing = [
        k
        for k in ("title", "command", "commit", "date", "machine", "columns", "rows")
        if k not in payload
    ]
    if missing:
        raise PipelineError(f"{path} lacks {', '.join(missing)}: rerun the command that made it")
    return payload


def provenance_line(payload: dict[str, Any], commit: bool = False) -> str:
    """Where and how the figures were measured, in one line under each table; ``commit``
    (results/*.md, not the user docs) also names the code's commit."""
    verb = "Built" if payload.get("built") else "Measured"
    at = f", at commit {payload['commit']}" if commit else ""
    return (
        f"*{verb} on {describe_machine(payload['machine'])}, {payload['date']}{at}, by "
        f"`{payload['command']}`.*\n"
    )


def table(payload: dict[str, Any]) -> str:
    """The first table of a result and its provenance: what the docs embed."""
    return markdown_table(payload["columns"], payload["rows"]) + "\n" + provenance_line(payload)


def render_result(payload: dict[str, Any]) -> str:
    """The whole results/NAME.md page of a result."""
    first = markdown_table(payload["columns"], payload["rows"])
    parts = [
        f"# {payload['title']}\n",
        payload.get("about", "").strip() + "\n",
        first + "\n" + provenance_line(payload, commit=True),
    ]
    parts += [f"![{Path(image).stem}]({image})\n" for image in payload.get("images", [])]
    for extra in payload.get("tables", []):
        parts.append(f"## {extra['title']}\n")
        if extra.get("about"):
            parts.append(extra["about"].strip() + "\n")
        parts.append(markdown_table(extra["columns"], extra["rows"]))
    return "\n".join(p for p in parts if p.strip()).rstrip("\n") + "\n"


def zoo_order(name: str) -> tuple[bool, int, str]:
    """This project's models first, then the reports' in their order (A to E), then the
    publisher's benchmarks: the order of every table of the zoo."""
    from fmnist.review.reference import REPORTED

    order = list(REPORTED)
    return (name in REPORTED, order.index(name) if name in REPORTED else 0, name)


def zoo_table(leaderboard: dict[str, Any], recipes: dict[str, dict[str, Any]]) -> str:
    """One row per model: its report, size, reported and measured accuracy, CPU time."""
    from fmnist.models import build_model, list_models
    from fmnist.models.summary import keras_param_counts
    from fmnist.review.reference import REPORTED

    measured = {row["model"]: row for row in leaderboard.get("current_recipes", [])}
    rows = []
    for name in sorted(list_models(), key=zoo_order):
        reported = REPORTED.get(name)
        arch = (recipes.get(name) or {}).get("arch") or {}
        trainable, frozen = keras_param_counts(build_model(name, arch, fast=False))
        m = measured.get(name, {})
        claim = None
        if reported:
            claim = f"{reported.accuracy:.2f}" + (
                "" if reported.comparable else f" ({reported.note})"
            )
        rows.append(
            {
                "name": f"`{name}`",
                "report": reported.report if reported else "this project",
                "params": (trainable + frozen) or "fitted",  # a classic model's size is its fit
                "reported": claim,
                "measured": m.get("accuracy"),
                "time": m.get("train_time"),
                "device": m.get("device"),
            }
        )
    columns = [
        ("name", "model"),
        ("report", "from"),
        ("params", "parameters"),
        ("reported", "reported %"),
        ("measured", "measured % (mean ± sd)"),
        ("time", "train time"),
        ("device", "device"),
    ]
    about = (
        "Measured: test accuracy of the recipe in conf/model/, mean ± sd over the seeds run "
        "(one figure: one run), from results/leaderboard.json; train time is the runs' "
        "mean; device `cpu bf16` trained under bf16 autocast. Blank: not run with this "
        "recipe yet.\n\n"
    )
    return about + markdown_table(columns, rows) + "\n" + provenance_line(leaderboard)


def layers_table(recipes: dict[str, dict[str, Any]]) -> str:
    """Each model's layers (its builder's docstring, first paragraph) and its recipe in
    conf/model/, as the leaderboard describes recipes."""
    from fmnist.models.registry import builder_summary
    from fmnist.review.runs import describe_recipe

    rows = [
        {
            "name": f"`{name}`",
            "layers": builder_summary(name),
            "recipe": describe_recipe(name, recipe),
        }
        for name, recipe in sorted(recipes.items(), key=lambda item: zoo_order(item[0]))
    ]
    return markdown_table([("name", "model"), ("layers", "layers"), ("recipe", "recipe")], rows)


def results_index(results: dict[str, dict[str, Any]]) -> str:
    """Every results file: what it holds, the command that makes it, where it was made."""
    rows = [
        {
            "file": f"[{name}.md](../results/{name}.md)",
            "what": payload["title"],
            "command": f"`{payload['command']}`",
            "machine": describe_machine(payload["machine"]),
            "date": payload["date"],
        }
        for name, payload in sorted(results.items())
    ]
    columns = [
        ("file", "file"),
        ("what", "what"),
        ("command", "made by"),
        ("machine", "machine"),
        ("date", "date"),
    ]
    return markdown_table(columns, rows)


def fill(
    text: str, results: dict[str, dict[str, Any]], source: Path, recipes: dict[str, dict]
) -> str:
    """``text`` with every generated block rewritten from ``results`` and ``recipes``
    (conf/model/'s, for the zoo)."""

    def block(match: re.Match[str]) -> str:
        name = match.group(2)
        if name == "zoo":
            body = zoo_table(_need(results, "leaderboard", source), recipes)
        elif name == "layers":
            body = layers_table(recipes)
        elif name == "results-index":
            body = results_index(results)
        else:
            body = table(_need(results, name.removeprefix("results:"), source))
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(block, text)


def _need(results: dict[str, dict[str, Any]], name: str, source: Path) -> dict[str, Any]:
    if name not in results:
        raise PipelineError(f"{source} embeds results/{name}.json, which does not exist")
    return results[name]


def rendered(root: Path = Path(".")) -> dict[Path, str]:
    """Every generated file's path and the text it should have."""
    results = {p.stem: load_result(p) for p in sorted((root / RESULTS).glob("*.json"))}
    recipes = model_recipes(root / CONF)
    out = {root / RESULTS / f"{name}.md": render_result(p) for name, p in results.items()}
    for page in PAGES:
        path = root / page
        if path.is_file():
            out[path] = fill(path.read_text(), results, page, recipes)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args()
    stale = [
        path for path, text in rendered().items() if not path.is_file() or path.read_text() != text
    ]
    if args.check:
        if stale:
            print(
                f"stale: {', '.join(map(str, stale))}; run python -m fmnist.review.docs",
                file=sys.stderr,
            )
            sys.exit(1)
        print("every generated table matches its JSON")
        return
    for path, text in rendered().items():
        if path in stale:
            write_text(path, text)
            print(f"wrote {path}")


if __name__ == "__main__":
    run_stage(main)
