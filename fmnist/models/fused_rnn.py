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

Under CPU bf16 autocast the products run in bf16, as autocast runs any other layer's,
where that is faster (:func:`layer_precisions`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

# The smallest hidden size whose per-step product is faster in bf16 than in fp32 on a
# CPU with native bf16. On a 2-core AMD EPYC (avx512_bf16), one step at batch 65 takes
# 25 against 50 us at 256 units, but 18 against 14 us at 128 and 15 against 6 us at 64:
# below a few hundred units oneDNN's bf16 call costs more than the arithmetic it saves.
BF16_RECURRENCE_MIN_HIDDEN = 256


class _ElmanLayer(torch.autograd.Function):
    """Time-major (T, N, I) inputs -> every hidden state (T, N, H), in ``x``'s dtype.

    ``products`` is the dtype of the four large products (the input projection and the
    gradients of the input and of both weights), ``recurrence`` that of the per-step
    product and of the hidden states; float32 for both is ``nn.RNN``'s fp32 math.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        w_ih: torch.Tensor,
        w_hh: torch.Tensor,
        b_ih: torch.Tensor,
        b_hh: torch.Tensor,
        relu: bool,
        products: torch.dtype,
        recurrence: torch.dtype,
    ) -> torch.Tensor:
        steps, batch, _ = x.shape
        hidden = w_hh.shape[0]
        x_p, w_ih_p = x.to(products), w_ih.to(products)
        # every step's input projection at once: one large product
        h_all = torch.addmm((b_ih + b_hh).to(products), x_p.reshape(steps * batch, -1), w_ih_p.t())
        h_all = h_all.view(steps, batch, hidden).to(recurrence)
        w_hh_r = w_hh.to(recurrence)
        w_hh_t = w_hh_r.t()
        act = torch.relu_ if relu else torch.tanh_
        h = h_all.unbind(0)
        act(h[0])
        for t in range(1, steps):
            act(h[t].addmm_(h[t - 1], w_hh_t))
        ctx.save_for_backward(x_p, w_ih_p, w_hh_r, h_all)
        ctx.relu = relu
        return h_all.to(x.dtype)

    @staticmethod
    @once_differentiable  # the backward itself is not differentiated (no double backward)
    def backward(ctx: Any, grad_h: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x_p, w_ih_p, w_hh_r, h_all = ctx.saved_tensors
        steps, batch, hidden = h_all.shape
        # g: a copy of the incoming gradient that becomes, in place and step by step from
        # the last, the gradient at each step's pre-activation. Step t's total gradient is
        # the loss's (g[t]) plus step t+1's passed back (g[t+1] W_hh), one addmm_.
        g = grad_h.to(h_all.dtype, memory_format=torch.contiguous_format, copy=True)
        gs, hs = g.unbind(0), h_all.unbind(0)
        for t in range(steps - 1, -1, -1):
            if ctx.relu:
                torch.ops.aten.threshold_backward.grad_input(gs[t], hs[t], 0, grad_input=gs[t])
            else:
                gs[t].mul_(1 - hs[t].square())
            if t:
                gs[t - 1].addmm_(gs[t], w_hh_r)
        fp32 = torch.float32
        g2 = g.view(steps * batch, hidden)
        grad_b = g2.sum(0, dtype=fp32)
        g2 = g2.to(x_p.dtype)
        grad_x = (g2 @ w_ih_p).view(x_p.shape).to(fp32) if ctx.needs_input_grad[0] else None
        grad_w_ih = (g2.t() @ x_p.reshape(steps * batch, -1)).to(fp32)
        # h_{t-1} for t >= 1 (h_{-1} = 0 contributes nothing)
        h_prev = h_all[:-1].reshape(-1, hidden).to(x_p.dtype)
        grad_w_hh = (g2[batch:].t() @ h_prev).to(fp32)
        return (
            grad_x,
            grad_w_ih,
            grad_w_hh,
            grad_b if ctx.needs_input_grad[3] else None,
            grad_b if ctx.needs_input_grad[4] else None,
            None,
            None,
            None,
        )


def layer_precisions(hidden: int) -> tuple[torch.dtype, torch.dtype]:
    """(products, recurrence) dtypes for the layer under the current CPU autocast.

    bf16 autocast: the large products in bf16, where a CPU with native bf16 runs them at
    several times its fp32 rate, and the recurrence in bf16 only from
    :data:`BF16_RECURRENCE_MIN_HIDDEN` units. fp32 (no autocast, or another autocast
    dtype): both fp32, ``nn.RNN``'s math."""
    if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16:
        bf16 = torch.bfloat16
        return bf16, bf16 if hidden >= BF16_RECURRENCE_MIN_HIDDEN else torch.float32
    return torch.float32, torch.float32


class FusedRNN(nn.RNN):
    """``nn.RNN`` whose one-layer, unidirectional, batch-first CPU training step runs
    :class:`_ElmanLayer`; every other case (evaluation and export, CUDA's cuDNN kernel,
    a given initial state, several layers) is ``nn.RNN``'s own. Same parameters, so the
    same state dict. Outputs are fp32 under CPU autocast too (see ``forward``)."""

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, hx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # nn.RNN under CPU autocast casts each of its 28 steps' small products, which
            # made the rnn model train at 0.8x its fp32 speed. The layer runs with
            # autocast off instead, and the fused step picks its own precisions.
            products, recurrence = layer_precisions(self.hidden_size)
            with torch.autocast("cpu", enabled=False):
                hx = None if hx is None else hx.float()
                return self._forward(x.float(), hx, products, recurrence)
        return self._forward(x, hx, torch.float32, torch.float32)

    def _forward(
        self,
        x: torch.Tensor,
        hx: torch.Tensor | None,
        products: torch.dtype,
        recurrence: torch.dtype,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._fusable(x, hx):
            return super().forward(x, hx)
        h_all = _ElmanLayer.apply(
            x.transpose(0, 1).contiguous(),
            self.weight_ih_l0,
            self.weight_hh_l0,
            self.bias_ih_l0,
            self.bias_hh_l0,
            self.nonlinearity == "relu",
            products,
            recurrence,
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
