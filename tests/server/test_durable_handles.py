"""Handles that outlive the server (issue 27, item 3): a new server on the same RLM_HOME takes a session up
under the handle an earlier one minted -- contexts, variables, trajectory and spend -- for the same caller
only. Real servers as subprocesses, the real client, real jails, worker calls over real HTTP."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest

from rlm_mcp.config import Settings
from rlm_mcp.sessions import SessionRegistry
from tests.fakes import FakeOpenAI
from tests.helpers import link_wasm_cache, stdio_client, tool_error, until
from tests.server.test_http import client_with_headers, start, stop

pytestmark = pytest.mark.anyio
ALICE, BOB = "Bearer token-alice-5d1f", "Bearer token-bob-93ce"
STATE = "x = 41\ndef f():\n    return x + 1\nclass Box:\n    def __init__(self, v): self.v = v\nbox = Box('kept')\n"


async def exec_ok(client, code: str, handle: str) -> dict:
    result = await client.call_tool("exec_code", {"code": code, "session": handle})
    assert not result.is_error, result.structured_content
    return result.structured_content


async def status_of(client, handle: str) -> dict:
    return (await client.call_tool("session", {"session": handle})).structured_content


@pytest.mark.parametrize("sandbox", ["nsjail", pytest.param("wasm", marks=pytest.mark.slow)])
async def test_a_new_server_takes_the_session_up_under_the_same_handle(server_env, tmp_path: Path,
                                                                       sandbox: str) -> None:
    link_wasm_cache(Path(server_env["RLM_HOME"]))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.py").write_text("def main():\n    return 'first'\n")
    with FakeOpenAI() as upstream:
        env = {**server_env, **upstream.worker_env(), "RLM_SANDBOX": sandbox}
        async with stdio_client(env) as client:
            loaded = await client.call_tool("load_context", {"source": [str(repo)], "new_session": True})
            handle = loaded.structured_content["session"]
            await client.call_tool("load_context", {"text": "a note", "name": "notes", "session": handle})
            await exec_ok(client, STATE, handle)
            assert not (await client.call_tool("sub_query", {"prompt": "hi", "session": handle})).is_error
            before = await status_of(client, handle)
        (repo / "app.py").write_text("def main():\n    return 'second'\n")  # while no server runs
        async with stdio_client(env) as client:  # a new conversation: a new server process
            code = "print(f(), box.v, contexts['notes'], 'second' in files['app.py'])"
            taken_up = await exec_ok(client, code, handle)
            assert taken_up["stdout"] == "42 kept a note True\n"
            assert {"x", "f", "Box", "box"} <= set(taken_up["restored"])
            note = taken_up["context_changed"]
            assert "taken up by a new server process" in note and "'main' is as its files are now" in note
            after = await status_of(client, handle)
            assert after["spent"].get("model_calls") == before["spent"].get("model_calls") == 1, (before, after)
            assert after["execs"] == before["execs"] + 1
            assert [c["name"] for c in after["contexts"]] == ["main", "notes"]
            assert "context_changed" not in await exec_ok(client, "print(x)", handle)  # said once
    [trajectory] = (Path(server_env["RLM_HOME"]) / "trajectories").glob("*handle*.jsonl")
    assert '"taken_up"' in trajectory.read_text()  # one trajectory for the session, appended to


async def test_a_killed_team_server_gives_each_token_back_its_own_sessions_and_spend(server_env) -> None:
    with FakeOpenAI() as upstream:
        env = {**server_env, **upstream.worker_env(), "RLM_AUTH_TOKEN": "token-alice-5d1f,token-bob-93ce",
               "RLM_TOKEN_MAX_CALLS": "2"}
        process, url = start(env)
        async with client_with_headers(url, authorization=ALICE) as alice:
            minted = await alice.call_tool("load_context", {"text": "alice's notes", "new_session": True})
            handle = minted.structured_content["session"]
            await exec_ok(alice, "secret = 'alice-only'", handle)
            assert not (await alice.call_tool("sub_query", {"prompts": ["a", "b"], "session": handle})).is_error
        process.send_signal(signal.SIGKILL)  # a crash: nothing is written on the way out
        process.wait(timeout=10)
        process.stderr.close()
        process, url = start(env)
        try:
            async with (
                client_with_headers(url, authorization=ALICE) as alice,
                client_with_headers(url, authorization=BOB) as bob,
            ):
                refused = await tool_error(bob, "exec_code", {"code": "print(secret)", "session": handle})
                made_up = await tool_error(bob, "exec_code", {"code": "print(1)", "session": "A" * len(handle)})
                assert refused == made_up.replace("A" * 6, handle[:6])  # no hint that the handle exists
                taken_up = await exec_ok(alice, "print(secret, context)", handle)
                assert taken_up["stdout"] == "alice-only alice's notes\n"
                spent = await alice.call_tool("sub_query", {"prompt": "c", "session": handle})
                assert spent.is_error and "token_max_calls" in spent.structured_content["answers"][0]["error"]
                assert (await status_of(alice, handle))["spent"]["model_calls"] == 2
        finally:
            stop(process)


async def test_a_session_is_open_in_one_server_at_a_time(server_env) -> None:
    async with stdio_client(server_env) as first:
        handle = (await first.call_tool("load_context", {"text": "shared", "new_session": True})
                  ).structured_content["session"]
        await exec_ok(first, "y = 7", handle)
        async with stdio_client(server_env) as second:  # another editor window on the same RLM_HOME
            message = await tool_error(second, "exec_code", {"code": "print(y)", "session": handle})
            assert "open in another rlm-mcp server" in message and "new_session=true" in message
            assert (await exec_ok(first, "print(y)", handle))["stdout"] == "7\n"
    async with stdio_client(server_env) as later:
        assert (await exec_ok(later, "print(y)", handle))["stdout"] == "7\n"


async def test_a_session_unused_past_its_keep_expires_with_its_files(server_env) -> None:
    env = {**server_env, "RLM_SESSION_KEEP_S": "2"}
    async with stdio_client(env) as client:
        handle = (await client.call_tool("load_context", {"text": "brief", "new_session": True})
                  ).structured_content["session"]
        await exec_ok(client, "z = 1", handle)
    sessions = Path(server_env["RLM_HOME"]) / "sessions"
    assert len(list(sessions.iterdir())) == 1
    await anyio.sleep(2.5)
    async with stdio_client(env) as client:
        message = await tool_error(client, "exec_code", {"code": "print(z)", "session": handle})
        assert "has expired" in message and "RLM_SESSION_KEEP_S" in message and "load_context" in message
    assert [path.suffix for path in sessions.iterdir()] == [".gone"]  # the note that tells "expired", no data


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_an_idle_session_stops_its_repl_and_its_next_call_takes_it_up(tmp_path: Path, runtime_dir) -> None:
    settings = Settings(home=tmp_path / "home", runtime_dir=runtime_dir, session_idle_s=0.2)
    async with anyio.create_task_group() as group:
        registry = SessionRegistry(settings, group)
        record = await registry.open("alice")
        await record.session.load_text("main", "idle text")
        await record.session.exec("kept = [1, 2, 3]")
        pid = record.session.sandbox.pid
        group.start_soon(registry.reap_idle, 0.1)
        await until(lambda: registry.records == {} and not alive(pid))  # the REPL stopped, its memory freed
        again = await registry.resolve(record.handle, "alice")
        outcome = await again.session.exec("print(sum(kept), context)")
        assert outcome.result.stdout.text == "6 idle text\n" and "kept" in outcome.restored.restored
        await registry.close_all()
        group.cancel_scope.cancel()


async def test_a_connections_default_session_past_the_keep_period_is_replaced(tmp_path: Path, runtime_dir) -> None:
    """A call without a handle is never refused because the connection's old default expired."""
    settings = Settings(home=tmp_path / "home", runtime_dir=runtime_dir, session_keep_s=0.3)
    async with anyio.create_task_group() as group:
        registry = SessionRegistry(settings, group)
        first = await registry.default("stdio", "stdio")
        await first.session.load_text("main", "old text")
        await registry.close(first.handle)  # idle: its REPL stopped, its files kept, still the default
        await anyio.sleep(0.5)
        again = await registry.default("stdio", "stdio")
        assert again.handle != first.handle and not again.session.contexts
        await registry.close_all()
        group.cancel_scope.cancel()
