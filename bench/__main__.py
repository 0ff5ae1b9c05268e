"""The benchmarks, one entry point: ``python -m bench TOOL [args]``.

Every tool takes ``--set KEY=VALUE`` (spelt as for ``dvc exp run -S``) and ``--out PATH``
(``PATH.json`` with the command, git commit, date and machine, and ``PATH.md`` rendered
from it). Kernels are pinned as the stages pin them (``train.reproducible``, from
``--set`` or params.yaml) before any tool imports torch.
"""

from __future__ import annotations

import importlib
import os
import sys

from fmnist.core import kernels
from fmnist.core.errors import run_stage

TOOLS = {
    "speed": ("bench.speed", "training images/s: the engine against a plain PyTorch loop"),
    "epochs": ("bench.epoch_seconds", "seconds per training epoch of every model"),
    "kernels": ("bench.kernels", "what portable kernels cost against the fastest"),
    "keras": ("bench.versus_keras", "the engine against Keras on the same CPU"),
    "serve": ("bench.serve_load", "the model server under load"),
    "gpu": ("bench.gpu_suite", "every GPU figure in one bounded run"),
    "emulated-cpu": ("bench.emulated_cpu", "portable kernels under another CPU (QEMU)"),
    "sweep": ("bench.sweep_share", "a sweep across worker clones against one worker"),
    "photos": ("bench.photos", "top-1, top-3 and unsure on a folder of real photos"),
}


def usage() -> str:
    lines = [f"  {name:<13} {about}" for name, (_, about) in TOOLS.items()]
    return "usage: python -m bench TOOL [args] [--set KEY=VALUE] [--out PATH]\n" + "\n".join(lines)


def kernel_mode(argv: list[str]) -> str | None:
    """``train.reproducible`` as ``--set`` gives it, or None (params.yaml decides)."""
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg in ("--set", "-S") and i + 1 < len(argv) else arg
        if value.startswith("train.reproducible="):
            return value.split("=", 1)[1]
    return None


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(usage())
        return
    tool, argv = sys.argv[1], sys.argv[2:]
    if tool not in TOOLS:
        sys.exit(f"error: no benchmark {tool!r}; valid: {', '.join(TOOLS)}")
    mode = kernel_mode(argv)
    if mode == "fastest":  # a pin inherited from a parent would hold the CPU back
        for key in kernels.PORTABLE_ENV:
            os.environ.pop(key, None)
    kernels.pin(mode) if mode in kernels.MODES else kernels.pin_from_params()
    module = importlib.import_module(TOOLS[tool][0])
    run_stage(lambda: module.main(argv))


if __name__ == "__main__":
    main()
