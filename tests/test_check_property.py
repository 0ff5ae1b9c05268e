"""Whatever stage check accepts, prepare and train run on to a result or a one-line
refusal, never a traceback: values are drawn across each field's type (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmnist.core.config import CONF, compose
from fmnist.core.errors import PipelineError
from fmnist.data import formats
from fmnist.data.datasets import FASHION_MNIST
from fmnist.data.prepared import Split, split_train_val, stratified_subset
from fmnist.train.params import params_from
from fmnist.train.training import train

pytestmark = pytest.mark.slow
DEBIAN = FASHION_MNIST.debian_folder

ints = st.one_of(
    st.integers(-(2**40), 2**40), st.sampled_from([0, 1, 9, 10, 11, 2**31 - 1, 2**32, -1])
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1e-3, 0.5, 1.0, 1e12, -0.1]),
)


@pytest.fixture(scope="module")
def published() -> dict[str, Split]:
    """Debian's Fashion-MNIST, as the download stage verifies it."""
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = formats.read_idx(f"{DEBIAN}/{prefix}-images-idx3-ubyte.gz")
        labels = formats.read_idx(f"{DEBIAN}/{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
        out[split] = Split(images, labels)
    return out


def _run(raw: dict, published: dict[str, Split]) -> str:
    """What the check, prepare and train stages make of ``raw``: 'refused', 'trained',
    or 'diverged' (the stage's own one-line refusal); any other exception escapes."""
    try:
        params = params_from(raw, "params.yaml")
    except PipelineError:
        return "refused"
    p = params.prepare
    data = stratified_subset(published["train"], p.train_limit, p.seed)
    stratified_subset(published["test"], p.test_limit, p.seed)
    fit, val = split_train_val(data, p.val_size, p.seed)
    trained = train(params, fit, val, verbose=False)
    return "trained" if trained.result.best_epoch else "diverged"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=ints,
    prepare_seed=ints,
    train_limit=st.integers(-5, 700),
    test_limit=st.one_of(ints, st.integers(9990, 10001)),
    val_size=st.one_of(ints, st.integers(0, 700)),
    lr=floats,
    warmup=floats,
    smoothing=floats,
    batch=st.integers(-2, 600),
    width=st.integers(-2, 12),
    momentum=floats,
    decay=floats,
    ema=floats,
    patience=st.integers(-3, 3),
)
def test_what_check_accepts_trains_or_is_refused_in_one_line(
    published: dict[str, Split],
    seed: int,
    prepare_seed: int,
    train_limit: int,
    test_limit: int,
    val_size: int,
    lr: float,
    warmup: float,
    smoothing: float,
    batch: int,
    width: int,
    momentum: float,
    decay: float,
    ema: float,
    patience: int,
) -> None:
    raw = compose(["model.epochs=1"], ROOT / CONF)
    raw["train"] |= {"seed": seed, "reproducible": "fastest", "precision": "fp32"}
    raw["prepare"] |= {
        "seed": prepare_seed,
        "train_limit": max(train_limit, 60),  # keep each run small: at most 700 images
        "test_limit": test_limit,
        "val_size": val_size,
    }
    raw["model"] |= {"lr": lr, "warmup": warmup, "label_smoothing": smoothing, "batch_size": batch}
    raw["model"] |= {"momentum": momentum, "weight_decay": decay, "ema": ema, "patience": patience}
    raw["model"]["arch"]["width"] = width
    raw = yaml.safe_load(yaml.safe_dump(raw))  # as read back from params.yaml
    outcome = _run(raw, published)
    if outcome != "refused":
        assert math.isfinite(lr) and lr > 0 and seed >= 0 and width >= 1
