"""The registry and the reference architectures."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fmnist.core.errors import PipelineError
from fmnist.models import build_model, list_models
from fmnist.models.summary import keras_param_counts, summary

# Counted with the Keras convention (keras_param_counts): batch norm's moving mean and
# variance count as non-trainable parameters (PyTorch keeps them as buffers), and a
# recurrent layer has one bias per gate (PyTorch has two, bias_ih + bias_hh, not counted
# twice). Figures marked "report" are the reports' own; the others are pinned so that a
# layer change cannot slip through unnoticed.
PARAM_COUNTS = {
    "cnn1": 34_826,  # report A
    "cnn1-bn": 35_210,  # cnn1 + 2 BN layers (4 x (32 + 64))
    "cnn2": 503_690,
    "cnn2-bn": 504_586,  # cnn2 + 3 BN layers (4 x (32 + 64 + 128))
    "seq1": 387_466,  # report B
    "seq2": 842_570,  # report B
    "seq3": 824_842,  # report B
    "seq4": 128_066,  # report B
    "seq5": 420_602,  # report B
    "seq6": 220_042,  # report B
    "cnn3": 87_452,  # report C
    "vgg": 306_906,  # report D
    "rnn": 135_498,  # report D
    "bilstm": 1_340_042,  # report D
    "cifar-cnn": 93_322,  # on 28x28x1; 122,570 on CIFAR's 32x32x3 (below)
    "fastcnn": 114_058,
    "fastcnn-photo": 114_058,  # fastcnn, trained for real photos
    "fastcnn-wide": 412_426,  # fastcnn at width 64 (411,530 trainable + 896 BN statistics)
    "fastcnn-hour": 421_290,  # fastcnn-wide with its 16-filter stem
    "wrn-16-4": 2_752_218,  # WRN-16-4 as published: 2.7M (+ BN moving statistics)
    "wrn-16-1": 175_706,
}
# Fitted by scikit-learn, not by gradients: tests/test_classic.py covers them.
CLASSIC = ("logreg", "random-forest", "svm-rbf-pca")
NEURAL = [name for name in list_models() if name not in CLASSIC]


def test_registry_refuses_unknown_names_with_the_list() -> None:
    with pytest.raises(PipelineError, match=r"unknown model 'vgg99'; valid names: .*cnn1"):
        build_model("vgg99")


def test_registry_refuses_unknown_options() -> None:
    with pytest.raises(PipelineError, match=r"not an option of cnn1; valid: activation"):
        build_model("cnn1", {"widht": 3})


@pytest.mark.parametrize("name", NEURAL)
def test_model_trains_a_step_on_cpu(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    x = torch.rand(4, 1, 28, 28)
    logits = model(x)
    assert logits.shape == (4, 10)
    torch.nn.functional.cross_entropy(logits, torch.arange(4)).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(("name", "count"), PARAM_COUNTS.items())
def test_parameter_counts_keras_convention(name: str, count: int) -> None:
    trainable, non_trainable = keras_param_counts(build_model(name))
    assert trainable + non_trainable == count


def test_cifar_cnn_on_cifar_shape_matches_report_e() -> None:
    model = build_model("cifar-cnn", in_shape=(3, 32, 32))
    assert sum(keras_param_counts(model)) == 122_570
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_recurrent_counts_apply_the_keras_bias_convention() -> None:
    model = build_model("rnn")
    torch_count = sum(p.numel() for p in model.parameters())
    duplicated_biases = 256 + 128 + 64  # bias_hh of the three SimpleRNNs
    assert torch_count - duplicated_biases + 2 * 64 == 135_498  # + BN moving stats


@pytest.mark.parametrize("name", ["rnn", "bilstm"])
def test_recurrent_layers_train_one_bias_per_gate_as_keras_does(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    rnns = [m for m in model.modules() if isinstance(m, torch.nn.RNNBase)]
    before = {(r, n): p.detach().clone() for r in rnns for n, p in r.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    F.cross_entropy(model(torch.rand(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3])).backward()
    optimizer.step()
    for rnn in rnns:
        for n, p in rnn.named_parameters():
            if n.startswith("bias_hh"):  # frozen at zero: bias_ih + bias_hh is Keras's bias
                assert not p.requires_grad and not p.any()
            elif n.startswith("bias_ih"):  # ... which moves by one step of its gradient
                assert p.grad is not None
                torch.testing.assert_close(p - before[rnn, n], -0.5 * p.grad)


@pytest.mark.parametrize("name", ["rnn", "bilstm"])
def test_recurrent_weights_start_as_keras_draws_them(name: str) -> None:
    # Keras initialises each kernel as one matrix, an LSTM's four gates together
    # (checked against keras.layers.LSTM(256): kernel within sqrt(6 / (28 + 1024)),
    # recurrent kernel with orthonormal rows over all 1024 columns)
    torch.manual_seed(0)
    for rnn in (m for m in build_model(name).modules() if isinstance(m, torch.nn.RNNBase)):
        gates = 4 if isinstance(rnn, torch.nn.LSTM) else 1
        for n, p in rnn.named_parameters():
            if n.startswith("weight_ih"):  # (gates * units, inputs): Glorot over both fans
                limit = (6 / (p.shape[1] + gates * rnn.hidden_size)) ** 0.5
                assert p.abs().max() <= limit and p.abs().max() > 0.95 * limit
            elif n.startswith("weight_hh"):  # (gates * units, units): orthonormal columns
                eye = torch.eye(rnn.hidden_size)
                torch.testing.assert_close(p.T @ p, eye, atol=1e-4, rtol=0)
            elif gates == 4 and n.startswith("bias_ih"):  # unit_forget_bias
                h = rnn.hidden_size
                assert p[h : 2 * h].eq(1).all() and p[:h].eq(0).all() and p[2 * h :].eq(0).all()


def test_recurrent_models_read_rows_as_steps() -> None:
    from fmnist.models.recurrent import rows_as_sequence

    x = torch.arange(2 * 28 * 28, dtype=torch.float32).reshape(2, 1, 28, 28)
    seq = rows_as_sequence(x)
    assert seq.shape == (2, 28, 28)
    assert torch.equal(seq[1, 5], x[1, 0, 5])


def test_bad_architecture_values_are_refused_with_the_valid_list() -> None:
    with pytest.raises(PipelineError, match=r"activation 'swish'; valid: relu, tanh, sigmoid"):
        build_model("cnn2", {"activation": "swish"})
    with pytest.raises(PipelineError, match="dropout"):
        build_model("seq3", {"dropout": 1.5})


def test_fastcnn_stem_adds_one_full_resolution_conv() -> None:
    base = build_model("fastcnn-wide")
    stemmed = build_model("fastcnn-wide", {"stem": 16})
    first = stemmed[:3](torch.rand(2, 1, 28, 28))
    assert first.shape == (2, 16, 28, 28)  # no pooling before it: full resolution
    # conv(1->16) and BN(16), and the first conv now reads 16 channels instead of 1
    extra = (9 * 16 + 16) + 2 * 16 + 15 * 9 * 64
    assert keras_param_counts(stemmed)[0] - keras_param_counts(base)[0] == extra


@pytest.mark.parametrize(("option", "value"), [("stem", -3), ("stem", 1.5), ("width", 0)])
def test_fastcnn_refuses_impossible_sizes(option: str, value: float) -> None:
    with pytest.raises(PipelineError, match=rf"{option} must be a whole number"):
        build_model("fastcnn-wide", {option: value})


def test_every_model_has_a_pinned_count() -> None:
    assert set(list_models()) == set(PARAM_COUNTS) | set(CLASSIC)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu"])
def test_activation_choices(activation: str) -> None:
    model = build_model("cnn1", {"activation": activation})
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_summary_lists_layers_and_keras_totals() -> None:
    text = summary(build_model("cnn1"), (1, 28, 28), "cnn1")
    assert "(None, 32, 26, 26)" in text and "(None, 64, 5, 5)" in text
    assert "Total params: 34,826" in text and "Non-trainable params: 0" in text
