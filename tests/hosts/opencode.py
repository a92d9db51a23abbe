"""Drive the real OpenCode CLI (npm opencode-ai, in .tools/) against the scripted model endpoint, offline.

Its config (HOME/.config/opencode/opencode.json) points the built-in `anthropic` provider's `baseURL` at
tests/fakes/model_endpoint.py with a dummy key, and names rlm-mcp as a local MCP server. Left alone, OpenCode
runs `npm install @opencode-ai/plugin ...` into a fresh config directory at every start (network at run
time, ~10 s); `OPENCODE_PURE` and the disable flags below stop that, and the npm registry and proxies point
at a closed port, so any attempt to reach the network fails instead of succeeding.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers import NODE_BIN, node_tool, server_command

OPENCODE = node_tool("opencode")
MODEL = "anthropic/claude-sonnet-4-5"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens
OFFLINE = {"OPENCODE_PURE": "1", "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1", "OPENCODE_DISABLE_MODELS_FETCH": "1",
           "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_LSP_DOWNLOAD": "1", "OPENCODE_DISABLE_SHARE": "1",
           "OPENCODE_DISABLE_CLAUDE_CODE": "1", "npm_config_registry": CLOSED + "/", "HTTP_PROXY": CLOSED,
           "HTTPS_PROXY": CLOSED, "NO_PROXY": "127.0.0.1,localhost"}


def mcp_entry(server_env: dict[str, str]) -> dict[str, dict]:
    """OpenCode's `mcp` config entry that runs this checkout's rlm-mcp."""
    return {"rlm": {"type": "local", "command": [server_command()], "environment": server_env, "enabled": True}}


def opencode_home(home: Path, base_url: str, server_env: dict[str, str] | None) -> Path:
    """A HOME whose OpenCode config uses the scripted endpoint, with rlm-mcp unless `server_env` is None."""
    config = home / ".config" / "opencode"
    config.mkdir(parents=True, exist_ok=True)
    (config / "opencode.json").write_text(json.dumps({
        "provider": {"anthropic": {"options": {"baseURL": base_url + "/v1", "apiKey": "sk-scripted"}}},
        "model": MODEL, "autoupdate": False, "share": "disabled",
        "mcp": mcp_entry(server_env) if server_env is not None else {},
    }))
    return home


def run_opencode(prompt: str, *, home: Path | None, cwd: Path, timeout: float = 180, extra: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> list[dict]:
    """`opencode run --format json`: the events of one headless run (env given: the user's own set-up)."""
    if env is None:
        assert home is not None
        env = {"PATH": f"{NODE_BIN}{os.pathsep}/usr/bin:/bin", "HOME": str(home), **OFFLINE}
    completed = subprocess.run([str(OPENCODE), "run", "--format", "json", *extra, prompt], capture_output=True,
                               text=True, timeout=timeout, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    assert completed.returncode == 0, f"opencode run failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
