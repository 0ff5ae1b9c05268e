"""The speed benchmark's own measurements (bench/): what they report can be trusted."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, python_stdout, synthetic_split

from bench.common import (
    busy_fraction,
    engine_rate,
    load_params_for,
    neural_models,
    precision_for,
)
from bench.ensemble import ensemble_table
from bench.parity import check_plain, mean_gap, parity, summary
from bench.speed import measure, summarise, take_turns
from fmnist.core.errors import PipelineError
from fmnist.data.prepared import Split


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the benchmark reads the recipes from params.yaml


def _data() -> tuple[np.ndarray, np.ndarray]:
    images, labels = synthetic_split(600, 3)
    return images, labels.astype(np.int64)


def test_busy_fraction_is_a_share_of_the_wall_time() -> None:
    fraction = busy_fraction("fastcnn", *_data(), steps=2, device=torch.device("cpu"))
    # convolutions dominate fastcnn's step, so most of the time is spent in operators
    assert 0.3 < fraction <= 1.0


def test_engine_rate_counts_images_per_second() -> None:
    rate = engine_rate("cnn1", *_data(), steps=2, repeats=1, device=torch.device("cpu"))
    assert 10 < rate < 1e6


def test_benchmarks_time_the_models_that_train_by_steps() -> None:
    names = neural_models()
    assert {"cnn1", "rnn", "fastcnn"} <= set(names)
    assert not {"logreg", "random-forest", "svm-rbf-pca"} & set(names)


def test_cpu_benchmarks_time_the_precision_the_train_stage_uses() -> None:
    from fmnist.train.device import autocast_dtype

    cpu = torch.device("cpu")
    assert precision_for("fastcnn", cpu) is autocast_dtype("auto", cpu)


def _patches(n: int, seed: int) -> Split:
    """A learnable task: class k is a bright 6x6 patch at the k-th of ten places, on noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        row, col = divmod(int(k), 5)
        images[i, 4 + 12 * row : 10 + 12 * row, 1 + 5 * col : 7 + 5 * col] = 255
    return Split(images, labels)


def test_engine_and_plain_loop_learn_the_same_task_equally_well() -> None:
    splits = {"train": _patches(1200, 1), "val": _patches(200, 2), "test": _patches(300, 3)}
    recipe = replace(load_params_for("cnn1").recipe, epochs=2)
    row = parity("cnn1", recipe, splits, seed=0, device=torch.device("cpu"))
    assert row["engine"] > 0.9 and row["plain"] > 0.9
    assert abs(row["difference"]) <= 0.05
    assert row["engine_last"] > 0.9 and row["plain_last"] > 0.9
    assert row["difference_last"] == row["engine_last"] - row["plain_last"]


def test_parity_is_judged_on_the_mean_gap_over_seeds_with_its_standard_error() -> None:
    rows = [
        {"difference": -0.010, "difference_last": 0.001},
        {"difference": 0.002, "difference_last": -0.002},
        {"difference": -0.004, "difference_last": 0.004},
    ]
    mean, error = mean_gap(rows, "difference")
    assert mean == pytest.approx(-0.4)
    assert error == pytest.approx(0.6 / 3**0.5)  # stdev of (-1.0, 0.2, -0.4) points is 0.6
    line = summary("cnn3", rows)
    assert "best epoch -0.40 ± 0.35 (outside ±0.3)" in line
    assert "last epoch +0.10 ± 0.17 (within ±0.3)" in line


def test_parity_refuses_recipes_the_plain_loop_does_not_implement() -> None:
    with pytest.raises(PipelineError, match=r"augmentation.*train_on: train\+val"):
        check_plain("fastcnn", load_params_for("fastcnn").recipe)


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


def test_speed_measures_each_loop_in_a_process_of_its_own() -> None:
    row = measure("cnn1", steps=2, repeats=2, target=None, warmup=1)
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


def test_ensemble_table_scores_every_choice_of_members() -> None:
    """Three models, each unsure where another is sure: alone they score 2/3, 1 and 1/3;
    any two averaged are right everywhere."""
    labels = torch.tensor([0, 1, 0])
    sure0, sure1 = [0.9, 0.1], [0.1, 0.9]
    probs = {
        "a": torch.tensor([[0.45, 0.55], sure1, sure0]),
        "b": torch.tensor([sure0, sure1, sure0]),
        "c": torch.tensor([sure0, [0.55, 0.45], [0.4, 0.6]]),
    }
    rows = ensemble_table(probs, labels)
    assert [r["choices"] for r in rows] == [3, 3, 1]
    assert rows[0]["mean"] == pytest.approx(2 / 3)
    assert rows[0]["min"] == pytest.approx(1 / 3) and rows[0]["max"] == 1.0
    assert rows[1]["min"] == rows[2]["min"] == 1.0


def test_benchmarks_name_an_unknown_model_in_one_line_with_the_valid_names() -> None:
    with pytest.raises(PipelineError, match=r"^params.yaml with model 'nosuch': .*valid names: "):
        load_params_for("nosuch")


