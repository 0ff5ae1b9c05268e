"""Kill -9 mid-training, run again: training resumes and ends exactly as if never killed."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT
from helpers import run, start

from fmnist.core.config import CONF, write_params
from fmnist.data import formats
from fmnist.data.datasets import FASHION_MNIST
from fmnist.data.prepared import Split, save_split

DEBIAN = Path(FASHION_MNIST.debian_folder)


pytestmark = pytest.mark.slow  # trains in subprocesses


def _workdir(path: Path) -> Path:
    """A run directory: small real splits and params for 4 epochs of a small fastcnn."""
    images = formats.read_idx(DEBIAN / "train-images-idx3-ubyte.gz")[:2500]
    labels = formats.read_idx(DEBIAN / "train-labels-idx1-ubyte.gz")[:2500].astype(np.int64)
    path.mkdir()
    for name, sl in (
        ("train", slice(0, 2000)),
        ("val", slice(2000, 2500)),
        ("test", slice(2000, 2500)),
    ):
        save_split(path / f"data/prepared/{name}.npz", Split(images[sl], labels[sl]))
    overrides = ["model.epochs=4", "model.arch.width=8", "model.arch.dropout=0.25"]
    write_params(path / "params.yaml", overrides, ROOT / CONF)
    return path


def _stage(cwd: Path, stage: str, **env: str) -> subprocess.CompletedProcess:
    return run(cwd, sys.executable, "-m", f"stages.{stage}", check=False, timeout=300, **env)


def _killed_after_an_epoch(cwd: Path) -> int:
    """Run the train stage and SIGKILL it as soon as an epoch's checkpoint appears, as a
    crash or an impatient user would; return the epoch the checkpoint holds."""
    resume = cwd / "models/resume.pt"
    with start(cwd, sys.executable, "-m", "stages.train") as proc:
        deadline = time.monotonic() + 300
        while not resume.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    state = torch.load(resume, weights_only=True)["state"]
    assert not state["finished"], "the run finished before the kill: give it more epochs"
    return state["epoch"]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path / "models/model.pt", weights_only=True)["state_dict"]


def test_killed_run_resumes_to_identical_results(tmp_path: Path) -> None:
    straight = _workdir(tmp_path / "straight")
    assert _stage(straight, "train").returncode == 0

    killed = _workdir(tmp_path / "killed")
    epoch = _killed_after_an_epoch(killed)
    assert 1 <= epoch < 4 and not (killed / "models/model.pt").exists()

    again = _stage(killed, "train")
    assert again.returncode == 0, again.stderr
    assert f"resuming after epoch {epoch}" in again.stderr
    info = json.loads((killed / "metrics/train.json").read_text())["train"]
    assert info["resumed_from_epoch"] == epoch and info["epochs_run"] == 4

    a, b = _weights(straight), _weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for work in (straight, killed):
        assert _stage(work, "evaluate").returncode == 0
    metrics = [(work / "metrics/metrics.json").read_bytes() for work in (straight, killed)]
    assert metrics[0] == metrics[1]
    rows = (killed / "metrics/live/plots/metrics/train/accuracy.tsv").read_text().splitlines()
    steps = [row.split("\t")[0] for row in rows[1:]]
    assert steps == ["0", "1", "2", "3"]  # one row per epoch, none lost or repeated


def test_other_params_or_fresh_flag_start_fresh(tmp_path: Path) -> None:
    work = _workdir(tmp_path / "run")
    _killed_after_an_epoch(work)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"]["resume"] = False
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    fresh = _stage(work, "train")
    assert fresh.returncode == 0 and "resuming" not in fresh.stderr
    assert json.loads((work / "metrics/train.json").read_text())["train"]["resumed_from_epoch"] == 0
    shutil.rmtree(work / "metrics")
