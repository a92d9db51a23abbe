"""`rlm-mcp serve --http`: streamable HTTP on loopback, driven by the real client."""

from __future__ import annotations

import socket
import subprocess
import time

import anyio
import pytest
from mcp import Client

from .conftest import server_command

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def http_server(server_env):
    port = free_port()
    process = subprocess.Popen([server_command(), "serve", "--http", "--port", str(port)], env=server_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"HTTP server did not start: {process.stderr.read().decode()[-2000:]}")
    yield f"http://127.0.0.1:{port}/mcp"
    process.terminate()
    process.wait(timeout=15)
    process.stderr.close()


async def test_http_transport_runs_code(http_server: str) -> None:
    async with Client(http_server) as client:
        await client.call_tool("load_context", {"text": "alpha beta gamma"})
        result = await client.call_tool("exec_code", {"code": "context.split()[1]"})
        assert result.structured_content["stdout"] == "'beta'\n"
    with anyio.fail_after(10):
        async with Client(http_server) as again:  # the same unnamed HTTP session: state is kept
            result = await again.call_tool("exec_code", {"code": "len(context)"})
            assert result.structured_content["stdout"] == "16\n"
