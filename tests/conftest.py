"""Shared test configuration: asyncio through anyio's plugin, and an environment for server subprocesses."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import REPO, link_wasm_cache


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A jail-traversable directory for the server's per-session data (pytest's tmp root is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="rlm-test-runtime-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server_env(tmp_path: Path, runtime_dir: Path) -> dict[str, str]:
    """A clean environment for `rlm-mcp` subprocesses: no provider keys, a private RLM_HOME."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "RLM_HOME": str(tmp_path / "home"),
        "RLM_RUNTIME_DIR": str(runtime_dir),
        "RLM_ALLOWED_ROOTS": os.pathsep.join([str(tmp_path), str(REPO)]),
        # One hash seed for every test server, so they all restore one Pyodide snapshot (the shared RLM_HOME/wasm
        # holds it) instead of each making its own, as a real server run does with a random seed.
        "PYTHONHASHSEED": "4242",
    }


@pytest.fixture(params=["nsjail", "wasm"])
def repl_backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each REPL-touching test that takes this runs on both isolation backends; tmp_path/home (the tests'
    RLM_HOME) gets the cached Pyodide."""
    link_wasm_cache(tmp_path / "home")
    return request.param


@pytest.fixture
def backend_env(server_env: dict[str, str], repl_backend: str) -> dict[str, str]:
    """server_env with RLM_SANDBOX set to this test's backend."""
    return {**server_env, "RLM_SANDBOX": repl_backend}
