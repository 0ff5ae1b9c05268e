"""The leaderboard's reading of `dvc exp show --json`, without running DVC."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fmnist.review.leaderboard import model_summaries, seed_summaries, write_leaderboard
from fmnist.review.leaderboard_charts import family
from fmnist.review.runs import rows_from_exp_show
from fmnist.review.sweep import ACTIVE, queue, share_cores


def _rev(
    model: str, accuracy: float, seconds: float, name: str | None = None, seed: int = 42
) -> dict:
    return {
        "rev": f"{abs(hash((model, accuracy, seconds))):040x}"[:40],
        "name": name,
        "data": {
            "params": {
                "params.yaml": {
                    "data": {
                        "model": model,
                        "train": {"seed": seed},
                        "models": {
                            model: {
                                "optimizer": "adam",
                                "lr": 0.001,
                                "batch_size": 32,
                                "epochs": 10,
                            }
                        },
                    }
                }
            },
            "metrics": {
                "metrics/metrics.json": {"data": {"test": {"accuracy": accuracy}}},
                "metrics/train.json": {
                    "data": {
                        "train": {
                            "epochs_run": 10,
                            "best_epoch": 9,
                            "seconds": seconds,
                            "seconds_per_epoch": seconds / 10,
                            "device": "cpu",
                        }
                    }
                },
            },
        },
    }


def test_rows_are_deduplicated_sorted_and_compared_with_reports(tmp_path: Path) -> None:
    committed = _rev("cnn3", 0.9044, 250.0, name="main")  # an experiment that was committed
    exp_show = [
        {**_rev("cnn3", 0.9044, 250.0), "rev": "workspace"},
        {
            **committed,
            "experiments": [
                {
                    "revs": [
                        _rev("cnn3", 0.9044, 250.0, name="zoo-cnn3"),
                        _rev("cifar-cnn", 0.9081, 500.0, name="zoo-cifar-cnn"),
                        _rev("fastcnn", 0.9246, 150.0, name="zoo-fastcnn"),
                    ]
                }
            ],
        },
        {"rev": "f" * 40, "name": None, "data": {}},  # a commit without results
    ]
    rows = rows_from_exp_show(exp_show)
    assert [r.experiment for r in rows] == ["zoo-fastcnn", "zoo-cifar-cnn", "zoo-cnn3"]
    cnn3 = rows[2]
    assert cnn3.reported == 90.65 and cnn3.difference == -0.21
    cifar = rows[1]
    assert cifar.reported == 71.13 and cifar.difference is None  # measured on CIFAR-10
    assert rows[0].reported is None
    write_leaderboard(rows, tmp_path)
    table = (tmp_path / "leaderboard.md").read_text()
    assert "| zoo-cnn3 | cnn3 | adam, lr 0.001, batch 32, 10 ep | 10 (9) | 4m10s |" in table
    # runs from before peak memory was recorded: no column of blanks
    assert "| 25.0 | cpu | 90.44 |" in table and "peak MB" not in table
    assert "7.050000000000001" not in table and "by `python" in table  # rounded; provenance
    assert (tmp_path / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "time_to_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_peak_memory_of_the_train_stage_gets_a_column(tmp_path: Path) -> None:
    rev = _rev("cnn3", 0.9044, 250.0, name="zoo-cnn3")
    rev["data"]["metrics"]["metrics/train.json"]["data"]["train"]["peak_memory_mb"] = 612
    rows = rows_from_exp_show([{"rev": "workspace", "experiments": [{"revs": [rev]}]}])
    write_leaderboard(rows, tmp_path)
    assert rows[0].peak_mb == 612
    assert "| 25.0 | cpu | 612 | 90.44 |" in (tmp_path / "leaderboard.md").read_text()


def test_recipes_name_their_augmentations_and_changed_layers() -> None:
    default = _rev("fastcnn", 0.9344, 180.0, name="default")
    wide = _rev("fastcnn", 0.9381, 834.0, name="wide")
    for rev, arch in ((default, {"width": 32}), (wide, {"width": 48, "dropout": 0.25})):
        recipe = rev["data"]["params"]["params.yaml"]["data"]["models"]["fastcnn"]
        recipe |= {"arch": arch, "augment": {"hflip": True, "crop_padding": 2, "erasing": 0}}
    rows = {r.experiment: r.recipe for r in rows_from_exp_show([default, wide])}
    assert rows["default"].endswith("10 ep, augment (hflip, crop_padding 2)")  # defaults unsaid
    assert rows["wide"].endswith("10 ep, augment (hflip, crop_padding 2), width 48")


def test_older_commits_of_a_branch_are_history_but_their_experiments_count() -> None:
    tip = _rev("fastcnn", 0.9344, 195.0, name="main")
    old_repro = _rev("fastcnn", 0.9344, 206.0)  # the same run, an earlier commit of main
    old_recipe = {  # an older default recipe, with an experiment run on top of it
        **_rev("fastcnn", 0.9248, 180.0),
        "experiments": [{"revs": [_rev("cnn3", 0.9044, 250.0, name="zoo-cnn3")]}],
    }
    rows = rows_from_exp_show([tip, old_repro, old_recipe])
    assert [(r.experiment, r.seconds) for r in rows] == [("main", 195.0), ("zoo-cnn3", 250.0)]


def test_families_tell_reference_classic_and_modern_models_apart() -> None:
    exp_show = [
        {"rev": "workspace", "data": {}, "experiments": [{"revs": [_rev(m, 0.9, 60, m)]}]}
        for m in ("cnn2-bn", "svm-rbf-pca", "fastcnn")
    ]
    families = {r.model: family(r) for r in rows_from_exp_show(exp_show)}
    assert families == {"cnn2-bn": "reference", "svm-rbf-pca": "classic", "fastcnn": "modern"}


def test_sweep_sees_queued_and_running_rows_of_dvc_queue_status() -> None:
    status = (
        "Task     Name               Created    Status\n"
        "8eafd1e  zoo-random-forest  08:36 AM   Queued\n"
        "03fec82  zoo-svm            08:36 AM   Running   \n"
        "5ab76c8  zoo-logreg         08:36 AM   Success\n"
        "f8777e8  zoo-Queued-name    07:20 AM   Failed\n"
    )
    active = [line for line in status.splitlines() if ACTIVE.search(line)]
    assert [line.split()[1] for line in active] == ["zoo-random-forest", "zoo-svm"]


def test_parallel_workers_each_get_their_share_of_the_cores(monkeypatch) -> None:
    monkeypatch.delenv("FMNIST_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    assert share_cores(4) == 2 and os.environ["FMNIST_THREADS"] == "2"
    monkeypatch.setenv("FMNIST_THREADS", "3")  # the user's choice wins
    assert share_cores(4) == 3


def test_revisions_whose_metrics_came_from_other_params_are_left_out() -> None:
    failed = _rev("bilstm", 0.9246, 152, "zoo-bilstm")  # failed: its baseline's metrics
    failed["data"]["metrics"]["metrics/train.json"]["data"]["train"]["model"] = "fastcnn"
    stale = _rev("cnn1", 0.9, 60, "stale")  # recipe changed to 10 epochs, not rerun
    stale["data"]["metrics"]["metrics/train.json"]["data"]["train"]["max_epochs"] = 8
    good = _rev("cnn3", 0.9044, 250, "zoo-cnn3")
    good["data"]["metrics"]["metrics/train.json"]["data"]["train"]["max_epochs"] = 10
    exp_show = [{"rev": "workspace", "data": {}, "experiments": [{"revs": [failed, stale, good]}]}]
    assert [r.experiment for r in rows_from_exp_show(exp_show)] == ["zoo-cnn3"]


def test_classic_rows_describe_their_options_and_cite_the_benchmark() -> None:
    rev = _rev("svm-rbf-pca", 0.8999, 44, "zoo-svm-rbf-pca")
    rev["data"]["params"]["params.yaml"]["data"]["models"]["svm-rbf-pca"] = {
        "arch": {"components": 100, "C": 10.0},
        "epochs": 1,
    }
    (row,) = rows_from_exp_show(
        [{"rev": "workspace", "data": {}, "experiments": [{"revs": [rev]}]}]
    )
    assert row.recipe == "scikit-learn (components 100, C 10.0)"
    assert row.note.startswith("publisher's benchmark") and row.difference == 0.29


def test_recipes_run_with_several_seeds_get_a_mean_and_spread(tmp_path: Path) -> None:
    revs = [
        _rev("fastcnn", 0.9334, 150.0, name="main", seed=42),
        _rev("fastcnn", 0.9314, 160.0, name="seed1", seed=1),
        _rev("fastcnn", 0.9324, 170.0, name="seed2", seed=2),
        _rev("fastcnn", 0.9324, 171.0, name="seed2-again", seed=2),  # a seed counts once
        _rev("cnn3", 0.9044, 250.0, name="zoo-cnn3"),  # one seed: no summary
    ]
    rows = rows_from_exp_show([{"rev": "a" * 40, "experiments": [{"revs": revs}]}])
    (summary,) = seed_summaries(rows)
    assert summary.model == "fastcnn" and summary.seeds == (1, 2, 42)
    assert summary.mean == 93.24 and summary.std == 0.1
    assert (summary.low, summary.high) == (93.14, 93.34)
    write_leaderboard(rows, tmp_path)
    table = (tmp_path / "leaderboard.md").read_text()
    assert "| fastcnn | adam, lr 0.001, batch 32, 10 ep | cpu | 1, 2, 42 | 93.24 ± 0.10 |" in table
    # the headline: one line per model, its best recipe's mean over seeds
    lines = {s.model: s for s in model_summaries(rows)}
    assert lines["fastcnn"].accuracy == "93.24 ± 0.10" and lines["fastcnn"].seeds == 3
    assert lines["fastcnn"].best == 93.34 and lines["cnn3"].accuracy == "90.44"
    assert table.index("| fastcnn | adam") < table.index("## Over seeds")


def test_training_on_train_and_val_is_a_recipe_of_its_own() -> None:
    held_out = [_rev("fastcnn", 0.93 + i / 1000, 150.0 + i, f"h{i}", seed=i) for i in range(2)]
    whole = [_rev("fastcnn", 0.935 + i / 1000, 170.0 + i, f"w{i}", seed=i) for i in range(2)]
    for rev in whole:
        rev["data"]["params"]["params.yaml"]["data"]["models"]["fastcnn"]["train_on"] = "train+val"
    rows = rows_from_exp_show([{"rev": "a" * 40, "experiments": [{"revs": held_out + whole}]}])
    summaries = {s.recipe: s.mean for s in seed_summaries(rows)}
    assert summaries == {
        "adam, lr 0.001, batch 32, 10 ep": 93.05,
        "adam, lr 0.001, batch 32, 10 ep, on train+val": 93.55,
    }


def test_weight_decay_and_momentum_are_part_of_the_recipe_shown() -> None:
    plain, decayed = _rev("fastcnn", 0.93, 60, "p"), _rev("fastcnn", 0.93, 60, "d")
    decayed["data"]["params"]["params.yaml"]["data"]["models"]["fastcnn"].update(
        optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=0.0005, decay_norms=False
    )
    rows = {
        r.experiment: r.recipe
        for r in rows_from_exp_show(
            [{"rev": "workspace", "data": {}, "experiments": [{"revs": [plain, decayed]}]}]
        )
    }
    assert "wd" not in rows["p"] and "momentum" not in rows["p"]
    assert "momentum 0.9 nesterov, wd 0.0005 (not on norms, biases)" in rows["d"]


def test_a_report_split_is_part_of_the_recipe_shown() -> None:
    default, report_a = _rev("cnn1-bn", 0.92, 60, "a"), _rev("cnn1-bn", 0.92, 60, "b")
    report_a["data"]["params"]["params.yaml"]["data"]["prepare"] = {"val_size": 6000}
    rows = {
        r.experiment: r.recipe
        for r in rows_from_exp_show(
            [{"rev": "workspace", "data": {}, "experiments": [{"revs": [default, report_a]}]}]
        )
    }
    assert "held out" not in rows["a"]
    assert rows["b"].endswith("6000 held out")


def test_the_sweep_gives_report_a_models_their_10_percent_split(monkeypatch) -> None:
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr("fmnist.review.sweep.dvc", lambda *args: calls.append(args) or "")
    queue(["cnn1-bn", "rnn"], ["train.seed=1"])
    cnn1_bn, rnn = calls
    assert cnn1_bn[-6:] == (
        "-S",
        "model=cnn1-bn",
        "-S",
        "prepare.val_size=6000",
        "-S",
        "train.seed=1",
    )
    assert "prepare.val_size=6000" not in rnn


def _rows(*revs: dict) -> list:
    return rows_from_exp_show([{"rev": "workspace", "data": {}, "experiments": [{"revs": revs}]}])


def test_failed_experiments_get_a_table_of_their_own(tmp_path: Path) -> None:
    rows = _rows(_rev("cnn3", 0.90, 250.0, name="cnn3-1a2b3c4d"))
    failure = {
        "experiment": "cnn2-5e6f7a8b",
        "model": "cnn2",
        "commit": "abc1234",
        "reason": "params.yaml: 1 problem(s): model.lr is -1.0; use a positive learning rate",
        "host": "worker-2",
        "when": "2026-12-08T00:00:00+00:00",
    }
    write_leaderboard(rows, tmp_path, [failure])
    board = json.loads((tmp_path / "leaderboard.json").read_text())
    assert board["failed"] == [failure]
    assert [r["experiment"] for r in board["experiments"]] == ["cnn3-1a2b3c4d"]  # not hidden
    text = (tmp_path / "leaderboard.md").read_text()
    assert "## Failed experiments" in text or "### Failed experiments" in text
    assert "| cnn2-5e6f7a8b | cnn2 | abc1234 | params.yaml: 1 problem(s): model.lr is -1.0" in text


def test_bf16_runs_are_marked_and_summarised_apart_from_fp32() -> None:
    revs = [_rev("cnn1", 0.90 + i / 1000, 100.0 + i, f"r{i}", seed=i % 2) for i in range(4)]
    for rev in revs[2:]:
        rev["data"]["metrics"]["metrics/train.json"]["data"]["train"]["precision"] = "bf16"
    rows = _rows(*revs)
    assert sorted(r.device for r in rows) == ["cpu", "cpu", "cpu bf16", "cpu bf16"]
    assert sorted(s.device for s in seed_summaries(rows)) == ["cpu", "cpu bf16"]
    assert {s.device for s in model_summaries(rows)} == {"cpu bf16"}  # the better mean


def test_a_mean_over_seeds_is_shown_before_one_luckier_run_elsewhere() -> None:
    revs = [_rev("cnn1", 0.90 + i / 1000, 100.0 + i, f"r{i}", seed=i) for i in range(3)]
    lucky = _rev("cnn1", 0.95, 50.0, "lucky", seed=7)
    lucky["data"]["metrics"]["metrics/train.json"]["data"]["train"]["precision"] = "bf16"
    (line,) = model_summaries(_rows(*revs, lucky))
    assert (line.device, line.seeds, line.accuracy) == ("cpu", 3, "90.10 ± 0.10")
    assert line.best == 95.0  # the best single run is still reported beside the mean
