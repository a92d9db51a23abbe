"""Scale-out on a standard proxy (issue 19, item 3): three replicas behind a real HAProxy running the
checked-in examples/deploy/haproxy.cfg, on loopback, driven by the real `mcp` client.

Twenty clients (ten bearer tokens, two clients each, each client its own X-RLM-Session name) load a
context in a session of their own and call exec_code thirty times with its handle. Proof that every call
of a session reached the one replica that holds its REPL: a REPL variable incremented thirty times reads
thirty, and every response carries the proxy's X-RLM-Replica header naming the replica the handle's
prefix names. Then one replica is killed (SIGKILL): its clients' next call is refused within a second
with the error that says the replica is gone, while everyone else carries on unaffected; the replica is
started again with its volume (RLM_HOME), and its clients carry on with the same handles and variables.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.deploy.team import Team, running_team
from tests.helpers import tool_error
from tests.server.test_plugin import claude, claude_env, needs_claude

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # out of the quick loop (./dev.sh quick)
TOKENS = [f"member-{index:02d}-7c1e" for index in range(10)]
CLIENTS, CALLS = 20, 30


def team_env(server_env: dict[str, str]) -> dict[str, str]:
    return {**server_env, "RLM_AUTH_TOKEN": ",".join(TOKENS), "RLM_MAX_SESSIONS": "40", "RLM_TOKEN_MAX_SESSIONS": "6"}


@pytest.fixture
def team(server_env: dict[str, str], tmp_path: Path) -> Iterator[Team]:
    with running_team(team_env(server_env), tmp_path / "logs") as running:
        yield running


@dataclass
class Member:
    """One client of the team, and the replica named by the proxy on each response it received."""

    index: int
    client: Client
    http: httpx2.AsyncClient
    served_by: list[str] = field(default_factory=list)
    handles_sent: list[str | None] = field(default_factory=list)  # each request's Mcp-Param-Session
    handle: str = ""

    @property
    def replica(self) -> str:
        return self.handle.partition(".")[0]

    async def start_session(self) -> None:
        loaded = await self.client.call_tool("load_context", {"text": f"notes of client {self.index}",
                                                               "new_session": True})
        assert not loaded.is_error, loaded
        self.handle = loaded.structured_content["session"]
        assert "." in self.handle, f"a replica's handle names it: {self.handle!r}"
        self.served_by.clear()
        self.handles_sent.clear()
        # from now on the hash of X-RLM-Session points anywhere: only the handle's prefix routes right
        self.http.headers["x-rlm-session"] = f"elsewhere-{self.index}-{len(self.handle)}-{self.handle[-4:]}"

    async def exec(self, code: str) -> str:
        result = await self.client.call_tool("exec_code", {"code": code, "session": self.handle})
        assert not result.is_error, result
        return result.structured_content["stdout"]


@asynccontextmanager
async def member(url: str, index: int) -> AsyncIterator[Member]:
    """A 2026-07-28 client (the mcp Client's default mode) with its own token and session name; it lists
    the tools first, so it copies `session` into the Mcp-Param-Session header the proxy routes on."""
    served_by: list[str] = []
    handles_sent: list[str | None] = []

    async def record(response: httpx2.Response) -> None:
        if response.request.method == "POST":
            served_by.append(response.headers.get("x-rlm-replica", "(no replica header)"))
            handles_sent.append(response.request.headers.get("mcp-param-session"))

    headers = {"authorization": f"Bearer {TOKENS[index % len(TOKENS)]}", "x-rlm-session": f"client-{index}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60, event_hooks={"response": [record]}) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        await client.list_tools()
        yield Member(index, client, http, served_by, handles_sent)


async def test_every_call_of_a_session_reaches_its_replica_and_a_dead_replicas_clients_are_told(team: Team) -> None:
    async with _members(team.url) as members:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as group:
                for one in members:
                    group.start_soon(count_to, one, CALLS)
        replicas = {one.replica for one in members}
        assert replicas == set(team.replicas), replicas  # the hash of X-RLM-Session and token spread them
        for one in members:
            # every exec_code after the load was answered by the replica the handle names (the load itself
            # went where the hash of X-RLM-Session and the token sent it: that is where the handle was minted;
            # the later calls carried another X-RLM-Session, so only Mcp-Param-Session routed them there)
            assert one.served_by == [one.replica] * (CALLS + 1), (one.index, one.handle, one.served_by)
            assert one.handles_sent == [one.handle] * (CALLS + 1)

        victim = max(replicas, key=lambda name: sum(one.replica == name for one in members))
        orphans = [one for one in members if one.replica == victim]
        survivors = [one for one in members if one.replica != victim]
        team.replicas[victim].kill()
        killed_at = time.monotonic()
        refusals: dict[int, tuple[float, str]] = {}

        async def next_call_of_orphan(one: Member) -> None:
            refused = await tool_error(one.client, "exec_code", {"code": "n += 1\nprint(n)", "session": one.handle})
            refusals[one.index] = (time.monotonic() - killed_at, refused)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for one in orphans:
                    group.start_soon(next_call_of_orphan, one)
                for one in survivors:
                    group.start_soon(carry_on, one)
        assert len(refusals) == len(orphans)
        for index, (elapsed, message) in refusals.items():
            assert elapsed < 1.0, (index, elapsed)
            assert f"started on replica {victim!r}" in message and "call load_context" in message, message

        # the replica comes back with its volume: its clients carry on, same handles, same variables
        await anyio.to_thread.run_sync(team.restart, victim)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for one in orphans:
                    group.start_soon(carry_on_after_restart, one)


@asynccontextmanager
async def _members(url: str) -> AsyncIterator[list[Member]]:
    async with anyio.create_task_group() as group:
        members: list[Member] = []
        ready, leave = anyio.Event(), anyio.Event()

        async def run(index: int) -> None:
            async with member(url, index) as one:
                members.append(one)
                if len(members) == CLIENTS:
                    ready.set()
                await leave.wait()

        for index in range(CLIENTS):
            group.start_soon(run, index)
        with anyio.fail_after(60):
            await ready.wait()
        try:
            yield sorted(members, key=lambda one: one.index)
        finally:
            leave.set()


async def count_to(one: Member, calls: int) -> None:
    """Load, then increment a REPL variable `calls` times: reading `calls` back proves one REPL saw them all."""
    await one.start_session()
    await one.exec("n = 0")
    for _ in range(calls - 1):
        await one.exec("n += 1")
    assert await one.exec("n += 1\nprint(n)") == f"{calls}\n"


async def carry_on(one: Member) -> None:
    assert await one.exec("n += 1\nprint(n)") == f"{CALLS + 1}\n"
    assert set(one.served_by) == {one.replica}


async def carry_on_after_restart(one: Member) -> None:
    """The next call after its replica came back: the variable counted before the kill, on that replica."""
    one.served_by.clear()
    assert await one.exec("n += 1\nprint(n)") == f"{CALLS + 1}\n"
    assert one.served_by == [one.replica]


async def test_calls_without_a_handle_stay_on_one_replica(team: Team) -> None:
    """Legacy clients (an Mcp-Session-Id, routed on the token) and named sessions (X-RLM-Session, routed on
    the name and the token), with no handle: all calls of each reach one replica, whose REPL counts them."""
    served_by: list[str] = []

    async def record(response: httpx2.Response) -> None:
        if response.request.method == "POST":
            served_by.append(response.headers["x-rlm-replica"])

    for mode, headers in [("legacy", {}), ("auto", {"x-rlm-session": "notes"})]:
        for token in TOKENS[:4]:
            served_by.clear()
            async with (
                httpx2.AsyncClient(headers={"authorization": f"Bearer {token}", **headers}, timeout=60,
                                   event_hooks={"response": [record]}) as http,
                Client(streamable_http_client(team.url, http_client=http), mode=mode) as client,
            ):
                for code in ["n = 0", *["n += 1"] * 10]:
                    assert not (await client.call_tool("exec_code", {"code": code})).is_error
                result = await client.call_tool("exec_code", {"code": "print(n)"})
                assert result.structured_content["stdout"] == "10\n"
            assert len(set(served_by)) == 1 and len(served_by) >= 12, (mode, served_by)


async def test_a_replica_marked_down_while_alive_keeps_serving_its_sessions(server_env, tmp_path: Path) -> None:
    """A busy replica can fail a health check and be marked down while it still holds its sessions: their
    handles must still reach it (option persist), not a live neighbour that would call them lost."""
    with running_team(team_env(server_env), tmp_path / "logs", admin=True) as team:
        async with member(team.url, 0) as one:
            await count_to(one, 3)
            team.admin(f"disable health replicas/{one.replica}")
            team.admin(f"set server replicas/{one.replica} health down")
            assert f"replicas/{one.replica} is DOWN" in team.proxy.log.read_text()
            assert await one.exec("n += 1\nprint(n)") == "4\n"
            assert set(one.served_by) == {one.replica}


@needs_claude
def test_a_member_adds_the_team_server_to_claude_code(team: Team, server_env: dict[str, str], tmp_path: Path) -> None:
    """What README.md ("Serving a team") tells a member to run, with the real Claude Code CLI: it connects
    through the proxy with the member's token, and not without it."""
    env = claude_env(server_env, tmp_path / "home", "/usr/bin:/bin")
    claude("mcp", "add", "--transport", "http", "rlm", team.url, "--header", f"Authorization: Bearer {TOKENS[3]}",
           env=env, cwd=tmp_path)
    claude("mcp", "add", "--transport", "http", "rlm-no-token", team.url, env=env, cwd=tmp_path)
    listed = {line.split(":")[0]: line for line in claude("mcp", "list", env=env, cwd=tmp_path).splitlines()}
    assert "Connected" in listed["rlm"], listed
    assert "Connected" not in listed["rlm-no-token"], listed
