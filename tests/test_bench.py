"""The speed benchmark's own measurements (bench/): what they report can be trusted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ROOT, synthetic_split

from bench.common import busy_fraction, engine_rate, precision_for


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


def test_cpu_benchmarks_time_fp32_as_the_train_stage_does() -> None:
    assert precision_for("fastcnn", torch.device("cpu")) is None
