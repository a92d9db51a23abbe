"""Helpers for tests that run the installed `rlm-mcp` as a subprocess and talk to it with the real mcp client."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parents[1]


def server_command() -> str:
    """The console script installed next to this interpreter (the wheel's or the editable install's)."""
    script = Path(sys.executable).with_name("rlm-mcp")
    found = str(script) if script.exists() else shutil.which("rlm-mcp")
    if not found:
        pytest.fail("the rlm-mcp console script is not installed: pip install -e '.[test]'")
    return found


@asynccontextmanager
async def stdio_client(env: dict[str, str], mode: str = "auto", cwd: Path = REPO) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=server_command(), args=[], env=env, cwd=str(cwd))
    async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
        yield client
