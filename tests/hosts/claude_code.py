"""Drive the real Claude Code CLI (npm, in .tools/) against the scripted model endpoint, offline and not logged in.

`ANTHROPIC_BASE_URL` points it at tests/fakes/model_endpoint.py and a dummy `ANTHROPIC_API_KEY` stands in
for a login; HOME is a private directory, so the run depends on nothing of the machine. Used by
tests/hosts/ and by the host-in-the-loop evaluation (bench/evals/hosts.py), which passes the user's own
endpoint and key instead.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import NODE_BIN, node_tool, server_command

CLAUDE = node_tool("claude")
OFFLINE = {  # no update checks, telemetry or error reports: the CLI must work without the network
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
}
SERVER = "rlm"  # the name our server gets in --mcp-config; Claude Code calls its tools mcp__rlm__<tool>
PLUGIN_SERVER = "plugin_rlm-mcp_rlm"  # ...and through the plugin, mcp__plugin_rlm-mcp_rlm__<tool>


@dataclass(frozen=True)
class Run:
    output: dict[str, Any]  # `claude -p --output-format json`: result, usage, cost, duration
    stderr: str

    @property
    def answer(self) -> str:
        return str(self.output.get("result", ""))


def host_env(server_env: dict[str, str], home: Path, base_url: str, api_key: str = "sk-scripted") -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {**server_env, **OFFLINE, "HOME": str(home), "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": api_key,
            "PATH": f"{NODE_BIN}{os.pathsep}{Path(server_command()).parent}{os.pathsep}/usr/bin:/bin"}


def mcp_config(path: Path, server_env: dict[str, str]) -> Path:
    """An --mcp-config file that starts this checkout's rlm-mcp over stdio with the test's environment."""
    config = {"mcpServers": {SERVER: {"type": "stdio", "command": server_command(), "args": [], "env": server_env}}}
    path.write_text(json.dumps(config))
    return path


def run_claude(prompt: str, *, env: dict[str, str], cwd: Path, server: str = SERVER, config: Path | None = None,
               model: str = "claude-sonnet-4-5", extra: tuple[str, ...] = (), timeout: float = 180) -> Run:
    """One headless session (`claude -p`), our server's tools allowed, nothing else of the user's set-up loaded."""
    args = [str(CLAUDE), "-p", prompt, "--output-format", "json", "--model", model, "--allowedTools", f"mcp__{server}"]
    if config is not None:
        args += ["--mcp-config", str(config), "--strict-mcp-config"]
    completed = subprocess.run([*args, *extra], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
                               stdin=subprocess.DEVNULL)
    assert completed.returncode == 0, f"claude -p failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return Run(json.loads(completed.stdout), completed.stderr)
