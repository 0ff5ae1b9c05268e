"""End to end: the real `dvc repro` in a temporary git repository, on a small subset.

Checks what users rely on: outputs and metrics appear, a second repro is a no-op,
an evaluation param reruns only evaluation, same params give the same metrics, an
experiment switches the model and its recipe, diffs show the change, and the default
DVC remote round-trips the data.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from helpers import dvc, dvc_repo, output

from bench.project_copy import GUARD_PROFILE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SMALL = GUARD_PROFILE  # tests/reference/portable.json was made with it


def run(repo: Path, *args: str, check: bool = True) -> str:
    return output(repo, *args, check=check)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    return dvc_repo(root / "repo", SMALL, remote=root / "remote")


def metrics(repo: Path) -> dict:
    return json.loads((repo / "metrics/metrics.json").read_text())


def test_repro_builds_model_metrics_and_plots(repo: Path) -> None:
    out = dvc(repo, "repro")
    for stage in ("download", "prepare", "train", "evaluate", "report"):
        assert f"Running stage '{stage}'" in out
    test = metrics(repo)["test"]
    assert 0.1 < test["accuracy"] <= 1
    assert set(test["per_class"]["Shirt"]) == {"precision", "recall", "f1", "support"}
    assert test["macro_avg"]["support"] == 200
    train = json.loads((repo / "metrics/train.json").read_text())["train"]
    assert train["device"] == "cpu" and train["epochs_run"] == 2
    # the default recipe learns from train + val and keeps its last epoch
    assert train["train_images"] == 1100 and not train["val_held_out"]
    assert train["best_epoch"] == 2
    assert 100 < train["peak_memory_mb"] < 1536  # PyTorch alone is over 100 MB of RSS
    data = json.loads((repo / "metrics/data.json").read_text())["data"]
    assert data["train"]["count"] == 1000 and data["val"]["count"] == 100
    assert data["train"]["dtype"] == "uint8" and data["train"]["per_class"]["Bag"] == 100
    for png in (
        "learning_curves",
        "confusion",
        "predictions",
        "most_wrong",
        "class_distribution",
        "samples",
    ):
        assert (repo / f"metrics/plots/{png}.png").read_bytes()[:4] == b"\x89PNG"
    assert (repo / "models/model.pt").is_file()
    assert "Total params" in (repo / "models/summary.txt").read_text()
    # trained on val, so only the kept epoch is validated: one val point, two train points
    live = repo / "metrics/live/plots/metrics"
    assert len((live / "train/accuracy.tsv").read_text().splitlines()) == 1 + 2
    assert len((live / "val/accuracy.tsv").read_text().splitlines()) == 1 + 1
    page = (repo / "metrics/report.html").read_text()
    assert "test accuracy" in page and "<script" not in page


def test_plots_show_renders_curves_and_confusion(repo: Path) -> None:
    out = repo.parent / "plots_html"
    dvc(repo, "plots", "show", "-o", str(out))
    page = (out / "index.html").read_text()
    assert '"predicted"' in page and '"actual"' in page  # the confusion template
    assert '"accuracy"' in page and '"loss"' in page  # the learning curves
    assert len(list((out / "static").glob("*.png"))) == 6


def test_second_repro_is_a_no_op(repo: Path) -> None:
    out = dvc(repo, "repro")
    assert "Running stage" not in out
    assert "up to date" in dvc(repo, "status")


def test_evaluation_param_reruns_only_evaluate(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["evaluate"]["grid"] = 10
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = dvc(repo, "repro")
    assert "Running stage 'evaluate'" in out
    assert "Running stage 'train'" not in out and "Running stage 'prepare'" not in out


def test_another_models_recipe_reruns_nothing(repo: Path) -> None:
    recipe = repo / "conf/model/cnn1.yaml"
    before = recipe.read_text()
    recipe.write_text(before.replace("lr: 0.001", "lr: 0.002"))
    try:
        assert "Running stage" not in dvc(repo, "repro")
    finally:
        recipe.write_text(before)


def test_default_experiment_shows_the_selected_recipe_only(repo: Path) -> None:
    shown = json.loads(dvc(repo, "exp", "show", "--json", "--no-pager"))
    columns = shown[0]["data"]["params"]["params.yaml"]["data"]

    def flat(node: object, prefix: str = "") -> list[str]:
        if not isinstance(node, dict):
            return [prefix]
        return [k for key, v in node.items() for k in flat(v, f"{prefix}.{key}".strip("."))]

    names = flat(columns)
    assert "model.name" in names and "model.lr" in names and "train.seed" in names
    assert not any(n.startswith("models.") for n in names)
    assert len(names) <= 40, f"{len(names)} param columns: {names}"


def test_same_params_give_identical_metrics(repo: Path) -> None:
    before = (repo / "metrics/metrics.json").read_bytes()
    dvc(repo, "repro", "--force")
    assert (repo / "metrics/metrics.json").read_bytes() == before


REFERENCE = Path(__file__).parent / "reference" / "portable.json"


def test_portable_run_matches_the_reference_made_on_another_machine(repo: Path) -> None:
    """The CI guard of train.reproducible: portable. The small run's weights and results,
    bit for bit, as committed from the machine named in the reference file, on whatever
    x86 CPU this runs. After an intended change (recipe, torch) remake it with
    FMNIST_WRITE_REFERENCE=1 on any x86 machine with AVX2."""
    code = (
        "from fmnist.review.verify import result_digests as d; import json; print(json.dumps(d()))"
    )
    digests = json.loads(run(repo, sys.executable, "-c", code))
    train = json.loads((repo / "metrics/train.json").read_text())["train"]
    assert train["kernels"]["pinned"] and train["threads"] == 2 and train["precision"] == "fp32"
    if os.environ.get("FMNIST_WRITE_REFERENCE"):
        made_on = {"cpu": train["machine"]["cpu"], "isa": train["machine"]["isa"]}
        made_on |= {k: train["kernels"][k] for k in ("torch", "onednn", "mkl")}
        REFERENCE.parent.mkdir(exist_ok=True)
        REFERENCE.write_text(json.dumps({"made_on": made_on, "sha256": digests}, indent=2) + "\n")
    reference = json.loads(REFERENCE.read_text())
    assert digests == reference["sha256"], (
        f"portable results differ from those made on {reference['made_on']}: "
        f"this CPU is {train['machine']['cpu']} ({train['machine']['isa']})"
    )


def test_verify_answers_identical_then_names_the_changed_param(repo: Path) -> None:
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "baseline")
    verify = (sys.executable, "-m", "fmnist.review.verify")
    assert run(repo, *verify).startswith("identical: metrics.json, predictions.csv and the 4 ")
    dvc(repo, "exp", "run", "-S", "train.seed=7")
    out = run(repo, *verify, check=False)
    assert out.startswith("different (") and "test accuracy" in out
    assert "train.seed 7 (HEAD: 42)" in out and "kernels" not in out
    dvc(repo, "exp", "run", "-S", "train.seed=42")
    assert run(repo, *verify).startswith("identical: ")


def test_experiment_switches_model_and_diffs_show_it(repo: Path) -> None:
    dvc(repo, "exp", "run", "-S", "model=cnn1", "-S", "model.epochs=1")
    train = json.loads((repo / "metrics/train.json").read_text())["train"]
    assert train["model"] == "cnn1" and train["train_images"] == 1000 and train["val_held_out"]
    table = dvc(repo, "exp", "show", "--md", "--no-pager")
    assert "cnn1" in table and "fastcnn" in table and "test.accuracy" in table
    diff = dvc(repo, "params", "diff")
    assert "model.name" in diff and "cnn1" in diff and "model.epochs" in diff
    assert "test.accuracy" in dvc(repo, "metrics", "diff", "--md")


def test_classic_baseline_runs_through_the_same_pipeline(repo: Path) -> None:
    dvc(repo, "exp", "run", "-S", "model=logreg", "-S", "model.arch.max_iter=20")
    train = json.loads((repo / "metrics/train.json").read_text())["train"]
    assert train["model"] == "logreg" and train["epochs_run"] == 1
    assert train["params"]["total"] == 7850  # 784 x 10 weights + 10 biases, fitted
    test = json.loads((repo / "metrics/metrics.json").read_text())["test"]
    assert test["accuracy"] > 0.5  # 1,100 training images: well above chance
    assert json.loads((repo / "metrics/export.json").read_text())["export"]["onnx_agreement"] == 1
    assert "Non-trainable params: 7,850" in (repo / "models/summary.txt").read_text()


def test_sweep_queues_zoo_models_and_leaderboard_reports_them(repo: Path) -> None:
    out = run(
        repo,
        sys.executable,
        "-m",
        "fmnist.review.sweep",
        "cnn3",
        "--poll",
        "2",
        "--set",
        "model.epochs=1",
    )
    assert "queued zoo-cnn3" in out
    board = run(repo, sys.executable, "-m", "fmnist.review.leaderboard", "--out", "results")
    row = next(line for line in board.splitlines() if "| zoo-cnn3 |" in line)
    assert "| cnn3 |" in row and "| 90.65 |" in row  # report C's figure beside the measured
    assert (repo / "results/leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    assert "zoo-cnn3" in (repo / "results/leaderboard.md").read_text()


def test_experiments_table_and_promoting_the_best(repo: Path) -> None:
    table = run(repo, sys.executable, "-m", "fmnist.review.experiments", "table", "--md")
    header = table.splitlines()[0]
    assert "test.accuracy" in header and "train.lr" in header and "model.name" in header
    assert "train.val_held_out" in header  # a val accuracy that was trained on says so
    assert "model.arch" not in header  # the useful columns only
    out = run(
        repo, sys.executable, "-m", "fmnist.review.experiments", "promote", "--branch", "best"
    )
    assert "best experiment:" in out
    assert "best" in run(repo, "git", "branch", "--list", "best")


def test_push_and_pull_round_trip(repo: Path) -> None:
    dvc(repo, "push")
    shutil.rmtree(repo / ".dvc" / "cache")
    for out in ("data/raw", "data/prepared", "models/model.pt"):
        path = repo / out
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    dvc(repo, "pull")
    assert (repo / "models/model.pt").is_file()
    assert "up to date" in dvc(repo, "status")
