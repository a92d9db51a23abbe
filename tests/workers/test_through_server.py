"""Worker calls end to end: REPL code and the host's sub_query through the real server over stdio,
real litellm, real HTTP to the fake upstream; MCP sampling answered by the client's callback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from mcp_types import CreateMessageResult, TextContent

from tests.fakes import FakeOpenAI
from tests.helpers import stdio_client, tool_error

pytestmark = pytest.mark.anyio


def scripted_root(request: dict) -> str | dict:
    """Root-model requests carry tools; worker requests do not (they get an echo)."""
    if "tools" not in request:
        return f"echo: {request['messages'][-1]['content']}"
    question = re.search(r"Question: (\w+)", request["messages"][1]["content"]).group(1)
    code = {
        "q1": "FINAL('child saw ' + rlm_query('q2', context=context[:3]))",
        "q2": "FINAL('grandchild saw ' + context + ' / ' + rlm_query('q3', context='leaf'))",
    }.get(question, "FINAL('no script')")
    arguments = json.dumps({"code": code})
    call = {"id": "call_1", "type": "function", "function": {"name": "exec_code", "arguments": arguments}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(scripted_root) as fake:
        yield fake


@pytest.fixture
def worker_env(server_env, upstream: FakeOpenAI) -> dict[str, str]:
    return {**server_env, "RLM_WORKER_MODEL": "openai/gpt-4o-mini", "RLM_WORKER_API_BASE": upstream.api_base,
            "RLM_ROOT_MODEL": "openai/scripted-root", "RLM_ROOT_API_BASE": upstream.api_base,
            "OPENAI_API_KEY": "sk-test", "RLM_MAX_DEPTH": "2"}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_llm_query_from_the_repl(worker_env, upstream: FakeOpenAI, mode: str) -> None:
    async with stdio_client(worker_env, mode) as client:
        result = await client.call_tool("exec_code", {"code": "answer = llm_query('ping')\nanswer"})
        report = result.structured_content
        assert report["stdout"] == "'echo: ping'\n"
        assert report["worker_usage"]["calls"] == 1 and report["worker_usage"]["cost_usd"] > 0
        assert "[workers] 1 calls" in result.content[0].text
        status = await client.call_tool("session", {})
        assert status.structured_content["worker_usage"]["calls"] == 1


async def test_concurrent_calls_from_guest_threads_and_batches(worker_env, upstream: FakeOpenAI) -> None:
    code = (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor(8) as pool:\n"
        "    singles = list(pool.map(lambda i: llm_query(f'thread {i}'), range(8)))\n"
        "batch = llm_query_batched([f'item {i}' for i in range(20)])\n"
        "print(singles[7], batch[0], batch[19], len(batch))"
    )
    async with stdio_client(worker_env) as client:
        result = await client.call_tool("exec_code", {"code": code})
        assert result.structured_content["stdout"] == "echo: thread 7 echo: item 0 echo: item 19 20\n", result
        assert result.structured_content["worker_usage"]["calls"] == 28


async def test_budget_stops_calls_in_the_repl_and_keeps_the_session(worker_env, upstream: FakeOpenAI) -> None:
    env = {**worker_env, "RLM_MAX_WORKER_CALLS": "2"}
    code = (
        "got = []\n"
        "for i in range(4):\n"
        "    try:\n        got.append(llm_query(f'n{i}'))\n"
        "    except LLMQueryError as exc:\n        got.append(str(exc))\n"
        "print(got[1]); print(got[2])"
    )
    async with stdio_client(env) as client:
        result = await client.call_tool("exec_code", {"code": code})
        first, second = result.structured_content["stdout"].splitlines()
        assert first == "echo: n1"
        assert "max_worker_calls" in second and "RLM_MAX_WORKER_CALLS" in second
        assert (await client.call_tool("exec_code", {"code": "len(got)"})).structured_content["stdout"] == "4\n"


async def test_sub_query_over_a_context_slice(worker_env, upstream: FakeOpenAI, tmp_path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "a.py").write_text("A = 1\n")
    (project / "b.py").write_text("B = 2\n" * 100)
    async with stdio_client(worker_env) as client:
        await client.call_tool("load_context", {"source": [str(project)]})
        single = await client.call_tool("sub_query", {"prompt": "Summarise", "context": "main", "path": "a.py"})
        assert single.structured_content["answers"][0]["text"] == "echo: Summarise\n\n---\nA = 1\n"
        mapped = await client.call_tool("sub_query", {"prompt": "Count", "context": "main", "path": "b.py",
                                                      "chunk_chars": 200})
        answers = mapped.structured_content["answers"]
        assert len(answers) == 3 and all(a["text"].startswith("echo: Count") for a in answers)
        batch = await client.call_tool("sub_query", {"prompts": ["x", "y"]})
        assert [a["text"] for a in batch.structured_content["answers"]] == ["echo: x", "echo: y"]
        assert batch.structured_content["backend"] == "openai-compatible"  # the lean client answered
        missing = await tool_error(client, "sub_query", {"prompt": "?", "context": "main", "path": "missing.py"})
        assert "not a file of context" in missing


async def test_rlm_query_recurses_to_depth_two(worker_env, upstream: FakeOpenAI) -> None:
    async with stdio_client(worker_env) as client:
        result = await client.call_tool("exec_code", {"code": "rlm_query('q1', context='abcdef')"})
        assert result.structured_content["stdout"] == "'child saw grandchild saw abc / echo: q3\\n\\nleaf'\n", result
    root_calls = [r for r in upstream.requests if "tools" in r]
    assert len(root_calls) == 2  # the child and the grandchild; the third level degraded to a worker call


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sampling_answers_when_no_worker_is_configured(server_env, mode: str) -> None:
    seen: list[str] = []

    async def sampling_callback(context, params) -> CreateMessageResult:
        seen.append(params.messages[0].content.text)
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text="from the client's model"),
                                   model="client-llm")

    from mcp import Client, StdioServerParameters

    from tests.helpers import REPO, server_command

    params = StdioServerParameters(command=server_command(), args=[], env=server_env, cwd=str(REPO))
    async with Client(params, mode=mode, sampling_callback=sampling_callback) as client:
        result = await client.call_tool("sub_query", {"prompt": "What is RLM?"})
        report = result.structured_content
        assert report["backend"] == "sampling" and report["answers"][0]["text"] == "from the client's model"
        # A request the sampling path cannot serve is the tool's error result (SEP-1303), which the model reads.
        unknown = await tool_error(client, "sub_query", {"prompt": "?", "context": "nothing"})
        assert "no context named 'nothing'" in unknown
        assert "session" in await tool_error(client, "sub_query", {"prompt": "?", "session": "not-a-handle"})
    assert seen == ["What is RLM?"]


async def test_without_worker_or_sampling_the_error_says_how(server_env) -> None:
    async with stdio_client(server_env) as client:
        result = await client.call_tool("sub_query", {"prompt": "hello"})
        assert result.is_error and "RLM_WORKER_MODEL" in result.content[0].text
        repl = await client.call_tool("exec_code", {"code": "llm_query('x')"})
        assert repl.is_error and "RLM_WORKER_MODEL" in repl.structured_content["error"]


async def test_long_batches_report_progress(worker_env, upstream: FakeOpenAI) -> None:
    updates: list[str] = []

    async def on_progress(progress, total, message):
        updates.append(message)

    async with stdio_client(worker_env) as client:
        result = await client.call_tool("exec_code", {"code": "len(llm_query_batched([str(i) for i in range(30)]))"},
                                        progress_callback=on_progress)
        assert result.structured_content["stdout"] == "30\n"
    assert "llm_query_batched: 30/30 answers" in updates and len(updates) >= 3


async def test_worker_backend_that_disappears(server_env) -> None:
    fake = FakeOpenAI(scripted_root).__enter__()
    env = {**server_env, "RLM_WORKER_MODEL": "openai/gpt-4o-mini", "RLM_WORKER_API_BASE": fake.api_base,
           "OPENAI_API_KEY": "sk-test", "RLM_WORKER_RETRIES": "1", "RLM_WORKER_TIMEOUT_S": "3"}
    async with stdio_client(env) as client:
        alive = await client.call_tool("exec_code", {"code": "llm_query('before')"})
        assert alive.structured_content["stdout"] == "'echo: before'\n"
        fake.__exit__(None, None, None)  # the upstream goes away mid-session
        gone = await client.call_tool("exec_code", {"code": "llm_query('after')"})
        assert gone.is_error and "cannot reach openai/gpt-4o-mini" in gone.structured_content["error"]
        still = await client.call_tool("exec_code", {"code": "'the REPL is fine'"})
        assert still.structured_content["stdout"] == "'the REPL is fine'\n"
