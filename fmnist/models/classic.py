"""Classic baselines from the dataset publisher's benchmark, as ordinary zoo models.

Each is fitted by scikit-learn (fmnist/train/classic.py) and then *held* as a torch module
whose forward pass computes the same decision from the fitted arrays. That keeps one
model format for the whole pipeline: the checkpoint is tensors loaded with
``weights_only=True`` (a pickled estimator would be code to trust), and evaluate,
predict, the review report and the leaderboard treat a random forest like a CNN.

The forward passes return logits: for logistic regression its linear scores, for the
forest the log of its averaged class probabilities, for the SVM the one-vs-rest scores
scikit-learn's ``decision_function`` gives (votes plus a confidence in (-1/3, 1/3)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fmnist.models.registry import register_model

PROBABILITY_FLOOR = 1e-7  # log(0) would make a forest's unanimous votes -inf logits


class ClassicModel(nn.Module):
    """A model fitted outside autograd: its fitted arrays are frozen parameters (so the
    Keras-style summary counts them as non-trainable) whose shapes are known only after
    fitting, so loading a state dict takes the saved shapes."""

    options: dict[str, Any]

    def set_fitted(self, **arrays: np.ndarray | torch.Tensor) -> None:
        """Hold ``arrays`` (from :mod:`fmnist.train.classic`) as frozen parameters."""
        for name, value in arrays.items():
            tensor = torch.as_tensor(np.asarray(value)).clone()
            setattr(self, name, nn.Parameter(tensor, requires_grad=False))

    @property
    def fitted(self) -> bool:
        return all(p.numel() for p in self.parameters())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        self.set_fitted(
            **{
                name: state_dict[prefix + name]
                for name in self._parameters
                if prefix + name in state_dict
            }
        )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _empty(self, *names: str) -> None:
        for name in names:
            setattr(self, name, nn.Parameter(torch.empty(0), requires_grad=False))

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: train it first")


def features(x: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] -> pixel vectors (N, C*H*W), as the estimators saw them."""
    return x.flatten(1)


class LogisticRegression(ClassicModel):
    """Multinomial logistic regression on the pixels."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__()
        self.options = options
        self._empty("weight", "bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        return features(x) @ self.weight.T + self.bias


class RandomForest(ClassicModel):
    """A forest of decision trees on the pixels; every tree is walked for all images at
    once, one level per step (leaves point to themselves)."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__()
        self.options = options
        self._empty("feature", "threshold", "left", "right", "value", "depth")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        pixels = features(x).double()  # thresholds are float64 midpoints, as in sklearn
        trees, size = self.feature.shape
        # node ids as offsets into the flattened (trees * size) arrays: one plain gather
        # per level, which also exports to ONNX with a dynamic batch size
        offset = torch.arange(trees, device=x.device) * size
        node = (pixels[:, :1] * 0).long() + offset
        feature, threshold = self.feature.flatten(), self.threshold.flatten()
        left = (self.left + offset[:, None]).flatten()
        right = (self.right + offset[:, None]).flatten()
        for _ in range(int(self.depth)):
            value = pixels.gather(1, feature[node])
            node = torch.where(value <= threshold[node], left[node], right[node])
        probabilities = self.value.reshape(trees * size, -1)[node].mean(1)
        return probabilities.clamp_min(PROBABILITY_FLOOR).log().float()


