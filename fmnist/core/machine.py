"""What machine a figure came from: CPU model, the ISA flags that change kernels, cores,
library versions. Every benchmark result and the train stage record it, because oneDNN
picks other kernels (and so other rounding) on a CPU with other flags."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

# The flags that decide which CPU kernels run: AVX-512 (and its bf16 dot products), AMX.
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's marketing name from /proc/cpuinfo, else platform's guess."""
    for line in (cpuinfo if cpuinfo is not None else _cpuinfo()).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags(cpuinfo: str | None = None) -> set[str] | None:
    """Every flag /proc/cpuinfo lists for this CPU; None where there is no such list."""
    for line in (cpuinfo if cpuinfo is not None else _cpuinfo()).splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


def isa_flags(cpuinfo: str | None = None) -> list[str]:
    """The kernel-deciding flags this CPU has, in :data:`ISA_FLAGS` order."""
    present = cpu_flags(cpuinfo) or set()
    return [f for f in ISA_FLAGS if f in present]


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no flags to report
        return ""


def machine_info() -> dict[str, Any]:
    """The machine a figure was measured on, as plain data for a results JSON."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "isa": isa_flags(),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def memory_bytes() -> int:
    """This machine's memory, from the OS (what a model's size is judged against)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def describe_machine(info: dict[str, Any]) -> str:
    """One line a reader can compare: ``AMD EPYC (avx2), 2 cores, torch 2.13.0``."""
    flags = ", ".join(info.get("isa") or []) or "no AVX2"
    gpu = f", {info['gpu']}" if info.get("gpu") else ""
    cores = info.get("cores", "?")
    return f"{info.get('cpu', '?')} ({flags}), {cores} cores{gpu}, torch {info.get('torch', '?')}"


def provenance() -> dict[str, Any]:
    """The command that is running (as typed, module form), today's date and the machine:
    what a results file records so a reader can tell where and how it was made."""
    argv = sys.argv[:]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:  # `python -m bench.speed ...`
        command = ["python", "-m", spec.name.removesuffix(".__main__"), *argv[1:]]
    else:
        command = ["python", *argv]
    return {
        "command": shlex.join(command),
        "commit": git_commit(),
        "date": _dt.date.today().isoformat(),
        "machine": machine_info(),
    }


def git_commit() -> str | None:
    """The checkout's commit (short), ``+changes`` when its code differs from it: the
    code a result was made with. None outside a git checkout."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=30)
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short=10", "HEAD")
    if commit is None:
        return None
    changed = git("status", "--porcelain", "--", "fmnist", "stages", "bench", "conf")
    return commit + ("+changes" if changed else "")
