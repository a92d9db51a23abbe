"""Session lifecycle: cap, idle expiry, cleanup of jails and data directories."""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio
import pytest

from rlm_mcp.config import load_settings
from rlm_mcp.errors import SessionLimitReached, UnknownContext
from rlm_mcp.sessions import Session, SessionRegistry
from rlm_mcp.sessions.service import repl_index
from tests.helpers import link_wasm_cache, until

pytestmark = pytest.mark.anyio


def settings(tmp_path: Path, **flags):
    return load_settings(flags={"home": tmp_path / "home", "allowed_roots": str(tmp_path), **flags}, environ={})


async def opened(registry: SessionRegistry, key: str, owner: str = "stdio") -> Session:
    """The session of the connection `key` (opened on first use), as a call without a handle finds it."""
    return (await registry.default(key, owner)).session


def jail_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


async def test_caps_on_concurrent_sessions_per_caller_and_in_all(tmp_path: Path) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionRegistry(settings(tmp_path, max_sessions=3, token_max_sessions=2), group)
        await opened(manager, "alice/a", "alice")
        await opened(manager, "alice/b", "alice")
        with pytest.raises(SessionLimitReached, match=r"limit per token is 2 \(RLM_TOKEN_MAX_SESSIONS\)"):
            await opened(manager, "alice/c", "alice")
        await opened(manager, "bob/a", "bob")  # alice's cap leaves room for bob
        with pytest.raises(SessionLimitReached, match=r"server's limit is 3 \(RLM_MAX_SESSIONS\)"):
            await opened(manager, "bob/b", "bob")
        await manager.close_connection("alice/a")
        await opened(manager, "bob/b", "bob")
        assert [s.key for s in manager.owned_by("bob")] == ["bob/a", "bob/b"]
        await manager.close_all()


def test_the_sessions_cap_is_shared_out_among_the_tokens_by_default(tmp_path: Path) -> None:
    assert settings(tmp_path, max_sessions=8).sessions_per_caller() == 8  # stdio, or one token
    assert settings(tmp_path, max_sessions=8, auth_token="a,b,c").sessions_per_caller() == 3
    assert settings(tmp_path, max_sessions=8, auth_token="a,b,c", token_max_sessions=5).sessions_per_caller() == 5


async def test_idle_sessions_are_closed_with_their_jail_and_data(tmp_path: Path) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionRegistry(settings(tmp_path, session_idle_s=0.2), group)
        session = await opened(manager, "idle")
        await session.load_text("main", "some text")
        pid = session.sandbox.pid
        data_dir = session.data_dir
        assert jail_alive(pid) and data_dir.exists()
        group.start_soon(manager.reap_idle, 0.1)
        # the reaper's pass, however slow the machine: the session gone, its jail and data with it
        await until(lambda: manager.peek_default("idle") is None and not jail_alive(pid) and not data_dir.exists())
        group.cancel_scope.cancel()


async def test_unknown_context_names_the_loaded_ones(tmp_path: Path) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionRegistry(settings(tmp_path), group)
        session = await opened(manager, "s")
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
    from rlm_mcp.sessions import IndexNotReady

    async with anyio.create_task_group() as group:
        manager = SessionRegistry(settings(tmp_path, runtime_dir=runtime_dir), group)
        session = await opened(manager, "s")
        await session.load_paths("main", [str(small_repo)], [tmp_path])
        await session.load_text("notes", "kept nowhere")
        found = (await repl_index(session.code_index())({"op": "find", "name": "top"}))["results"]
        assert [symbol["qualname"] for symbol in found] == ["top"]
        assert (session.data_dir / "main").is_symlink() and (session.data_dir / "notes").is_symlink()

        await session.reset(keep_contexts=False)
        assert session.contexts == {} and list(session.data_dir.iterdir()) == []
        with pytest.raises(IndexNotReady, match="no code index for context 'main'"):
            await repl_index(session.code_index())({"op": "find", "name": "top"})
        outcome = await session.exec("print(len(context), sorted(contexts))")
        assert outcome.result.stdout.text.strip() == "0 []"
        await manager.close_all()


async def test_reset_keeping_contexts_keeps_them(tmp_path: Path, small_repo: Path, runtime_dir, repl_backend) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionRegistry(settings(tmp_path, runtime_dir=runtime_dir, sandbox=repl_backend), group)
        session = await opened(manager, "s")
        await session.load_paths("main", [str(small_repo)], [tmp_path])
        await session.exec("x = 1")
        await session.reset()
        outcome = await session.exec("print('x' in dir(), 'def top' in context)")
        assert outcome.result.stdout.text.strip() == "False True"
        assert (await repl_index(session.code_index())({"op": "find", "name": "top"}))["results"]
        await manager.close_all()


