"""train.reproducible: portable pins the CPU kernels before torch computes; fastest does
not; what a run records, and the one-line answers of `python -m fmnist.review.verify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fmnist.core import kernels
from fmnist.core.errors import PipelineError
from fmnist.review import verify
from fmnist.train import device as device_module
from fmnist.train.device import autocast_dtype, set_threads
from fmnist.train.params import params_from

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
# a 3x3 convolution (oneDNN) and a matrix product (MKL), with both libraries' logs on
PROBE = (
    "import stages, torch\n"
    "x = torch.randn(8, 4, 12, 12)\n"
    "torch.nn.functional.conv2d(x, torch.randn(8, 4, 3, 3))\n"
    "torch.randn(64, 64) @ torch.randn(64, 64)\n"
    "from fmnist.core import kernels\n"
    "print('RECORD', __import__('json').dumps(kernels.in_effect(kernels_mode)))\n"
)


def _probe(tmp_path: Path, mode: str) -> tuple[dict, str]:
    """Run PROBE from a folder whose params.yaml asks for ``mode``: (record, library logs)."""
    (tmp_path / "params.yaml").write_text(f"train:\n  reproducible: {mode}\n")
    env = {k: v for k, v in os.environ.items() if k not in kernels.PORTABLE_ENV}
    env |= {"PYTHONPATH": str(ROOT), "MKL_VERBOSE": "1", "ONEDNN_VERBOSE": "1"}
    code = f"kernels_mode = {mode!r}\n" + PROBE
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    record = next(line for line in run.stdout.splitlines() if line.startswith("RECORD "))
    return json.loads(record.removeprefix("RECORD ")), run.stdout + run.stderr


def test_portable_pins_onednn_mkl_and_aten_before_torch_computes(tmp_path: Path) -> None:
    record, logs = _probe(tmp_path, "portable")
    assert record["pinned"] and record["baseline"] == "AVX2"
    assert record["aten_capability"] == "AVX2"
    assert record["onednn_max_isa"] == "AVX2" and record["mkl_cbwr"] == "COMPATIBLE"
    assert "CNR:COMPATIBLE" in logs  # MKL took its vendor-neutral branch
    conv = [line for line in logs.splitlines() if ",convolution," in line and "exec" in line]
    assert conv and all("avx512" not in line and "amx" not in line for line in conv)


def test_fastest_leaves_the_kernels_to_the_cpu(tmp_path: Path) -> None:
    record, logs = _probe(tmp_path, "fastest")
    assert not record["pinned"] and record["baseline"] == "none"
    assert record["onednn_max_isa"] == "ALL" and record["mkl_cbwr"] == "OFF"
    assert "CNR:COMPATIBLE" not in logs
    assert record["torch"] == torch.__version__ and record["onednn"] != "none"


def test_pinning_after_torch_pins_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels, "cpu_runs_baseline", lambda: True)
    for name in kernels.PORTABLE_ENV:
        monkeypatch.delenv(name, raising=False)
    # pytest has imported torch: the libraries may have read their settings already
    assert kernels.pin("portable") is False and kernels.pin("fastest") is False
    assert not set(kernels.PORTABLE_ENV) & set(os.environ)


def test_the_baseline_needs_x86_with_avx2_and_fma(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels.platform, "machine", lambda: "x86_64")
    assert kernels.cpu_runs_baseline("flags\t: sse2 avx fma avx2 avx512f\n")
    assert not kernels.cpu_runs_baseline("flags\t: sse2 avx\n")  # before 2013: no promise
    monkeypatch.setattr(kernels.platform, "machine", lambda: "aarch64")
    assert not kernels.cpu_runs_baseline("flags\t: fp asimd\n")
    assert "has no AVX2" in kernels.unpinned_notice("portable")
    assert kernels.unpinned_notice("fastest") is None


def test_an_unpinned_portable_run_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels, "cpu_runs_baseline", lambda: True)
    monkeypatch.setattr(kernels, "is_pinned", lambda: False)
    assert "were not pinned" in kernels.unpinned_notice("portable")


def test_portable_computes_in_fp32_and_refuses_bf16_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    assert autocast_dtype("auto", CPU, "fastest") == torch.bfloat16
    assert autocast_dtype("auto", CPU, "portable") is None
    with pytest.raises(PipelineError, match=r"train\.reproducible=fastest"):
        autocast_dtype("bf16", CPU, "portable")


def test_the_params_check_refuses_bf16_on_a_portable_cpu_run() -> None:
    recipe = {"name": "fastcnn", "optimizer": "adam", "lr": 0.005, "batch_size": 256, "epochs": 1}
    raw = {"model": recipe, "train": {"precision": "bf16", "device": "cpu"}}
    with pytest.raises(PipelineError, match=r"portable computes on the CPU in fp32"):
        params_from(raw, "params.yaml")
    raw["train"]["reproducible"] = "fastest"
    assert params_from(raw, "params.yaml").train.precision == "bf16"


def test_portable_uses_two_threads_on_any_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv("FMNIST_THREADS", "1")
    try:
        assert set_threads(0, reproducible="portable") == kernels.PORTABLE_THREADS
        assert set_threads(0, reproducible="fastest") == 1  # a queue worker's share
        assert set_threads(3, reproducible="portable") == 3  # asked for: recorded, kept
    finally:
        torch.set_num_threads(before)


def test_an_unknown_mode_is_refused_with_the_valid_ones() -> None:
    raw = {"model": "fastcnn", "train": {"reproducible": "fast"}}
    with pytest.raises(PipelineError, match=r"train\.reproducible is 'fast'; valid: portable, f"):
        params_from(raw, "params.yaml")


RUN = {
    "threads": 2,
    "precision": "fp32",
    "machine": {"cpu": "AMD EPYC", "isa": ["avx2"]},
    "kernels": {"mode": "portable", "pinned": True, "torch": "2.13.0", "onednn": "3.12"},
}


def _other(**changes: object) -> dict:
    run = json.loads(json.dumps(RUN))
    for key, value in changes.items():
        if key in ("mode", "pinned", "torch"):
            run["kernels"][key] = value
        elif key == "isa":
            run["machine"]["isa"] = value
        else:
            run[key] = value
    return run


def test_verify_names_what_differs_between_two_runs() -> None:
    assert verify.run_changes(RUN, _other(), "HEAD") == []
    # portable runs on other CPUs: the ISA is no reason, the contract covers it
    assert verify.run_changes(RUN, _other(isa=["avx2", "amx_bf16"]), "HEAD") == []
    assert verify.run_changes(RUN, _other(mode="fastest", pinned=False), "HEAD") == [
        "kernels portable here, fastest in HEAD"
    ]
    fastest = _other(mode="fastest", pinned=False)
    assert verify.run_changes(
        fastest, _other(mode="fastest", pinned=False, isa=["amx_bf16"]), "HEAD"
    ) == ["CPU ISA avx2 here, amx_bf16 in HEAD (unpinned kernels)"]
    assert verify.run_changes(RUN, _other(torch="2.14.1", threads=4), "v1") == [
        "torch 2.13.0 here, 2.14.1 in v1",
        "threads 2 here, 4 in v1",
    ]
    old = {k: v for k, v in RUN.items() if k != "kernels"}
    assert "predates train.reproducible" in verify.run_changes(RUN, old, "HEAD")[0]


def test_a_broken_portable_promise_is_reported_as_one() -> None:
    line = verify._unexplained(RUN, _other(isa=["amx_bf16"]))
    assert "breaks the portable promise" in line
    assert "nothing recorded differs (" in verify._unexplained(RUN, _other(pinned=False))
    rmsprop = RUN | {"optimizer": "rmsprop"}
    other_cpu = _other(isa=["amx_bf16"], optimizer="rmsprop")
    other_cpu["machine"]["cpu"] = "Intel Xeon"
    assert "picks its code by CPU vendor" in verify._unexplained(rmsprop, other_cpu)


def test_seed_spread_prefers_the_current_recipes_seeds(tmp_path: Path) -> None:
    recipe = {"optimizer": "adam", "lr": 0.005, "batch_size": 256, "epochs": 10}
    current = verify.describe_recipe("fastcnn", recipe)
    board = tmp_path / "leaderboard.json"
    seeds = [
        {"model": "fastcnn", "recipe": "sgd, other", "seeds": [1, 2, 3, 4], "std": 0.3},
        {"model": "fastcnn", "recipe": current, "seeds": [1, 2], "std": 0.15},
        {"model": "cnn1", "recipe": current, "seeds": [1, 2, 3], "std": 0.26},
    ]
    board.write_text(json.dumps({"seeds": seeds}))
    assert verify.seed_spread("fastcnn", recipe, board) == 0.15
    assert verify.seed_spread("fastcnn", {"optimizer": "sgd"}, board) == 0.3  # most seeds
    assert verify.seed_spread("vgg", recipe, board) is None
