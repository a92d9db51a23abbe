"""One ledger for every model call: root calls at every depth, child RLMs, worker batches and the
`rlm-mcp ask` path all spend from the session's limits, checked before each call is sent.

A priced model (`openai/gpt-4o`, in litellm's bundled price map) is served by the local fake, which
reports 100,000 prompt tokens per call: every call costs the same known amount, so the cap's overshoot
can be read off the fake's request count.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rlm_mcp import RLM
from rlm_mcp.rlm import RLMLimits
from rlm_mcp.workers import price_of
from tests.fakes import FakeOpenAI
from tests.helpers import server_command, stdio_client

pytestmark = pytest.mark.anyio
MODEL = "openai/gpt-4o"
PROMPT_TOKENS, COMPLETION_TOKENS = 100_000, 10
CAP_USD = 1.0


def call_cost() -> float:
    prices = price_of(MODEL)
    assert prices is not None, "litellm's price map must know openai/gpt-4o for these tests"
    return PROMPT_TOKENS * prices[0] + COMPLETION_TOKENS * prices[1]


def exec_call(code: str) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "exec_code", "arguments": json.dumps({"code": code})}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def final_call(answer: str) -> dict[str, Any]:
    call = {"id": "c2", "type": "function", "function": {"name": "final_answer",
                                                         "arguments": json.dumps({"answer": answer})}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def question(request: dict[str, Any]) -> str:
    """The question a root call is about ('' for a worker call, which has no system prompt)."""
    messages = request["messages"]
    return messages[1]["content"] if messages[0]["role"] == "system" else ""


def priced_fake(respond: Callable[[dict[str, Any]], Any]) -> FakeOpenAI:
    return FakeOpenAI(respond, prompt_tokens=PROMPT_TOKENS, completion_tokens=COMPLETION_TOKENS)


def make_rlm(fake: FakeOpenAI, tmp_path: Path, monkeypatch, **settings: Any) -> RLM:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return RLM(MODEL, worker_model=MODEL, root_api_base=fake.api_base, worker_api_base=fake.api_base,
               home=tmp_path / "home", **settings)


def assert_ledger_matches(fake: FakeOpenAI, spent: dict[str, Any]) -> None:
    """Every request the upstream saw is in the ledger, priced."""
    assert spent["model_calls"] == len(fake.requests)
    assert spent["cost_usd"] == pytest.approx(len(fake.requests) * call_cost(), rel=1e-3)


async def test_a_fan_out_of_child_rlms_stops_at_the_cap(tmp_path: Path, monkeypatch) -> None:
    fan_out = ("from concurrent.futures import ThreadPoolExecutor\n"
               "def ask(i):\n"
               "    try:\n"
               "        return rlm_query(f'child {i}')\n"
               "    except Exception as exc:\n"
               "        return f'refused: {exc}'\n"
               "answers = list(ThreadPoolExecutor(8).map(ask, range(40)))\n"
               "print(sum(a.startswith('refused') for a in answers), 'refused')")

    def respond(request: dict[str, Any]) -> Any:
        asked = question(request)
        return final_call("child answer") if "child" in asked else exec_call(fan_out)

    with priced_fake(respond) as fake:
        rlm = make_rlm(fake, tmp_path, monkeypatch, max_cost_usd=CAP_USD,
                       limits=RLMLimits(max_iterations=5))
        result = await rlm.acomplete("fan out", "some text")
    concurrency = 8
    assert len(fake.requests) <= CAP_USD // call_cost() + 1 + concurrency, "passed by at most the calls in flight"
    assert result.status == "best_effort" and "max_cost_usd" in (result.reason or "")
    assert "refused" in result.answer  # the program saw the refusals and said how many
    assert_ledger_matches(fake, result.spent)


async def test_a_batch_stops_at_the_cap(tmp_path: Path, monkeypatch) -> None:
    batch = "answers = llm_query_batched([f'q{i}' for i in range(40)])\nprint(sum('budget' in a for a in answers))"

    def respond(request: dict[str, Any]) -> Any:
        return exec_call(batch) if question(request) else "worker answer"

    with priced_fake(respond) as fake:
        rlm = make_rlm(fake, tmp_path, monkeypatch, max_cost_usd=CAP_USD, worker_concurrency=4,
                       limits=RLMLimits(max_iterations=3))
        result = await rlm.acomplete("batch", "some text")
    workers = [r for r in fake.requests if not question(r)]
    assert 1 <= len(workers) <= CAP_USD // call_cost() + 4  # the root's call counted first; 4 in flight at most
    assert int(result.answer) == 40 - len(workers)  # every slot not sent carries the budget error
    assert result.status == "best_effort" and "max_cost_usd" in (result.reason or "")
    assert_ledger_matches(fake, result.spent)


def recursive_root(request: dict[str, Any]) -> Any:
    """Each root at depth d asks one level deeper; depth 3 (RLM_MAX_DEPTH) falls back to a worker call."""
    asked = question(request)
    if not asked:
        return f"leaf: {request['messages'][-1]['content']}"
    level = next((int(word[5:]) for word in asked.split() if word.startswith("level")), 0)
    return exec_call(f"FINAL(rlm_query('level{level + 1}'))")


async def test_depth_three_counts_every_root(tmp_path: Path, monkeypatch) -> None:
    with priced_fake(recursive_root) as fake:
        rlm = make_rlm(fake, tmp_path, monkeypatch, max_depth=3)
        result = await rlm.acomplete("level0", "some text")
    assert (result.answer, result.status) == ("leaf: level4", "final")
    assert len(fake.requests) == 5  # roots at depths 0, 1, 2, 3 and the worker call at the depth limit
    assert result.usage.root.calls == 1  # this run's own root; its children's are in the ledger
    assert_ledger_matches(fake, result.spent)


async def test_depth_three_stops_where_the_money_ends(tmp_path: Path, monkeypatch) -> None:
    cap = 2.5 * call_cost()  # depths 0, 1 and 2 get their root call; depth 3's is refused
    with priced_fake(recursive_root) as fake:
        rlm = make_rlm(fake, tmp_path, monkeypatch, max_depth=3, max_cost_usd=cap)
        result = await rlm.acomplete("level0", "some text")
    assert len(fake.requests) == 3
    assert result.status == "best_effort" and "max_cost_usd" in (result.reason or "")
    assert_ledger_matches(fake, result.spent)


def test_ask_with_forty_child_rlms_stops_at_the_cap(server_env, tmp_path: Path) -> None:
    """The reported case: `rlm-mcp ask` with RLM_MAX_COST_USD=1.0 and a program calling rlm_query 40 times."""
    program = ("answers = []\n"
               "for i in range(40):\n"
               "    try:\n"
               "        answers.append(rlm_query(f'child {i}'))\n"
               "    except Exception as exc:\n"
               "        answers.append(f'refused: {exc}')\n"
               "print(answers[-1])")

    def respond(request: dict[str, Any]) -> Any:
        return final_call("child answer") if "child" in question(request) else exec_call(program)

    with priced_fake(respond) as fake:
        env = {**server_env, "RLM_ROOT_API_BASE": fake.api_base, "RLM_WORKER_API_BASE": fake.api_base,
               "OPENAI_API_KEY": "sk-test", "RLM_MAX_COST_USD": str(CAP_USD), "RLM_WORKER_MODEL": MODEL}
        completed = subprocess.run([server_command(), "ask", "spend", "-", "--root-model", MODEL, "--json", "-q"],
                                   input="some text", capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    sequential_overshoot = 1  # one call at a time: the cap is passed by at most the call that reached it
    assert len(fake.requests) <= CAP_USD // call_cost() + sequential_overshoot
    assert data["spent"]["cost_usd"] <= CAP_USD + call_cost()
    assert data["status"] == "best_effort" and "max_cost_usd" in data["reason"]
    assert "max_cost_usd" in data["answer"]  # the last child was refused, and the program printed why
    assert data["spent"]["model_calls"] == len(fake.requests)


async def test_rlm_complete_and_sub_query_share_the_session_budget(server_env) -> None:
    """rlm_complete's root calls spend from the same session budget as sub_query's worker calls."""

    def respond(request: dict[str, Any]) -> Any:
        return exec_call("FINAL('done')") if question(request) else "worker answer"

    with priced_fake(respond) as fake:
        env = {**server_env, "RLM_ROOT_MODEL": MODEL, "RLM_WORKER_MODEL": MODEL, "OPENAI_API_KEY": "sk-test",
               "RLM_ROOT_API_BASE": fake.api_base, "RLM_WORKER_API_BASE": fake.api_base,
               "RLM_MAX_COST_USD": str(2.5 * call_cost()), "RLM_WORKER_CONCURRENCY": "1"}
        async with stdio_client(env) as client:
            await client.call_tool("load_context", {"text": "some text"})
            run = await client.call_tool("rlm_complete", {"query": "go"})
            batch = await client.call_tool("sub_query", {"prompts": [f"q{i}" for i in range(10)]})
            status = await client.call_tool("session", {})
    assert run.structured_content["status"] == "final" and run.structured_content["root_calls"] == 1
    answers = batch.structured_content["answers"]
    assert [a.get("error") is None for a in answers].count(True) == 2  # the root's call left room for two
    assert all("max_cost_usd" in a["error"] for a in answers[2:])
    assert len(fake.requests) == 3
    assert_ledger_matches(fake, status.structured_content["spent"])
