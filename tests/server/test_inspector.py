"""A client nobody here wrote: the MCP Inspector's CLI lists our tools and calls them over stdio.

Runs when the inspector is installed (`./dev.sh test` installs it into .tools/ when npm exists).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, server_command

INSPECTOR = REPO / ".tools" / "node_modules" / ".bin" / "mcp-inspector"
pytestmark = pytest.mark.skipif(
    (not INSPECTOR.exists() or shutil.which("node") is None) and not os.environ.get("CI"),
    reason="MCP Inspector missing: npm install --prefix .tools @modelcontextprotocol/inspector (on CI: a failure)",
)


def inspector(server_env: dict[str, str], *args: str) -> dict:
    completed = subprocess.run(
        [str(INSPECTOR), "--cli", *(f"-e{k}={v}" for k, v in server_env.items() if k != "PATH"),
         server_command(), *args],
        capture_output=True, text=True, timeout=120, cwd=REPO, env={"PATH": server_env["PATH"]},
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_inspector_lists_tools(server_env) -> None:
    listed = inspector(server_env, "--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}
    assert {"load_context", "exec_code", "session"} <= names
    assert all("outputSchema" in tool for tool in listed["tools"])


def test_inspector_calls_load_context_and_exec_code(server_env, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text("def handler():\n    return 42\n")
    loaded = inspector(server_env, "--method", "tools/call", "--tool-name", "load_context",
                       "--tool-arg", f"source={json.dumps([str(project)])}")
    assert loaded["structuredContent"]["files"] == 1 and not loaded.get("isError")
    ran = inspector(server_env, "--method", "tools/call", "--tool-name", "exec_code",
                    "--tool-arg", "code=print(sum(range(10)))")
    assert ran["structuredContent"]["stdout"] == "45\n" and not ran.get("isError")


def test_inspector_over_streamable_http(server_env) -> None:
    """Over HTTP on loopback (inspector 0.15, the newest that runs on Node 20, cannot send a token header;
    tests/server/test_http.py covers the token with the Python client)."""
    from .test_http import start, stop

    process, url = start(server_env)
    try:
        completed = subprocess.run(
            [str(INSPECTOR), "--cli", url, "--transport", "http", "--method", "tools/call",
             "--tool-name", "exec_code", "--tool-arg", "code=print(2 ** 10)"],
            capture_output=True, text=True, timeout=120, env={"PATH": server_env["PATH"]},
        )
        assert completed.returncode == 0, completed.stderr
        assert json.loads(completed.stdout)["structuredContent"]["stdout"] == "1024\n"
    finally:
        stop(process)
