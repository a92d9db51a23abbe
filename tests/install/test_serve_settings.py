"""What the bundle's settings form reaches the server through: folders as arguments of `serve`, the worker
model's API key as RLM_WORKER_API_KEY, and the assistant CLI as `--worker-cli` (used only when no worker
model is set). The real server over stdio with the real client; the worker is the local fake over HTTP.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from rlm_mcp.config import load_settings
from tests.fakes import FakeOpenAI
from tests.helpers import server_command, tool_error


def serve(*args: str, env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=server_command(), args=["serve", *args], env=env)


@pytest.mark.anyio
async def test_folders_as_arguments_are_the_allowed_roots(server_env: dict[str, str], tmp_path: Path) -> None:
    picked, other = tmp_path / "picked", tmp_path / "other"
    for folder in (picked, other):
        folder.mkdir()
        (folder / "a.txt").write_text("hello\n")
    env = {**server_env, "RLM_ALLOWED_ROOTS": str(other)}  # the arguments replace it
    async with Client(serve("--", str(picked), env=env)) as client:
        loaded = await client.call_tool("load_context", {"source": [str(picked)], "text": None})
        assert not loaded.is_error, loaded.content
        refused = await tool_error(client, "load_context", {"source": [str(other)], "name": "other"})
        assert re.search(r"outside the allowed roots \(.*picked\)", refused)


@pytest.mark.anyio
async def test_the_worker_key_from_the_form_reaches_the_provider(server_env: dict[str, str]) -> None:
    with FakeOpenAI() as fake:
        env = {**server_env, "RLM_WORKER_MODEL": "openai/gpt-4o-mini", "RLM_WORKER_API_BASE": fake.api_base,
               "RLM_WORKER_API_KEY": "sk-from-the-form"}
        async with Client(serve("--worker-cli", "", env=env)) as client:
            answer = await client.call_tool("sub_query", {"prompt": "say hi"})
            assert not answer.is_error, answer.content
            status = await client.call_tool("session", {})
        assert fake.authorizations == ["Bearer sk-from-the-form"]
        assert "sk-from-the-form" not in status.content[0].text
    assert "sk-from-the-form" not in repr(load_settings(environ={"RLM_WORKER_API_KEY": "sk-from-the-form"}))


@pytest.mark.anyio
@pytest.mark.parametrize(("worker_model", "expected"), [("", "claude-code/haiku"),
                                                        ("openai/gpt-4o-mini", "openai/gpt-4o-mini")])
async def test_the_assistant_cli_is_the_worker_only_without_a_worker_model(
        server_env: dict[str, str], worker_model: str, expected: str) -> None:
    env = {**server_env, "RLM_WORKER_MODEL": worker_model}
    async with Client(serve("--worker-cli", "claude-code/haiku", env=env)) as client:
        status = (await client.call_tool("session", {})).structured_content
    assert status["worker_model"] == expected


@pytest.mark.parametrize(("args", "message"), [
    (["--worker-cli", "gpt-4o"], "'gpt-4o' is not an assistant CLI model: use claude-code/<model>"),
    (["/no/such/folder"], "'/no/such/folder' does not exist"),
])
def test_bad_arguments_stop_before_serving(args: list[str], message: str, server_env: dict[str, str]) -> None:
    completed = subprocess.run([server_command(), "serve", *args], capture_output=True, text=True, timeout=60,
                               env=server_env, stdin=subprocess.DEVNULL)
    assert completed.returncode == 2 and message in completed.stderr, completed.stderr
