"""What a session answers, as typed calls: the one place the host's tools and the REPL's callbacks both reach.

A tool handler (rlm_mcp/server/tools.py) validates its arguments and calls a function here, which returns a
result model. The REPL's `index` callback (`repl_index`, registered by session.py) turns the guest's JSON
message into the same typed query (`SymbolQuery.of_wire`: the guest is untrusted, so every field is checked
and capped) and the answer back into JSON. The REPL's wire format stops there: nothing above it branches on
an op string or hands dicts around.

Symbol queries that can return more than a caller asked for say so: the tool in its `note`, the REPL's
helpers on stderr (rlm_mcp/sandbox/guest/repl_helpers.py), each with the count left out and how to get
all. The REPL asks for everything (`limit=None`) a page at a time, so neither side holds a huge reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from ..config import Settings
from ..contexts import StoredContext
from ..contexts.slices import worker_prompts
from ..errors import BadRequest
from ..progress import Progress
from ..results import CheckpointBrief, ContextBrief, SessionLimits, SessionReport, SubQueryReport, SymbolReport
from ..results.shaping import budget_why
from ..sandbox import CheckpointStore, Sandbox, SandboxPolicy
from .calls import WorkerCalls
from .index import Cursor, SessionIndex, SymbolAnswer

PAGE = 1000  # symbol results per reply to the REPL: a reply stays small whatever `limit=None` asks for
MAX_ARGUMENT_CHARS = 500  # a name, pattern, kind or path from the guest
TOOL_MAX_LIMIT = 1000  # the find_symbol tool's `limit` (its schema says so)
SymbolOp = Literal["find", "outline", "references"]
HELPERS: dict[str, str] = {"find": "find_symbol", "outline": "outline", "references": "references"}


class _Usage(Protocol):
    @property
    def execs(self) -> int: ...
    @property
    def exec_seconds(self) -> float: ...
    @property
    def restarts(self) -> int: ...
    @property
    def timeouts(self) -> int: ...


class SessionView(Protocol):
    """What the service reads of a session -- session.py's Session, named by its shape so that session.py can
    register the service's REPL callback (`repl_index`) without an import cycle."""

    @property
    def key(self) -> str: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def policy(self) -> SandboxPolicy: ...
    @property
    def calls(self) -> WorkerCalls: ...
    @property
    def contexts(self) -> dict[str, StoredContext]: ...
    @property
    def usage(self) -> _Usage: ...
    @property
    def sandbox(self) -> Sandbox | None: ...
    @property
    def checkpoints(self) -> CheckpointStore: ...
    def code_index(self) -> SessionIndex: ...
    def context(self, name: str) -> StoredContext: ...
    async def refresh(self) -> str | None: ...
    def keep(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SymbolQuery:
    """One question to a context's code index: definitions (find), a file's outline, or call sites."""

    op: SymbolOp
    context: str = "main"
    name: str | None = None
    pattern: str | None = None
    kind: str | None = None
    path: str | None = None
    limit: int | None = None  # None: every result
    after: Cursor | None = None  # the page to go on from

    @classmethod
    def of_tool(cls, *, name: str | None, pattern: str | None, kind: str | None, path: str | None,
                callers_of: str | None, context: str, limit: int) -> SymbolQuery:
        """The find_symbol tool's arguments: call sites with `callers_of`, a file's outline with `path` alone."""
        if callers_of:
            return cls("references", context, name=callers_of, limit=limit)
        if path and not (name or pattern or kind):
            return cls("outline", context, path=path, limit=limit)
        if not (name or pattern or kind or path):
            raise BadRequest("give name, pattern, kind, path or callers_of")
        return cls("find", context, name=name, pattern=pattern, kind=kind, path=path, limit=limit)

    @classmethod
    def of_wire(cls, payload: Any) -> SymbolQuery:
        """The REPL's message (untrusted): {op, context, name, pattern, kind, path, limit, cursor}."""
        if not isinstance(payload, dict):
            raise BadRequest("index query must be an object")
        op = payload.get("op")
        if op not in HELPERS:
            raise BadRequest(f"unknown index operation {op!r}: use find, outline or references")
        return cls(op, str(payload.get("context") or "main")[:MAX_ARGUMENT_CHARS], name=_argument(payload, "name"),
                   pattern=_argument(payload, "pattern"), kind=_argument(payload, "kind"),
                   path=_argument(payload, "path"), limit=_limit(payload.get("limit")),
                   after=_cursor(payload.get("cursor")))


async def symbols(index: SessionIndex, query: SymbolQuery, page: int | None = None) -> SymbolAnswer:
    """The answer to `query`, in pages of `page` results when given (the cursor of the next one in it)."""
    if query.op == "references":
        return await index.references(query.context, query.name or "", query.limit, query.after, page)
    if query.op == "outline":
        return await index.outline(query.context, query.path or "", query.limit, query.after, page)
    return await index.find(query.context, name=query.name, pattern=query.pattern, kind=query.kind,
                            path=query.path, limit=query.limit, after=query.after, page=page)


async def find_symbol(session: SessionView, query: SymbolQuery) -> SymbolReport:
    """The host's find_symbol tool: live contexts brought up to date, then the query; a cut one says so."""
    changed = await session.refresh()
    found = await symbols(session.code_index(), query)
    notes = [note for note in (found.note, tool_cut_note(query, found)) if note]
    return SymbolReport(op=query.op, results=found.results, note="; ".join(notes) or None, context_changed=changed)


def tool_cut_note(query: SymbolQuery, found: SymbolAnswer) -> str | None:
    """What the tool says when its `limit` cut the results: how many there are and how to get them all."""
    if not found.left_out:
        return None
    shown = len(found.results)
    more = (f"raise limit (up to {TOOL_MAX_LIMIT:,}) or " if shown < TOOL_MAX_LIMIT else "") + (
        f"run {HELPERS[query.op]}(..., limit=None) in exec_code for all of them")
    return f"{shown:,} of {shown + found.left_out:,} shown (limit={query.limit}): {more}"


def repl_index(index: SessionIndex) -> Callable[[Any], Awaitable[dict[str, Any]]]:
    """The REPL's `index` callback over `index`: the guest's message in, one page of the answer out, as JSON:
    {results, note, left_out (how many the limit cut off), cursor (ask again with it for the next page)}."""

    async def answer(payload: Any) -> dict[str, Any]:
        found = await symbols(index, SymbolQuery.of_wire(payload), PAGE)
        cursor = found.cursor
        return {"results": [asdict(record) for record in found.results], "note": found.note,
                "left_out": found.left_out, "cursor": None if cursor is None else [cursor.path, cursor.given]}

    return answer


def status(session: SessionView, action: str, handle: str) -> SessionReport:
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
            result_budget_chars=settings.result_budget_chars,
            output_why=budget_why(settings.max_output_chars, settings.result_budget_chars),
            max_worker_calls=settings.max_worker_calls, max_cost_usd=settings.max_cost_usd,
            max_tokens=settings.max_tokens, max_depth=settings.max_depth, max_wall_s=settings.max_wall_s,
            session_idle_s=settings.session_idle_s),
        worker_model=settings.worker_model, action=action, checkpoint=CheckpointBrief.of(session.checkpoints),
        worker_usage=calls.usage, spent=calls.budget.ledger.used(),
    )