async def test_reset_through_the_server_forgets_the_codebase(server_env, small_repo: Path) -> None:
    """The reported case: after reset(keep_contexts=false), find_symbol no longer answers from the codebase."""
    from tests.helpers import stdio_client, tool_error

    async with stdio_client(server_env) as client:
        await client.call_tool("load_context", {"source": [str(small_repo)]})
        found = await client.call_tool("find_symbol", {"name": "top"})
        assert found.structured_content["results"][0]["qualname"] == "top"
        reset = await client.call_tool("session", {"action": "reset", "keep_contexts": False})
        assert reset.structured_content["contexts"] == []
        assert re.search(r"no code index for context 'main'.*load_context",
                         await tool_error(client, "find_symbol", {"name": "top"}))


async def test_rebinding_a_reserved_name_is_undone_with_a_note(tmp_path: Path, runtime_dir, repl_backend) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionRegistry(settings(tmp_path, runtime_dir=runtime_dir, sandbox=repl_backend), group)
        session = await opened(manager, "s")
        rebound = await session.exec("json = 5\ndel chunk\nmine = 1")
        assert "note: chunk, json are reserved names of this REPL" in rebound.result.stderr.text
        after = await session.exec("print(json.dumps([mine]), callable(chunk))")
        assert after.result.stdout.text == "[1] True\n" and after.result.stderr.text == ""  # no note when untouched
        await manager.close_all()


async def failing_close() -> None:
    """A session's worker calls whose close fails (their provider's connection pool)."""
    raise OSError("the provider connection pool would not close")


def failures_logged(caplog) -> list:
    return [r for r in caplog.records if "closing session" in r.getMessage()]


async def test_the_reaper_survives_a_failing_close(tmp_path: Path, runtime_dir, caplog) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionRegistry(settings(tmp_path, runtime_dir=runtime_dir, session_idle_s=0.2), group)
        sessions = [await opened(manager, key) for key in ("first", "second")]
        for session in sessions:
            session.calls.aclose = failing_close  # type: ignore[method-assign]
            await session.load_text("main", "some text")
        pids = [session.sandbox.pid for session in sessions]
        data_dirs = [session.data_dir for session in sessions]
        group.start_soon(manager.reap_idle, 0.1)
        # both closed, jails and data gone: the first failure did not end the reaper (however slow the machine)
        await until(lambda: manager.records == {} and not any(jail_alive(pid) for pid in pids)
                    and not any(path.exists() for path in data_dirs) and len(failures_logged(caplog)) == 2)
        failures = failures_logged(caplog)
        assert {r.getMessage().split()[2] for r in failures} == {"first", "second"}
        assert all("would not close" in str(r.exc_info[1]) for r in failures)
        assert (await opened(manager, "third")).key == "third"  # the manager still serves
        await manager.close_all()
        group.cancel_scope.cancel()


async def test_callback_failures_are_logged_with_the_session_key(tmp_path: Path, small_repo: Path, runtime_dir,
                                                                 caplog) -> None:
    async with anyio.create_task_group() as group:
        manager = SessionRegistry(settings(tmp_path, runtime_dir=runtime_dir), group)
        session = await opened(manager, "client-7")
        await session.load_paths("main", [str(small_repo)], [tmp_path])
        await repl_index(session.code_index())({"op": "find", "name": "top"})  # the index answers
        refused = await session.exec("_rlm_callback('llm_query', 5)")
        bad_limit = await session.exec("_rlm_callback('index', {'op': 'find', 'name': 'top', 'limit': 'many'})")
        crashed = await session.exec("_rlm_callback('index', {'op': 'find', 'pattern': '('})")
        await manager.close_all()
    assert "expected an object with a prompt" in refused.result.stderr.text  # the guest still sees its error
    assert "limit must be None (every result) or an integer >= 0, not 'many'" in bad_limit.result.stderr.text
    assert "missing ), unterminated subpattern" in crashed.result.stderr.text
    lines = {r.getMessage(): r for r in caplog.records if r.name == "rlm_mcp.sessions"}
    refusal = next(r for message, r in lines.items() if "callback llm_query refused" in message)
    assert "session client-7" in refusal.getMessage() and refusal.exc_info is None
    failure = next(r for message, r in lines.items() if "callback index failed" in message)
    assert "session client-7" in failure.getMessage() and failure.exc_info is not None


