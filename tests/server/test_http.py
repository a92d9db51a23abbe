"""`rlm-mcp serve --http`: loopback by default, bearer token, Origin checks, one session per client."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.helpers import server_command

pytestmark = pytest.mark.anyio
TOKEN = "test-token-8f2d"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(server_env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([server_command(), "serve", "--http", "--port", str(port), *args], env=server_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.1)
    process.kill()
    pytest.fail(f"HTTP server did not start: {process.communicate()[1].decode()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=15)
    process.stderr.close()


@pytest.fixture
def http_server(server_env) -> Iterator[str]:
    process, url = start(server_env)
    yield url
    stop(process)


@pytest.fixture
def token_server(server_env) -> Iterator[str]:
    process, url = start({**server_env, "RLM_AUTH_TOKEN": TOKEN})
    yield url
    stop(process)


@asynccontextmanager
async def client_with_headers(url: str, **headers: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def test_http_transport_runs_code(http_server: str) -> None:
    async with Client(http_server) as client:
        await client.call_tool("load_context", {"text": "alpha beta gamma"})
        result = await client.call_tool("exec_code", {"code": "context.split()[1]"})
        assert result.structured_content["stdout"] == "'beta'\n"


async def test_named_sessions_are_isolated(http_server: str) -> None:
    async with client_with_headers(http_server, **{"x-rlm-session": "alice"}) as alice:
        await alice.call_tool("exec_code", {"code": "secret = 'alice only'"})
    async with client_with_headers(http_server, **{"x-rlm-session": "bob"}) as bob:
        peek = await bob.call_tool("exec_code", {"code": "'secret' in globals()"})
        assert peek.structured_content["stdout"] == "False\n"
    async with client_with_headers(http_server, **{"x-rlm-session": "alice"}) as alice_again:
        kept = await alice_again.call_tool("exec_code", {"code": "secret"})
        assert kept.structured_content["stdout"] == "'alice only'\n"


async def test_legacy_clients_get_their_own_sessions(http_server: str) -> None:
    async with Client(http_server, mode="legacy") as first, Client(http_server, mode="legacy") as second:
        await first.call_tool("exec_code", {"code": "mine = 1"})
        peek = await second.call_tool("exec_code", {"code": "'mine' in globals()"})
        assert peek.structured_content["stdout"] == "False\n"


async def test_token_is_required(token_server: str) -> None:
    async with httpx2.AsyncClient() as raw:
        response = await raw.post(token_server, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                  headers={"accept": "application/json, text/event-stream"})
        assert response.status_code == 401 and "RLM_AUTH_TOKEN" in response.text
    async with client_with_headers(token_server, authorization=f"Bearer {TOKEN}") as client:
        result = await client.call_tool("exec_code", {"code": "1 + 1"})
        assert result.structured_content["stdout"] == "2\n"


async def test_foreign_origin_is_rejected(http_server: str) -> None:
    async with httpx2.AsyncClient() as raw:
        response = await raw.post(http_server, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                  headers={"origin": "http://evil.example", "content-type": "application/json",
                                           "accept": "application/json, text/event-stream"})
        assert response.status_code in (400, 403)


def test_refuses_open_bind_without_token(server_env) -> None:
    completed = subprocess.run([server_command(), "serve", "--http", "--host", "0.0.0.0", "--port", "1"],
                               env=server_env, capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0
    assert "RLM_AUTH_TOKEN" in completed.stderr


async def test_client_vanishing_mid_call_leaves_server_healthy(http_server: str) -> None:
    import anyio

    with anyio.move_on_after(1.5):
        async with Client(http_server, mode="legacy") as leaving:
            await leaving.call_tool("exec_code", {"code": "import time\ntime.sleep(30)", "timeout_s": 60})
    async with Client(http_server, mode="legacy") as other:
        result = await other.call_tool("exec_code", {"code": "'still serving'"})
        assert result.structured_content["stdout"] == "'still serving'\n"


async def test_request_body_cap(server_env) -> None:
    process, url = start({**server_env, "RLM_MAX_REQUEST_MB": "1"})
    try:
        async with httpx2.AsyncClient() as raw:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "exec_code", "arguments": {"code": "x = '" + "a" * 2_000_000 + "'"}}}
            response = await raw.post(url, json=body, headers={"accept": "application/json, text/event-stream"})
            assert response.status_code == 413
    finally:
        stop(process)


def test_shutdown_kills_every_jail(server_env, runtime_dir) -> None:
    import anyio

    process, url = start(server_env)

    async def open_sessions() -> None:
        for name in ("a", "b"):
            async with client_with_headers(url, **{"x-rlm-session": name}) as client:
                await client.call_tool("exec_code", {"code": "1"})

    anyio.run(open_sessions)
    assert len([p for p in runtime_dir.iterdir() if p.name.startswith("s-")]) == 2
    stop(process)
    assert list(runtime_dir.iterdir()) == []
    leftover = subprocess.run(["pgrep", "-f", str(runtime_dir)], capture_output=True, text=True)
    assert leftover.stdout == ""
