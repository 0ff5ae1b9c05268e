"""What the tests share to run real commands: one subprocess runner, and (from bench/)
one temporary git + DVC repository of the pipeline, ``dvc_repo``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.project_copy import project_repo as dvc_repo  # noqa: F401  (the tests' name)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def environment(**env: str) -> dict[str, str]:
    """This environment with this virtual environment's commands first on PATH, the
    repository importable and DVC's analytics off (and ``env`` on top)."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "DVC_NO_ANALYTICS": "1",
        **env,
    }


def run(
    cwd: Path, *args: str, check: bool = True, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess:
    """``args`` in ``cwd`` (see :func:`environment`); ``check``: a failure fails the test
    with the command's whole output."""
    done = subprocess.run(
        args, cwd=cwd, env=environment(**env), capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done


def start(cwd: Path, *args: str, **env: str) -> subprocess.Popen:
    """``args`` started in ``cwd`` in the background, its output discarded: a run a test
    kills, or races with another."""
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=environment(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def output(cwd: Path, *args: str, check: bool = True, **env: str) -> str:
    """What ``args`` printed, stdout then stderr (see :func:`run`)."""
    done = run(cwd, *args, check=check, **env)
    return done.stdout + done.stderr


def dvc(cwd: Path, *args: str, check: bool = True) -> str:
    """What ``dvc args`` printed, run with this environment's DVC."""
    return output(cwd, str(BIN / "dvc"), *args, check=check)


def python_stdout(code: str, *args: str) -> str:
    """What ``python -c code args`` prints, run in a fresh interpreter from the repository
    root: for properties of a whole process (memory, allocator) a pytest run would blur."""
    return run(ROOT, sys.executable, "-c", code, *args, timeout=300).stdout
