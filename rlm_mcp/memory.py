"""Give freed heap back to the operating system.

glibc keeps the arenas of freed Python objects, so a server that just built a large index, or closed a
session, would otherwise keep its peak size for the rest of its life.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc


def release_memory() -> None:
    """Collect, then trim: after a session ends or an index is built."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
