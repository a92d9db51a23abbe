"""Retry-After, budgets crossed inside a batch, in-flight de-duplication, the dispatcher's own budget,
per-exec usage deltas and the fake's scripted tool calls -- through real HTTP to the fake upstream."""

from __future__ import annotations

import email.utils
import json
import time
from pathlib import Path

import pytest

from rlm_mcp.workers import (
    Budget,
    BudgetExceeded,
    BudgetLimits,
    LiteLLMBackend,
    WorkerDispatcher,
    WorkerSettings,
    load_litellm,
)
from rlm_mcp.workers.protocol import retry_after_seconds
from tests.fakes import FakeOpenAI, Fault

from .conftest import PRICED, budget

pytestmark = pytest.mark.anyio


async def test_retry_after_is_honoured(make_dispatcher, fake: FakeOpenAI) -> None:
    fake.inject(Fault("429", seconds=0.6))
    started = time.perf_counter()
    result = await make_dispatcher(fake, backoff_s=0.01).query("patience", budget())
    assert result.error is None and len(fake.requests) == 2
    assert time.perf_counter() - started >= 0.55  # waited for the provider, not the 10 ms backoff


async def test_retry_after_beyond_the_cap_fails_at_once(make_dispatcher, fake: FakeOpenAI) -> None:
    fake.inject(Fault("429", seconds=3600))
    started = time.perf_counter()
    result = await make_dispatcher(fake).query("come back tomorrow", budget())
    assert result.error is not None and "429" in result.error
    assert len(fake.requests) == 1 and time.perf_counter() - started < 3


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_after_seconds({"retry-after": date}) or 0) <= 31
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds(None) is None and retry_after_seconds({}) is None


@pytest.mark.parametrize(("limits", "name"), [({"max_worker_calls": 5}, "max_worker_calls"),
                                              ({"max_tokens": 40}, "max_tokens"),
                                              ({"max_cost_usd": 0.00002}, "max_cost_usd")])
async def test_budget_crossed_inside_a_batch_keeps_earlier_slots(make_dispatcher, fake: FakeOpenAI, limits,
                                                                 name: str) -> None:
    """Checked when a call gets its slot, so a batch cannot overshoot by more than the concurrency."""
    dispatcher = make_dispatcher(fake, concurrency=2)
    prompts = [f"question number {i} " + "x" * 200 for i in range(20)]
    results = await dispatcher.query_batched(prompts, budget(**limits))
    failed = [r.error is not None for r in results]
    assert not failed[0] and failed[-1]
    assert failed == sorted(failed), "answers first, budget errors after the crossing"
    assert all(name in r.error and "RLM_" in r.error for r in results if r.error)
    assert all(r.text.startswith("[llm_query error:") for r in results if r.error)
    assert len(fake.requests) == failed.index(True) < 20
    if name == "max_worker_calls":
        assert len(fake.requests) == 5


async def test_identical_prompts_in_flight_are_sent_once(make_dispatcher) -> None:
    with FakeOpenAI(latency_s=0.2) as slow:
        results = await make_dispatcher(slow).query_batched(["same"] * 5 + ["other"], budget())
        assert len(slow.requests) == 2
        assert [r.text for r in results] == ["echo: same"] * 5 + ["echo: other"]
        assert sum(r.cached for r in results) == 4 and all(r.cost_usd == 0.0 for r in results if r.cached)


async def test_identical_prompts_whose_leader_failed_try_again(make_dispatcher) -> None:
    def responder(request):
        return Fault("500") if len(fake.requests) == 1 else "fine"

    with FakeOpenAI(responder, latency_s=0.1) as fake:
        results = await make_dispatcher(fake, retries=0).query_batched(["same"] * 4, budget())
        assert results[0].error is not None and [r.text for r in results[1:]] == ["fine"] * 3
        assert len(fake.requests) == 2 and sum(r.cached for r in results) == 2


async def test_cache_off_sends_every_time(make_dispatcher, fake: FakeOpenAI) -> None:
    dispatcher = make_dispatcher(fake, cache=False)
    for _ in range(3):
        assert not (await dispatcher.query("again", budget())).cached
    assert len(fake.requests) == 3


async def test_the_dispatchers_own_budget_and_usage_deltas(fake: FakeOpenAI, tmp_path: Path) -> None:
    backend = LiteLLMBackend(api_base=fake.api_base, api_key="sk-test")
    shared = Budget.new(BudgetLimits(max_worker_calls=2))
    dispatcher = WorkerDispatcher(WorkerSettings(PRICED, timeout_s=5), backend, budget=shared)
    first = await dispatcher.query("one")
    mark = dispatcher.usage.snapshot()
    second = await dispatcher.query("two", model=PRICED)
    third = await dispatcher.query("three")
    delta = dispatcher.usage.since(mark)
    assert first.error is None and second.error is None and third.error and "max_worker_calls" in third.error
    assert (delta.calls, delta.failed_calls, delta.tokens_in) == (2, 1, second.tokens_in)
    assert delta.cost_usd == pytest.approx(second.cost_usd)
    assert shared.ledger.calls == 2
    with pytest.raises(TypeError, match="model="):
        await dispatcher.query("x", PRICED)  # type: ignore[arg-type]


