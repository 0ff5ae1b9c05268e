"""The one exception type users see, and how stages turn it into a one-line message."""

from __future__ import annotations

import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A problem the user can fix: the message names the problem and the fix, on one line."""


class FormatError(PipelineError):
    """A data file is not what it claims to be (bad magic, truncated, a bad CSV row...)."""


class ChecksumError(PipelineError):
    """A file's decompressed content does not match the checksum published in the code."""


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(); a PipelineError becomes ``error: ...`` on stderr and exit 2.

    Unexpected exceptions still raise with a traceback: those are bugs, not user errors.
    """
    try:
        main()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
