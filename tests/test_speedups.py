"""The CPU speed-ups keep the reference models' math (fmnist/models/speedups.py)."""

from __future__ import annotations

import copy

import pytest
import torch
from test_models import NEURAL
from torch import nn

from fmnist.models import build_model
from fmnist.models.fused_rnn import BF16_RECURRENCE_MIN_HIDDEN, FusedRNN, fuse_rnn, layer_precisions
from fmnist.models.speedups import FastDropout, random_int16_like, speed_up

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
    """The rate is p to 16 bits (0.3 -> 19,661 / 65,536) and the scale makes it unbiased."""
    torch.manual_seed(0)
    drop = FastDropout(0.3).train()
    y = drop(torch.ones(200_000))
    assert abs((y == 0).float().mean().item() - 0.3) < 0.005
    assert abs(y.mean().item() - 1.0) < 0.01
    assert torch.unique(y).tolist() == [0.0, pytest.approx(65536 / (65536 - 19661))]
    assert torch.equal(drop.eval()(torch.ones(5)), torch.ones(5))


def test_fast_dropout_masks_are_seeded_and_keep_channels_last() -> None:
    x = torch.ones(8, 3, 5, 5).contiguous(memory_format=torch.channels_last)
    drop = FastDropout(0.5).train()
    torch.manual_seed(1)
    first = drop(x)
    torch.manual_seed(1)
    assert torch.equal(first, drop(x))
    assert first.is_contiguous(memory_format=torch.channels_last)
    assert 0.4 < (first == 0).float().mean().item() < 0.6


def test_each_16_bit_lane_of_a_draw_is_uniform() -> None:
    """Every quarter of the 64-bit draws is used, so each must span the signed range:
    PyTorch's plain ``random_()`` on int64 never sets the top bit, which would keep
    every fourth unit with a wrong rate."""
    torch.manual_seed(0)
    lanes = random_int16_like(torch.empty(400_000)).view(-1, 4)
    negative = (lanes < 0).float().mean(0)
    assert torch.all((negative - 0.5).abs() < 0.01), negative
    assert lanes.min() < -32000 and lanes.max() > 32000


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_fused_rnn_matches_pytorchs_outputs_and_gradients(nonlinearity: str) -> None:
    torch.manual_seed(0)
    reference = nn.RNN(28, 16, nonlinearity=nonlinearity, batch_first=True)
    fused = fuse_rnn(copy.deepcopy(reference))
    assert type(fused) is FusedRNN and fused.state_dict().keys() == reference.state_dict().keys()
    x = torch.randn(5, 28, 28)
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    (out_ref, h_ref), (out_fused, h_fused) = reference(xr), fused(xf)
    torch.testing.assert_close(out_fused, out_ref)
    torch.testing.assert_close(h_fused, h_ref)
    weights = torch.randn_like(out_ref)  # a loss that reaches every step's output
    ((out_ref * weights).sum() + h_ref.square().sum()).backward()
    ((out_fused * weights).sum() + h_fused.square().sum()).backward()
    torch.testing.assert_close(xf.grad, xr.grad)
    for (key, a), b in zip(reference.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, msg=key)


def test_the_rnn_model_trains_the_same_with_the_fused_kernel() -> None:
    torch.manual_seed(0)
    reference = build_model("rnn", fast=False)
    fused = build_model("rnn", fast=False)
    fused.load_state_dict(reference.state_dict())
    speed_up(fused)
    assert any(type(m) is FusedRNN for m in fused.modules())
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
    for model in (reference, fused):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for _ in range(3):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    for (key, a), b in zip(
        reference.state_dict().items(), fused.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(b, a, msg=key)


def test_fused_rnn_leaves_other_cases_to_pytorch() -> None:
    rnn = fuse_rnn(nn.RNN(4, 3, num_layers=2, batch_first=True))
    assert not rnn._fusable(torch.rand(2, 5, 4), None)  # two layers: nn.RNN's own path
    single = fuse_rnn(nn.RNN(4, 3, batch_first=True))
    assert single._fusable(torch.rand(2, 5, 4), None)
    assert not single._fusable(torch.rand(2, 5, 4), torch.zeros(1, 2, 3))
    assert single(torch.rand(2, 5, 4), torch.zeros(1, 2, 3))[0].shape == (2, 5, 3)


def test_fused_rnn_model_evaluates_and_exports_with_pytorchs_kernel() -> None:
    torch.manual_seed(0)
    model = build_model("rnn")
    x = torch.rand(3, 1, 28, 28)
    assert model.train()._modules["rnns"][0]._fusable(x[:, 0], None)
    model.eval()
    assert not any(rnn._fusable(x[:, 0], None) for rnn in model._modules["rnns"])
    traced = torch.jit.trace(model, x)  # TorchScript cannot record the fused Function
    torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_fused_rnn_under_cpu_autocast_is_as_close_to_fp32_as_autocasts_own_rnn(
    nonlinearity: str,
) -> None:
    torch.manual_seed(0)
    reference = nn.RNN(28, 256, nonlinearity=nonlinearity, batch_first=True)
    fused = fuse_rnn(copy.deepcopy(reference))
    x, weights = torch.randn(5, 28, 28), torch.randn(5, 28, 256)

    def run(model: nn.Module, autocast: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        xg = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = model(xg)[0]
        (out.float() * weights).sum().backward()
        return out, [xg.grad, *(p.grad for p in model.parameters() if p.grad is not None)]

    exact, exact_grads = run(reference, autocast=False)
    out, grads = run(fused, autocast=True)
    own, own_grads = run(reference, autocast=True)  # nn.RNN as autocast runs it: all bf16
    assert out.dtype == torch.float32 and not torch.equal(out, exact)  # bf16 rounding...
    error, own_error = (out - exact).abs().max(), (own.float() - exact).abs().max()
    assert error <= 2 * own_error  # ...no worse than autocast's own, give or take
    assert len(grads) == len(own_grads) == len(exact_grads)
    for g, g_own, g_exact in zip(grads, own_grads, exact_grads, strict=True):
        assert g.dtype == torch.float32
        assert (g - g_exact).abs().max() <= 2 * (g_own - g_exact).abs().max() + 1e-6


def test_fused_rnn_keeps_small_recurrences_fp32_under_bf16_autocast() -> None:
    assert layer_precisions(256) == (torch.float32, torch.float32)  # no autocast: nn.RNN's math
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer_precisions(BF16_RECURRENCE_MIN_HIDDEN) == (torch.bfloat16, torch.bfloat16)
        assert layer_precisions(64) == (torch.bfloat16, torch.float32)
