"""Choosing the accelerator and making runs reproducible on it."""

from __future__ import annotations

import ctypes
import os
import random
import sys

import numpy as np
import torch

from fmnist.core import kernels
from fmnist.core.errors import PipelineError

DEVICES = ("auto", "cpu", "cuda", "mps")


def select_device(name: str = "auto", setting: str = "train.device") -> torch.device:
    """CUDA, else MPS, else CPU for ``auto``; a named device must exist. ``setting`` is
    what the user typed it as, for the error (``train.device``, ``--device``)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if name not in available:
        raise PipelineError(f"{setting} is {name!r}; use one of {', '.join(DEVICES)}")
    if not available[name]:
        raise PipelineError(f"{setting} is {name!r} but no {name} device is present; use auto")
    return torch.device(name)


def set_threads(threads: int, share: int = 1, reproducible: str = "fastest") -> int:
    """Use ``threads`` CPU threads; return the count.

    0 means: for a ``portable`` run, 2 on every machine (each thread sums its own share,
    so the count is part of the result); else ``FMNIST_THREADS`` if set (parallel ``dvc
    queue`` workers share the cores that way), else this process's share of the cores it
    may use (``share`` processes, DDP).
    """
    if reproducible == "portable":
        threads = kernels.portable_threads(threads)
    cores = len(os.sched_getaffinity(0))
    threads = threads or int(os.environ.get("FMNIST_THREADS", "0")) or max(1, cores // share)
    torch.set_num_threads(threads)
    return threads


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
# glibc's cap on its own adaptive threshold (64-bit), and the most older glibc accepts
HEAP_BLOCKS_UP_TO = 32 << 20


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse instead of handing them back to the OS.

    Why: by default glibc maps large blocks (over 128 KiB at first) with ``mmap``, unmaps
    them when freed and trims the heap's free top. A training step frees its activations
    and gradients, a few MiB each, and the next step allocates them again as fresh pages:
    one page fault and a zeroed page per 4 KiB. For cnn1 on a 2-core CPU that was about
    4,000 faults per step and a third of its time (the benchmarks' engine loop: 5.9 ->
    3.6-4.1 s per epoch); most zoo models gained 10-35 %. Serving blocks up to 32 MiB
    from the heap and never trimming it keeps those pages mapped; the heap still holds
    no more than a step's peak. Returns whether it applied: Linux with glibc only
    (musl's ``mallopt`` refuses), a no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, HEAP_BLOCKS_UP_TO) and mallopt(M_TRIM_THRESHOLD, 1 << 30))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def describe(device: torch.device) -> str:
    """A human-readable device name for the metrics (``cpu``, ``cuda:NVIDIA H100``...)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (x86 AVX512-BF16 or AMX).

    There bf16 products run at several times the fp32 rate (a 2048x2048 matrix product:
    397 against 145 GFLOP/s on a 2-core AMD EPYC with avx512_bf16); on CPUs without it
    (AVX2-only) PyTorch emulates bf16 and runs slower than fp32.
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def autocast_dtype(
    precision: str, device: torch.device, reproducible: str = "fastest"
) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or None for plain fp32.

    ``auto`` uses bf16 where the hardware computes in it natively: CUDA GPUs that
    support it (tensor cores, half the memory traffic) and CPUs with AVX512-BF16 or AMX
    (:func:`cpu_has_native_bf16`); elsewhere bf16 is slower than fp32, so ``auto`` keeps
    fp32. A ``portable`` CPU run computes in fp32: its AVX2 baseline has no bf16 (see
    :mod:`fmnist.core.kernels`).
    """
    portable_cpu = reproducible == "portable" and device.type == "cpu"
    if precision == "bf16":
        if portable_cpu:
            raise PipelineError(PORTABLE_BF16)
        return torch.bfloat16
    if precision != "auto" or portable_cpu:
        return None
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


PORTABLE_BF16 = (
    "train.precision is bf16, but train.reproducible: portable computes on the CPU in fp32 "
    "(its AVX2 baseline has no bf16); set train.reproducible=fastest or train.precision=auto"
)


def portable_bf16_refused(precision: str, reproducible: str, device: str) -> bool:
    """Whether these params ask for bf16 on a portable CPU run, which cannot be: what
    stage check refuses before any output is touched (``auto`` resolving to the CPU)."""
    on_cpu = device == "cpu" or (device == "auto" and select_device("auto").type == "cpu")
    return precision == "bf16" and reproducible == "portable" and on_cpu


def kernel_mode_in_effect() -> str:
    """``portable`` where this process's CPU kernels are pinned, else ``fastest``: what a
    benchmark that did not choose a mode times."""
    return "portable" if kernels.is_pinned() else "fastest"


def set_up_kernels(reproducible: str, device: torch.device) -> None:
    """Make ``reproducible`` hold on ``device``: cuDNN's deterministic algorithms for a
    portable GPU run (identical on the same GPU model and software only), its autotuner
    for the fastest one; on the CPU, say when portable was asked for but is not pinned."""
    if device.type == "cuda":
        portable = reproducible == "portable"
        torch.backends.cudnn.deterministic = portable
        torch.backends.cudnn.benchmark = not portable
        return
    if device.type == "cpu" and (notice := kernels.unpinned_notice(reproducible)):
        print(notice, file=sys.stderr)


def peak_memory_mb(device: torch.device) -> float:
    """The most memory this process has held so far, in MiB: what a user must have free.

    On CUDA the tensors PyTorch allocated (``max_memory_allocated``); elsewhere the
    process's peak resident set, which counts the Python and PyTorch runtime too, so it
    is what `top` would have shown at the worst moment. On Linux that is ``VmHWM``:
    ``ru_maxrss`` survives ``exec``, so a process forked from a big parent (pytest, a
    notebook) would report the parent's size instead of its own.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    hwm_kib = _linux_high_water_mark_kib()
    if hwm_kib is not None:
        return hwm_kib / 1024
    import resource  # POSIX only; imported here so that Windows can still train

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes / KiB


def _linux_high_water_mark_kib() -> int | None:
    """This process's own peak RSS from /proc (``VmHWM``), or None where there is none."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None
