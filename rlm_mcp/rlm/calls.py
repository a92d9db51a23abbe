"""Worker calls of a session: what `llm_query`, `llm_query_batched` and `rlm_query` in the REPL reach.

One `WorkerCalls` per session tree: the root session creates the dispatcher and budget, child RLMs
(from `rlm_query`) reuse the dispatcher and take a deeper view of the same budget, so a call tree
never spends more than the session was given. Guest payloads are untrusted: validated and capped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import Settings
from .sessions import Callback, Session
from .workers import (
    Budget,
    BudgetExceeded,
    BudgetLimits,
    Usage,
    WorkerDispatcher,
    WorkerSettings,
    backend_for,
)

MAX_PROMPT_CHARS = 2_000_000
MAX_MODEL_NAME = 200


def budget_limits(settings: Settings) -> BudgetLimits:
    return BudgetLimits(
        max_worker_calls=settings.max_worker_calls, max_tokens=settings.max_tokens,
        max_cost_usd=settings.max_cost_usd, max_depth=settings.max_depth, max_wall_s=settings.max_wall_s,
        max_batch=settings.max_batch, max_repeats=settings.max_repeats,
    )


def new_dispatcher(settings: Settings, session: Session) -> WorkerDispatcher:
    worker_settings = WorkerSettings(
        model=settings.worker_model, concurrency=settings.worker_concurrency,
        timeout_s=settings.worker_timeout_s, retries=settings.worker_retries,
    )
    backend = backend_for(settings.worker_model, settings.worker_api_base)
    return WorkerDispatcher(worker_settings, backend, session.trajectory)


@dataclass(eq=False)
class WorkerCalls:
    """The session extension that answers the REPL's worker callbacks."""

    session: Session
    dispatcher: WorkerDispatcher
    budget: Budget
    owns_dispatcher: bool = True  # children of rlm_query share their parent's

    @classmethod
    def for_session(cls, session: Session) -> WorkerCalls:
        return cls(session, new_dispatcher(session.settings, session), Budget.new(budget_limits(session.settings)))

    def callbacks(self) -> dict[str, Callback]:
        return {"llm_query": self.llm_query, "llm_query_batched": self.llm_query_batched, "rlm_query": self.rlm_query}

    async def aclose(self) -> None:
        if self.owns_dispatcher:
            await self.dispatcher.aclose()

    def usage_mark(self) -> Usage:
        usage = self.dispatcher.usage
        return Usage(usage.calls, usage.cached_calls, usage.failed_calls, usage.tokens_in, usage.tokens_out,
                     usage.cost_usd)

    def usage_since(self, mark: Usage) -> dict[str, Any]:
        return self.dispatcher.usage.since(mark).as_dict()

    async def llm_query(self, payload: Any) -> dict[str, Any]:
        prompt, model = _prompt(payload), _model(payload)
        return (await self.dispatcher.query(prompt, self.budget, model)).as_reply()

    async def llm_query_batched(self, payload: Any) -> list[dict[str, Any]]:
        if not isinstance(payload, dict) or not isinstance(payload.get("prompts"), list):
            raise ValueError("llm_query_batched needs a list of prompts")
        prompts = [_text(p, "prompt") for p in payload["prompts"]]
        try:
            results = await self.dispatcher.query_batched(prompts, self.budget, _model(payload), self._progress)
        except BudgetExceeded as exc:
            raise ValueError(str(exc)) from exc
        return [result.as_reply() for result in results]

    async def _progress(self, done: int, total: int) -> None:
        """Forward batch progress to the host call in flight (every 10 answers and the last)."""
        if self.session.progress is not None and (done == total or done % 10 == 0):
            await self.session.progress(done, total, f"llm_query_batched: {done}/{total} answers")

    async def rlm_query(self, payload: Any) -> dict[str, Any]:
        """A child RLM over `context` with its own REPL; a plain worker call at the depth limit."""
        prompt = _prompt(payload)
        context = payload.get("context") if isinstance(payload, dict) else None
        context = _text(context, "context") if context is not None else ""
        root_model = self.session.settings.sub_rlm_model or self.session.settings.root_model
        if not self.budget.can_recurse() or not root_model:
            question = f"{prompt}\n\n{context}" if context else prompt
            return (await self.dispatcher.query(question, self.budget, None)).as_reply()
        from .rlm.loop import RLMLimits, RLMLoop  # the loop builds on sessions; imported when recursion happens
        from .rlm.root import RootModel

        child = Session(f"{self.session.key}/d{self.budget.depth + 1}", self.session.settings, self.session.policy,
                        self.session.task_group, trajectory=self.session.trajectory)
        child.extension = WorkerCalls(child, self.dispatcher, self.budget.child(), owns_dispatcher=False)
        try:
            if context:
                await child.load_text("main", context)
            root = RootModel(root_model, api_base=self.session.settings.root_api_base)
            limits = RLMLimits(max_wall_s=self.session.settings.max_wall_s,
                               exec_timeout_s=self.session.settings.exec_timeout_s)
            result = await RLMLoop(child, root, limits).run(prompt)
        finally:
            child.trajectory = None  # shared with the parent, which closes it
            await child.close()
        error = None if result.status != "failed" else result.reason
        return {"text": result.answer, "error": error, "status": result.status}


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    if len(value) > MAX_PROMPT_CHARS:
        raise ValueError(f"{what} is {len(value):,} characters; the limit is {MAX_PROMPT_CHARS:,}: chunk it first")
    return value


def _prompt(payload: Any) -> str:
    if not isinstance(payload, dict):
        raise ValueError("expected an object with a prompt")
    return _text(payload.get("prompt"), "prompt")


def _model(payload: Any) -> str | None:
    model = payload.get("model") if isinstance(payload, dict) else None
    if model is None:
        return None
    if not isinstance(model, str) or len(model) > MAX_MODEL_NAME:
        raise ValueError("model must be a litellm model string")
    return model
