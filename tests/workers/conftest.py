"""A fake OpenAI-compatible upstream per test, reached through real litellm over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from rlm_mcp.workers import (
    Budget,
    BudgetLimits,
    LiteLLMBackend,
    OpenAICompatibleBackend,
    TrajectoryLog,
    WorkerDispatcher,
    WorkerSettings,
)
from tests.fakes import FakeOpenAI

PRICED = "openai/gpt-4o-mini"  # litellm knows its price, so cost is computed from usage
UNPRICED = "openai/house-model-7b"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(params=["litellm", "openai-compatible"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    """Every dispatch test runs against both backends: litellm and the lean OpenAI-compatible path."""
    return request.param


@pytest.fixture
async def make_dispatcher(backend_kind: str) -> AsyncIterator[Callable[..., WorkerDispatcher]]:
    """`make_dispatcher(fake, tmp_path=None, **settings)`; every dispatcher made is closed after the test."""
    made: list[WorkerDispatcher] = []

    def make(fake: FakeOpenAI, tmp_path: Path | None = None, **settings) -> WorkerDispatcher:
        options = {"model": PRICED, "timeout_s": 5.0, "retries": 2, "backoff_s": 0.05, **settings}
        trajectory = TrajectoryLog(tmp_path / "trajectory.jsonl") if tmp_path else None
        backend = (LiteLLMBackend(api_base=fake.api_base, api_key="sk-test") if backend_kind == "litellm"
                   else OpenAICompatibleBackend(api_base=fake.api_base, api_key="sk-test"))
        made.append(WorkerDispatcher(WorkerSettings(**options), backend, trajectory))
        return made[-1]

    yield make
    for dispatcher in made:
        await dispatcher.aclose()
        if dispatcher.trajectory is not None:
            dispatcher.trajectory.close()


def budget(**limits) -> Budget:
    return Budget.new(BudgetLimits(**limits))
