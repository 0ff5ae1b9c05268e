"""Multi-process training with PyTorch DDP: one process per device (or CPU share).

Launched by ``torchrun`` (``train.launcher: torchrun``), each process reads its rank
from the environment. The data is sharded by rank inside every global batch, so N
processes train on the same batches one process would; gradients are averaged by DDP;
rank 0 alone logs, checkpoints and writes outputs. NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched_world() -> World:
    """The world torchrun described in the environment (a single process otherwise)."""
    return World(
        rank=int(os.environ.get("RANK", 0)),
        size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init(world: World, device: torch.device) -> torch.device:
    """Join the process group; on CUDA each process takes the GPU of its local rank."""
    if not world.distributed:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DDP-wrap ``model`` when there are several processes."""
    if not world.distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper (checkpoints hold its state dict)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def sum_all(*values: torch.Tensor) -> list[torch.Tensor]:
    """Sum each tensor over all processes (identity for one process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    for value in values:
        dist.all_reduce(value)
    return list(values)


def sync_buffers(model: nn.Module) -> None:
    """Give every process rank 0's buffers (batch-norm statistics) before evaluating, so
    all ranks see the same validation figures and take the same early-stopping decision."""
    if dist.is_available() and dist.is_initialized():
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, 0)


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This process's share of one global batch."""
    if not (dist.is_available() and dist.is_initialized()):
        return indices
    return indices[dist.get_rank() :: dist.get_world_size()]
