"""The guest as a host process: the tail of what it writes to stderr, how it is killed, how its exit reads.

Nothing here speaks the guest's protocol (channel.py) or decides when to start or stop it (lifecycle.py).
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal

import anyio
from anyio.abc import Process

LOG_TAIL_BYTES = 64 * 1024


class LogTail:
    """The last `limit` bytes nsjail and the guest wrote to stderr, for the message of a failed start."""

    def __init__(self, limit: int = LOG_TAIL_BYTES) -> None:
        self.limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._bytes = 0

    def clear(self) -> None:
        self._chunks.clear()
        self._bytes = 0

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")

    async def drain(self, process: Process) -> None:
        """Read `process`'s stderr until it closes, keeping only the tail (a guest may write without end)."""
        assert process.stderr is not None
        try:
            async for chunk in process.stderr:
                self._chunks.append(chunk)
                self._bytes += len(chunk)
                while self._bytes > self.limit and len(self._chunks) > 1:
                    self._bytes -= len(self._chunks.popleft())
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return


async def kill_jail(process: Process) -> None:
    """Kill the guest first so nsjail reaps it, then nsjail itself.

    The guest shares nsjail's process group (skip_setsid) and is the init of its pid namespace, so
    killing the group's members takes every guest process. Killing nsjail first would orphan the
    guest to the host's init, which may never reap it. Without /proc or process groups (macOS,
    Windows: the wasm backend, one Deno process) killing the process itself is all there is.
    """
    if not hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        return
    for pid in group_members(process.pid):
        if pid != process.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with anyio.move_on_after(1):
        await process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def group_members(pgid: int) -> list[int]:
    """The processes of process group `pgid`, read from /proc (none where there is no /proc)."""
    members: list[int] = []
    if not os.path.isdir("/proc"):
        return members
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
    return members


def describe_exit(code: int | None) -> str:
    """A guest's exit status in words that name the likely limit (what a model reads after a kill)."""
    if code is None:
        return "it stopped answering"
    signal_number = -code if code < 0 else code - 128 if code > 128 else None
    if signal_number == getattr(signal, "SIGKILL", None):
        return "killed by SIGKILL (out of memory, the session's CPU or wall-clock limit, or a hard kill)"
    if signal_number == getattr(signal, "SIGSYS", None):
        return "killed by the seccomp policy (a forbidden system call)"
    if signal_number == getattr(signal, "SIGXCPU", None):
        return "killed for using up the session's CPU-time limit"
    if signal_number and signal_number in signal.Signals._value2member_map_:
        return f"killed by signal {signal.Signals(signal_number).name}"
    return f"exited with status {code}"
