"""Worker calls of a session: what `llm_query` and `llm_query_batched` in the REPL reach, and what the host's
sub_query calls, checked against the session's ledger.

One `WorkerCalls` per session tree: the root session creates the dispatcher and the ledger (a `Budget`);
a child RLM's session (from `rlm_query`, rlm/calls.py) takes `child()`: the same dispatcher and a deeper
view of the same ledger, so a call tree never spends more than the session was given. Guest payloads are
untrusted: validated and capped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..errors import BadRequest
from ..progress import Progress, tell
from ..results import AnswerModel, SubQueryReport
from ..workers import (
    Budget,
    BudgetLimits,
    SpendAccount,
    TrajectoryLog,
    Usage,
    WorkerDispatcher,
    WorkerSettings,
    backend_for,
)

MAX_PROMPT_CHARS = 2_000_000
MAX_MODEL_NAME = 200
Reply = dict[str, Any]  # a worker's answer as the guest reads it: {"text", "error", ...}


def budget_limits(settings: Settings) -> BudgetLimits:
    return BudgetLimits(
        max_worker_calls=settings.max_worker_calls, max_tokens=settings.max_tokens,
        max_cost_usd=settings.max_cost_usd, max_depth=settings.max_depth, max_wall_s=settings.max_wall_s,
        max_batch=settings.max_batch, max_repeats=settings.max_repeats,
    )


@dataclass(eq=False)
class WorkerCalls:
    """A session tree's dispatcher and ledger, and the REPL's worker callbacks over them."""

    dispatcher: WorkerDispatcher
    budget: Budget
    owns_dispatcher: bool = True  # children of rlm_query share their parent's
    progress: Progress | None = None  # the host call in flight (an exec), told how a batch goes

    @classmethod
    def new(cls, settings: Settings, account: SpendAccount | None, trajectory: TrajectoryLog | None) -> WorkerCalls:
        """The calls of a root session: its own dispatcher, and a ledger drawing on the owner's account."""
        backend = backend_for(settings.worker_model, settings.worker_api_base, settings.worker_key())
        worker_settings = WorkerSettings(  # a process per call: fewer at once (RLM_CLI_CONCURRENCY)
            model=settings.worker_model,
            concurrency=settings.cli_concurrency if backend.process_per_call else settings.worker_concurrency,
            timeout_s=settings.worker_timeout_s, retries=settings.worker_retries,
        )
        budget = Budget.new(budget_limits(settings), account=account)
        return cls(WorkerDispatcher(worker_settings, backend, trajectory), budget)

    def child(self) -> WorkerCalls:
        """A child RLM's calls: the same dispatcher, one level deeper in the same ledger."""
        return WorkerCalls(self.dispatcher, self.budget.child(), owns_dispatcher=False)

    @property
    def usage(self) -> Usage:
        """The worker calls' running totals (root calls are in the ledger and in each run's own usage)."""
        return self.dispatcher.usage

    def restart_clock(self) -> None:
        """A session reset starts a new call tree: the wall clock (RLM_MAX_WALL_S) restarts, spend stays."""
        self.budget.ledger.restart_clock()

    async def aclose(self) -> None:
        if self.owns_dispatcher:
            await self.dispatcher.aclose()

    async def sub_query(self, prompts: list[str], model: str | None, on_progress: Progress | None) -> SubQueryReport:
        """The host's sub_query: every prompt answered (in order, failures in their slot), what they used,
        and the backend that answered."""
        mark = self.usage.snapshot()
        results = await self.dispatcher.query_batched(prompts, self.budget, model, on_progress)
        answers = [AnswerModel(text=r.text, error=r.error, model=r.model, cached=r.cached) for r in results]
        return SubQueryReport(answers=answers, backend=self.dispatcher.backend.name, usage=self.usage.since(mark))

    async def ask(self, prompt: str, model: str | None = None) -> Reply:
        """One worker call, answered as the guest reads it."""
        return (await self.dispatcher.query(prompt, self.budget, model)).as_reply()

    async def llm_query(self, payload: Any) -> Reply:
        return await self.ask(prompt_of(payload), model_of(payload))

    async def llm_query_batched(self, payload: Any) -> list[Reply]:
        if not isinstance(payload, dict) or not isinstance(payload.get("prompts"), list):
            raise BadRequest("llm_query_batched needs a list of prompts: llm_query_batched(['q1', 'q2'])")
        prompts = [text_of(p, "prompt") for p in payload["prompts"]]
        results = await self.dispatcher.query_batched(prompts, self.budget, model_of(payload), self._batch_progress)
        return [result.as_reply() for result in results]

    async def _batch_progress(self, done: int, total: int | None, message: str) -> None:
        """Forward batch progress to the host call in flight (every 10 answers and the last)."""
        if done == total or done % 10 == 0:
            await tell(self.progress, done, total, f"llm_query_batched: {message}")


def text_of(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string, not {type(value).__name__}: pass str({what})")
    if len(value) > MAX_PROMPT_CHARS:
        raise BadRequest(f"{what} is {len(value):,} characters; the limit is {MAX_PROMPT_CHARS:,}: chunk it first")
    return value


def prompt_of(payload: Any) -> str:
    if not isinstance(payload, dict):
        raise BadRequest("expected an object with a prompt")
    return text_of(payload.get("prompt"), "prompt")


def model_of(payload: Any) -> str | None:
    model = payload.get("model") if isinstance(payload, dict) else None
    if model is None:
        return None
    if not isinstance(model, str) or len(model) > MAX_MODEL_NAME:
        raise BadRequest("model must be a model string such as 'openai/gpt-4o-mini' or 'claude-code/haiku'")
    return model