async def test_progress_is_reported_sync_and_async(make_dispatcher, fake: FakeOpenAI) -> None:
    seen: list[tuple[int, int | None, str]] = []

    async def async_progress(done: int, total: int | None, message: str) -> None:
        seen.append((done, total, message))

    dispatcher = make_dispatcher(fake)
    await dispatcher.query_batched(["a", "b", "c"], budget(), on_progress=async_progress)
    await dispatcher.query_batched(["d", "e"], budget(), on_progress=lambda *report: seen.append(report))
    assert seen == [(1, 3, "1/3 answers"), (2, 3, "2/3 answers"), (3, 3, "3/3 answers"),
                    (1, 2, "1/2 answers"), (2, 2, "2/2 answers")]


def test_depth_beyond_the_limit_is_refused() -> None:
    leaf = budget(max_depth=1).child()
    with pytest.raises(BudgetExceeded, match=r"max_depth.*RLM_MAX_DEPTH") as caught:
        leaf.child()
    assert (caught.value.budget, caught.value.limit, caught.value.used) == ("max_depth", 1, 2)


async def test_trajectory_records_every_field(make_dispatcher, fake: FakeOpenAI, tmp_path: Path) -> None:
    dispatcher = make_dispatcher(fake, tmp_path)
    await dispatcher.query("hello", budget().child())
    await dispatcher.query("hello", budget())
    assert dispatcher.trajectory is not None
    dispatcher.trajectory.record({"type": "code", "code": "print(1)"})
    lines = [json.loads(line) for line in (tmp_path / "trajectory.jsonl").read_text().splitlines()]
    fields = {"ts", "type", "model", "prompt_chars", "response_chars", "tokens_in", "tokens_out", "cost_usd",
              "latency_s", "cached", "error", "depth", "backend"}
    assert set(lines[0]) == fields and lines[0]["depth"] == 1 and lines[0]["response_chars"] == len("echo: hello")
    assert lines[1]["cached"] is True and lines[1]["cost_usd"] == 0.0 and lines[1]["depth"] == 0
    assert lines[2]["type"] == "code" and "ts" in lines[2]


async def test_fake_scripts_tool_calls_through_litellm() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "exec_code", "arguments": '{"code": "1"}'}}
    with FakeOpenAI(lambda request: {"content": None, "tool_calls": [call]}) as fake:
        response = await load_litellm().acompletion(
            model="openai/scripted", api_base=fake.api_base, api_key="sk-test",
            messages=[{"role": "user", "content": "go"}])
        message = response.choices[0].message
        assert message.tool_calls[0].function.name == "exec_code"
        assert response.choices[0].finish_reason == "tool_calls"
        assert fake.prompts() == ["go"]


async def test_errors_read_well(make_dispatcher, fake: FakeOpenAI) -> None:
    """No litellm preamble; what happened and, for HTTP errors, the status."""
    fake.inject(Fault("drop"), Fault("500"))
    dispatcher = make_dispatcher(fake, retries=0)
    dropped, failed = await dispatcher.query("one"), await dispatcher.query("two")
    assert dropped.error is not None and dropped.error.startswith("cannot reach openai/")
    assert failed.error is not None and "HTTP 500" in failed.error and "OpenAIException" not in failed.error


async def test_calls_in_flight_are_cut_off_when_the_wall_clock_runs_out(make_dispatcher) -> None:
    with FakeOpenAI(latency_s=5) as slow:
        dispatcher = make_dispatcher(slow, concurrency=4)
        started = time.perf_counter()
        results = await dispatcher.query_batched(["a", "b", "c"], budget(max_wall_s=0.8))
        elapsed = time.perf_counter() - started
    assert elapsed < 3, "cut off at the wall limit, not after the 5 s the upstream takes"
    assert all(r.error and "max_wall_s" in r.error and "RLM_MAX_WALL_S" in r.error for r in results)


async def test_a_retry_that_would_outlive_the_wall_clock_is_not_waited_for(make_dispatcher, fake: FakeOpenAI) -> None:
    fake.inject(Fault("429", seconds=20))
    started = time.perf_counter()
    result = await make_dispatcher(fake).query("later", budget(max_wall_s=1.0))
    assert result.error and "max_wall_s" in result.error and len(fake.requests) == 1
    assert time.perf_counter() - started < 3


def test_overtime_admits_one_call_past_the_wall_clock_and_nothing_else() -> None:
    """The call tree has one wall clock; an RLM run stopped by it asks for its answer with a grace
    (rlm/loop.py FINAL_ANSWER_GRACE_S), which must not reopen the clock for anyone else."""
    late = budget(max_wall_s=0.000001)
    time.sleep(0.01)
    with pytest.raises(BudgetExceeded, match="max_wall_s"):
        late.admit()
    late.admit(overtime_s=60)
    assert late.ledger.calls == 1 and late.seconds_left() < 0
    with pytest.raises(BudgetExceeded, match="max_wall_s"):
        late.admit()
