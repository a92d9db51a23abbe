"""Drive the real Gemini CLI (npm @google/gemini-cli, in .tools/) against the scripted model endpoint, offline.

`GOOGLE_GEMINI_BASE_URL` points it at tests/fakes/model_endpoint.py (the Gemini API's
streamGenerateContent) and a dummy `GEMINI_API_KEY` stands in for a login; HOME is private, its
.gemini/settings.json names rlm-mcp as a trusted MCP server. Headless runs need a trusted folder:
`GEMINI_CLI_TRUST_WORKSPACE=true`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers import NODE_BIN, node_tool, server_command

GEMINI = node_tool("gemini")
MODEL = "gemini-2.5-flash"


def mcp_server(server_env: dict[str, str]) -> dict:
    """rlm-mcp as a `mcpServers` entry, trusted: its tools run without a confirmation prompt."""
    return {"command": server_command(), "env": server_env, "trust": True}


def gemini_home(home: Path, server_env: dict[str, str] | None) -> Path:
    """A private HOME whose settings log in with the dummy key; server_env None: no MCP server at all."""
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}},
                "mcpServers": {} if server_env is None else {"rlm": mcp_server(server_env)},
                "privacy": {"usageStatisticsEnabled": False}, "general": {"disableAutoUpdate": True}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    return home


def run_gemini(prompt: str, *, home: Path | None, base_url: str | None, cwd: Path, timeout: float = 180,
               extra: tuple[str, ...] = ("-m", MODEL, "--yolo"), env: dict[str, str] | None = None) -> dict:
    """`gemini -p --output-format json`: the response and its stats (env given: the user's own HOME and login)."""
    if env is None:
        assert home is not None and base_url is not None
        env = {"PATH": f"{NODE_BIN}{os.pathsep}/usr/bin:/bin", "HOME": str(home), "GEMINI_API_KEY": "sk-scripted",
               "GOOGLE_GEMINI_BASE_URL": base_url, "GEMINI_CLI_TRUST_WORKSPACE": "true"}
    completed = subprocess.run([str(GEMINI), "-p", prompt, "--output-format", "json", *extra],
                               capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
                               stdin=subprocess.DEVNULL)
    assert completed.returncode == 0, f"gemini -p failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return json.loads(completed.stdout)