def test_roofline_counts_a_training_image_of_cnn1_as_by_hand() -> None:
    from bench.roofline import training_flops

    conv1 = 26 * 26 * 32 * 9 * 1 * 2  # forward; its input needs no gradient: 1 more pass
    conv2 = 11 * 11 * 64 * 9 * 32 * 2  # forward; backward: input and weight gradients
    dense = 1600 * 10 * 2
    assert training_flops("cnn1") == 2 * conv1 + 3 * conv2 + 3 * dense


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
    row = versus.compare("cnn3", ROOT, 3, 2, torch.device("cpu"))
    assert row["ratio"] == 0.5 and row["met"]  # median of 0.5, 0.9, 0.4
    keras = iter([10.0, 10.0, 10.0])
    engine = iter([7.0, 7.0, 7.0])
    assert not versus.compare("cnn3", ROOT, 3, 2, torch.device("cpu"))["met"]
    engine = iter([6.0, 6.0, 6.0])
    keras = iter([10.0, 10.0, 10.0])
    assert versus.compare("rnn", ROOT, 3, 2, torch.device("cpu"))["met"]  # 2/3 for rnn


def test_keras_accuracy_reads_test_at_the_best_validation_epoch() -> None:
    from bench.keras_accuracy import summarise, table

    history = [
        {"epoch": 1, "val": 0.80, "test": 0.79, "s": 10.0},
        {"epoch": 2, "val": 0.90, "test": 0.88, "s": 12.0},
        {"epoch": 3, "val": 0.85, "test": 0.89, "s": 11.0},
    ]
    row = summarise(history)
    # the best test epoch (3) is not the one chosen: validation picks epoch 2
    assert (row["best_epoch"], row["test_at_best_val"], row["test_at_last"]) == (2, 0.88, 0.89)
    assert row["seconds_per_epoch"] == 11.0
    runs = [{"model": "rnn", "lr": 0.01, "batch_size": 65, "seed": s, **row} for s in (1, 2)]
    runs[1] = {**runs[1], "test_at_best_val": 0.86}
    assert "| rnn | 0.01 | 3 | 2 | 87.00 ± 1.41 | 89.00 ± 0.00 |" in table(runs)


def test_keras_models_train_with_the_recipes_in_params_yaml() -> None:
    from bench.common import load_params_for
    from bench.keras_seconds import MODELS

    for name, (_, optimizer, lr, batch, epochs) in MODELS.items():
        recipe = load_params_for(name).recipe
        got = (optimizer, lr, batch, epochs)
        assert got == (recipe.optimizer, recipe.lr, recipe.batch_size, recipe.epochs), name


