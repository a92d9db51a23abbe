"""Nothing outlives the server: with a busy loop running in a session's REPL, the server stopped by SIGTERM or
SIGINT (what a host, a service manager or a terminal sends) or killed by SIGKILL (a crash, the OOM killer)
leaves no process behind -- no nsjail, no guest, no Deno -- within 2 s, on both backends, over stdio and
over HTTP (a Kubernetes pod stop is a SIGTERM)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.helpers import link_wasm_cache, server_command, stdio_client
from tests.server.test_http import start

pytestmark = pytest.mark.anyio
BUSY = {"code": "while True: pass", "timeout_s": 600}


def children_of(pid: int) -> dict[int, int]:
    """pid -> parent pid of every process on the machine."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(pid: int) -> set[int]:
    parents = children_of(pid)
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def server_pid() -> int:
    """The rlm-mcp server this test process started over stdio."""
    command = server_command().encode()
    for pid, parent in children_of(os.getpid()).items():
        with contextlib.suppress(OSError):
            if parent == os.getpid() and command in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    pytest.fail("the server process was not found")


async def stop_while_busy(client: Client, server: int, backend: str, signum: int) -> tuple[set[int], bool]:
    """Start a busy loop in a session, send the server `signum` while it runs, wait (5 s at most) for the
    server to end; the processes the server had while the loop ran, and whether it ended."""
    await client.call_tool("load_context", {"text": "some text"})

    async def busy() -> None:
        with contextlib.suppress(Exception):  # the call fails when its server goes
            await client.call_tool("exec_code", BUSY)

    async with anyio.create_task_group() as group:
        group.start_soon(busy)
        await anyio.sleep(1.0)  # the loop is running
        processes = descendants(server)
        os.kill(server, signum)
        started = time.monotonic()
        while running(server) and time.monotonic() - started < 5:
            await anyio.sleep(0.05)
        stopped = not running(server)
        group.cancel_scope.cancel()
    return processes | {server}, stopped


def assert_stopped(outcome: tuple[set[int], bool] | None, backend: str, signum: int) -> set[int]:
    """The server ended within 5 s of `signum`, having had its jail (or Deno) while the loop ran; checked
    outside the client, whose transport breaks when its server goes (and whose errors are suppressed)."""
    assert outcome is not None, "the session never started"
    processes, stopped = outcome
    assert stopped, f"the server was still running 5 s after signal {signum}"
    expected = {"nsjail": 2, "wasm": 1}[backend] + 1  # nsjail and its guest; one Deno process; the server
    assert len(processes) >= expected, processes
    return processes


def assert_all_gone(processes: set[int], within_s: float = 2.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(running(pid) for pid in processes):
        time.sleep(0.05)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in processes if running(pid)}
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"left running {within_s} s after the server stopped: {left}"


@pytest.mark.parametrize("backend", ["nsjail", "wasm"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["TERM", "INT", "KILL"])
async def test_no_process_outlives_a_stdio_server(server_env: dict[str, str], backend: str, signum: int,
                                                  tmp_path: Path) -> None:
    link_wasm_cache(tmp_path / "home")
    outcome = None
    with contextlib.suppress(Exception):  # the client's transport breaks when its server goes
        async with stdio_client({**server_env, "RLM_SANDBOX": backend}) as client:
            outcome = await stop_while_busy(client, server_pid(), backend, signum)
    assert_all_gone(assert_stopped(outcome, backend, signum))


async def test_sigterm_stops_an_http_server_with_a_busy_session(server_env: dict[str, str]) -> None:
    process, url = start(server_env)
    try:
        outcome = None
        with contextlib.suppress(Exception):
            async with Client(url) as client:
                outcome = await stop_while_busy(client, process.pid, "nsjail", signal.SIGTERM)
        assert_all_gone(assert_stopped(outcome, "nsjail", signal.SIGTERM))
    finally:
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        process.stderr.close()
