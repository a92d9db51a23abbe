"""The drop-in RLM: a string (or files) in, an answer out, over the same engine as the MCP tools.

    from rlm_mcp import RLM
    result = RLM("openai/gpt-4o", worker_model="openai/gpt-4o-mini").complete("Where is X configured?", "src/")
    print(result.answer, result.status, result.usage)

One run is one session: its root calls, its code's worker calls and every child RLM's root calls are
checked against one ledger (RLM_MAX_COST_USD and the other session limits cover all of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from ..config import Settings, load_settings
from ..contexts import Reader, read_scope
from ..errors import raising_ours
from ..progress import Progress
from ..sessions import Session, new_trajectory
from .calls import child_rlm, new_loop
from .errors import RLMError, RootModelError
from .loop import Record, RLMLimits, RLMLoop, RLMResult, RLMUsage
from .root import RootModel

__all__ = ["RLM", "RLMError", "RLMLimits", "RLMLoop", "RLMResult", "RLMUsage", "RootModel", "RootModelError"]

ContextInput = str | Path | Sequence[str | Path] | None


class RLM:
    """A Recursive Language Model: `complete(query, context)` like a model call, code and workers inside."""

    def __init__(self, root_model: str | None = None, *, worker_model: str | None = None,
                 root_api_base: str | None = None, worker_api_base: str | None = None,
                 limits: RLMLimits | None = None, settings: Settings | None = None, **overrides: Any) -> None:
        flags = {"root_model": root_model, "worker_model": worker_model, "root_api_base": root_api_base,
                 "worker_api_base": worker_api_base, **overrides}
        self.settings = settings or load_settings(flags=flags)
        if not self.settings.root_model:
            raise RLMError("no root model: pass RLM('provider/model') or set RLM_ROOT_MODEL "
                           "(e.g. openai/gpt-4o, anthropic/claude-sonnet-4-5, ollama/qwen2.5-coder)")
        self.limits = limits or RLMLimits()
        self.last_trajectory: Path | None = None

    def complete(self, query: str, context: ContextInput = None, *, record: Record | None = None) -> RLMResult:
        """Blocking form of `acomplete`."""
        return anyio.run(lambda: self.acomplete(query, context, record=record))

    async def acomplete(self, query: str, context: ContextInput = None, *, record: Record | None = None,
                        on_iteration: Progress | None = None) -> RLMResult:
        """Load `context` (text, or paths of files and directories) into a fresh jailed REPL and run the loop.

        Raises an RlmMcpError (a context that cannot be loaded, a sandbox that cannot start, a broken
        policy); limits and root-model failures are not raised but reported in the result's status."""
        with raising_ours():
            return await self._run(query, context, record, on_iteration)

    async def _run(self, query: str, context: ContextInput, record: Record | None,
                   on_iteration: Progress | None) -> RLMResult:
        async with anyio.create_task_group() as group:
            session = Session.build(self.settings, self.settings.policy(), group, key="rlm",
                                    trajectory=new_trajectory(self.settings, "rlm"), observer=record,
                                    recurse=child_rlm)
            self.last_trajectory = session.trajectory.path if session.trajectory else None
            try:
                await load_into(session, context)
                session.calls.restart_clock()  # the run's call tree starts now: the load called no model
                result = await new_loop(session, limits=self.limits, on_iteration=on_iteration).run(query)
                result.worker_usage = session.calls.usage.as_dict()
                return result
            finally:
                await session.close()
                group.cancel_scope.cancel()


async def load_into(session: Session, context: ContextInput) -> None:
    """Text becomes the `main` context; paths are loaded as files. The file boundary's Python-API rule
    (contexts/boundary.py) applies: the caller named these paths, so they are allowed beside RLM_ALLOWED_ROOTS."""
    if context is None:
        return
    if isinstance(context, str) and not _looks_like_path(context):
        await session.load_text("main", context)
        return
    paths = [context] if isinstance(context, str | Path) else list(context)
    scope = read_scope(Reader.PYTHON_API, session.settings.roots(), [str(p) for p in paths])
    await session.load_paths("main", list(scope.default_sources), list(scope.roots))


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and len(text) < 4096 and Path(text).expanduser().exists()
