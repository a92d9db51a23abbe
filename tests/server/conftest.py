"""Fixtures that run the installed `rlm-mcp` as a subprocess and talk to it with the real mcp client."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parents[2]


def server_command() -> str:
    """The console script installed next to this interpreter (the wheel's or the editable install's)."""
    script = Path(sys.executable).with_name("rlm-mcp")
    found = str(script) if script.exists() else shutil.which("rlm-mcp")
    if not found:
        pytest.fail("the rlm-mcp console script is not installed: pip install -e '.[test]'")
    return found


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A jail-traversable directory for the server's per-session data (pytest's tmp root is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="rlm-test-runtime-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server_env(tmp_path: Path, runtime_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "RLM_HOME": str(tmp_path / "home"),
        "RLM_RUNTIME_DIR": str(runtime_dir),
        "RLM_ALLOWED_ROOTS": os.pathsep.join([str(tmp_path), str(REPO)]),
    }


@asynccontextmanager
async def stdio_client(env: dict[str, str], mode: str = "auto", cwd: Path = REPO) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=server_command(), args=[], env=env, cwd=str(cwd))
    async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
        yield client
