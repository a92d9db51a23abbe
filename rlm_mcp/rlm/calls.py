"""Worker calls of a session: what `llm_query`, `llm_query_batched` and `rlm_query` in the REPL reach,
and what the host's sub_query, rlm_complete and session tools call (the server only hands over).

One `WorkerCalls` per session tree: the root session creates the dispatcher and the ledger (a
`Budget`); child RLMs (from `rlm_query`) reuse the dispatcher and take a deeper view of the same
ledger, and their root calls are checked and counted there too, so a call tree never spends more than
the session was given. Recursion lives here, next to the loop it starts. Guest payloads are
untrusted: validated and capped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..errors import BadRequest
from ..models import AnswerModel, CheckpointBrief, ContextBrief, RLMReport, SessionReport, SubQueryReport
from ..sessions import Callback, Session
from ..workers import Budget, BudgetLimits, Usage, WorkerDispatcher, WorkerSettings, backend_for
from ..workers.dispatcher import Progress
from .loop import OnIteration, RLMLimits, RLMLoop
from .root import RootModel

MAX_PROMPT_CHARS = 2_000_000
MAX_MODEL_NAME = 200


def budget_limits(settings: Settings) -> BudgetLimits:
    return BudgetLimits(
        max_worker_calls=settings.max_worker_calls, max_tokens=settings.max_tokens,
        max_cost_usd=settings.max_cost_usd, max_depth=settings.max_depth, max_wall_s=settings.max_wall_s,
        max_batch=settings.max_batch, max_repeats=settings.max_repeats,
    )


def new_dispatcher(settings: Settings, session: Session) -> WorkerDispatcher:
    backend = backend_for(settings.worker_model, settings.worker_api_base, settings.worker_key())
    worker_settings = WorkerSettings(  # a process per call: fewer at once (RLM_CLI_CONCURRENCY)
        model=settings.worker_model,
        concurrency=settings.cli_concurrency if backend.process_per_call else settings.worker_concurrency,
        timeout_s=settings.worker_timeout_s, retries=settings.worker_retries,
    )
    return WorkerDispatcher(worker_settings, backend, session.trajectory)


@dataclass(eq=False)
class WorkerCalls:
    """The session extension that answers the REPL's worker callbacks and holds the session's ledger."""

    session: Session
    dispatcher: WorkerDispatcher
    budget: Budget
    owns_dispatcher: bool = True  # children of rlm_query share their parent's

    @classmethod
    def for_session(cls, session: Session) -> WorkerCalls:
        budget = Budget.new(budget_limits(session.settings), account=session.account)
        return cls(session, new_dispatcher(session.settings, session), budget)

    @property
    def usage(self) -> Usage:
        """The worker calls' running totals (root calls are in the ledger and in each run's own usage)."""
        return self.dispatcher.usage

    def callbacks(self) -> dict[str, Callback]:
        return {"llm_query": self.llm_query, "llm_query_batched": self.llm_query_batched, "rlm_query": self.rlm_query}

    def on_reset(self) -> None:
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

    async def llm_query(self, payload: Any) -> dict[str, Any]:
        prompt, model = _prompt(payload), _model(payload)
        return (await self.dispatcher.query(prompt, self.budget, model)).as_reply()

    async def llm_query_batched(self, payload: Any) -> list[dict[str, Any]]:
        if not isinstance(payload, dict) or not isinstance(payload.get("prompts"), list):
            raise BadRequest("llm_query_batched needs a list of prompts: llm_query_batched(['q1', 'q2'])")
        prompts = [_text(p, "prompt") for p in payload["prompts"]]
        results = await self.dispatcher.query_batched(prompts, self.budget, _model(payload), self._progress)
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
        child = Session(f"{self.session.key}/d{self.budget.depth + 1}", self.session.settings, self.session.policy,
                        self.session.task_group, trajectory=self.session.trajectory)
        child.extension = WorkerCalls(child, self.dispatcher, self.budget.child(), owns_dispatcher=False)
        try:
            if context:
                await child.load_text("main", context)
            result = await new_loop(child, model=root_model).run(prompt)
        finally:
            child.trajectory = None  # shared with the parent, which closes it
            await child.close()
        empty = result.status != "final" and not result.answer.strip()  # stopped with nothing to show
        error = (result.reason or "the child RLM gave no answer") if (result.status == "failed" or empty) else None
        return {"text": result.answer, "error": error, "status": result.status}


def session_calls(session: Session) -> WorkerCalls:
    """The session's worker calls and ledger, created on first need (a session may spend before its REPL starts)."""
    if session.extension is None:
        session.extension = WorkerCalls.for_session(session)
    if not isinstance(session.extension, WorkerCalls):
        raise TypeError(f"session {session.key} has a {type(session.extension).__name__}, not WorkerCalls")
    return session.extension


