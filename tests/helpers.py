"""Helpers for tests that run the installed `rlm-mcp` as a subprocess and talk to it with the real mcp client."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import ListRootsFnT
from mcp_types import TextContent

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / ".tools"  # what `./dev.sh test` installs from npm: Node, the Inspector, conformance, Claude Code
NODE_BIN = TOOLS / "node" / "bin"


def node_tool(name: str) -> Path:
    return TOOLS / "node_modules" / ".bin" / name


def needs_node_tool(name: str, what: str) -> pytest.MarkDecorator:
    """Skip where `./dev.sh test` has not installed the tool yet -- never on CI (`CI` set, as .ci/run
    does), where a missing tool is a failure."""
    missing = not (node_tool(name).exists() and (NODE_BIN / "node").exists())
    return pytest.mark.skipif(missing and not os.environ.get("CI"),
                              reason=f"{what} missing: run ./dev.sh test once (on CI this is a failure)")


def link_wasm_cache(home: Path) -> None:
    """Give a test's private RLM_HOME the Pyodide that `./dev.sh setup` fetched into the default RLM_HOME
    (`rlm-mcp doctor --fix`), so the wasm backend starts without fetching it again."""
    from rlm_mcp.config import Settings

    shared = Settings().home / "wasm"
    shared.mkdir(parents=True, exist_ok=True)  # a first test fetches into it when setup has not
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "wasm").exists():
        (home / "wasm").symlink_to(shared, target_is_directory=True)


def server_command() -> str:
    """The console script installed next to this interpreter (the wheel's or the editable install's)."""
    script = Path(sys.executable).with_name("rlm-mcp")
    found = str(script) if script.exists() else shutil.which("rlm-mcp")
    if not found:
        pytest.fail("the rlm-mcp console script is not installed: pip install -e '.[test]'")
    return found


@asynccontextmanager
async def stdio_client(env: dict[str, str], mode: str = "auto", cwd: Path = REPO,
                       list_roots: ListRootsFnT | None = None, command: str | None = None,
                       args: list[str] | None = None) -> AsyncIterator[Client]:
    """A client of the server started over stdio (`command`/`args`: another installation's, or a wrapper)."""
    params = StdioServerParameters(command=command or server_command(), args=args or [], env=env, cwd=str(cwd))
    async with Client(params, mode=mode, list_roots_callback=list_roots) as client:  # type: ignore[arg-type]
        yield client


async def tool_error(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    """The text of a tool call's result with isError, which is what the host's model reads (SEP-1303): errors
    it can act on are results, not JSON-RPC errors."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error and result.structured_content is None, result
    [block] = result.content
    assert isinstance(block, TextContent), block
    return block.text


async def until(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    """Wait for what a background task does (a reaper's pass), however slow the machine; fail after `within_s`."""
    with anyio.fail_after(within_s):
        while not condition():
            await anyio.sleep(0.05)