async def test_reset_starts_a_new_wall_clock_but_keeps_the_spend(tmp_path: Path, runtime_dir, monkeypatch) -> None:
    from tests.fakes import FakeOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI() as fake:
        async with anyio.create_task_group() as group:
            options = {"runtime_dir": runtime_dir, "max_wall_s": 1.0, "worker_model": "openai/gpt-4o-mini",
                       "worker_api_base": fake.api_base}
            manager = SessionRegistry(settings(tmp_path, **options), group)
            session = await opened(manager, "s")
            first = await session.exec("print(llm_query('one'))")
            await anyio.sleep(1.1)
            late = await session.exec("llm_query('two')")
            await session.reset()
            again = await session.exec("print(llm_query('three'))")
            spent = session.calls.budget.ledger.used()
            await manager.close_all()
    assert first.result.stdout.text == "echo: one\n"
    assert "max_wall_s" in late.result.stderr.text and "RLM_MAX_WALL_S" in late.result.stderr.text
    assert again.result.stdout.text == "echo: three\n" and spent["model_calls"] == 2


async def test_a_session_opened_while_the_sandbox_is_chosen_adopts_the_spare(tmp_path: Path,
                                                                          runtime_dir: Path) -> None:
    """A new server's first call may come before its start-up choice of sandbox is made: the session waits
    for it and adopts the spare it starts (two wasm guests starting at once slowed both). The next spare
    waits until the first one's session has had the CPU a while, unless a session claims it first."""
    link_wasm_cache(tmp_path / "home")
    async with anyio.create_task_group() as group:
        manager = SessionRegistry(settings(tmp_path, sandbox="wasm", runtime_dir=runtime_dir), group)
        await group.start(manager.sandbox.make)
        assert manager.sandbox.spares is None  # being made
        one = await opened(manager, "one")
        assert manager.sandbox.spares is not None and one.spares is manager.sandbox.spares
        first = manager.sandbox.spares._spare
        assert first is not None and (await one.exec("print(1)")).result.ok
        assert one.sandbox is first.sandbox
        following = manager.sandbox.spares._spare
        assert following is not None and not following.ready.is_set() and following.sandbox.pid is None
        two = await opened(manager, "two")
        assert (await two.exec("print(2)")).result.ok and two.sandbox is following.sandbox  # claimed: started
        await manager.close_all()
        group.cancel_scope.cancel()


async def test_wasm_sessions_adopt_the_warm_spare_and_share_nothing(tmp_path: Path, runtime_dir: Path) -> None:
    """Two sessions that each adopt the server's spare (both restored from this run's one Pyodide snapshot):
    no global, module patch, in-memory file or `random` state passes from one to the other; the hash seed
    is the server run's."""
    link_wasm_cache(tmp_path / "home")
    async with anyio.create_task_group() as group:
        manager = SessionRegistry(settings(tmp_path, sandbox="wasm", runtime_dir=runtime_dir), group)
        await manager.sandbox.make()
        assert manager.sandbox.spares is not None
        spare = manager.sandbox.spares._spare  # what the server has ready: the next new session's
        one = await opened(manager, "one")
        assert spare is not None and one.data_dir == spare.data_dir  # claimed with its data directory
        leave = ("leaked = 1\nimport json, random, sys\njson.leaked = 1\nsys.modules['leaked'] = json\n"
                 "open('/tmp/leaked.txt', 'w').write('x')\nprint(random.random(), hash('abc'))")
        first = await one.exec(leave)
        assert first.result.ok and one.sandbox is spare.sandbox, first.result
        two = await opened(manager, "two")
        look = ("import json, os, random, sys\nprint(random.random(), hash('abc'))\n"
                "print('leaked' in globals(), hasattr(json, 'leaked'), 'leaked' in sys.modules, "
                "os.path.exists('/tmp/leaked.txt'))")
        second = await two.exec(look)
        assert second.result.ok, second.result
        (draw_one, hash_one), (draw_two, hash_two) = (out.result.stdout.text.split()[:2] for out in (first, second))
        assert draw_one != draw_two and hash_one == hash_two  # reseeded, one seed per server run
        assert second.result.stdout.text.splitlines()[1] == "False False False False"
        assert one.sandbox is not two.sandbox and one.data_dir != two.data_dir
        await manager.close_all()
        assert not any(runtime_dir.iterdir())  # the unclaimed spare's directory went with it
        (tmp_path / "policy.toml").write_text("[wasm]\nspare = false\n")  # for a machine short of memory
        frugal = SessionRegistry(settings(tmp_path, sandbox="wasm", runtime_dir=runtime_dir,
                                         sandbox_policy=tmp_path / "policy.toml"), group)
        await frugal.sandbox.make()
        assert frugal.sandbox.spares is None
        group.cancel_scope.cancel()
