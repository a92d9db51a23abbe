"""The autonomous loop end to end through the Python API: a scripted root model served by the local
OpenAI-compatible fixture answers with the tool calls (or code) a real model would send."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rlm_mcp import RLM
from rlm_mcp.rlm import RLMLimits
from rlm_mcp.rlm.prompts import SYSTEM_PROMPT
from tests.fakes import FakeOpenAI

pytestmark = pytest.mark.anyio
Script = Callable[[list[dict[str, Any]]], dict[str, Any] | str]


def tool_call(name: str, **arguments: Any) -> dict[str, Any]:
    call = {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def last_tool_output(messages: list[dict[str, Any]]) -> str:
    return next(m["content"] for m in reversed(messages) if m.get("role") == "tool")


def upstream(root: Script, worker: Callable[[str], str] = lambda prompt: f"echo: {prompt}") -> FakeOpenAI:
    def respond(request: dict[str, Any]) -> dict[str, Any] | str:
        if request["messages"][0]["role"] == "system":  # the loop's root model; workers get bare prompts
            return root(request["messages"])
        return worker(request["messages"][-1]["content"])

    return FakeOpenAI(respond)


def make_rlm(fake: FakeOpenAI, tmp_path: Path, monkeypatch, max_iterations: int = 6, **settings: Any) -> RLM:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return RLM("openai/scripted-root", worker_model="openai/gpt-4o-mini", root_api_base=fake.api_base,
               worker_api_base=fake.api_base, home=tmp_path / "home",
               limits=RLMLimits(max_iterations=max_iterations), **settings)


async def test_needle_found_by_code(tmp_path: Path, monkeypatch) -> None:
    haystack = "".join(f"line {i}: nothing to see\n" for i in range(200_000))
    haystack = haystack[: len(haystack) // 2] + "the secret NEEDLE=7319 is here\n" + haystack[len(haystack) // 2 :]

    def root(messages):
        if not any(m.get("role") == "tool" for m in messages):
            return tool_call("exec_code", code="import re\nprint(re.search(r'NEEDLE=(\\d+)', context).group(1))")
        return tool_call("final_answer", answer=re.search(r"\d+", last_tool_output(messages)).group(0))

    with upstream(root) as fake:
        rlm = make_rlm(fake, tmp_path, monkeypatch)
        result = await rlm.acomplete("What is the needle?", haystack)
    assert (result.answer, result.status) == ("7319", "final")
    assert result.usage.iterations == 2 and result.usage.code_blocks == 1
    first_user = fake.requests[0]["messages"][1]["content"]
    assert "NEEDLE" not in first_user and "characters" in first_user  # metadata, never the content


async def test_aggregation_with_batched_workers(tmp_path: Path, monkeypatch) -> None:
    lines = [f"user{i}: {'spam' if i % 3 == 0 else 'ham'}" for i in range(3000)]
    code = (
        "pieces = chunk(context, 10_000)\n"
        "answers = llm_query_batched([f'Count spam lines. Reply with a number.\\n{p}' for p in pieces])\n"
        "FINAL(sum(int(a) for a in answers))"
    )

    def root(messages):
        return tool_call("exec_code", code=code)

    with upstream(root, worker=lambda prompt: str(prompt.count(": spam"))) as fake:
        text = "\n".join(lines)
        result = await make_rlm(fake, tmp_path, monkeypatch).acomplete("How many spam lines?", text)
    assert (result.answer, result.status) == ("1000", "final")
    assert result.worker_usage["calls"] == -(-len(text) // 10_000)  # one per chunk


async def test_fallback_without_tool_calls_runs_fenced_code(tmp_path: Path, monkeypatch) -> None:
    with upstream(lambda messages: "Let me compute.\n```python\nFINAL(6 * 7)\n```") as fake:
        result = await make_rlm(fake, tmp_path, monkeypatch).acomplete("6 times 7?", "irrelevant")
    assert (result.answer, result.status) == ("42", "final")


async def test_code_errors_are_shown_to_the_root_and_survived(tmp_path: Path, monkeypatch) -> None:
    def root(messages):
        if not any(m.get("role") == "tool" for m in messages):
            return tool_call("exec_code", code="1 / 0")
        assert "ZeroDivisionError" in last_tool_output(messages)
        return tool_call("exec_code", code="FINAL('recovered')")

    with upstream(root) as fake:
        result = await make_rlm(fake, tmp_path, monkeypatch).acomplete("q", "text")
    assert (result.answer, result.status) == ("recovered", "final")


@pytest.mark.parametrize(
    ("limits", "reason"),
    [({"max_iterations": 3}, "iteration limit"), ({"max_wall_s": 0.5}, "time limit")],
)
async def test_limits_return_the_best_answer_so_far(tmp_path: Path, monkeypatch, limits, reason) -> None:
    def root(messages):
        if "A limit of this run was reached" in str(messages[-1].get("content")):
            return "Best guess: 17 (not verified)"
        return tool_call("exec_code", code="import time\ntime.sleep(0.3)\nprint('still working')")

    with upstream(root) as fake:
        result = await make_rlm(fake, tmp_path, monkeypatch, **limits).acomplete("q", "text")
    assert result.status == "best_effort" and reason in result.reason
    assert result.answer == "Best guess: 17 (not verified)"


async def test_root_calls_spend_from_the_session_budget(tmp_path: Path, monkeypatch) -> None:
    def root(messages):
        return tool_call("exec_code", code="print('spending')")

    with upstream(root) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        rlm = RLM("openai/gpt-4o", worker_model="openai/gpt-4o-mini", root_api_base=fake.api_base,
                  worker_api_base=fake.api_base, home=tmp_path / "home", max_cost_usd=0.000001,
                  limits=RLMLimits(max_iterations=10))
        result = await rlm.acomplete("q", "text")
    assert result.status == "best_effort" and "max_cost_usd" in (result.reason or "")
    assert result.usage.root.calls == 1 == len(fake.requests) and result.answer == "spending"
    assert result.spent["model_calls"] == 1 and result.spent["cost_usd"] > 0.000001


async def test_root_that_never_answers(tmp_path: Path, monkeypatch) -> None:
    with upstream(lambda messages: "I am thinking about it.") as fake:
        result = await make_rlm(fake, tmp_path, monkeypatch, max_iterations=3).acomplete("q", "text")
    assert result.status == "best_effort" and "iteration limit" in result.reason
    assert result.answer == "I am thinking about it."
    nudges = [m for m in fake.requests[-1]["messages"] if "Nothing was run" in str(m.get("content"))]
    assert len(nudges) == 3


async def test_trajectory_is_written_and_renders(tmp_path: Path, monkeypatch) -> None:
    from rlm_mcp.trace import read_events, render

    with upstream(lambda messages: tool_call("exec_code", code="FINAL(llm_query('hi'))")) as fake:
        rlm = make_rlm(fake, tmp_path, monkeypatch)
        result = await rlm.acomplete("q", "text")
    assert result.answer == "echo: hi"
    events = read_events(rlm.last_trajectory)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "rlm_start" and kinds[-1] == "rlm_end"
    assert {"root_reply", "code", "worker_call"} <= set(kinds)
    assert "echo: hi" in render(events)


async def test_each_code_block_is_recorded_once_with_its_iteration(tmp_path: Path, monkeypatch) -> None:
    def root(messages):
        done = sum(m.get("role") == "tool" for m in messages)
        return tool_call("exec_code", code=f"print({done})" if done < 2 else "FINAL('two')")

    seen: list[dict[str, Any]] = []
    with upstream(root) as fake:
        rlm = make_rlm(fake, tmp_path, monkeypatch)
        result = await rlm.acomplete("q", "text", record=seen.append)
    assert result.answer == "two" and result.usage.code_blocks == 3
    from rlm_mcp.trace import read_events

    for events in (read_events(rlm.last_trajectory), seen):  # the file and the caller's hook agree
        codes = [(e["iteration"], e["code"]) for e in events if e["type"] == "code"]
        assert codes == [(1, "print(0)"), (2, "print(1)"), (3, "FINAL('two')")]


async def test_a_full_context_window_drops_older_turns_and_keeps_the_repl(tmp_path: Path, monkeypatch) -> None:
    def root(messages):
        if any("earlier turns were dropped" in str(m.get("content")) for m in messages):
            return tool_call("exec_code", code="FINAL(str(secret + 1))")  # state from the very first turn
        if not any(m.get("role") == "tool" for m in messages):
            return tool_call("exec_code", code="secret = 41\nprint('x' * 3000)")
        return tool_call("exec_code", code="print('y' * 3000)")

    with upstream(root) as fake:
        fake.context_window_chars = len(SYSTEM_PROMPT) + 14_000  # a few turns of 3,000-character outputs
        rlm = make_rlm(fake, tmp_path, monkeypatch, max_iterations=12)
        result = await rlm.acomplete("q", "text")
    assert (result.answer, result.status) == ("42", "final")
    from rlm_mcp.trace import read_events

    dropped = [e for e in read_events(rlm.last_trajectory) if e["type"] == "history_dropped"]
    assert len(dropped) == 1 and dropped[0]["turns"] >= 1
    after = fake.requests[-1]
    assert after["tools"] and after["messages"][1]["content"].startswith("Question: q")  # tools kept, question too
    roles = [m["role"] for m in after["messages"]]
    assert all(roles[i - 1] == "assistant" for i, role in enumerate(roles) if role == "tool")  # pairs intact


async def test_a_question_alone_too_long_for_the_root_fails_clearly(tmp_path: Path, monkeypatch) -> None:
    with upstream(lambda messages: "unused") as fake:
        fake.context_window_chars = 100
        rlm = make_rlm(fake, tmp_path, monkeypatch)
        result = await rlm.acomplete("q", "text")
    assert result.status == "failed" and "longer than its context window" in (result.reason or "")
    assert len(fake.requests) == 1  # no retry without tools: a full window is not a refusal of tools


async def test_a_context_that_cannot_load_raises_our_error(tmp_path: Path, monkeypatch) -> None:
    from rlm_mcp.contexts import SourceNotFound

    with upstream(lambda messages: "unused") as fake, pytest.raises(SourceNotFound, match="does not exist"):
        await make_rlm(fake, tmp_path, monkeypatch).acomplete("q", [tmp_path / "missing.txt"])  # not a group
    assert fake.requests == []
