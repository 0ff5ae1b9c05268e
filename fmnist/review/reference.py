"""What the original reports claimed for each zoo model (docs/models.md tells the reports).

The leaderboard sets every measured accuracy beside these figures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reported:
    """A report's figure for one model: test accuracy in percent and where it came from."""

    report: str
    accuracy: float
    note: str = ""
    comparable: bool = True  # False: measured on another dataset, no difference shown
    # validation images the report held out of the 60,000 training images, where it says
    # and it differs from params.yaml's prepare.val_size (the sweep sets it per model)
    val_size: int | None = None


REPORTED: dict[str, Reported] = {
    "cnn1": Reported("A", 90.18, "validation, epoch 15; 10 % held out", val_size=6000),
    "cnn1-bn": Reported(
        "A", 92.53, "cnn1's recipe, 10 % held out; val or test not said", val_size=6000
    ),
    "cnn2": Reported("A", 92.40, "validated on the test set"),
    "cnn2-bn": Reported("A", 93.38, "model.evaluate on test"),
    "seq1": Reported("B", 90.47),
    "seq2": Reported("B", 70.02, "the report calls it suspect"),
    "seq3": Reported("B", 84.10, "the report calls it suspect"),
    "seq4": Reported("B", 82.52, "the report calls it suspect"),
    "seq5": Reported("B", 80.94, "the report calls it suspect"),
    "seq6": Reported("B", 82.41, "the report calls it suspect"),
    "cnn3": Reported("C", 90.65),
    "vgg": Reported("D", 93.19, "on a 6,400-image validation set"),
    "rnn": Reported("D", 89.0),
    "bilstm": Reported("D", 90.0, "written as Adam(lr=0.01): Keras 2.11+ trains that at 0.001"),
    "cifar-cnn": Reported("E", 71.13, "on CIFAR-10, not Fashion-MNIST", comparable=False),
    # the dataset publisher's benchmark of classic classifiers (its best setting of each)
    "logreg": Reported("benchmark", 84.2, "LogisticRegression C=1"),
    "random-forest": Reported("benchmark", 87.3, "100 trees, entropy, max_depth 100"),
    "svm-rbf-pca": Reported("benchmark", 89.7, "SVC C=10 RBF on all pixels, all 60k images"),
}

# The zoo: every reference model, in the reports' order, then the classic baselines.
ZOO: tuple[str, ...] = tuple(REPORTED)
