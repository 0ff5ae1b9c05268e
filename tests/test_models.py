"""The registry and the reference architectures."""

from __future__ import annotations

import pytest
import torch

from fmnist.errors import PipelineError
from fmnist.models import build_model, list_models
from fmnist.models.summary import keras_param_counts, summary

# Keras's counts (batch norm's moving mean/variance included), where a report gives one;
# the others are this project's own counts, pinned so a layer change cannot slip through.
PARAM_COUNTS = {
    "cnn1": 34_826,  # report A
    "cnn1-bn": 35_210,  # cnn1 + 2 BN layers (4 x (32 + 64))
    "cnn2": 503_690,
    "cnn2-bn": 504_586,  # cnn2 + 3 BN layers (4 x (32 + 64 + 128))
    "fastcnn": 114_058,
}


def test_registry_refuses_unknown_names_with_the_list() -> None:
    with pytest.raises(PipelineError, match=r"unknown model 'vgg99'; valid names: .*cnn1"):
        build_model("vgg99")


def test_registry_refuses_unknown_options() -> None:
    with pytest.raises(PipelineError, match=r"not an option of cnn1; valid: activation"):
        build_model("cnn1", {"widht": 3})


@pytest.mark.parametrize("name", list_models())
def test_model_trains_a_step_on_cpu(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    x = torch.rand(4, 1, 28, 28)
    logits = model(x)
    assert logits.shape == (4, 10)
    torch.nn.functional.cross_entropy(logits, torch.arange(4)).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(("name", "count"), PARAM_COUNTS.items())
def test_parameter_counts_keras_convention(name: str, count: int) -> None:
    trainable, non_trainable = keras_param_counts(build_model(name))
    assert trainable + non_trainable == count


def test_every_model_has_a_pinned_count() -> None:
    assert set(list_models()) == set(PARAM_COUNTS)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu"])
def test_activation_choices(activation: str) -> None:
    model = build_model("cnn1", {"activation": activation})
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_summary_lists_layers_and_keras_totals() -> None:
    text = summary(build_model("cnn1"), (1, 28, 28), "cnn1")
    assert "(None, 32, 26, 26)" in text and "(None, 64, 5, 5)" in text
    assert "Total params: 34,826" in text and "Non-trainable params: 0" in text
