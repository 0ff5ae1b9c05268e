"""Atomic file output: write to a temporary sibling, then rename into place.

A killed stage must never leave a truncated file that looks complete, so every output
goes through these helpers.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fmnist.core.errors import io_error


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    Temporary files a killed earlier run left for ``path`` are removed first. A write
    that fails for want of space or permission becomes a one-line PipelineError naming
    ``path``; torch.save reports a full disk as a RuntimeError, so that is checked too.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise (io_error(exc, path, writing=True) or exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        raise (io_error(exc, path, writing=True) or exc) from None
    except RuntimeError as exc:
        if not _disk_full(path.parent):
            raise
        raise io_error(OSError(errno.ENOSPC, "no space"), path, writing=True) from exc
    finally:
        tmp_path.unlink(missing_ok=True)


def _remove_stale(path: Path) -> None:
    """Delete temporary siblings of ``path`` (``.name.*.tmp``, files or folders) that a
    kill left behind."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _disk_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has (almost) no space left."""
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; on success it replaces ``path``
    (:func:`atomic_group` of one folder)."""
    with atomic_group() as stage:
        tmp = stage(path)
        tmp.mkdir()
        yield tmp


@contextmanager
def atomic_group() -> Iterator[Callable[[str | Path], Path]]:
    """Outputs that appear together or not at all.

    ``stage(path)`` names a temporary sibling to write ``path``'s new content to (files,
    or a folder); when the block ends without an error each replaces its ``path`` by a
    rename, which needs no space; on any error none does and the old outputs stay, so a
    failed run (a crash, a full disk, divergence) leaves the last good ones, never a mix.
    """
    staged: list[tuple[Path, Path]] = []

    def stage(path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(path)
        tmp = path.with_name(f".{path.name}.staged-{os.getpid()}.tmp")
        staged.append((tmp, path))
        return tmp

    try:
        yield stage
        for tmp, path in staged:
            if tmp.is_dir() and path.is_dir():
                shutil.rmtree(path)
            if tmp.exists():
                os.replace(tmp, path)
    except OSError as exc:
        raise (io_error(exc, staged[-1][1] if staged else None, writing=True) or exc) from None
    finally:
        for tmp, _ in staged:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON (stable diffs in git)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
