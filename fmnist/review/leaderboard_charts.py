"""The leaderboard's two charts: time to accuracy, and measured against reported."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fmnist.core.plots import _save
from fmnist.review.reference import REPORTED

if TYPE_CHECKING:  # the rows' type only: the leaderboard imports this module
    from fmnist.review.runs import Row


def bar_chart(rows: list[Row], path: Path) -> None:
    """Measured test accuracy per experiment, the report's figure beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