def require_root_model(settings: Settings) -> None:
    """Refuse rlm_complete before anything is opened for it (a session counts against the caller's cap)."""
    if not settings.root_model:
        raise BadRequest("rlm_complete needs a root model: set RLM_ROOT_MODEL (e.g. openai/gpt-4o, or "
                         "ollama/qwen2.5-coder with RLM_ROOT_API_BASE) and restart; or drive exec_code yourself")


async def answer(session: Session, query: str, *, max_iterations: int | None = None,
                 on_iteration: OnIteration | None = None) -> RLMReport:
    """The host's rlm_complete (which has called `require_root_model` before opening the session): the loop
    over what `session` has loaded, reported with what it cost."""
    if not session.contexts:
        raise BadRequest("nothing is loaded in this session: call load_context first")
    calls = session_calls(session)
    mark = calls.usage.snapshot()
    limits = RLMLimits.from_settings(session.settings, max_iterations=max_iterations)
    result = await new_loop(session, limits=limits, on_iteration=on_iteration).run(query)
    trajectory = str(session.trajectory.path) if session.trajectory else None
    return RLMReport.from_run(result, worker_usage=calls.usage.since(mark), trajectory=trajectory)


def status_report(session: Session, action: str, handle: str) -> SessionReport:
    """The host's session tool: the session's contexts, REPL, usage, spend so far and effective limits."""
    settings = session.settings
    sandbox = session.sandbox
    calls = session.extension if isinstance(session.extension, WorkerCalls) else None
    spending: dict[str, Any] = {"worker_usage": calls.usage, "spent": calls.budget.ledger.used()} if calls else {}
    return SessionReport(
        session=session.key, handle=handle, isolated=settings.sandbox != "none",
        sandbox=sandbox.backend if sandbox else f"{settings.sandbox} (starts with the first load or exec)",
        repl_running=bool(sandbox and sandbox.alive),
        contexts=[ContextBrief(name=s.name, kind=s.kind, chars=s.chars, files=s.file_count,
                               estimated_tokens=s.estimated_tokens, index=session.code_index().summary(s.name))
                  for s in session.contexts.values()],
        execs=session.usage.execs, exec_seconds=round(session.usage.exec_seconds, 3),
        restarts=session.usage.restarts, timeouts=session.usage.timeouts,
        limits={"exec_timeout_s": settings.exec_timeout_s or session.policy.limits.exec_timeout_s,
                "max_output_chars": settings.max_output_chars,
                "max_worker_calls": settings.max_worker_calls, "max_cost_usd": settings.max_cost_usd,
                "max_tokens": settings.max_tokens, "max_depth": settings.max_depth, "max_wall_s": settings.max_wall_s,
                "session_idle_s": settings.session_idle_s},
        worker_model=settings.worker_model, action=action, checkpoint=CheckpointBrief.of(session.checkpoints),
        **spending,
    )


def new_loop(session: Session, *, model: str | None = None, limits: RLMLimits | None = None,
             on_iteration: OnIteration | None = None) -> RLMLoop:
    """The autonomous loop over `session`, its root calls checked against the session's ledger."""
    settings = session.settings
    root = RootModel(model or settings.root_model or "", api_base=settings.root_api_base)
    return RLMLoop(session, root, limits or RLMLimits.from_settings(settings), session_calls(session).budget,
                   on_iteration=on_iteration)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string, not {type(value).__name__}: pass str({what})")
    if len(value) > MAX_PROMPT_CHARS:
        raise BadRequest(f"{what} is {len(value):,} characters; the limit is {MAX_PROMPT_CHARS:,}: chunk it first")
    return value


def _prompt(payload: Any) -> str:
    if not isinstance(payload, dict):
        raise BadRequest("expected an object with a prompt")
    return _text(payload.get("prompt"), "prompt")


def _model(payload: Any) -> str | None:
    model = payload.get("model") if isinstance(payload, dict) else None
    if model is None:
        return None
    if not isinstance(model, str) or len(model) > MAX_MODEL_NAME:
        raise BadRequest("model must be a model string such as 'openai/gpt-4o-mini' or 'claude-code/haiku'")
    return model
