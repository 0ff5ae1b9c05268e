"""The one exception type users see, and how stages turn it into a one-line message."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A problem the user can fix: the message names the problem and the fix, on one line."""


class FormatError(PipelineError):
    """A data file is not what it claims to be (bad magic, truncated, a bad CSV row...)."""


class ChecksumError(PipelineError):
    """A file's decompressed content does not match the checksum published in the code."""


# errno -> what went wrong, what to do: the I/O failures a user fixes, not bugs
IO_FIXES = {
    errno.ENOSPC: ("the disk is full", "free some space and run again"),
    errno.EDQUOT: ("the disk quota is used up", "free some space and run again"),
    errno.EACCES: ("permission denied", "make it writable (chmod u+w) or run as its owner"),
    errno.EPERM: ("operation not permitted", "make it writable or run as its owner"),
    errno.EROFS: ("the file system is read-only", "work in a writable copy of the repository"),
}
WRITE_ONLY = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}  # failures only a write can meet


def io_error(
    exc: OSError, path: str | os.PathLike[str] | None = None, writing: bool = False
) -> PipelineError | None:
    """The one-line PipelineError for an I/O failure a user can fix, or None for others.
    ``writing``: the failure came from writing ``path`` (else it may have been a read)."""
    if exc.errno not in IO_FIXES:
        return None
    what, fix = IO_FIXES[exc.errno]
    where = path if path is not None else (exc.filename or "a file")
    if writing or exc.errno in WRITE_ONLY:
        return PipelineError(f"cannot write {where}: {what}; {fix}")
    return PipelineError(
        f"cannot access {where}: {what}; check its permissions (ls -l) or run as its owner"
    )


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(); a PipelineError becomes ``error: ...`` on stderr and exit 2,
    and so does an I/O failure a user can fix (full disk, no permission, read-only).

    Unexpected exceptions still raise with a traceback: those are bugs, not user errors.
    """
    try:
        main()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        error = io_error(exc)
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
