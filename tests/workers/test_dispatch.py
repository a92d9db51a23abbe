"""Worker dispatch through real litellm to a local OpenAI-compatible server with injected faults."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rlm_mcp.workers import BudgetExceeded
from tests.fakes import FakeOpenAI, Fault

from .conftest import UNPRICED, budget

pytestmark = pytest.mark.anyio


async def test_single_call_is_accounted(make_dispatcher, fake: FakeOpenAI, tmp_path: Path) -> None:
    dispatcher = make_dispatcher(fake, tmp_path)
    result = await dispatcher.query("What is 2+2?", budget())
    assert result.error is None and result.text == "echo: What is 2+2?"
    assert result.tokens_in > 0 and result.tokens_out > 0
    assert result.cost_usd is not None and result.cost_usd > 0
    assert dispatcher.usage.calls == 1 and dispatcher.usage.cost_usd == pytest.approx(result.cost_usd)
    event = json.loads((tmp_path / "trajectory.jsonl").read_text().splitlines()[0])
    assert event["type"] == "worker_call" and event["prompt_chars"] == len("What is 2+2?")
    assert event["cost_usd"] == pytest.approx(result.cost_usd) and event["error"] is None
    assert event["backend"] == result.backend == dispatcher.backend.name  # which backend answered


async def test_unknown_price_is_unknown_not_zero(make_dispatcher, fake: FakeOpenAI) -> None:
    dispatcher = make_dispatcher(fake, model=UNPRICED)
    result = await dispatcher.query("hello", budget())
    assert result.error is None and result.cost_usd is None
    assert dispatcher.usage.cost_usd is None


async def test_batch_keeps_order_and_runs_concurrently(make_dispatcher, ) -> None:
    with FakeOpenAI(latency_s=0.2) as slow:
        dispatcher = make_dispatcher(slow, concurrency=16)
        started = time.perf_counter()
        results = await dispatcher.query_batched([f"item {i}" for i in range(16)], budget())
        elapsed = time.perf_counter() - started
        assert [r.text for r in results] == [f"echo: item {i}" for i in range(16)]
        assert elapsed < 16 * 0.2 / 3, elapsed
        assert slow.peak_active >= 8


async def test_concurrency_limit_is_respected(make_dispatcher, ) -> None:
    with FakeOpenAI(latency_s=0.1) as slow:
        await make_dispatcher(slow, concurrency=3).query_batched([f"p{i}" for i in range(12)], budget())
        assert slow.peak_active <= 3


async def test_429_is_retried(make_dispatcher, fake: FakeOpenAI) -> None:
    fake.inject(Fault("429", seconds=0.05))
    result = await make_dispatcher(fake).query("retry me", budget())
    assert result.error is None and len(fake.requests) == 2


async def test_persistent_500_fails_after_retries(make_dispatcher, fake: FakeOpenAI) -> None:
    fake.inject(*[Fault("500")] * 3)
    result = await make_dispatcher(fake, retries=2).query("doomed", budget())
    assert result.error is not None and "injected 500" in result.error
    assert result.text.startswith("[llm_query error:")
    assert len(fake.requests) == 3


async def test_hanging_upstream_hits_the_timeout(make_dispatcher, fake: FakeOpenAI) -> None:
    fake.inject(Fault("hang", seconds=5), Fault("hang", seconds=5))
    started = time.perf_counter()
    result = await make_dispatcher(fake, timeout_s=0.5, retries=1).query("slow", budget())
    assert result.error is not None and "did not answer within 0.5 s" in result.error
    assert time.perf_counter() - started < 4


async def test_malformed_body_is_a_clear_error(make_dispatcher, fake: FakeOpenAI) -> None:
    fake.inject(*[Fault("malformed")] * 3)
    result = await make_dispatcher(fake, retries=0).query("garbage", budget())
    assert result.error is not None and "malformed reply" in result.error
    assert len(fake.requests) == 1


async def test_dropped_connection_is_retried(make_dispatcher, fake: FakeOpenAI) -> None:
    fake.inject(Fault("drop"))
    result = await make_dispatcher(fake).query("flaky", budget())
    assert result.error is None


async def test_one_failure_does_not_sink_the_batch(make_dispatcher, ) -> None:
    def responder(request):
        prompt = request["messages"][-1]["content"]
        return Fault("500") if prompt == "bad" else f"ok {prompt}"

    with FakeOpenAI(responder) as fake:
        results = await make_dispatcher(fake, retries=0).query_batched(["a", "bad", "c"], budget())
        assert [r.text for r in results][0::2] == ["ok a", "ok c"]
        assert results[1].error and results[1].text.startswith("[llm_query error:")


async def test_cache_hit_costs_nothing_and_sends_nothing(make_dispatcher, fake: FakeOpenAI) -> None:
    dispatcher = make_dispatcher(fake)
    first = await dispatcher.query("same question", budget())
    second = await dispatcher.query("same question", budget())
    assert second.cached and second.text == first.text and second.cost_usd == 0.0
    assert len(fake.requests) == 1
    assert dispatcher.usage.cached_calls == 1


@pytest.mark.parametrize(
    ("limits", "calls", "budget_name"),
    [
        ({"max_worker_calls": 3}, 5, "max_worker_calls"),
        ({"max_tokens": 10}, 5, "max_tokens"),
        ({"max_cost_usd": 0.000001}, 5, "max_cost_usd"),
        ({"max_wall_s": 0.000001}, 2, "max_wall_s"),
    ],
)
async def test_budgets_stop_further_calls_and_keep_results(
    make_dispatcher, fake: FakeOpenAI, limits, calls, budget_name
) -> None:
    dispatcher = make_dispatcher(fake)
    shared = budget(**limits)
    results = [await dispatcher.query(f"question {i}", shared) for i in range(calls)]
    stopped = [r for r in results if r.error]
    assert stopped and all(budget_name in r.error for r in stopped)
    assert "RLM_" in stopped[0].error  # says how to raise it
    if budget_name != "max_wall_s":
        assert results[0].error is None  # what was computed before the crossing is kept


async def test_repeated_prompt_is_stopped(make_dispatcher, fake: FakeOpenAI) -> None:
    dispatcher = make_dispatcher(fake)
    shared = budget(max_repeats=3)
    results = [await dispatcher.query("again", shared) for _ in range(5)]
    assert [r.error is None for r in results] == [True, True, True, False, False]
    assert "max_repeats" in results[3].error


async def test_huge_batch_is_refused(make_dispatcher, fake: FakeOpenAI) -> None:
    with pytest.raises(BudgetExceeded, match=r"max_batch.*RLM_MAX_BATCH"):
        await make_dispatcher(fake).query_batched(["x"] * 11, budget(max_batch=10))
    assert fake.requests == []


def test_depth_budget() -> None:
    root = budget(max_depth=2)
    child = root.child()
    grandchild = child.child()
    assert root.can_recurse() and child.can_recurse() and not grandchild.can_recurse()
    assert grandchild.ledger is root.ledger  # the call tree shares one set of counters


async def test_no_model_configured_says_how(make_dispatcher, fake: FakeOpenAI) -> None:
    result = await make_dispatcher(fake, model=None).query("hi", budget())
    assert result.error and "RLM_WORKER_MODEL" in result.error


def test_price_map_read_without_litellm_matches_litellms_own() -> None:
    from rlm_mcp.workers import load_litellm, price_of

    table = load_litellm().model_cost
    for model in ("gpt-4o-mini", "openai/gpt-4o-mini", "claude-3-5-haiku-20241022", "no-such/model"):
        entry = table.get(model) or table.get(model.split("/", 1)[-1])
        expected = (entry["input_cost_per_token"], entry["output_cost_per_token"]) if entry else None
        assert price_of(model) == expected
    assert price_of("gpt-4o-mini") is not None
