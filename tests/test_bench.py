"""The benchmarks (bench/): one entry point, training through the train stage's own
function, and figures that can be trusted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, python_stdout, synthetic_split
from helpers import run

from bench.common import (
    bench_params,
    busy_fraction,
    engine_rate,
    neural_models,
    train_steps,
)
from bench.speed import measure, summarise, take_turns
from fmnist.core.errors import PipelineError
from fmnist.data.prepared import Split


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the benchmarks compose the recipes from conf/


def _data() -> Split:
    images, labels = synthetic_split(1200, 3)
    return Split(images, labels.astype(np.int64))


def test_busy_fraction_is_a_share_of_the_wall_time() -> None:
    fraction = busy_fraction("fastcnn", _data(), steps=2)
    # convolutions dominate fastcnn's step, so most of the time is spent in operators
    assert 0.3 < fraction <= 1.0


def test_engine_rate_counts_images_per_second() -> None:
    assert 10 < engine_rate("cnn1", _data(), steps=2, repeats=1) < 1e6


def test_a_benchmark_trains_with_the_recipe_as_the_train_stage_does() -> None:
    trained = train_steps("cnn1", _data(), steps=3, overrides=["train.seed=5"])
    params = bench_params("cnn1")
    assert trained.result.history[-1].epoch == 1 and trained.train_images == 3 * 128
    assert trained.precision is None  # portable kernels: fp32, as `dvc repro` computes
    assert trained.threads == 2 and params.recipe.optimizer == "adam"


def test_benchmarks_time_the_models_that_train_by_steps() -> None:
    names = neural_models()
    assert {"cnn1", "rnn", "fastcnn"} <= set(names)
    assert not {"logreg", "random-forest", "svm-rbf-pca"} & set(names)


def test_speed_times_the_two_loops_in_turns_and_takes_the_median_round_ratio() -> None:
    calls: list[tuple[str, int]] = []

    def timer(loop: str, rates: list[float]):
        def time_it(seed: int) -> float:
            calls.append((loop, seed))
            return rates[seed]

        return time_it

    loops = {
        "baseline": timer("baseline", [100, 200, 400]),
        "engine": timer("engine", [500, 300, 600]),
    }
    rounds = take_turns(loops, repeats=3)
    assert calls == [("baseline", 0), ("engine", 0), ("baseline", 1), ("engine", 1),
                     ("baseline", 2), ("engine", 2)]  # fmt: skip
    row = summarise(rounds)
    assert (row["baseline"], row["engine"]) == (200, 500)
    # the rounds' ratios are 5.0, 1.5 and 1.5: their median, not 500 / 200 of the medians
    assert row["ratio"] == 1.5


@pytest.mark.slow
def test_speed_measures_each_loop_in_a_process_of_its_own() -> None:
    row = measure("cnn1", steps=10, repeats=2, target=None, warmup=10)
    assert len(row["rounds"]) == 2
    assert all(r["baseline"] > 0 and r["engine"] > 0 for r in row["rounds"])
    assert row["peak_mb"] > 0 and row["inference"] > 0 and 0 < row["busy_fraction"] <= 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")
def test_peak_memory_is_this_programs_own_high_water_mark_in_mib() -> None:
    """A parent holds 1 GiB, then execs a program that touches 256 MiB: its peak is over
    256 (a wrong unit is off 1024-fold) yet under the parent's 1024 (``ru_maxrss`` keeps
    the pre-exec size, which is how CI, forking from a big pytest, once read 815 MiB)."""
    child = (
        "import numpy as np, torch\n"
        "from fmnist.train.device import peak_memory_mb\n"
        "block = np.ones(256 * 2**20, dtype=np.uint8)\n"
        "print(peak_memory_mb(torch.device('cpu')))\n"
    )
    parent = (
        "import os, sys, numpy as np\n"
        "held = np.ones(1024 * 2**20, dtype=np.uint8)\n"
        "os.execv(sys.executable, [sys.executable, '-c', sys.argv[1]])\n"
    )
    assert 256 < float(python_stdout(parent, child)) < 1024


def test_benchmarks_name_an_unknown_model_in_one_line_with_the_valid_names() -> None:
    with pytest.raises(PipelineError, match=r"Could not find 'model/nosuch'"):
        bench_params("nosuch")


def test_keras_comparison_says_which_interpreter_lacks_tensorflow() -> None:
    from bench.versus_keras import keras_seconds

    # this test's interpreter has no TensorFlow: the error names it and the fix
    with pytest.raises(PipelineError, match="tensorflow-cpu") as err:
        keras_seconds(Path(sys.executable), "cnn1", 2)
    assert "cnn1" in str(err.value)


def test_keras_comparison_judges_the_median_ratio_against_the_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bench.versus_keras as versus

    engine = iter([5.0, 9.0, 4.0])
    keras = iter([10.0, 10.0, 10.0])
    monkeypatch.setattr(
        versus, "seconds_per_epoch", lambda *a, **k: {"seconds_per_epoch": next(engine)}
    )
    monkeypatch.setattr(versus, "keras_seconds", lambda *a: next(keras))
    row = versus.compare("cnn3", ROOT, 3, 10, [])
    assert row["ratio"] == 0.5 and row["met"]  # median of 0.5, 0.9, 0.4
    keras = iter([10.0, 10.0, 10.0])
    engine = iter([7.0, 7.0, 7.0])
    assert not versus.compare("cnn3", ROOT, 3, 10, [])["met"]
    engine = iter([6.0, 6.0, 6.0])
    keras = iter([10.0, 10.0, 10.0])
    assert versus.compare("rnn", ROOT, 3, 10, [])["met"]  # 2/3 for rnn


def test_keras_models_train_with_the_recipes_in_conf() -> None:
    from bench.keras_seconds import MODELS

    for name, (_, optimizer, lr, batch, epochs) in MODELS.items():
        recipe = bench_params(name).recipe
        got = (optimizer, lr, batch, epochs)
        assert got == (recipe.optimizer, recipe.lr, recipe.batch_size, recipe.epochs), name


def _benchmark(tool: str, out: Path, *args: str) -> dict:
    """``python -m bench TOOL ... --out out`` from the repository; its results JSON."""
    run(ROOT, sys.executable, "-m", "bench", tool, *args, "--out", str(out))
    return json.loads(out.with_suffix(".json").read_text())


def test_one_entry_point_lists_the_tools_and_refuses_an_unknown_one() -> None:
    listing = run(ROOT, sys.executable, "-m", "bench").stdout
    for tool in ("speed", "epochs", "kernels", "keras", "serve", "gpu"):
        assert f"  {tool} " in listing
    refused = run(ROOT, sys.executable, "-m", "bench", "budget", check=False)
    assert refused.returncode != 0 and "no benchmark 'budget'; valid: speed" in refused.stderr


def test_a_benchmark_records_its_command_commit_date_and_machine(tmp_path: Path) -> None:
    out = tmp_path / "epoch_seconds"
    payload = _benchmark("epochs", out, "cnn1", "--steps", "10")
    assert payload["command"].startswith("python -m bench epochs cnn1 --steps 10")
    assert len(payload["commit"].split("+")[0]) == 10 and payload["date"]
    assert payload["machine"]["cores"] >= 1 and payload["machine"]["torch"] == torch.__version__
    assert [row["model"] for row in payload["rows"]] == ["cnn1"]
    table = out.with_suffix(".md").read_text()
    assert "| cnn1 | 128 |" in table and "`python -m bench epochs cnn1" in table


def test_a_too_short_timing_is_refused_in_one_line() -> None:
    refused = run(
        ROOT, sys.executable, "-m", "bench", "epochs", "cnn1", "--steps", "5", check=False
    )
    assert refused.returncode == 2 and "5 steps; use at least 10" in refused.stderr


@pytest.mark.slow
def test_the_kernel_cost_is_timed_per_mode_in_processes_of_their_own(tmp_path: Path) -> None:
    out = tmp_path / "kernels"
    payload = _benchmark("kernels", out, "cnn1", "--rounds", "1", "--steps", "10")
    (row,) = payload["rows"]
    assert row["model"] == "cnn1" and row["portable"] > 0 and row["fastest"] > 0
    assert row["cost"] == round(row["portable"] / row["fastest"], 2)
    assert "| cnn1 |" in out.with_suffix(".md").read_text()


@pytest.mark.slow
def test_the_gpu_suite_runs_tiny_on_a_cpu_and_writes_every_field(tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    payload = _benchmark("gpu", out, "--set", "train.device=cpu", "--tiny")
    assert [r["model"] for r in payload["rows"]] == ["cnn1", "cnn2-bn", "fastcnn"]
    for row in payload["rows"]:
        assert row["seconds_per_epoch"] > 0 and row["recipe_minutes"] > 0
        assert row["within_target"] == (row["recipe_minutes"] <= 5)
    assert set(payload["time_to_accuracy"]) == {"s to 93.38%", "s to 95.5%"}
    for result in payload["time_to_accuracy"].values():
        assert set(result) == {"seconds", "best", "model"} and 0 <= result["best"] <= 1
    assert 0 < payload["busy_fraction"] <= 1 and payload["peak_memory_mb"] > 100
    (targets,) = payload["tables"]
    assert [t["what"] for t in targets["rows"]] == [
        "cnn2-bn s/epoch",
        "s to 93.38%",
        "s to 95.5%",
    ]
    assert payload["machine"]["cores"] >= 1 and payload["skipped"] == []
    assert "| cnn2-bn | 128 |" in out.with_suffix(".md").read_text()


def test_the_serve_load_sends_real_test_images_as_png() -> None:
    from bench.serve_load import png_bytes

    pngs = png_bytes(3)
    assert len(pngs) == 3 and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
