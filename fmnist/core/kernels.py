"""Which CPU kernels compute: a baseline every x86 machine we meet shares (``portable``),
or the best this CPU has (``fastest``). Param ``train.reproducible``.

Why: oneDNN, MKL and ATen each pick kernels by the CPU's instruction set (AVX2,
AVX-512, AMX), and other kernels sum in another order, so the same params and seed gave
93.47 % on an Intel Xeon with AMX and 93.29 % on an AMD EPYC. Pinning all three to AVX2
(ATen's capability, oneDNN's max ISA, MKL's conditional numerical reproducibility in
its vendor-neutral ``COMPATIBLE`` branch) and the thread count to 2 gives every x86-64
CPU with AVX2 (Intel since 2013, AMD since Zen) the same kernels. AVX2 has no bf16, so
portable runs compute in fp32.

The libraries read these settings once, when they first run a kernel, so they must be
in the environment before torch computes anything: ``stages/__init__.py`` calls
:func:`pin_from_params` before any stage imports torch. This module imports no torch.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from fmnist.core.machine import cpu_flags

MODES = ("portable", "fastest")
BASELINE = "AVX2"  # the instruction set every developer and CI machine has
PORTABLE_THREADS = 2  # summation order splits by thread: one count for every machine
PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's vectorised kernels (norms, losses, optimizers)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's convolutions
    "MKL_CBWR": "COMPATIBLE",  # MKL's matrix products; its AVX2 branch is Intel-only
}


def cpu_runs_baseline(cpuinfo: str | None = None) -> bool:
    """Whether this CPU can run the AVX2 baseline: x86-64 with AVX2 and FMA.

    Where no flags can be read (macOS, Windows) an x86-64 CPU is taken to have them, as
    every one since 2013 does; :func:`is_pinned` then asks ATen what it really runs.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    flags = cpu_flags(cpuinfo)
    return flags is None or {"avx2", "fma"} <= flags


def pin(mode: str) -> bool:
    """Set the environment for ``mode`` before torch runs a kernel; return whether the
    portable baseline is pinned. ``fastest``, CPUs that cannot run the baseline (ARM,
    x86 without AVX2) and a process that has imported torch already (a notebook, a test
    importing a stage) leave the environment as it is: the libraries may have read it,
    and a half-applied pin would be worse than none. A run records ``pinned: false``
    then, and :func:`unpinned_notice` says why on stderr."""
    if mode != "portable" or not cpu_runs_baseline() or "torch" in sys.modules:
        return False
    os.environ.update(PORTABLE_ENV)
    return True


def pin_from_params(path: str | Path = "params.yaml") -> bool:
    """:func:`pin` with ``train.reproducible`` from ``path`` (default portable).

    An unreadable params file or an unknown mode pins nothing here: the stage then
    reads params.yaml itself and reports the problem in its one-line error.
    """
    try:
        import yaml

        raw = yaml.safe_load(Path(path).read_text()) or {}
        mode = (raw.get("train") or {}).get("reproducible", "portable")
    except (OSError, ValueError, AttributeError):  # yaml.YAMLError is a ValueError
        return False
    return pin(mode) if mode in MODES else False


def in_effect(mode: str) -> dict[str, Any]:
    """What computes now, for metrics/train.json: a reviewer reads here why two runs
    differ (another mode, ISA, library version). Call after torch is imported."""
    import torch

    record: dict[str, Any] = {
        "mode": mode,
        "baseline": BASELINE if mode == "portable" else "none",
        "pinned": mode == "portable" and is_pinned(),
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL"),
        "mkl_cbwr": os.environ.get("MKL_CBWR", "OFF"),
    }
    return record | library_versions()


def is_pinned() -> bool:
    """Whether every portable setting is in this process's environment and ATen uses
    the baseline (it would not if torch had computed before the pin)."""
    import torch

    env_ok = all(os.environ.get(k) == v for k, v in PORTABLE_ENV.items())
    return env_ok and torch.backends.cpu.get_cpu_capability() == BASELINE


def library_versions() -> dict[str, str]:
    """torch, oneDNN and MKL versions, from torch's build configuration."""
    import re

    import torch

    config = torch.__config__.show()
    onednn = re.search(r"MKL-DNN v([\d.]+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    return {
        "torch": torch.__version__,
        "onednn": onednn.group(1) if onednn else "none",
        "mkl": mkl.group(1) if mkl else "none",
    }


def portable_threads(threads: int) -> int:
    """The thread count a portable run uses: the one asked for, else 2 on every machine."""
    return threads or PORTABLE_THREADS


def unpinned_notice(mode: str) -> str | None:
    """One line for stderr when ``portable`` was asked for but is not in effect, else None."""
    if mode != "portable" or is_pinned():
        return None
    if not cpu_runs_baseline():
        return (
            f"notice: train.reproducible is portable, but this CPU ({platform.machine()}) "
            "has no AVX2: results repeat on this machine only, not on x86 machines"
        )
    return (
        "notice: train.reproducible is portable, but the CPU kernels were not pinned "
        "(torch ran first): run through `python -m stages.<name>` or `dvc repro`"
    )