class RbfSvm(ClassicModel):
    """An RBF-kernel SVM (one-vs-one, as libsvm trains it) on PCA features."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__()
        self.options = options
        self._empty(
            "pca_mean",
            "pca_components",
            "support_vectors",
            "dual_coef",
            "intercept",
            "gamma",
            "n_support",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        dtype = torch.float32 if x.device.type == "mps" else torch.float64
        z = (features(x).to(dtype) - self.pca_mean.to(dtype)) @ self.pca_components.to(dtype).T
        sv = self.support_vectors.to(dtype)
        # squared distances written out (cdist has no ONNX export)
        distances = z.square().sum(1, keepdim=True) + sv.square().sum(1) - 2 * z @ sv.T
        kernel = torch.exp(-self.gamma.to(dtype) * distances.clamp_min(0))
        return ovr_scores(self._ovo_decisions(kernel), len(self.n_support)).float()

    def _ovo_decisions(self, kernel: torch.Tensor) -> torch.Tensor:
        """libsvm's decision for every class pair (i, j), i < j: positive votes for i."""
        counts = self.n_support.tolist()
        starts = np.concatenate([[0], np.cumsum(counts)]).tolist()
        coef = self.dual_coef.to(kernel.dtype)
        columns = []
        pair = 0
        for i in range(len(counts)):
            for j in range(i + 1, len(counts)):
                si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
                decision = kernel[:, si] @ coef[j - 1, si] + kernel[:, sj] @ coef[i, sj]
                columns.append(decision + self.intercept[pair].to(kernel.dtype))
                pair += 1
        return torch.stack(columns, 1)


def ovr_scores(decisions: torch.Tensor, classes: int) -> torch.Tensor:
    """scikit-learn's one-vs-rest scores from one-vs-one decisions: each class's votes,
    plus its summed confidence squashed into (-1/3, 1/3) to break ties. Written as
    products with constant (pairs x classes) matrices, so it traces for any batch size."""
    pairs = [(i, j) for i in range(classes) for j in range(i + 1, classes)]
    first = torch.zeros(len(pairs), classes, dtype=decisions.dtype, device=decisions.device)
    second = torch.zeros_like(first)
    for k, (i, j) in enumerate(pairs):
        first[k, i], second[k, j] = 1, 1
    wins = (decisions >= 0).to(decisions.dtype)
    votes = wins @ first + (1 - wins) @ second
    confidence = decisions @ (first - second)
    return votes + confidence / (3 * (confidence.abs() + 1))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@register_model("logreg")
def logreg(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    C: float = 1.0,  # noqa: N803 (scikit-learn's name)
    max_iter: int = 200,
    train_limit: int = 0,
) -> nn.Module:
    """Logistic regression on the pixels (the publisher's benchmark: 84.2%)."""
    _check(C > 0, f"C must be > 0, got {C}")
    _check(max_iter > 0, f"max_iter must be > 0, got {max_iter}")
    _check(train_limit >= 0, f"train_limit must be >= 0, got {train_limit}")
    return LogisticRegression({"C": C, "max_iter": max_iter, "train_limit": train_limit})


@register_model("random-forest")
def random_forest(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    trees: int = 100,
    max_depth: int = 0,
    criterion: str = "gini",
    train_limit: int = 0,
) -> nn.Module:
    """A random forest on the pixels (the publisher's benchmark: 87.3% at its best)."""
    _check(trees > 0, f"trees must be > 0, got {trees}")
    _check(max_depth >= 0, f"max_depth must be >= 0 (0: unlimited), got {max_depth}")
    _check(criterion in ("gini", "entropy"), f"criterion {criterion!r}; valid: gini, entropy")
    _check(train_limit >= 0, f"train_limit must be >= 0, got {train_limit}")
    return RandomForest(
        {"trees": trees, "max_depth": max_depth, "criterion": criterion, "train_limit": train_limit}
    )


@register_model("svm-rbf-pca")
def svm_rbf_pca(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    components: int = 100,
    C: float = 10.0,  # noqa: N803 (scikit-learn's name)
    train_limit: int = 0,
) -> nn.Module:
    """An RBF SVM on PCA features (the publisher's best classic model, an RBF SVC on the
    pixels, reached 89.7%)."""
    _check(components > 0, f"components must be > 0, got {components}")
    _check(C > 0, f"C must be > 0, got {C}")
    _check(train_limit >= 0, f"train_limit must be >= 0, got {train_limit}")
    return RbfSvm({"components": components, "C": C, "train_limit": train_limit})
