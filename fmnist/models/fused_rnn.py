"""A one-layer Elman RNN (``nn.RNN``, relu or tanh) with a hand-written backward, for CPUs.

A profile of the ``rnn`` model's training step on a 2-core CPU put 42 % of the time
outside matrix products: autograd records, per time step, an addmm, an activation,
their backward nodes and a weight-gradient accumulation. Each step's backward then
does two small matrix products (the gradient of the hidden state and of ``weight_hh``).
Here the forward keeps only what the backward needs (the inputs and the hidden states)
and the backward does one small product per step; the weight and input gradients of
all 28 steps are then three large products, which a CPU runs near its peak.

Same math as ``nn.RNN``: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), h_0 = 0.
Outputs and gradients agree with PyTorch's to float rounding (tests/test_speedups.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable


class _ElmanLayer(torch.autograd.Function):
    """Time-major (T, N, I) inputs -> every hidden state (T, N, H)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        w_ih: torch.Tensor,
        w_hh: torch.Tensor,
        b_ih: torch.Tensor,
        b_hh: torch.Tensor,
        relu: bool,
    ) -> torch.Tensor:
        steps, batch, _ = x.shape
        hidden = w_hh.shape[0]
        # every step's input projection at once: one large product
        h_all = torch.addmm(b_ih + b_hh, x.reshape(steps * batch, -1), w_ih.t())
        h_all = h_all.view(steps, batch, hidden)
        w_hh_t = w_hh.t()
        act = torch.relu_ if relu else torch.tanh_
        act(h_all[0])
        for t in range(1, steps):
            act(h_all[t].addmm_(h_all[t - 1], w_hh_t))
        ctx.save_for_backward(x, w_ih, w_hh, h_all)
        ctx.relu = relu
        return h_all

    @staticmethod
    @once_differentiable  # the backward itself is not differentiated (no double backward)
    def backward(ctx: Any, grad_h: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, w_ih, w_hh, h_all = ctx.saved_tensors
        steps, batch, hidden = h_all.shape
        # g_t: the gradient at step t's pre-activation; total: the gradient reaching h_t,
        # from the loss (grad_h[t]) and from step t+1 (g_{t+1} W_hh), in one addmm
        g = torch.empty_like(h_all)
        total = grad_h[steps - 1]
        for t in range(steps - 1, -1, -1):
            if ctx.relu:
                torch.ops.aten.threshold_backward.grad_input(total, h_all[t], 0, grad_input=g[t])
            else:
                torch.mul(total, 1 - h_all[t].square(), out=g[t])
            if t:
                total = torch.addmm(grad_h[t - 1], g[t], w_hh)
        g2 = g.view(steps * batch, hidden)
        grad_x = (g2 @ w_ih).view(x.shape) if ctx.needs_input_grad[0] else None
        grad_w_ih = g2.t() @ x.reshape(steps * batch, -1)
        # h_{t-1} for t >= 1 (h_{-1} = 0 contributes nothing)
        grad_w_hh = g[1:].reshape(-1, hidden).t() @ h_all[:-1].reshape(-1, hidden)
        grad_b = g2.sum(0)
        return (
            grad_x,
            grad_w_ih,
            grad_w_hh,
            grad_b if ctx.needs_input_grad[3] else None,
            grad_b if ctx.needs_input_grad[4] else None,
            None,
        )


class FusedRNN(nn.RNN):
    """``nn.RNN`` whose one-layer, unidirectional, batch-first CPU training step runs
    :class:`_ElmanLayer`; every other case (evaluation and export, CUDA's cuDNN kernel,
    a given initial state, several layers) is ``nn.RNN``'s own. Same parameters, so the
    same state dict. Under CPU autocast the layer runs in fp32 (see ``forward``)."""

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, hx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # A CPU's bf16 gains nothing on 28 small per-step products (the rnn model
            # trained at 0.8x its fp32 speed under bf16 autocast): the recurrence stays
            # fp32, which is also where the fused step applies.
            with torch.autocast("cpu", enabled=False):
                return self.forward(x.float(), None if hx is None else hx.float())
        if not self._fusable(x, hx):
            return super().forward(x, hx)
        h_all = _ElmanLayer.apply(
            x.transpose(0, 1).contiguous(),
            self.weight_ih_l0,
            self.weight_hh_l0,
            self.bias_ih_l0,
            self.bias_hh_l0,
            self.nonlinearity == "relu",
        )
        return h_all.transpose(0, 1), h_all[-1:]

    def _fusable(self, x: torch.Tensor, hx: torch.Tensor | None) -> bool:
        """Training steps on a CPU only: the gain is in the backward, and evaluation,
        tracing and export (TorchScript cannot record a Python autograd Function) get
        ``nn.RNN``'s own kernel, the same math."""
        return (
            self.training
            and torch.is_grad_enabled()
            and not torch.jit.is_tracing()
            and not torch.jit.is_scripting()
            and x.device.type == "cpu"
            and x.dim() == 3
            and hx is None
            and self.num_layers == 1
            and not self.bidirectional
            and self.batch_first
            and self.bias
            and self.proj_size == 0
            and x.dtype == torch.float32
        )


def fuse_rnn(rnn: nn.RNN) -> nn.RNN:
    """Make ``rnn`` a :class:`FusedRNN` in place (its parameters stay as they are)."""
    rnn.__class__ = FusedRNN
    return rnn
