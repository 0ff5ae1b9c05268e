"""A stage lives no longer than the ``dvc`` process that started it.

Killing ``dvc repro`` or ``dvc exp run`` (``kill -9``, a closed terminal on a remote
machine) does not stop the stage it was running: the stage is re-parented and goes on
writing into the workspace, where the next run meets it half way. Linux only: the
stage asks the kernel for SIGTERM when its parent dies, and a daemon thread watches
the nearest ``dvc`` ancestor (the shell between them may outlive it) and ends the
process when it is gone. Elsewhere, and outside DVC, nothing is watched.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from pathlib import Path

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state, ppid, ...), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def _started(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): with the pid, who it is."""
    fields = _stat(pid)
    return fields[19] if fields else None


def _is_dvc(pid: int) -> bool:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(w.decode(errors="replace")).name in ("dvc", "dvc.exe") for w in words[:3]) or (
        b"-m" in words[:3] and b"dvc" in words[:4]
    )


def dvc_ancestor(pid: int | None = None) -> int | None:
    """The nearest ancestor process that is ``dvc``, or None."""
    pid = _parent_of(pid or os.getpid())
    while pid and pid > 1:
        if _is_dvc(pid):
            return pid
        pid = _parent_of(pid)
    return None


def hold() -> int | None:
    """Tie this process's life to the ``dvc`` that started it; return that pid (None:
    not started by DVC, or not on Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    with contextlib.suppress(OSError, AttributeError):  # a libc without prctl
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    dvc = dvc_ancestor()
    if dvc is None and os.environ.get("DVC_STAGE"):  # DVC set it: its dvc is gone already
        _stop("the dvc process that started this stage has ended")
    if dvc is not None:
        threading.Thread(target=_watch, args=(dvc,), daemon=True, name="lifeline").start()
    return dvc


def _watch(dvc: int) -> None:
    started = _started(dvc)
    event = threading.Event()
    while not event.wait(POLL_SECONDS):
        if _started(dvc) != started:  # gone, or its number now names another process
            _stop(f"the dvc process that started this stage ({dvc}) has ended")


def _stop(why: str) -> None:
    print(
        f"error: {why}; stopping, so that no run writes into the workspace unseen",
        file=sys.stderr,
        flush=True,
    )
    os._exit(3)
