"""What a reviewer reads: the comparison report, the offline HTML report, the PR workflow."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml
from conftest import ROOT, headless_chromium
from helpers import run

from fmnist.core import plots
from fmnist.data.datasets import FASHION_MNIST
from fmnist.evaluate.evaluation import classification_metrics
from fmnist.evaluate.report import build_report

BIN = Path(sys.executable).parent
CLASSES = FASHION_MNIST.classes


def _write_run(root: Path, accuracy_noise: int, seed: int) -> None:
    """metrics.json, predictions.csv and the PNGs of a fake run with some errors."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), 20)
    predicted = labels.copy()
    wrong = rng.choice(len(labels), accuracy_noise, replace=False)
    predicted[wrong] = (labels[wrong] + 1 + rng.integers(0, 9, accuracy_noise)) % 10
    (root / "metrics/plots").mkdir(parents=True, exist_ok=True)
    metrics = {"test": classification_metrics(labels, predicted, 0.3, CLASSES)}
    (root / "metrics/metrics.json").write_text(json.dumps(metrics, indent=2))
    rows = ["actual,predicted"] + [
        f"{CLASSES[a]},{CLASSES[p]}" for a, p in zip(labels, predicted, strict=True)
    ]
    (root / "metrics/predictions.csv").write_text("\n".join(rows) + "\n")
    history = [
        {
            "epoch": e,
            "train_accuracy": 0.5 + e / 10,
            "val_accuracy": 0.5 + e / 12,
            "train_loss": 1 / e,
            "val_loss": 1.2 / e,
        }
        for e in range(1, 4)
    ]
    plots.learning_curves(history, root / "metrics/plots/learning_curves.png", 3)
    matrix = np.zeros((10, 10), int)
    np.add.at(matrix, (labels, predicted), 1)
    plots.confusion_matrix(matrix, CLASSES, root / "metrics/plots/confusion.png")


def _run(cwd: Path, *args: str) -> str:
    return run(cwd, *args, timeout=300).stdout


def test_comparison_report_between_two_commits(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "fmnist", tmp_path / "fmnist")
    shutil.copy(ROOT / "dvc.yaml", tmp_path)
    shutil.copy(ROOT / "params.yaml", tmp_path)
    _run(tmp_path, "git", "init", "-q", "-b", "main")
    _run(tmp_path, "git", "config", "user.email", "t@example.invalid")
    _run(tmp_path, "git", "config", "user.name", "t")
    _run(tmp_path, str(BIN / "dvc"), "init", "-q")
    _write_run(tmp_path, accuracy_noise=40, seed=0)
    _run(tmp_path, "git", "add", "-A")
    _run(tmp_path, "git", "commit", "-qm", "base")
    _write_run(tmp_path, accuracy_noise=10, seed=1)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["model"]["epochs"] = 12
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    _run(tmp_path, sys.executable, "-m", "fmnist.review.compare", "--out", "compare")

    report = (tmp_path / "compare/report.md").read_text()
    accuracy = next(line for line in report.splitlines() if "| test.accuracy " in line)
    assert "0.8" in accuracy and "0.95" in accuracy  # both sides' values
    assert re.search(r"\| 0\.15 ", accuracy)  # and the change
    assert re.search(r"test\.per_class\.\S+\.f1", report)  # per-class F1 rows
    assert "model.epochs" in report and "12" in report
    assert "| better |" in report and "## Misclassifications that changed most" in report
    for side in ("base", "workspace"):
        for name in ("learning_curves", "confusion"):
            image = tmp_path / "compare" / f"{side}_{name}.png"
            assert image.read_bytes()[:4] == b"\x89PNG"
            assert f"({side}_{name}.png)" in report


def _fake_run_dir(root: Path) -> Path:
    _write_run(root, accuracy_noise=12, seed=0)
    for name in ("predictions", "most_wrong", "class_distribution", "samples"):
        shutil.copy(root / "metrics/plots/confusion.png", root / f"metrics/plots/{name}.png")
    (root / "metrics/train.json").write_text(
        json.dumps(
            {
                "train": {
                    "model": "cnn1",
                    "seconds": 12.5,
                    "device": "cpu",
                    "epochs_run": 3,
                    "best_epoch": 3,
                    "best_val_accuracy": 0.9,
                    "seconds_per_epoch": 4.2,
                }
            }
        )
    )
    (root / "models").mkdir()
    (root / "models/summary.txt").write_text("Total params: 34,826\n")
    return root


def test_html_report_is_self_contained(tmp_path: Path) -> None:
    root = _fake_run_dir(tmp_path)
    page = build_report(root / "metrics", root / "models/summary.txt")
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)
    sources = re.findall(r"<img src='([^']+)'", page)
    assert len(sources) == 6 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "94.00 %" in page and "Shirt" in page and "Total params: 34,826" in page
    assert "best validation accuracy" in page


def test_html_report_says_when_validation_was_trained_on(tmp_path: Path) -> None:
    root = _fake_run_dir(tmp_path)
    train = json.loads((root / "metrics/train.json").read_text())
    train["train"]["val_held_out"] = False
    (root / "metrics/train.json").write_text(json.dumps(train))
    page = build_report(root / "metrics", root / "models/summary.txt")
    assert "validation accuracy (trained on: no estimate)" in page
    assert "best validation accuracy" not in page


def test_html_report_renders_offline_in_a_real_browser(tmp_path: Path) -> None:
    """Headless Chromium (installed by .ci/run) loads it: every image, no network request."""
    root = _fake_run_dir(tmp_path)
    page = root / "report.html"
    page.write_text(build_report(root / "metrics", root / "models/summary.txt"))
    driver = headless_chromium(tmp_path / "profile")
    try:
        driver.get(page.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
        )
        requests = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => !n.startsWith('data:'))"
        )
        title = driver.title
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
    assert title == "Run report"
    assert len(images) == 6 and all(done and width > 0 for done, width in images)
    assert requests == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_pull_request_workflow_calls_commands_that_exist() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/pull-request.yml").read_text())
    steps = workflow["jobs"]["review"]["steps"]
    assert workflow[True]["pull_request"]  # YAML reads the key `on` as True
    script = "\n".join(step.get("run", "") for step in steps)
    modules = re.findall(r"python -m ([\w.]+)", script)
    assert {"fmnist.review.compare"} <= set(modules)
    for module in modules:
        assert importlib.util.find_spec(module), module
    assert os.access(ROOT / "run.sh", os.X_OK) and "./run.sh test" in script
    for sub in re.findall(r"\bdvc (exp run|exp show)", script):
        _run(ROOT, str(BIN / "dvc"), *sub.split(), "--help")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key in re.findall(r"-S (prepare\.\w+)=", script):
        section, name = key.split(".")
        assert name in params[section], key
