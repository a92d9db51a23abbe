"""The real Claude Code CLI (npm @anthropic-ai/claude-code, installed into .tools/ by `./dev.sh test`), not
logged in, behind a `claude-code/haiku` worker: `llm_query` fails fast with the CLI's own reason, and the
user's MCP servers and hooks -- which the same CLI does start when called plainly -- stay off.

HOME is a fresh temporary directory holding those settings, so the result does not depend on the
machine. Elsewhere than CI the test is skipped when the CLI is missing; on CI that is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from tests.helpers import needs_node_tool, node_tool, server_command, stdio_client

CLAUDE = node_tool("claude")
pytestmark = [pytest.mark.anyio, needs_node_tool("claude", "Claude Code CLI")]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A HOME whose Claude settings would start an MCP server and run a hook, each leaving a marker."""
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    mcp = {"marker": {"type": "stdio", "command": "sh", "args": ["-c", f"touch {tmp_path}/mcp-started; sleep 5"]}}
    (home / ".claude.json").write_text(json.dumps({"mcpServers": mcp}))
    hook = {"hooks": [{"type": "command", "command": f"touch {tmp_path}/hook-ran"}]}
    (home / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"SessionStart": [hook]}}))
    return home


def markers(home: Path) -> list[str]:
    return sorted(p.name for p in home.parent.iterdir() if p.name in ("mcp-started", "hook-ran"))


def test_the_settings_would_start_a_server_and_a_hook_when_claude_runs_plainly(home: Path, tmp_path: Path) -> None:
    """The premise of the test below: without the backend's flags, this HOME does start both."""
    work = tmp_path / "plain"
    work.mkdir()
    subprocess.run([str(CLAUDE), "-p", "--output-format", "json", "--model", "haiku"], input="hi", text=True,
                   capture_output=True, cwd=work, timeout=60, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    deadline = time.monotonic() + 5
    while len(markers(home)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert markers(home) == ["hook-ran", "mcp-started"]


async def test_llm_query_fails_fast_with_the_clis_reason(server_env, home: Path) -> None:
    env = {**server_env, "HOME": str(home), "RLM_WORKER_MODEL": "claude-code/haiku",
           "PATH": f"{CLAUDE.parent}{os.pathsep}{server_env['PATH']}"}
    async with stdio_client(env) as client:
        started = time.monotonic()
        result = await client.call_tool("exec_code", {"code": "llm_query('Say hi')"})
        elapsed = time.monotonic() - started
    error = result.structured_content["error"]
    assert result.is_error and "Not logged in" in error and "/login" in error, error
    assert elapsed < 30
    await anyio.sleep(1)  # a server or hook, had one been started, would have left its marker by now
    assert markers(home) == []
    assert not list(home.glob(".claude/projects/**/*.jsonl"))  # no session saved


def test_doctor_check_worker_reports_the_reason_and_the_fix(server_env, home: Path) -> None:
    env = {**server_env, "HOME": str(home), "RLM_WORKER_MODEL": "claude-code/haiku",
           "PATH": f"{CLAUDE.parent}{os.pathsep}{server_env['PATH']}"}
    done = subprocess.run([server_command(), "doctor", "--check-worker"], capture_output=True, text=True,
                          env=env, timeout=120)
    line = next(line for line in done.stdout.splitlines() if "worker model" in line)
    assert line.startswith("[FAIL]") and "Not logged in" in line, done.stdout
    assert "fix: run `claude` once and type /login" in done.stdout and done.returncode == 1
