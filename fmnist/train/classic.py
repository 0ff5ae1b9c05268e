"""Fitting the classic baselines (fmnist/models/classic.py) with scikit-learn.

The estimators see exactly the float32 pixels the torch modules see (uint8 / 255), so a
fitted module decides as the estimator does; tests/test_classic.py checks that on data.
A fit is one "epoch" in the training history: its seconds are the fit's, its train and
validation figures come from the fitted module itself.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.svm import SVC

from fmnist.data.prepared import Split, stratified_subset
from fmnist.models.classic import ClassicModel, LogisticRegression, RandomForest, RbfSvm
from fmnist.train.batches import PIXEL_SCALE, to_device
from fmnist.train.inference import evaluate
from fmnist.train.records import EpochRecord, FitResult


def pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 pixel vectors scaled as the networks see them."""
    flat = images.reshape(len(images), -1)
    return (torch.from_numpy(flat).float() * PIXEL_SCALE).numpy()


def fit_estimator(model: ClassicModel, x: np.ndarray, y: np.ndarray, seed: int, jobs: int) -> Any:
    """Fit ``model``'s estimator on pixel vectors ``x``; hold its arrays in ``model``.
    Returns the fitted estimator (tests compare its decisions with the module's)."""
    o = model.options
    if isinstance(model, LogisticRegression):
        est = SkLogisticRegression(C=o["C"], max_iter=o["max_iter"])
        with warnings.catch_warnings():  # max_iter is the recipe's budget, as in the benchmark
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(x, y)
        model.set_fitted(
            weight=est.coef_.astype(np.float32), bias=est.intercept_.astype(np.float32)
        )
    elif isinstance(model, RandomForest):
        est = RandomForestClassifier(
            n_estimators=o["trees"],
            max_depth=o["max_depth"] or None,
            criterion=o["criterion"],
            n_jobs=jobs,
            random_state=seed,
        ).fit(x, y)
        model.set_fitted(**forest_arrays(est))
    elif isinstance(model, RbfSvm):
        pca = PCA(o["components"], random_state=seed).fit(x)
        est = SVC(C=o["C"], kernel="rbf", gamma="scale").fit(pca.transform(x), y)
        est.pca = pca
        model.set_fitted(
            pca_mean=pca.mean_,
            pca_components=pca.components_,
            support_vectors=est.support_vectors_,
            dual_coef=est.dual_coef_,
            intercept=est.intercept_,
            gamma=np.float64(est._gamma),
            n_support=est.n_support_.astype(np.int64),
        )
    else:
        raise TypeError(f"no estimator for {type(model).__name__}")
    return est


def forest_arrays(forest: RandomForestClassifier) -> dict[str, np.ndarray]:
    """Every tree's nodes padded to one size, leaves pointing to themselves, values as
    class probabilities: the arrays :class:`RandomForest` walks."""
    trees = [t.tree_ for t in forest.estimators_]
    size = max(t.node_count for t in trees)
    classes = forest.n_classes_
    feature = np.zeros((len(trees), size), np.int64)
    threshold = np.zeros((len(trees), size), np.float64)
    left = np.tile(np.arange(size), (len(trees), 1))
    right = left.copy()
    value = np.zeros((len(trees), size, classes), np.float32)
    for k, t in enumerate(trees):
        n = t.node_count
        inner = t.children_left[:n] >= 0
        feature[k, :n] = np.where(inner, t.feature[:n], 0)
        threshold[k, :n] = t.threshold[:n]
        left[k, :n] = np.where(inner, t.children_left[:n], np.arange(n))
        right[k, :n] = np.where(inner, t.children_right[:n], np.arange(n))
        counts = t.value[:n, 0, :]
        value[k, :n] = counts / counts.sum(1, keepdims=True)
    depth = max(t.max_depth for t in trees)
    return {
        "feature": feature,
        "threshold": threshold,
        "left": left,
        "right": right,
        "value": value,
        "depth": np.int64(depth),
    }


def fit_classic(
    model: ClassicModel,
    train: Split,
    val: Split,
    seed: int,
    jobs: int,
    eval_batch_size: int = 500,
) -> FitResult:
    """Fit ``model`` on ``train`` (a stratified subset if its ``train_limit`` asks), and
    measure it like a network's epoch."""
    limit = model.options.get("train_limit", 0)
    fitted_on = stratified_subset(train, limit, seed)
    start = time.perf_counter()
    fit_estimator(model, pixels(fitted_on.images), fitted_on.labels, seed, jobs)
    seconds = time.perf_counter() - start
    cpu = torch.device("cpu")
    figures = [
        evaluate(model, to_device(s.images, s.labels, cpu), eval_batch_size)
        for s in (fitted_on, val)
    ]
    record = EpochRecord(1, *figures[0], *figures[1], seconds)
    return FitResult(
        best_state=model.state_dict(),
        best_epoch=1,
        best_accuracy=record.val_accuracy,
        history=[record],
    )