def _benchmark(module: str, out: Path, *args: str) -> dict:
    """Run ``python -m module ... --out out`` from the repository; its results JSON."""
    run = subprocess.run(
        [sys.executable, "-m", module, *args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(out.with_suffix(".json").read_text())


def _refusal(module: str, *args: str) -> list[str]:
    """Run ``python -m module ...`` from the repository, expecting it to fail; its stderr lines."""
    run = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0
    return run.stderr.strip().splitlines()


def test_a_benchmark_records_its_command_date_and_machine(tmp_path: Path) -> None:
    out = tmp_path / "epoch_seconds"
    payload = _benchmark("bench.epoch_seconds", out, "cnn1", "--steps", "2")
    assert payload["command"].startswith("python -m bench.epoch_seconds cnn1 --steps 2")
    assert payload["machine"]["cores"] >= 1 and payload["machine"]["torch"] == torch.__version__
    assert [row["model"] for row in payload["rows"]] == ["cnn1"]
    table = out.with_suffix(".md").read_text()
    assert "| cnn1 | 128 |" in table and "by `python -m bench.epoch_seconds cnn1" in table


def test_the_kernel_cost_is_timed_per_mode_in_processes_of_their_own(tmp_path: Path) -> None:
    out = tmp_path / "kernels"
    payload = _benchmark("bench.kernels", out, "cnn1", "--rounds", "1", "--steps", "2")
    (row,) = payload["rows"]
    assert row["model"] == "cnn1" and row["portable"] > 0 and row["fastest"] > 0
    assert row["cost"] == round(row["portable"] / row["fastest"], 2)
    assert "| cnn1 |" in out.with_suffix(".md").read_text()


def test_the_gpu_suite_runs_tiny_on_a_cpu_and_writes_every_field(tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    payload = _benchmark("bench.gpu_suite", out, "--device", "cpu", "--tiny")
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


def _prepared(folder: Path) -> Path:
    """Tiny prepared splits as `dvc repro prepare` writes them."""
    from fmnist.data.prepared import save_split

    folder.mkdir()
    for split, (n, seed) in {"train": (300, 1), "val": (100, 2), "test": (100, 3)}.items():
        images, labels = synthetic_split(n, seed)
        save_split(folder / f"{split}.npz", Split(images, labels.astype(np.int64)))
    return folder


def test_the_budget_bench_scores_each_variant_over_seeds(tmp_path: Path) -> None:
    data = _prepared(tmp_path / "prepared")
    out = tmp_path / "budget"
    payload = _benchmark(
        "bench.budget",
        out,
        "fastcnn epochs=1",
        "fastcnn epochs=1 arch.width=8",
        "--seeds",
        "3",
        "3",
        "4",
        "--data",
        str(data),
    )
    narrow = payload["rows"][1]
    assert [r["variant"] for r in payload["rows"]] == ["fastcnn epochs=1", narrow["variant"]]
    runs = narrow["runs"]
    assert [r["seed"] for r in runs] == [3, 3, 4] and narrow["epochs"] == 1
    # same seed, same result: the bench trains as reproducibly as the train stage
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]
    accuracies = [r["test_accuracy"] for r in runs]
    assert narrow["mean"] == round(sum(accuracies) / 3, 2) and narrow["low"] == min(accuracies)
    assert all(r["seconds"] > 0 for r in runs) and payload["kernels"] == "portable"
    assert narrow["seconds"] == round(statistics.mean(r["seconds"] for r in runs), 1)
    assert "| fastcnn epochs=1 | 1 |" in out.with_suffix(".md").read_text()


def test_the_budget_bench_refuses_a_bad_override_in_one_line(tmp_path: Path) -> None:
    assert _refusal("bench.budget", "fastcnn lr=-1", "--data", str(tmp_path)) == [
        "error: params.yaml with model 'fastcnn' and {'lr': -1}: 1 problem(s): "
        "models.fastcnn.lr is -1.0; use a positive learning rate, e.g. 0.001"
    ]


def test_distillation_at_weight_zero_is_the_student_alone_and_the_teacher_is_cached(
    tmp_path: Path,
) -> None:
    data = _prepared(tmp_path / "prepared")
    cache = tmp_path / "teacher.pt"
    student = "fastcnn epochs=1 arch.width=4"
    common = ["--seeds", "3", "--data", str(data), "--teacher-cache", str(cache)]
    args = ["fastcnn epochs=1 arch.width=8", student, "--mix", "0:1", "0.5:2", *common]
    payload = _benchmark("bench.distill", tmp_path / "distill", *args)
    teacher, alone, taught = payload["rows"]
    assert (teacher["role"], alone["role"], taught["role"]) == (
        "teacher",
        "student alone",
        "student",
    )
    assert (taught["alpha"], taught["temperature"]) == (0.5, 2.0) and teacher["seconds"] > 0
    budget = _benchmark(
        "bench.budget", tmp_path / "budget", student, "--seeds", "3", "--data", str(data)
    )
    # the distillation loop at alpha 0 is the engine's loop: the same run as bench.budget's
    assert alone["runs"][0]["test_accuracy"] == budget["rows"][0]["runs"][0]["test_accuracy"]
    saved = torch.load(cache, weights_only=True)
    assert saved["logits"].shape == (400, 2, 10) and saved["variant"] == args[0]
    # the cache answers for its own teacher only
    assert _refusal("bench.distill", "fastcnn epochs=2", student, *common) == [
        f"error: {cache} holds the teacher {args[0]!r} seed 3, not 'fastcnn epochs=2' "
        "seed 3: delete it or name another --teacher-cache"
    ]


def test_distillation_refuses_a_student_augmented_beyond_flips(tmp_path: Path) -> None:
    data = _prepared(tmp_path / "prepared")
    (line,) = _refusal(
        "bench.distill",
        "fastcnn epochs=1 arch.width=4",
        "fastcnn epochs=1 augment.crop_padding=2",
        "--data",
        str(data),
    )
    assert "is more than flips" in line and "set it to {hflip: true}" in line


def test_distillation_refuses_a_student_that_learns_from_other_images(tmp_path: Path) -> None:
    data = _prepared(tmp_path / "prepared")
    *_teacher_progress, line = _refusal(
        "bench.distill",
        "fastcnn epochs=1 arch.width=4",
        "fastcnn epochs=1 arch.width=4 train_on=train",
        "--data",
        str(data),
    )
    assert line == (
        "error: the teacher labelled 400 training images, the student learns from 300: "
        "give both recipes the same train_on"
    )


@pytest.mark.parametrize("text", ["0.7", "2:4", "0.5:0", "a:b"])
def test_a_distillation_mix_outside_its_range_is_refused_in_one_line(text: str) -> None:
    from bench.distill import parse_mix
    from fmnist.core.errors import PipelineError

    assert parse_mix("0.3:4") == (0.3, 4.0)
    with pytest.raises(PipelineError, match="give alpha:T with 0 <= alpha <= 1 and T > 0"):
        parse_mix(text)


def test_a_teacher_cache_that_is_not_one_is_refused_in_one_line(tmp_path: Path) -> None:
    from bench.distill import cached_teacher
    from fmnist.core.errors import PipelineError

    cache = tmp_path / "teacher.pt"
    cache.write_bytes(b"not a torch file")
    with pytest.raises(PipelineError, match="is not a teacher cache this bench wrote"):
        cached_teacher("fastcnn", None, 42, tmp_path, cache)
    torch.save({"variant": "fastcnn"}, cache)
    with pytest.raises(PipelineError, match="holds no teacher logits"):
        cached_teacher("fastcnn", None, 42, tmp_path, cache)
