"""After `rlm-mcp install <host>`, the host's own CLI sees the server: `claude mcp list` connects to it, and
Codex and Gemini CLI list it (Gemini CLI connects too). The real CLIs from npm (`./dev.sh test` puts them in
.tools/), offline, with HOME in a temporary directory and nothing configured but what `install` wrote.
Elsewhere the tests are skipped when a CLI is missing; on CI they fail.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.helpers import NODE_BIN, needs_node_tool, node_tool, server_command
from tests.server.test_plugin import OFFLINE


def installed(host: str, home: Path, root: Path) -> dict[str, str]:
    """Run `rlm-mcp install HOST` as a user would, with HOME at `home`; returns that user's environment."""
    home.mkdir(exist_ok=True)
    env = {**OFFLINE, "HOME": str(home), "PATH": f"{NODE_BIN}{os.pathsep}/usr/bin:/bin"}
    completed = subprocess.run([server_command(), "install", host, "--root", str(root)], capture_output=True,
                               text=True, timeout=60, env=env, cwd=home)
    assert completed.returncode == 0, completed.stderr
    return env


def cli(tool: str, *args: str, env: dict[str, str], cwd: Path) -> str:
    completed = subprocess.run([str(node_tool(tool)), *args], capture_output=True, text=True, timeout=120,
                               env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    assert completed.returncode == 0, f"{tool} {' '.join(args)}:\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}"
    return completed.stdout + completed.stderr  # Gemini CLI lists its servers on stderr


def line_of(listed: str, prefix: str) -> str:
    return next((line for line in listed.splitlines() if line.strip().startswith(prefix)), listed)


@needs_node_tool("claude", "Claude Code CLI")
def test_claude_code_connects(tmp_path: Path) -> None:
    env = installed("claude-code", tmp_path / "home", tmp_path)
    line = line_of(cli("claude", "mcp", "list", env=env, cwd=tmp_path), "rlm:")
    assert server_command() in line and "Connected" in line, line


@needs_node_tool("codex", "Codex CLI")
def test_codex_lists_it(tmp_path: Path) -> None:
    env = installed("codex", tmp_path / "home", tmp_path)
    line = line_of(cli("codex", "mcp", "list", env=env, cwd=tmp_path), "rlm ")
    assert server_command() in line and "serve" in line and "enabled" in line, line
    details = cli("codex", "mcp", "get", "rlm", env=env, cwd=tmp_path)
    assert "RLM_ALLOWED_ROOTS" in details


@needs_node_tool("gemini", "Gemini CLI")
def test_gemini_cli_lists_it_and_connects(tmp_path: Path) -> None:
    env = installed("gemini-cli", tmp_path / "home", tmp_path)
    # A dummy key stands in for a login; MCP servers run only in a trusted folder.
    env |= {"GEMINI_API_KEY": "sk-offline", "GEMINI_CLI_TRUST_WORKSPACE": "true"}
    listed = cli("gemini", "mcp", "list", env=env, cwd=tmp_path)
    line = line_of(listed.replace("✓", "").replace("✗", ""), "rlm:")
    assert server_command() in line and "Connected" in line, listed
