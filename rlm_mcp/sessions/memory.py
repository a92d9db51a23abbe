"""Give freed heap back to the operating system.

glibc keeps the arenas of freed Python objects, so a server that just built a large index, or closed a
session, would otherwise keep its peak size for the rest of its life. Elsewhere (macOS, Windows) there
is no glibc and nothing to trim.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import platform


def release_memory() -> None:
    """Collect, then trim (glibc only): after a session ends or an index is built."""
    gc.collect()
    if platform.system() != "Linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
