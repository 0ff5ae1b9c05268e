"""Rewrites of a built model that keep its math and make it faster on a CPU.

Profiles of the reference CNNs on a 2-core CPU (bench/speed.py) showed two avoidable
costs, fixed here once for every model instead of in each builder:

* ``activation -> max-pool``: max-pool commutes with any non-decreasing activation
  (ReLU, leaky ReLU, tanh, sigmoid), so pooling first gives the same values and the same
  gradients (the pool picks the same element) while the activation and its backward
  touch a quarter of the values. With channels_last this took cnn1 from 3,100 to 4,500
  images/s.
* ``nn.Dropout`` draws its mask with ``bernoulli_``, and even ``rand_like`` spends a
  32-bit draw of the CPU's Mersenne twister on each unit: 26 % of cnn1-bn's training
  step. :class:`FastDropout` cuts each 64-bit draw into four 16-bit numbers instead
  (4.5x less time in the generator), so the drop rate is ``p`` rounded to a multiple of
  1/65,536 (0.1 -> 0.100006), and kept units are scaled by 1 / (1 - that rate) so the
  expected output still equals the input.

* ``nn.RNN``'s CPU backward is a chain of small autograd nodes, two small matrix
  products per time step; :class:`~fmnist.models.fused_rnn.FusedRNN` does one and
  batches the rest into three large ones.

Only parameterless modules move or change (an RNN keeps its parameters), so state
dicts (and checkpoints) are the same as the reference layout's and load either way.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from fmnist.models.fused_rnn import fuse_rnn

MONOTONIC = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid)


LEVELS = 2**16  # a drop rate is drawn with 16-bit resolution


class FastDropout(nn.Dropout):
    """Inverted dropout whose mask compares 16-bit random numbers to a threshold."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * 0
        dropped = round(self.p * LEVELS)
        if dropped in (0, LEVELS) or x.device.type not in ("cpu", "cuda"):
            # p within 2**-17 of 0 or 1, or a backend without 64-bit random_: exact rand
            return x * torch.rand_like(x).ge_(self.p).mul_(1 / (1 - self.p))
        keep = random_int16_like(x).ge_(dropped - LEVELS // 2)
        return x * keep.to(x.dtype).mul_(LEVELS / (LEVELS - dropped))


def random_int16_like(x: torch.Tensor) -> torch.Tensor:
    """Uniform int16 numbers shaped and laid out like ``x`` (channels_last stays so),
    four from each 64-bit draw of the seeded generator."""
    n = x.numel()
    draws = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
    bits = draws.random_(-(2**63), None).view(torch.int16)[:n]
    if x.dim() == 4 and not x.is_contiguous():  # channels_last: fill in N, H, W, C order
        n_, c, h, w = x.shape
        return bits.view(n_, h, w, c).permute(0, 3, 1, 2)
    return bits.view(x.shape)


def speed_up(model: nn.Module) -> nn.Module:
    """Pool before non-decreasing activations, use :class:`FastDropout`, and give
    ``nn.RNN`` layers the fused CPU kernel (:mod:`fmnist.models.fused_rnn`), in place."""
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            _pool_first(module)
        for name, child in module.named_children():
            if type(child) is nn.Dropout:
                setattr(module, name, FastDropout(child.p))
            elif type(child) is nn.RNN:
                fuse_rnn(child)
    return model


def _pool_first(seq: nn.Sequential) -> None:
    """Swap every adjacent (monotonic activation, MaxPool2d) pair of ``seq``."""
    keys = list(seq._modules)
    for a, b in itertools.pairwise(keys):
        act, pool = seq._modules[a], seq._modules[b]
        if _monotonic(act) and isinstance(pool, nn.MaxPool2d):
            seq._modules[a], seq._modules[b] = pool, act


def _monotonic(module: nn.Module | None) -> bool:
    if isinstance(module, nn.LeakyReLU):
        return module.negative_slope >= 0
    return isinstance(module, MONOTONIC)
