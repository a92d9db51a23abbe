"""Drive the real Codex CLI (npm @openai/codex, in .tools/) against the scripted model endpoint, offline.

CODEX_HOME is a private directory whose config.toml names the endpoint as a custom provider (the OpenAI
Responses API, `wire_api = "responses"`) and rlm-mcp as an MCP server. The server is `required`: Codex
gives an optional server one second to start before a turn and silently leaves its tools out otherwise
(measured: rlm-mcp on a loaded machine misses that), so users should set it too (README, Host setup).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers import NODE_BIN, node_tool, server_command

CODEX = node_tool("codex")
MODEL = "gpt-5.2-codex"


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def server_table(server_env: dict[str, str]) -> str:
    """The [mcp_servers.rlm] table that runs this checkout's rlm-mcp."""
    env = ", ".join(f"{key} = {toml_string(value)}" for key, value in server_env.items())
    return f"""[mcp_servers.rlm]
command = {toml_string(server_command())}
required = true
env = {{ {env} }}
"""


def codex_home(home: Path, base_url: str, server_env: dict[str, str] | None) -> Path:
    """A CODEX_HOME for the scripted endpoint, with rlm-mcp configured unless `server_env` is None."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f"""model = "{MODEL}"
model_provider = "scripted"
approval_policy = "never"

[model_providers.scripted]
name = "scripted model endpoint"
base_url = {toml_string(base_url + "/v1")}
env_key = "SCRIPTED_API_KEY"
wire_api = "responses"

""" + (server_table(server_env) if server_env is not None else ""))
    return home


def run_codex(prompt: str, *, home: Path | None, cwd: Path, timeout: float = 180, extra: tuple[str, ...] = (),
              env: dict[str, str] | None = None) -> list[dict]:
    """`codex exec --json`: the events of one headless run (home None: the user's own CODEX_HOME and login)."""
    if env is None:
        assert home is not None
        env = {"PATH": f"{NODE_BIN}{os.pathsep}/usr/bin:/bin", "HOME": str(home.parent), "CODEX_HOME": str(home),
               "SCRIPTED_API_KEY": "sk-scripted"}
    completed = subprocess.run([str(CODEX), "exec", "--skip-git-repo-check", "--json", *extra, prompt],
                               capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
                               stdin=subprocess.DEVNULL)
    assert completed.returncode == 0, f"codex exec failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
