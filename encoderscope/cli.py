"""The error path every `encoderscope` command shares (`atlas build`, `atlas features`, `atlas compare`)."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run_cli(work: Callable[[], int], interrupted: str) -> int:
    """Run a command's `work()` (it returns the exit status) the way every command ends.

    A UserFacingError becomes `error: <its message>` on stderr and exit status 2, never a traceback; Ctrl-C
    becomes `interrupted: <interrupted>` (what the user should know about the files) and status 130, the
    shell's own status for SIGINT. Anything else is a bug and keeps its traceback."""
    from .errors import UserFacingError

    try:
        return work()
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        return 130
