"""The CPU speed-ups keep the reference models' math (fmnist/models/speedups.py)."""

from __future__ import annotations

import pytest
import torch
from test_models import NEURAL
from torch import nn

from fmnist.models import build_model
from fmnist.models.speedups import FastDropout, speed_up

IMAGE_MODELS = [m for m in NEURAL if m not in ("rnn", "bilstm")]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_tuned_model_matches_reference_outputs_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    reference = build_model(name, fast=False).eval()
    tuned = build_model(name, fast=False)
    tuned.load_state_dict(reference.state_dict())
    speed_up(tuned).eval()
    x = torch.rand(4, 1, 28, 28)
    out_ref, out_tuned = reference(x), tuned(x)
    assert torch.equal(out_ref, out_tuned)
    out_ref.square().sum().backward()
    out_tuned.square().sum().backward()
    for (key, a), b in zip(reference.named_parameters(), tuned.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, rtol=1e-5, atol=1e-6), key


def test_pool_moves_before_monotonic_activations_only() -> None:
    seq = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(3), nn.MaxPool2d(2))
    speed_up(seq)
    assert [type(m) for m in seq] == [nn.MaxPool2d, nn.ReLU, nn.BatchNorm2d, nn.MaxPool2d]
    keys = set(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(3)).state_dict())
    assert set(seq.state_dict()) == keys  # checkpoints load into either layout


def test_fast_dropout_keeps_the_rate_and_the_mean() -> None:
    torch.manual_seed(0)
    drop = FastDropout(0.3).train()
    y = drop(torch.ones(200_000))
    assert abs((y == 0).float().mean().item() - 0.3) < 0.005
    assert abs(y.mean().item() - 1.0) < 0.01
    assert torch.unique(y).tolist() == [0.0, pytest.approx(1 / 0.7)]
    assert torch.equal(drop.eval()(torch.ones(5)), torch.ones(5))
