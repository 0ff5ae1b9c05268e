"""A comparison report between two revisions, for a pull request or a local check.

    python -m fmnist.review.compare                   # merge base with main vs the workspace
    python -m fmnist.review.compare --base v1 --out compare

Writes ``<out>/report.md`` with `dvc params diff`, `dvc metrics diff` (per-class F1
included), both sides' learning curves and confusion matrices as images, and which
classes got better or worse; the images sit beside it in ``<out>/``. The metrics, the
predictions and the PNGs are git-tracked, so the base side comes straight from git.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from fmnist.core import layout
from fmnist.core.atomic import write_text
from fmnist.core.errors import PipelineError, run_stage
from fmnist.review.sweep import dvc

IMAGES = ("learning_curves", "confusion")


def git(*args: str, binary: bool = False) -> Any:
    """Run git; a failure is a one-line PipelineError."""
    proc = subprocess.run(["git", *args], capture_output=True, text=not binary)
    if proc.returncode != 0:
        err = proc.stderr if not binary else proc.stderr.decode(errors="replace")
        raise PipelineError(f"git {' '.join(args)} failed: {err.strip()}")
    return proc.stdout


def default_base() -> str:
    """The merge base of HEAD with main (or master); HEAD itself when neither exists."""
    for branch in ("main", "master", "origin/main"):
        try:
            return git("merge-base", branch, "HEAD").strip()
        except PipelineError:
            continue
    return git("rev-parse", "HEAD").strip()


def read_at(rev: str | None, path: Path, binary: bool = False) -> Any:
    """A file's content at ``rev`` (None: the workspace); None when it does not exist there."""
    if rev is None:
        if not path.is_file():
            return None
        return path.read_bytes() if binary else path.read_text()
    try:
        return git("show", f"{rev}:{path.as_posix()}", binary=binary)
    except PipelineError:
        return None


def class_changes(base: dict[str, Any], head: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(class, base F1, head F1) for every class in both, largest change first."""
    b = base.get("test", {}).get("per_class", {})
    h = head.get("test", {}).get("per_class", {})
    rows = [(name, b[name]["f1"], h[name]["f1"]) for name in h if name in b]
    return sorted(rows, key=lambda r: -abs(r[2] - r[1]))


def confusion_changes(base_csv: str | None, head_csv: str | None, top: int = 8) -> list[tuple]:
    """The (true, predicted) error pairs whose count changed most between the two sides."""
    if not base_csv or not head_csv:
        return []

    def errors(text: str) -> Counter:
        rows = csv.DictReader(io.StringIO(text))
        return Counter((r["actual"], r["predicted"]) for r in rows if r["actual"] != r["predicted"])

    b, h = errors(base_csv), errors(head_csv)
    pairs = sorted(set(b) | set(h), key=lambda p: (-abs(h[p] - b[p]), p))
    return [(t, p, b[(t, p)], h[(t, p)]) for t, p in pairs[:top] if h[(t, p)] != b[(t, p)]]


def build(base: str, out: Path) -> Path:
    """Write the report comparing ``base`` with the workspace into ``out``; return its path."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    short = base[:7]
    sections = [
        f"# Model comparison: `{short}` → workspace\n",
        "## Params\n",
        dvc("params", "diff", base, "--md") or "No param changed.\n",
        "## Metrics\n",
        dvc("metrics", "diff", base, "--md", "--precision", "4") or "No metric changed.\n",
    ]
    base_metrics = json.loads(read_at(base, layout.METRICS_JSON) or "{}")
    head_metrics = json.loads(read_at(None, layout.METRICS_JSON) or "{}")
    classes = class_changes(base_metrics, head_metrics)
    if classes:
        sections += [
            "## Classes that got better or worse (test F1)\n",
            "| class | base | workspace | change | |",
            "|---|---:|---:|---:|---|",
        ]
        for name, b, h in classes:
            verdict = "better" if h > b else "worse" if h < b else "same"
            sections.append(f"| {name} | {b:.4f} | {h:.4f} | {h - b:+.4f} | {verdict} |")
        sections.append("")
    pairs = confusion_changes(
        read_at(base, layout.PREDICTIONS_CSV), read_at(None, layout.PREDICTIONS_CSV)
    )
    if pairs:
        sections += [
            "## Misclassifications that changed most\n",
            "| true | predicted as | base | workspace | change |",
            "|---|---|---:|---:|---:|",
        ]
        sections += [f"| {t} | {p} | {b} | {h} | {h - b:+d} |" for t, p, b, h in pairs]
        sections.append("")
    sections.append("## Figures\n")
    sections.append("| base | workspace |\n|---|---|")
    for name in IMAGES:
        cells = []
        for side, rev in (("base", base), ("workspace", None)):
            png = read_at(rev, layout.PLOTS / f"{name}.png", binary=True)
            if png:
                (out / f"{side}_{name}.png").write_bytes(png)
                cells.append(f"![{side} {name}]({side}_{name}.png)")
            else:
                cells.append("(none)")
        sections.append(f"| {cells[0]} | {cells[1]} |")
    report = out / "report.md"
    write_text(report, "\n".join(sections) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="Compare a revision with the workspace.")
    parser.add_argument("--base", help="git revision (default: merge base with main)")
    parser.add_argument("--out", type=Path, default=Path("compare"))
    args = parser.parse_args()
    base = git("rev-parse", args.base or default_base()).strip()
    report = build(base, args.out)
    print(report.read_text())


if __name__ == "__main__":
    run_stage(main)
