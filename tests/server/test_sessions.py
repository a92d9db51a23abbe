"""Session lifecycle: cap, idle expiry, cleanup of jails and data directories."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from rlm_mcp.config import load_settings
from rlm_mcp.errors import SessionLimitReached, UnknownContext
from rlm_mcp.sessions import SessionManager

pytestmark = pytest.mark.anyio


def settings(tmp_path: Path, **flags):
    return load_settings(flags={"home": tmp_path / "home", "allowed_roots": str(tmp_path), **flags}, environ={})


def jail_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


async def test_cap_on_concurrent_sessions(tmp_path: Path) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionManager(settings(tmp_path, max_sessions=2), group)
        await manager.get("a")
        await manager.get("b")
        with pytest.raises(SessionLimitReached, match="RLM_MAX_SESSIONS"):
            await manager.get("c")
        await manager.close("a")
        await manager.get("c")
        await manager.close_all()


async def test_idle_sessions_are_closed_with_their_jail_and_data(tmp_path: Path) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionManager(settings(tmp_path, session_idle_s=0.2), group)
        session = await manager.get("idle")
        await session.load_text("main", "some text")
        pid = session.sandbox._process.pid
        data_dir = session.data_dir
        assert jail_alive(pid) and data_dir.exists()
        group.start_soon(manager.reap_idle, 0.1)
        await anyio.sleep(0.8)
        assert "idle" not in manager.sessions
        assert not jail_alive(pid)
        assert not data_dir.exists()
        group.cancel_scope.cancel()


async def test_unknown_context_names_the_loaded_ones(tmp_path: Path) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionManager(settings(tmp_path), group)
        session = await manager.get("s")
        await session.load_text("notes", "x")
        with pytest.raises(UnknownContext, match=r"no context named 'main' \(loaded: notes\)"):
            session.context("main")
        await manager.close_all()


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "app.py").write_text("def top():\n    return 1\n")
    return root


async def test_reset_without_contexts_drops_files_and_index(tmp_path: Path, small_repo: Path, runtime_dir) -> None:
    from rlm_mcp.indexing import IndexNotReady

    async with anyio.create_task_group() as group:
        manager = SessionManager(settings(tmp_path, runtime_dir=runtime_dir), group)
        session = await manager.get("s")
        await session.load_paths("main", [str(small_repo)], [tmp_path])
        await session.load_text("notes", "kept nowhere")
        found = await session.code_index().query({"op": "find", "name": "top"})
        assert [symbol["qualname"] for symbol in found] == ["top"]
        assert (session.data_dir / "main").is_symlink() and (session.data_dir / "notes").is_symlink()

        await session.reset(keep_contexts=False)
        assert session.contexts == {} and list(session.data_dir.iterdir()) == []
        with pytest.raises(IndexNotReady, match="no code index for context 'main'"):
            await session.code_index().query({"op": "find", "name": "top"})
        outcome = await session.exec("print(len(context), sorted(contexts))")
        assert outcome.result.stdout.text.strip() == "0 []"
        await manager.close_all()


async def test_reset_keeping_contexts_keeps_them(tmp_path: Path, small_repo: Path, runtime_dir) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionManager(settings(tmp_path, runtime_dir=runtime_dir), group)
        session = await manager.get("s")
        await session.load_paths("main", [str(small_repo)], [tmp_path])
        await session.exec("x = 1")
        await session.reset()
        outcome = await session.exec("print('x' in dir(), 'def top' in context)")
        assert outcome.result.stdout.text.strip() == "False True"
        assert await session.code_index().query({"op": "find", "name": "top"})
        await manager.close_all()


async def test_reset_through_the_server_forgets_the_codebase(server_env, small_repo: Path) -> None:
    """The reported case: after reset(keep_contexts=false), find_symbol no longer answers from the codebase."""
    from mcp import MCPError

    from tests.helpers import stdio_client

    async with stdio_client(server_env) as client:
        await client.call_tool("load_context", {"source": [str(small_repo)]})
        found = await client.call_tool("find_symbol", {"name": "top"})
        assert found.structured_content["results"][0]["qualname"] == "top"
        reset = await client.call_tool("session", {"action": "reset", "keep_contexts": False})
        assert reset.structured_content["contexts"] == []
        with pytest.raises(MCPError, match=r"no code index for context 'main'.*load_context"):
            await client.call_tool("find_symbol", {"name": "top"})
