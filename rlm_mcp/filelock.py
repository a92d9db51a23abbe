"""One lock file, held across threads and processes: what several servers sharing an RLM_HOME must do one at
a time -- the content store publishing or evicting entries, Pyodide's first fetch.

POSIX: `flock`, which excludes every other open of the file, in this process or another. Windows: a byte-range
lock, which the C runtime retries for up to 10 s before it gives up with OSError.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold `path` (created 0600 if missing) locked for the block; the lock ends with the block or the process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
