"""What the host's rlm_complete and session tools call, and the recursion of the REPL's `rlm_query`: a child
RLM, next to the loop it starts (the server only hands over).

Worker calls themselves (`llm_query`, `llm_query_batched`, sub_query) and the ledger are the session's
(sessions/calls.py); a child RLM's session is built by its parent (`Session.child`), one level deeper in
the same ledger, and its root calls are checked and counted there too, so a call tree never spends more
than the session was given.
"""

from __future__ import annotations

from ..config import Settings
from ..errors import BadRequest
from ..progress import Progress
from ..results import CheckpointBrief, ContextBrief, RLMReport, SessionLimits, SessionReport
from ..sessions import Reply, Session
from .loop import RLMLimits, RLMLoop
from .root import RootModel


async def child_rlm(parent: Session, prompt: str, context: str) -> Reply:
    """What `rlm_query` runs below the depth limit: a child RLM over `context` with its own REPL."""
    root_model = parent.settings.sub_rlm_model or parent.settings.root_model
    child = parent.child()
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


def require_root_model(settings: Settings) -> None:
    """Refuse rlm_complete before anything is opened for it (a session counts against the caller's cap)."""
    if not settings.root_model:
        raise BadRequest("rlm_complete needs a root model: set RLM_ROOT_MODEL (e.g. openai/gpt-4o, or "
                         "ollama/qwen2.5-coder with RLM_ROOT_API_BASE) and restart; or drive exec_code yourself")


async def answer(session: Session, query: str, *, max_iterations: int | None = None,
                 on_iteration: Progress | None = None) -> RLMReport:
    """The host's rlm_complete (which has called `require_root_model` before opening the session): the loop
    over what `session` has loaded, reported with what it cost."""
    if not session.contexts:
        raise BadRequest("nothing is loaded in this session: call load_context first")
    mark = session.calls.usage.snapshot()
    limits = RLMLimits.from_settings(session.settings, max_iterations=max_iterations)
    result = await new_loop(session, limits=limits, on_iteration=on_iteration).run(query)
    trajectory = str(session.trajectory.path) if session.trajectory else None
    return RLMReport.from_run(result, worker_usage=session.calls.usage.since(mark), trajectory=trajectory)


def status_report(session: Session, action: str, handle: str) -> SessionReport:
    """The host's session tool: the session's contexts, REPL, usage, spend so far and effective limits."""
    settings = session.settings
    sandbox = session.sandbox
    calls = session.calls
    return SessionReport(
        session=session.key, handle=handle, isolated=settings.sandbox != "none",
        sandbox=sandbox.backend if sandbox else f"{settings.sandbox} (starts with the first load or exec)",
        repl_running=bool(sandbox and sandbox.alive),
        contexts=[ContextBrief(name=s.name, kind=s.kind, chars=s.chars, files=s.file_count,
                               estimated_tokens=s.estimated_tokens, index=session.code_index().summary(s.name))
                  for s in session.contexts.values()],
        execs=session.usage.execs, exec_seconds=round(session.usage.exec_seconds, 3),
        restarts=session.usage.restarts, timeouts=session.usage.timeouts,
        limits=SessionLimits(
            exec_timeout_s=session.policy.limits.exec_timeout_s, max_output_chars=settings.max_output_chars,
            max_worker_calls=settings.max_worker_calls, max_cost_usd=settings.max_cost_usd,
            max_tokens=settings.max_tokens, max_depth=settings.max_depth, max_wall_s=settings.max_wall_s,
            session_idle_s=settings.session_idle_s),
        worker_model=settings.worker_model, action=action, checkpoint=CheckpointBrief.of(session.checkpoints),
        worker_usage=calls.usage, spent=calls.budget.ledger.used(),
    )


def new_loop(session: Session, *, model: str | None = None, limits: RLMLimits | None = None,
             on_iteration: Progress | None = None) -> RLMLoop:
    """The autonomous loop over `session`, its root calls checked against the session's ledger."""
    settings = session.settings
    root = RootModel(model or settings.root_model or "", api_base=settings.root_api_base)
    return RLMLoop(session, root, limits or RLMLimits.from_settings(settings), session.calls.budget,
                   on_iteration=on_iteration)