@dataclass(frozen=True, slots=True)
class Slice:
    """What of a loaded context sub_query appends to its prompts: a file of it, characters [start:end], and with
    `chunk_chars` the one prompt mapped over chunks of that slice."""

    context: str | None = None
    path: str | None = None
    start: int | None = None
    end: int | None = None
    chunk_chars: int | None = None


async def sub_query(session: SessionView, prompt: str | None, prompts: list[str] | None, piece: Slice,
                    model: str | None, on_progress: Progress | None) -> SubQueryReport:
    """The host's sub_query on the session's worker calls (the REPL's llm_query_batched reaches the same
    dispatcher and ledger through sessions/calls.py): live contexts first brought up to date."""
    changed = await session.refresh() if piece.context else None
    stored = session.context(piece.context) if piece.context else None
    questions = worker_prompts(prompt, prompts, stored, piece.path, piece.start, piece.end, piece.chunk_chars)
    try:
        report = await session.calls.sub_query(questions, model, on_progress)
    finally:
        session.keep()  # what it spent, for a later server
    report.context_changed = changed
    return report


def _argument(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return None if value is None else str(value)[:MAX_ARGUMENT_CHARS]


def _limit(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequest(f"limit must be None (every result) or an integer >= 0, not {value!r}")
    return value


def _cursor(value: Any) -> Cursor | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int) and not isinstance(value[1], bool) and value[1] >= 0):
        raise BadRequest("cursor must be the [path, count] an earlier reply gave")
    return Cursor(value[0][:4096], value[1])
