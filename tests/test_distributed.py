"""DDP: two CPU processes (gloo) train like one, rank 0 alone writes the outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from test_resume import _stage, _workdir

pytestmark = pytest.mark.slow  # trains in subprocesses


def _set(run: Path, **train: object) -> None:
    params = yaml.safe_load((run / "params.yaml").read_text())
    params["train"].update(train)
    params["model"]["epochs"] = 3
    (run / "params.yaml").write_text(yaml.safe_dump(params))


def test_two_gloo_processes_match_a_single_process(tmp_path: Path) -> None:
    single = _workdir(tmp_path / "single")
    _set(single)
    assert _stage(single, "train").returncode == 0

    ddp = _workdir(tmp_path / "ddp")
    _set(ddp, launcher="torchrun", nproc=2)
    start = time.perf_counter()
    run = _stage(ddp, "train")
    seconds = time.perf_counter() - start
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.count("training fastcnn") == 1  # rank 0 alone logs
    info = json.loads((ddp / "metrics/train.json").read_text())["train"]
    assert info["processes"] == 2 and info["epochs_run"] == 3
    base = json.loads((single / "metrics/train.json").read_text())["train"]
    gap = abs(info["best_val_accuracy"] - base["best_val_accuracy"])
    print(
        f"DDP 2x gloo: {seconds:.1f}s wall, val accuracy {info['best_val_accuracy']:.4f} "
        f"vs single process {base['best_val_accuracy']:.4f}"
    )
    assert gap <= 0.03
    assert _stage(ddp, "evaluate").returncode == 0  # rank 0's checkpoint is complete
