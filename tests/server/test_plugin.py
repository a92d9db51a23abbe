"""The repository as a Claude Code marketplace serving the rlm-mcp plugin, checked with the real Claude Code
CLI (from npm, in .tools/), offline, not logged in, with HOME in a temporary directory: add the
marketplace, install the plugin, and `claude mcp list` connects to the server.

`./dev.sh test` installs the CLI into .tools/; elsewhere the tests are skipped when it is missing, on
CI they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from rlm_mcp import __version__
from rlm_mcp.server.playbook import SKILL_PATH, skill_markdown
from tests.helpers import NODE_BIN, REPO, needs_node_tool, node_tool, server_command

CLAUDE = node_tool("claude")
PLUGIN = "rlm-mcp@rlm-mcp"
needs_claude = needs_node_tool("claude", "Claude Code CLI")
OFFLINE = {  # no update checks, telemetry or error reports: the CLI must work without the network
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
}


def claude(*args: str, env: dict[str, str], cwd: Path) -> str:
    completed = subprocess.run([str(CLAUDE), *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                               env=env, stdin=subprocess.DEVNULL)
    assert completed.returncode == 0, f"claude {' '.join(args)}:\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}"
    return completed.stdout


def claude_env(server_env: dict[str, str], home: Path, path: str) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    return {**server_env, **OFFLINE, "HOME": str(home), "PATH": f"{NODE_BIN}{os.pathsep}{path}"}


def without_venv(tmp_path: Path) -> Path:
    """What a clone holds before ./dev.sh runs: the marketplace, the plugin and the README, no .venv."""
    clone = tmp_path / "clone"
    for part in (".claude-plugin", "plugin"):
        shutil.copytree(REPO / part, clone / part)
    shutil.copy(REPO / "README.md", clone / "README.md")
    return clone


def test_skill_is_the_playbook() -> None:
    assert (REPO / SKILL_PATH).read_text() == skill_markdown(), (
        f"{SKILL_PATH} is out of date: python -m rlm_mcp.server.playbook > {SKILL_PATH}")


def test_manifests_agree() -> None:
    marketplace = json.loads((REPO / ".claude-plugin" / "marketplace.json").read_text())
    [entry] = marketplace["plugins"]
    plugin_dir = REPO / entry["source"]
    manifest = json.loads((plugin_dir / ".claude-plugin" / "plugin.json").read_text())
    assert manifest["name"] == entry["name"] == marketplace["name"] == "rlm-mcp"
    assert manifest["version"] == __version__
    assert (REPO / SKILL_PATH).is_relative_to(plugin_dir)
    command = manifest["mcpServers"]["rlm"]["command"].replace("${CLAUDE_PLUGIN_ROOT}", str(plugin_dir))
    assert os.access(command, os.X_OK), command


@needs_claude
def test_plugin_installs_from_the_clone_and_connects(server_env, tmp_path: Path) -> None:
    env = claude_env(server_env, tmp_path / "home", "/usr/bin:/bin")
    claude("plugin", "validate", str(REPO), env=env, cwd=tmp_path)
    claude("plugin", "marketplace", "add", str(REPO), env=env, cwd=tmp_path)
    claude("plugin", "install", PLUGIN, env=env, cwd=tmp_path)
    details = claude("plugin", "details", PLUGIN, env=env, cwd=tmp_path)
    assert "rlm-playbook" in details
    listed = claude("mcp", "list", env=env, cwd=tmp_path)
    line = next((line for line in listed.splitlines() if line.startswith("plugin:rlm-mcp:rlm:")), listed)
    assert "Connected" in line, listed  # the clone's .venv, found by the plugin's serve.sh


@needs_claude
def test_plugin_uses_rlm_mcp_on_path_without_a_venv(server_env, tmp_path: Path) -> None:
    clone = without_venv(tmp_path)
    on_path = f"{Path(server_command()).parent}{os.pathsep}/usr/bin:/bin"
    env = claude_env(server_env, tmp_path / "home", on_path)
    claude("plugin", "install", "rlm-mcp", "--marketplace", str(clone), env=env, cwd=tmp_path)
    listed = claude("mcp", "list", env=env, cwd=tmp_path)
    line = next((line for line in listed.splitlines() if line.startswith("plugin:rlm-mcp:rlm:")), listed)
    assert "Connected" in line, listed


def test_serve_says_how_to_install_when_nothing_is_there(tmp_path: Path) -> None:
    clone = without_venv(tmp_path)
    completed = subprocess.run([str(clone / "plugin" / "serve.sh")], capture_output=True, text=True, timeout=10,
                               env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL)
    assert completed.returncode == 127
    assert "./dev.sh setup" in completed.stderr and "pip install" in completed.stderr
