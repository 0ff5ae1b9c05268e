"""Report D's recurrent models: each image read as a sequence of its rows (batch_first).

A (N, C, H, W) batch becomes H steps of C*W features, so 28 steps of 28 pixels for
Fashion-MNIST. Initialised as Keras does: Glorot-uniform input kernels, orthogonal
recurrent kernels, zero biases, and the LSTM forget-gate bias at 1 (unit_forget_bias).

PyTorch keeps two bias vectors per gate (``bias_ih + bias_hh``) where Keras keeps one.
Training both would not be Keras's model: the pair moves twice as far per step as one
bias does (SGD adds the same gradient to each; Adam takes a full step in each), which
doubles the biases' learning rate. ``bias_hh`` is therefore frozen at zero, so the sum
is the single Keras bias and trains exactly as it does; the summary counts it once.
"""

from __future__ import annotations

import torch
from torch import nn

from fmnist.models.layers import activation as make_activation
from fmnist.models.layers import batch_norm, keras_init
from fmnist.models.registry import Shape, register_model


def rows_as_sequence(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, C*W): one step per image row."""
    n, c, h, w = x.shape
    return x.permute(0, 2, 1, 3).reshape(n, h, c * w)


def _keras_recurrent_init(rnn: nn.RNNBase) -> None:
    """Keras's initialisers, applied to each weight matrix whole, gates together.

    Keras holds an LSTM's four gates in one (input, 4 * units) kernel and one
    (units, 4 * units) recurrent kernel and initialises each as a single matrix: Glorot
    over fans of input and 4 * units, and one orthogonal matrix whose rows span all four
    gates. PyTorch's ``weight_ih`` / ``weight_hh`` are those matrices transposed, so the
    whole-matrix initialisers give the same distributions. Initialising gate by gate
    instead, as this module once did, drew input weights twice as wide and recurrent
    blocks with twice Keras's scale.
    """
    for name, p in rnn.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(p)
        elif name.startswith("weight_hh"):
            nn.init.orthogonal_(p)
        else:
            nn.init.zeros_(p)
            if isinstance(rnn, nn.LSTM) and name.startswith("bias_ih"):
                p.data[rnn.hidden_size : 2 * rnn.hidden_size] = 1.0  # forget gate
            if name.startswith("bias_hh"):
                p.requires_grad_(False)  # Keras's one bias per gate: see the module docstring


class StackedRNN(nn.Module):
    """SimpleRNN(256) -> SimpleRNN(128) -> SimpleRNN(64, last step) -> bn -> dense."""

    def __init__(self, features: int, sizes: tuple[int, ...], nonlinearity: str, classes: int):
        super().__init__()
        inputs = (features, *sizes[:-1])
        self.rnns = nn.ModuleList(
            nn.RNN(i, s, nonlinearity=nonlinearity, batch_first=True)
            for i, s in zip(inputs, sizes, strict=True)
        )
        for rnn in self.rnns:
            _keras_recurrent_init(rnn)
        self.norm = batch_norm(sizes[-1], dims=1)
        self.out = keras_init(nn.Linear(sizes[-1], classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = rows_as_sequence(x)
        for rnn in self.rnns:
            h, _ = rnn(h)
        return self.out(self.norm(h[:, -1]))


class BiLSTM(nn.Module):
    """BiLSTM(256, all steps) -> BiLSTM(128, last) -> dense(256) -> dense(128) -> dense."""

    def __init__(self, features: int, classes: int, act: str, dropout: float):
        super().__init__()
        self.lstm1 = nn.LSTM(features, 256, batch_first=True, bidirectional=True)
        self.lstm2 = nn.LSTM(512, 128, batch_first=True, bidirectional=True)
        for lstm in (self.lstm1, self.lstm2):
            _keras_recurrent_init(lstm)
        self.head = keras_init(
            nn.Sequential(
                nn.Linear(256, 256),
                make_activation(act),
                nn.Dropout(dropout),
                nn.Linear(256, 128),
                make_activation(act),
                nn.Dropout(dropout),
                nn.Linear(128, classes),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm1(rows_as_sequence(x))
        _, (last, _) = self.lstm2(h)
        # Keras's Bidirectional(return_sequences=False): forward's and backward's final states
        return self.head(torch.cat([last[-2], last[-1]], dim=1))


@register_model("rnn")
def rnn(
    in_shape: Shape = (1, 28, 28), num_classes: int = 10, activation: str = "relu"
) -> nn.Module:
    """Report D: three SimpleRNNs (256, 128, 64; relu), bn, dense(10)."""
    if activation not in ("relu", "tanh"):
        raise ValueError("rnn: activation must be relu or tanh (PyTorch's RNN cell)")
    features = in_shape[0] * in_shape[2]
    return StackedRNN(features, (256, 128, 64), activation, num_classes)


@register_model("bilstm")
def bilstm(
    in_shape: Shape = (1, 28, 28),
    num_classes: int = 10,
    activation: str = "relu",
    dropout: float = 0.3,
) -> nn.Module:
    """Report D: BiLSTM(256), BiLSTM(128), dense(256) relu, drop, dense(128) relu, drop."""
    return BiLSTM(in_shape[0] * in_shape[2], num_classes, activation, dropout)
