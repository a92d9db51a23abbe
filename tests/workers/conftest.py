"""A fake OpenAI-compatible upstream per test, reached through real litellm over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_mcp.workers import Budget, BudgetLimits, LiteLLMBackend, TrajectoryLog, WorkerDispatcher, WorkerSettings
from tests.fakes import FakeOpenAI

PRICED = "openai/gpt-4o-mini"  # litellm knows its price, so cost is computed from usage
UNPRICED = "openai/house-model-7b"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def make_dispatcher(fake: FakeOpenAI, tmp_path: Path | None = None, **settings) -> WorkerDispatcher:
    options = {"model": PRICED, "timeout_s": 5.0, "retries": 2, "backoff_s": 0.05, **settings}
    trajectory = TrajectoryLog(tmp_path / "trajectory.jsonl") if tmp_path else None
    return WorkerDispatcher(WorkerSettings(**options), LiteLLMBackend(api_base=fake.api_base, api_key="sk-test"),
                            trajectory)


def budget(**limits) -> Budget:
    return Budget.new(BudgetLimits(**limits))
