"""The index's parse workers end with their server: a server stopped mid-build (as a host does when a
conversation ends) must not leave processes behind. Real server over stdio, real index build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sysconfig
import time
from pathlib import Path

from tests.helpers import server_command


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def send(process: subprocess.Popen[bytes], message: dict) -> dict | None:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())
    process.stdin.flush()
    return json.loads(process.stdout.readline()) if "id" in message else None


def test_parse_workers_end_when_the_server_is_killed_mid_build(server_env: dict[str, str]) -> None:
    env = {**server_env, "RLM_ALLOWED_ROOTS": sysconfig.get_paths()["stdlib"]}
    with subprocess.Popen([server_command()], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as process:
        kill_mid_build(process)


def kill_mid_build(process: subprocess.Popen[bytes]) -> None:
    stdlib = sysconfig.get_paths()["stdlib"]
    try:
        send(process, {"id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        send(process, {"method": "notifications/initialized"})
        loaded = send(process, {"id": 2, "method": "tools/call",
                                "params": {"name": "load_context", "arguments": {"source": [stdlib]}}})
        assert loaded is not None and "result" in loaded, loaded
        deadline = time.monotonic() + 20
        workers: set[int] = set()
        while not workers and time.monotonic() < deadline:  # the build's pool, beside the jail
            workers = {pid for pid in children_of(process.pid) if b"nsjail" not in
                       (Path("/proc") / str(pid) / "cmdline").read_bytes()}
            time.sleep(0.05)
        assert workers, "the index build started no worker processes"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if alive(pid)], "parse workers outlived their server"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
