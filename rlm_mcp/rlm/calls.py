"""What the host's rlm_complete tool calls, and the recursion of the REPL's `rlm_query`: a child
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
from ..results import RLMReport
from ..sessions import Reply, Session
from .loop import DEFAULT_ITERATIONS, RLMLimits, RLMLoop
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
    limits = RLMLimits(max_iterations or DEFAULT_ITERATIONS)
    result = await new_loop(session, limits=limits, on_iteration=on_iteration).run(query)
    trajectory = str(session.trajectory.path) if session.trajectory else None
    return RLMReport.from_run(result, worker_usage=session.calls.usage.since(mark), trajectory=trajectory)


def new_loop(session: Session, *, model: str | None = None, limits: RLMLimits | None = None,
             on_iteration: Progress | None = None) -> RLMLoop:
    """The autonomous loop over `session`, its root calls checked against the session's ledger."""
    settings = session.settings
    root = RootModel(model or settings.root_model or "", api_base=settings.root_api_base)
    return RLMLoop(session, root, limits or RLMLimits(), session.calls.budget,
                   on_iteration=on_iteration)
