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
