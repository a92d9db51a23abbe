"""A server killed outright (SIGKILL, as a host may do when a conversation ends) leaves no files behind
in the temporary directory: nsjail's config is removed as soon as the jail is up."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from tests.helpers import server_command


def call(process: subprocess.Popen[bytes], message: dict) -> dict:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())
    process.stdin.flush()
    return json.loads(process.stdout.readline()) if "id" in message else {}


def test_a_killed_server_leaves_no_jail_config_behind(server_env: dict[str, str], tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**server_env, "RLM_SANDBOX": "nsjail", "TMPDIR": str(scratch)}
    with subprocess.Popen([server_command()], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as process:
        try:
            call(process, {"id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
            call(process, {"method": "notifications/initialized"})
            ran = call(process, {"id": 2, "method": "tools/call",
                                 "params": {"name": "exec_code", "arguments": {"code": "print(6 * 7)"}}})
            assert ran["result"]["structuredContent"]["stdout"] == "42\n", ran
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
    assert sorted(path.name for path in scratch.iterdir() if path.name.startswith("rlm-")) == []
