"""Session handles: minted by load_context, passed back as `session`, bound to their caller, expiring with
their session. The registry with real sessions, then the installed server through the real
client over stdio and over HTTP with two bearer tokens."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from rlm_mcp.config import load_settings
from rlm_mcp.sessions import ReplicaGone, SessionExpired, SessionRegistry, UnknownSession
from tests.helpers import link_wasm_cache, stdio_client, tool_error
from tests.server.test_http import client_with_headers, start, stop

pytestmark = pytest.mark.anyio


def settings(tmp_path: Path, **flags):
    return load_settings(flags={"home": tmp_path / "home", "allowed_roots": str(tmp_path), **flags}, environ={})


async def test_handles_name_their_own_sessions_for_their_owner_only(tmp_path: Path) -> None:
    async with anyio.create_task_group() as group:
        registry = SessionRegistry(settings(tmp_path), group)
        first, second = await registry.open("alice"), await registry.open("alice")
        one, two = first.session, second.session
        first, second = first.handle, second.handle
        assert first != second and one is not two and len(first) >= 24
        assert (await registry.resolve(first, "alice")).session is one
        assert (await registry.resolve(second, "alice")).session is two
        with pytest.raises(UnknownSession, match="load_context") as refused:
            await registry.resolve(first, "mallory")
        with pytest.raises(UnknownSession) as made_up:
            await registry.resolve("x" * len(first), "mallory")
        assert type(refused.value) is type(made_up.value) is UnknownSession  # no hint that `first` exists
        default = await registry.default("alice", "alice")  # a connection's default session has a handle too
        assert (await registry.default("alice", "alice")).handle == default.handle
        assert (await registry.resolve(default.handle, "alice")).session is default.session
        await registry.close_all()


async def test_a_handle_of_another_replica_or_an_earlier_run_says_its_session_is_gone(tmp_path: Path) -> None:
    async with anyio.create_task_group() as group:
        first_run = SessionRegistry(settings(tmp_path, replica_id="r1"), group)
        handle = (await first_run.open("alice")).handle
        assert handle.startswith("r1.") and handle.count(".") == 2
        restarted = SessionRegistry(settings(tmp_path, replica_id="r1"), group)
        with pytest.raises(ReplicaGone, match=r"started on this replica \('r1'\) before it restarted"):
            await restarted.resolve(handle, "alice")
        other = SessionRegistry(settings(tmp_path, replica_id="r2"), group)
        with pytest.raises(ReplicaGone, match=r"started on replica 'r1' and this is replica 'r2'.*load_context"):
            await other.resolve(handle, "alice")
        with pytest.raises(UnknownSession) as made_up:  # no replica in it: an unknown handle, as anywhere
            await other.resolve("x" * 24, "alice")
        assert type(made_up.value) is UnknownSession
        for registry in (first_run, restarted, other):
            await registry.close_all()


async def test_an_idle_or_closed_session_makes_its_handle_expire(tmp_path: Path) -> None:
    async with anyio.create_task_group() as group:
        registry = SessionRegistry(settings(tmp_path, session_idle_s=0.3), group)
        idle = (await registry.open("alice")).handle
        await anyio.sleep(0.5)
        with pytest.raises(SessionExpired, match=r"idle longer than 0.3 s.*load_context"):
            await registry.resolve(idle, "alice")
        assert idle not in registry.records  # closed on the spot, not left for the reaper
        closed = (await registry.open("alice")).handle
        await registry.close(closed)
        await registry.open("alice")  # a new session is not the closed handle's
        with pytest.raises(SessionExpired):
            await registry.resolve(closed, "alice")
        await registry.close_all()


async def stdout_of(client, code: str, handle: str | None = None) -> str:
    result = await client.call_tool("exec_code", {"code": code, **({"session": handle} if handle else {})})
    assert not result.is_error, result
    return result.structured_content["stdout"]


@pytest.mark.parametrize(("mode", "sandbox"), [("auto", "nsjail"), ("legacy", "nsjail"),
                                                       pytest.param("auto", "wasm", marks=pytest.mark.slow)])
async def test_two_handles_in_one_stdio_server_keep_separate_repls_and_contexts(server_env, mode, sandbox) -> None:
    link_wasm_cache(Path(server_env["RLM_HOME"]))
    async with stdio_client({**server_env, "RLM_SANDBOX": sandbox}, mode) as client:
        first = await client.call_tool("load_context", {"text": "alpha text", "new_session": True})
        second = await client.call_tool("load_context", {"text": "beta text", "new_session": True})
        one, two = first.structured_content["session"], second.structured_content["session"]
        assert one != two and f"session={one!r}" in first.content[0].text
        await stdout_of(client, "x = 'set in one'", one)
        await stdout_of(client, "x = 'set in two'", two)
        assert await stdout_of(client, "print(x, '|', context)", one) == "set in one | alpha text\n"
        assert await stdout_of(client, "print(x, '|', context)", two) == "set in two | beta text\n"
        assert "NameError" in (await client.call_tool("exec_code", {"code": "x"})).structured_content["stderr"]
        status = (await client.call_tool("session", {"session": two})).structured_content
        assert status["handle"] == two and [c["name"] for c in status["contexts"]] == ["main"]
        assert status["limits"]["session_idle_s"] == 3600
        # Loading into a handle keeps it; without one, the default session hands out its own handle.
        again = await client.call_tool("load_context", {"text": "gamma", "name": "extra", "session": one})
        assert again.structured_content["session"] == one
        default = await client.call_tool("load_context", {"text": "default text"})
        handle = default.structured_content["session"]
        assert handle not in (one, two)
        assert await stdout_of(client, "print(context)", handle) == await stdout_of(client, "print(context)")


async def test_a_handle_minted_with_one_token_is_refused_for_another(server_env) -> None:
    process, url = start({**server_env, "RLM_AUTH_TOKEN": "token-alice-5d1f, token-bob-93ce"})
    try:
        async with (
            client_with_headers(url, authorization="Bearer token-alice-5d1f") as alice,
            client_with_headers(url, authorization="Bearer token-bob-93ce") as bob,
        ):
            minted = await alice.call_tool("load_context", {"text": "alice's secret notes", "new_session": True})
            handle = minted.structured_content["session"]
            assert await stdout_of(alice, "print(context)", handle) == "alice's secret notes\n"
            refused = await tool_error(bob, "exec_code", {"code": "print(context)", "session": handle})
            made_up = await tool_error(bob, "exec_code", {"code": "print(context)", "session": "A" * len(handle)})
            assert "no session has the handle" in refused and "no session has the handle" in made_up
            assert refused == made_up.replace("A" * 6, handle[:6])
            assert await stdout_of(alice, "print(context)", handle) == "alice's secret notes\n"
    finally:
        stop(process)


async def test_an_expired_handle_says_how_to_start_again(server_env) -> None:
    async with stdio_client({**server_env, "RLM_SESSION_IDLE_S": "1", "RLM_SESSION_KEEP_S": "1"}) as client:
        minted = await client.call_tool("load_context", {"text": "short-lived", "new_session": True})
        handle = minted.structured_content["session"]
        await anyio.sleep(1.5)
        message = await tool_error(client, "exec_code", {"code": "print(context)", "session": handle})
        assert "has expired" in message
        assert "idle longer than 1 s" in message and "load_context" in message and "`session`" in message
