"""When to answer "unsure" instead of a class: one rule for the CLI, the JSON API and the
page.

A model trained on Fashion-MNIST gives every picture one of its ten classes, with a
probability that barely separates right from wrong on real photos. It is unsure, and
says why, when the garment could not be isolated from its background, or when its top
probability is under :data:`UNSURE_BELOW`. The threshold was chosen on the development
photos (``python -m bench photos``, docs/serving.md): it marks the guesses of a picture
unlike the training images while leaving Fashion-MNIST's own test images alone.
"""

from __future__ import annotations

import numpy as np

UNSURE_BELOW = 0.30


def unsure_reason(probabilities: np.ndarray, classes: list[str], isolation_problem: str) -> str:
    """Why the answer is "unsure", or "" when the top class can be given."""
    if isolation_problem:
        return f"the garment could not be isolated ({isolation_problem})"
    top = int(np.argmax(probabilities))
    if probabilities[top] < UNSURE_BELOW:
        return (
            f"low confidence ({probabilities[top]:.0%} for {classes[top]}): perhaps none of "
            "the ten classes, or a picture unlike the training images"
        )
    return ""
