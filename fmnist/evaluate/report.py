"""An HTML report of one run that opens offline: no script, no CDN, images inlined.

Everything a person wants to see about a run without knowing DVC: the test metrics and
per-class table, how training went, the figures and the model summary. PNGs are embedded
as base64 data URIs so the single file can be mailed, attached to a CI run or opened from
disk with no network.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from fmnist.core import layout
from fmnist.core.atomic import write_text
from fmnist.data.datasets import DATASETS

FIGURES = (
    ("learning_curves", "Learning curves (train vs validation)"),
    ("confusion", "Confusion matrix (test set)"),
    ("predictions", "Predictions on the first test images"),
    ("most_wrong", "Most confidently wrong test predictions"),
    ("class_distribution", "Images per class in each split"),
    ("samples", "Training images"),
)

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.headline { font-size: 2.2em; font-weight: 600; }
figure { margin: 1em 0; } figcaption { color: #555; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 12px; }
"""


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _in_class_order(per_class: dict[str, Any], data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Per-class rows in the dataset's label order (the JSON stores them sorted by name)."""
    spec = DATASETS.get(data.get("dataset", ""))
    order = {name: i for i, name in enumerate(spec.classes)} if spec else {}
    return sorted(per_class.items(), key=lambda item: order.get(item[0], len(order)))


def _pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def _validation_row(train: dict[str, Any]) -> list[str]:
    value = train.get("best_val_accuracy")
    accuracy = "not measured" if value is None else _pct(value)
    if train.get("val_held_out", True):
        return ["best validation accuracy", accuracy]
    return ["validation accuracy (trained on: no estimate)", accuracy]


def build_report(metrics_dir: Path = layout.METRICS, summary: Path = layout.SUMMARY) -> str:
    """The report's HTML, from the files the pipeline wrote."""
    test = _read_json(metrics_dir / "metrics.json").get("test", {})
    train = _read_json(metrics_dir / "train.json").get("train", {})
    data = _read_json(metrics_dir / "data.json").get("data", {})
    parts = [
        f"<h1>Run report: {html.escape(str(train.get('model', '?')))}</h1>",
        f"<p class='headline'>{_pct(test.get('accuracy', 0))} test accuracy</p>",
        _table(
            ["", "value"],
            [
                ["test loss", f"{test.get('loss', 0):.4f}"],
                ["macro F1", f"{test.get('macro_avg', {}).get('f1', 0):.4f}"],
                ["weighted F1", f"{test.get('weighted_avg', {}).get('f1', 0):.4f}"],
                _validation_row(train),
                ["epochs run (best)", f"{train.get('epochs_run')} ({train.get('best_epoch')})"],
                ["training time", f"{train.get('seconds', 0):.0f} s on {train.get('device')}"],
                ["seconds per epoch", f"{train.get('seconds_per_epoch', 0):.1f}"],
            ],
        ),
        "<h2>Per class (test set)</h2>",
        _table(
            ["class", "precision", "recall", "F1", "support"],
            [
                [
                    name,
                    f"{c['precision']:.3f}",
                    f"{c['recall']:.3f}",
                    f"{c['f1']:.3f}",
                    c["support"],
                ]
                for name, c in _in_class_order(test.get("per_class", {}), data)
            ],
        ),
    ]
    for name, caption in FIGURES:
        path = metrics_dir / "plots" / f"{name}.png"
        if path.is_file():
            parts.append(
                f"<figure><img src='{_data_uri(path)}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    splits = [k for k in ("train", "val", "test") if k in data]
    if splits:
        parts += [
            "<h2>Data</h2>",
            _table(
                ["split", "images", "shape", "dtype", "min", "max"],
                [
                    [
                        s,
                        f"{data[s]['count']:,}",
                        "x".join(map(str, data[s]["shape"])),
                        data[s]["dtype"],
                        data[s]["min"],
                        data[s]["max"],
                    ]
                    for s in splits
                ],
            ),
        ]
    if summary.is_file():
        parts += ["<h2>Model</h2>", f"<pre>{html.escape(summary.read_text())}</pre>"]
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Run report</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def write_report(path: Path = layout.METRICS / "report.html") -> Path:
    """Build the report and write it atomically to ``path``."""
    write_text(path, build_report())
    return path
