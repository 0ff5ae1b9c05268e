"""A sweep across machines, for real: a bare Git repository as ``origin``, a folder as the
DVC remote, three worker clones running their sweep units at the same time as separate
processes, then a fresh collector clone that pulls the experiments back and builds the
leaderboard from them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, dvc, environment, run

from bench.sweep_share import (
    MODELS,
    SMALL,
    Job,
    clone,
    origin_with_baseline,
    run_units,
    unit_command,
    unit_job,
)

JOB = ROOT / "deploy/k8s/sweep-job.yaml"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def slurm_task(root: Path, origin: Path, grid: Path, index: int) -> Job:
    """deploy/slurm/sweep.sbatch as SLURM runs array task ``index`` (its environment)."""
    env = {
        "REPO": str(origin),
        "SLURM_ARRAY_TASK_ID": str(index),
        "SLURM_CPUS_PER_TASK": "1",
        "SWEEP_DIR": str(root / "slurm"),
        "GRID": str(grid),
        "PROFILE": "small",
        "FMNIST_VENV": sys.prefix,
    }
    return root, ["bash", str(ROOT / "deploy/slurm/sweep.sbatch")], env


def kubernetes_pod(root: Path, origin: Path, grid: Path, index: int) -> Job:
    """The Indexed Job's container command as its pod ``index`` runs it: the manifest's
    own environment, with the secret's values and a local venv instead of pip."""
    (container,) = yaml.safe_load(JOB.read_text())["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    env |= {"REPO": str(origin), "WORKDIR": str(root / "k8s"), "DVC_REMOTE_PLUGIN": ""}
    env |= {"JOB_COMPLETION_INDEX": str(index), "GRID": str(grid), "PROFILE": "small"}
    env |= {"DVC_REMOTE_URL": str(root / "dvc-remote"), "FMNIST_VENV": sys.prefix}
    (root / "k8s").mkdir()
    return root, [*container["command"], *container["args"]], env


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The origin after four workers ran at once: cnn1 by the unit itself, cnn3 as a
    SLURM array task, logreg as a Kubernetes pod, cnn2 with a refused value."""
    root = tmp_path_factory.mktemp("sweep")
    origin = origin_with_baseline(root)
    grid = root / "grid.txt"
    grid.write_text("".join(f"{m} prepare.train_limit=2000\n" for m in MODELS))
    cnn1 = clone(origin, root / "worker-cnn1")
    bad = clone(origin, root / "worker-bad")
    jobs = {
        "cnn1": unit_job(cnn1, "cnn1", *SMALL),
        "cnn3": slurm_task(root, origin, grid, MODELS.index("cnn3")),
        "logreg": kubernetes_pod(root, origin, grid, MODELS.index("logreg")),
        "bad": unit_job(bad, "cnn2", *SMALL, "--set", "model.lr=-1"),
    }
    result = run_units(jobs)
    print(f"four workers at once: {result['seconds']:.0f} s")
    workers = {
        "cnn1": cnn1,
        "cnn3": root / "slurm" / f"main-{MODELS.index('cnn3')}",
        "logreg": root / "k8s" / "fmnist",
    }
    return result | {"root": root, "origin": origin, "workers": workers}


def worker_metrics(worker: Path) -> float:
    return json.loads((worker / "metrics/metrics.json").read_text())["test"]["accuracy"]


def test_three_workers_push_and_the_bad_one_fails_alone(sweep: dict) -> None:
    for model in MODELS:
        assert sweep["codes"][model] == 0, sweep["outputs"][model]
        assert "pushed " in sweep["outputs"][model]
    bad = sweep["outputs"]["bad"].strip().splitlines()
    assert sweep["codes"]["bad"] != 0
    assert bad[-1].startswith("error: experiment cnn2-") and "model.lr is -1.0" in bad[-1]
    assert bad[-1].endswith("(recorded at origin)")


def test_a_collector_sees_every_experiment_with_the_workers_figures(sweep: dict) -> None:
    collector = clone(sweep["origin"], sweep["root"] / "collector")
    out = run(collector, sys.executable, "-m", "fmnist.review.sweep_unit", "--collect")
    assert "collected 3 experiment(s) and 1 failure record(s)" in out.stdout
    started = time.perf_counter()
    dvc(collector, "exp", "show", "--no-pager", "--json", "-A")
    print(f"dvc exp show -A with the pulled experiments: {time.perf_counter() - started:.1f} s")
    run(collector, sys.executable, "-m", "fmnist.review.leaderboard", "--out", "board")
    board = json.loads((collector / "board/leaderboard.json").read_text())
    seen = {row["model"]: row["test_accuracy"] for row in board["experiments"]}
    for model in MODELS:
        assert seen[model] == round(100 * worker_metrics(sweep["workers"][model]), 2)
    (failed,) = board["failed"]
    assert failed["model"] == "cnn2" and "model.lr is -1.0" in failed["reason"]
    text = (collector / "board/leaderboard.md").read_text()
    assert "Failed experiments" in text and "model.lr is -1.0" in text


def test_rerunning_a_unit_trains_nothing_and_says_so(sweep: dict) -> None:
    worker = sweep["workers"]["cnn1"]
    started = time.perf_counter()
    out = run(worker, *unit_command("cnn1", *SMALL)).stdout
    print(f"reused re-run: {time.perf_counter() - started:.1f} s")
    assert "reused: cnn1-" in out and "nothing trained" in out
    assert "Running stage" not in out


def test_a_killed_worker_resumes_when_its_unit_runs_again(sweep: dict) -> None:
    worker = clone(sweep["origin"], sweep["root"] / "worker-killed")
    args = unit_command("cnn1", *SMALL, "--set", "model.epochs=4")
    proc = subprocess.Popen(args, cwd=worker, env=environment(), start_new_session=True)
    checkpoint = worker / "models/resume.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checkpoint.exists(), "no epoch finished"
    os.killpg(proc.pid, signal.SIGKILL)  # the unit, dvc and the stage: a lost machine
    proc.wait()
    out = run(worker, *args).stdout
    assert "resuming after epoch" in out and "pushed cnn1-" in out
