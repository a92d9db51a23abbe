"""A dirty bit for a live context: Linux inotify on exactly the directories its walk entered.

Why inotify read directly rather than watchfiles: both answer "nothing changed" in about a
millisecond on a 23,797-file tree (bench/scale_bench.py), but watchfiles delivers events through a
background thread, so a check made right after an edit can come too early: in a loop of write-then-check
it missed 1 edit in 20 with a 1 ms wait (a 5 ms wait per call hid it on an idle machine, which is no
guarantee on a loaded one). The kernel queues an inotify event before the writer's system call
returns, so a non-blocking read of the inotify descriptor at check time sees every edit made before
the call: an edit is visible to the next call, always. Watching only the walked directories also keeps
ignored trees (.git, node_modules, build output) out of the watch list and out of the events.

Elsewhere (macOS, Windows) or when the kernel refuses (fs.inotify.max_user_watches reached), there is
no watcher and a live context walks its sources before every call instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Iterable

__all__ = ["DirectoryWatch", "open_watch"]

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x002, 0x004, 0x008
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x040, 0x080, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_ONLYDIR = 0x400, 0x800, 0x01000000
# Content, metadata (chmod: a file that became unreadable), and every way an entry comes or goes.
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
log = logging.getLogger(__name__)
READ_BYTES = 1 << 16


def _libc() -> ctypes.CDLL:
    if not sys.platform.startswith("linux"):
        raise OSError("inotify is Linux-only")
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def open_watch() -> DirectoryWatch | None:
    """A new watch, or None where there can be none (not Linux, no inotify): the caller walks instead."""
    try:
        return DirectoryWatch()
    except OSError as exc:
        log.info("no file watcher (%s): live contexts walk their sources on every call", exc)
        return None


class DirectoryWatch:
    """Non-recursive inotify watches on a set of directories; `changed()` drains the queue. Construction
    raises OSError where no watch can be had (not Linux, no inotify): the caller walks instead."""

    def __init__(self) -> None:
        self._libc = _libc()
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._fd = fd
        self.failure: OSError | None = None  # set when the kernel refused a watch: the caller walks instead

    def add(self, directory: str) -> None:
        """Watch `directory` (again: the kernel keeps one watch per directory, and a directory deleted and
        made anew needs a new one). The walk calls this before listing each directory it enters, so an
        entry made after the listing is an event. A refusal for good (the per-user watch limit) is kept
        in `failure`: the caller then walks on every call."""
        if self.failure is None and self._libc.inotify_add_watch(self._fd, os.fsencode(directory), MASK) < 0:
            err = ctypes.get_errno()
            if err in (28, 12):  # ENOSPC (max_user_watches), ENOMEM
                self.failure = OSError(err, "inotify watch limit reached (fs.inotify.max_user_watches)")
            # ENOENT, EACCES, ENOTDIR: the directory went away or changed since the walk; the walk that
            # follows the event it caused sees that.

    def add_all(self, directories: Iterable[str]) -> None:
        for directory in directories:
            self.add(directory)

    def changed(self) -> bool:
        """Whether any event arrived since the last call (an overflowed queue counts as a change)."""
        seen = False
        while True:
            try:
                data = os.read(self._fd, READ_BYTES)
            except BlockingIOError:
                return seen
            if not data:
                return seen
            seen = True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
