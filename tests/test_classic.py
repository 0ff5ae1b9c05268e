"""The classic baselines: the torch modules decide as the fitted scikit-learn estimators
do, survive a checkpoint round trip, and train through the train stage's code path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fmnist.core.errors import PipelineError
from fmnist.data.prepared import Split
from fmnist.models import build_model
from fmnist.train.checkpoint import load_checkpoint, save_checkpoint
from fmnist.train.classic import fit_classic, fit_estimator, pixels

CLASSIC = {
    "logreg": {"max_iter": 50},
    "random-forest": {"trees": 7},
    "svm-rbf-pca": {"components": 12, "train_limit": 0},
}


def _striped(n: int, seed: int) -> Split:
    """Noisy images whose class is the row band that is bright: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 120, size=(n, 28, 28))
    for i, label in enumerate(labels):
        images[i, 2 * label + 4 : 2 * label + 7] += rng.integers(40, 136)
    return Split(images.clip(0, 255).astype(np.uint8), labels.astype(np.int64))


def _fitted(name: str):
    model = build_model(name, CLASSIC[name])
    train = _striped(400, 0)
    estimator = fit_estimator(model, pixels(train.images), train.labels, seed=0, jobs=1)
    return model.eval(), estimator


def _sklearn_view(name: str, estimator, x: np.ndarray) -> np.ndarray:
    return estimator.pca.transform(x) if name == "svm-rbf-pca" else x


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_module_predicts_what_the_estimator_predicts(name: str) -> None:
    model, estimator = _fitted(name)
    test = _striped(200, 1)
    x = pixels(test.images)
    expected = estimator.predict(_sklearn_view(name, estimator, x))
    with torch.no_grad():
        got = model(torch.from_numpy(x).reshape(-1, 1, 28, 28)).argmax(1).numpy()
    assert (got == expected).mean() == 1.0
    assert (got == test.labels).mean() > 0.6  # and the baseline learnt something


def test_svm_scores_are_sklearns_decision_function() -> None:
    model, estimator = _fitted("svm-rbf-pca")
    x = pixels(_striped(50, 2).images)
    expected = estimator.decision_function(estimator.pca.transform(x))
    with torch.no_grad():
        got = model(torch.from_numpy(x).reshape(-1, 1, 28, 28)).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_forest_probabilities_are_sklearns() -> None:
    model, estimator = _fitted("random-forest")
    x = pixels(_striped(50, 3).images)
    expected = estimator.predict_proba(x)
    with torch.no_grad():
        got = model(torch.from_numpy(x).reshape(-1, 1, 28, 28)).softmax(1).double().numpy()
    np.testing.assert_allclose(got, expected / expected.sum(1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_checkpoint_round_trip_keeps_the_decisions(name: str, tmp_path) -> None:
    model, _ = _fitted(name)
    x = torch.from_numpy(pixels(_striped(30, 4).images)).reshape(-1, 1, 28, 28)
    save_checkpoint(
        tmp_path / "m.pt",
        model_name=name,
        arch=CLASSIC[name],
        state_dict=model.state_dict(),
        classes=tuple("0123456789"),
        in_shape=(1, 28, 28),
    )
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta["model"] == name
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_fit_classic_records_one_epoch_on_a_stratified_subset() -> None:
    model = build_model("logreg", {"max_iter": 30, "train_limit": 200})
    result = fit_classic(model, _striped(400, 0), _striped(100, 1), seed=0, jobs=1)
    (record,) = result.history
    assert result.best_epoch == 1 and record.seconds > 0
    assert record.val_accuracy > 0.6
    assert set(result.best_state) == {"weight", "bias"}


def test_an_unfitted_baseline_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        build_model("logreg")(torch.zeros(1, 1, 28, 28))


@pytest.mark.parametrize(
    ("name", "arch", "message"),
    [
        ("logreg", {"C": -1.0}, "C must be > 0"),
        ("random-forest", {"criterion": "mse"}, "valid: gini, entropy"),
        ("svm-rbf-pca", {"components": 0}, "components must be > 0"),
    ],
)
def test_bad_options_are_refused(name: str, arch: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        build_model(name, arch)
