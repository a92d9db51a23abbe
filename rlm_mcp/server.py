"""The MCP surface of rlm-mcp: thin handlers over sessions, contexts and the sandbox.

Two error channels (STYLE.md): invalid arguments and unknown names are protocol errors (MCPError,
INVALID_PARAMS) with a message that says what to do; failures of the user's code come back as a
normal result with is_error set and a status.
"""


import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlparse

import anyio
from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import ListRoots, Resolve
from mcp_types import INVALID_PARAMS, CallToolResult, ListRootsResult, TextContent, ToolAnnotations
from pydantic import Field

from . import __version__
from .config import Settings
from .contexts import ContextError
from .errors import NoSourceGiven, RlmError
from .http import token_fingerprint
from .models import ContextBrief, ContextSummary, ExecReport, SessionReport
from .playbook import PLAYBOOK, SERVER_INSTRUCTIONS
from .sandbox import SandboxError
from .sessions import Session, SessionManager

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.25


@dataclass(slots=True)
class AppState:
    settings: Settings
    sessions: SessionManager


def invalid(message: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=message)


def session_key(ctx: Context) -> str:
    """Which session a request belongs to.

    stdio has one client per process. Over HTTP, legacy-protocol clients carry an Mcp-Session-Id; the
    2026 protocol is stateless, so its clients name a session with an X-RLM-Session header, or share
    one session per bearer token.
    """
    headers = ctx.headers
    if headers is None:
        return "stdio"
    named = headers.get("mcp-session-id") or headers.get("x-rlm-session")
    if named:
        return f"http:{named[:128]}"
    token = headers.get("authorization", "")
    return f"http-token:{token_fingerprint(token)}" if token else "http"


async def current_session(ctx: Context) -> Session:
    state: AppState = ctx.request_context.lifespan_context
    key = session_key(ctx)
    try:
        session = await state.sessions.get(key)
    except RlmError as exc:
        raise invalid(str(exc)) from exc
    _close_with_connection(ctx, state.sessions, key)
    return session


def _close_with_connection(ctx: Context, sessions: SessionManager, key: str) -> None:
    """Close a legacy HTTP client's session (and its jail) when its connection ends.

    The SDK exposes the per-connection teardown stack only on its private `_connection`; the 2026
    protocol has no connection to outlive a request, so those sessions end by idle expiry instead.
    """
    connection = getattr(ctx.session, "_connection", None)
    if connection is None or not getattr(connection, "session_id", None) or connection.state.get("rlm-cleanup"):
        return
    connection.state["rlm-cleanup"] = True
    connection.exit_stack.push_async_callback(sessions.close, key)


def tool_result(model: Any, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=model.text())],
        structured_content=model.model_dump(mode="json"),
        is_error=is_error,
    )


def create_server(settings: Settings) -> MCPServer:
    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[AppState]:
        async with anyio.create_task_group() as group:
            sessions = SessionManager(settings, group)
            group.start_soon(sessions.reap_idle)
            try:
                yield AppState(settings=settings, sessions=sessions)
            finally:
                await sessions.close_all()
                group.cancel_scope.cancel()

    mcp = MCPServer("rlm-mcp", instructions=SERVER_INSTRUCTIONS, version=__version__, lifespan=lifespan)

    def tool(**options: Any) -> Callable[[Callable[..., Any]], Any]:
        """`mcp.tool` with the docstring dedented into the description a model reads."""

        def register(fn: Callable[..., Any]) -> Any:
            return mcp.tool(description=inspect.cleandoc(fn.__doc__ or ""), **options)(fn)

        return register

    def client_roots(source: list[str] | None, text: str | None, ctx: Context) -> ListRoots | None:
        """Ask the client for its workspace roots only when the call names no source."""
        if source or text is not None:
            return None
        capabilities = ctx.session.client_capabilities
        return ListRoots() if capabilities is not None and capabilities.roots is not None else None

    @tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False))
    async def load_context(
        ctx: Context,
        source: Annotated[list[str] | None, Field(
            description="Paths to load: files, directories or globs like 'src/**/*.py'. Omit (with no text) to "
            "load the client's workspace roots.")] = None,
        text: Annotated[str | None, Field(description="Inline text to load instead of paths (a log, a doc).")] = None,
        name: Annotated[str, Field(description="Context name; 'main' becomes `context` and `files` in the REPL.",
                                   pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")] = "main",
        roots: Annotated[ListRootsResult | None, Resolve(client_roots)] = None,
    ) -> Annotated[CallToolResult, ContextSummary]:
        """Load a whole codebase, directory, file set or large text ONCE into this session's sandboxed Python REPL,
        so later exec_code calls can search and analyse all of it with code instead of reading files one by one.

        Use this before answering questions that need a global view: every caller of a function, every place a
        config key is read, which modules swallow exceptions, patterns across thousands of files or a huge log.
        .gitignore is honoured; binaries, vendored dirs and oversized files are skipped. Returns a summary (size,
        files, languages, skipped) - never the content. Reloading an unchanged tree is cheap.
        """
        session = await current_session(ctx)
        state: AppState = ctx.request_context.lifespan_context
        try:
            if text is not None:
                if source:
                    raise invalid("give either `text` or `source`, not both")
                stored = await session.load_text(name, text)
            else:
                sources = source or _paths_from_roots(roots) or [str(Path.cwd())]
                allowed = list(state.settings.roots()) + [Path(p) for p in _paths_from_roots(roots)]
                stored = await session.load_paths(name, sources, allowed, on_progress=_progress_reporter(ctx))
        except (ContextError, NoSourceGiven) as exc:
            raise invalid(str(exc)) from exc
        except SandboxError as exc:
            raise MCPError(code=-32603, message=f"the sandbox failed: {exc}") from exc
        return tool_result(ContextSummary.from_stored(stored))

    @tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False))
    async def exec_code(
        ctx: Context,
        code: Annotated[str, Field(description="Python code to run in the persistent REPL.", max_length=1_000_000)],
        timeout_s: Annotated[float | None, Field(description="Seconds before the code is interrupted "
                                                 "(default: the server's RLM_EXEC_TIMEOUT_S).", gt=0, le=3600)] = None,
    ) -> Annotated[CallToolResult, ExecReport]:
        """Run Python in this session's persistent, sandboxed REPL (no network, no host files) where loaded contexts
        live as variables: `context` (all text), `files[path]`, `contexts[name]`, plus helpers grep(pattern),
        find_symbol(name), outline(path), references(name), chunk(text, size), count_tokens(text),
        llm_query(prompt), llm_query_batched(prompts), rlm_query(prompt, context), SHOW_VARS(), FINAL(answer).

        Variables persist between calls. Print only what you need: output is cut in the middle beyond the budget.
        Returns stdout, stderr, changed variables with types and sizes, and elapsed time.
        """
        session = await current_session(ctx)
        try:
            outcome = await session.exec(code, timeout_s)
        except (SandboxError, ValueError) as exc:
            raise MCPError(code=-32603, message=f"the sandbox failed and could not be restarted: {exc}") from exc
        report = ExecReport.build(outcome.result, restarted=outcome.restarted, final_answer=outcome.final_answer)
        return tool_result(report, is_error=report.status != "ok")

    @tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True))
    async def session(
        ctx: Context,
        action: Annotated[Literal["status", "reset"], Field(
            description="'status' shows contexts, usage and limits; 'reset' starts a fresh REPL (variables dropped).")]
            = "status",
        keep_contexts: Annotated[bool, Field(description="On reset, keep loaded contexts attached.")] = True,
    ) -> Annotated[CallToolResult, SessionReport]:
        """Show this session's loaded contexts, REPL state, usage and limits, or reset the REPL."""
        current = await current_session(ctx)
        if action == "reset":
            await current.reset(keep_contexts=keep_contexts)
        return tool_result(_session_report(current, action))

    @mcp.prompt(name="rlm_playbook", title="RLM playbook: analyse inputs far larger than your context")
    def rlm_playbook(task: str = "") -> str:
        """How to use rlm-mcp's tools as a Recursive Language Model: probe, filter with code, map with workers."""
        return PLAYBOOK + (f"\n\nThe task:\n{task}" if task else "")

    @mcp.resource("rlm://contexts/{name}", mime_type="application/json")
    async def context_summary(name: str, ctx: Context) -> dict[str, Any]:
        """The summary of one loaded context (sizes, files, languages, skipped); the session tool lists names."""
        current = await current_session(ctx)
        try:
            return current.context(name).to_dict()
        except RlmError as exc:
            raise invalid(str(exc)) from exc

    @mcp.resource("rlm://contexts/{name}/manifest", mime_type="application/json")
    async def context_manifest(name: str, ctx: Context) -> dict[str, Any]:
        """The file manifest of one loaded context: path, offsets, bytes, lines, language per file."""
        from .contexts import read_manifest

        current = await current_session(ctx)
        try:
            return read_manifest(current.context(name))
        except RlmError as exc:
            raise invalid(str(exc)) from exc

    return mcp


def _session_report(current: Session, action: str) -> SessionReport:
    settings = current.settings
    sandbox = current.sandbox
    return SessionReport(
        session=current.key, isolated=settings.sandbox == "nsjail", repl_running=bool(sandbox and sandbox.alive),
        contexts=[ContextBrief(name=s.name, kind=s.kind, chars=s.chars, files=s.file_count,
                               estimated_tokens=s.estimated_tokens) for s in current.contexts.values()],
        execs=current.usage.execs, exec_seconds=round(current.usage.exec_seconds, 3),
        restarts=current.usage.restarts, timeouts=current.usage.timeouts,
        limits={"exec_timeout_s": settings.exec_timeout_s, "max_output_chars": settings.max_output_chars,
                "max_worker_calls": settings.max_worker_calls, "max_cost_usd": settings.max_cost_usd,
                "max_tokens": settings.max_tokens, "max_depth": settings.max_depth},
        worker_model=settings.worker_model, action=action,
    )


def _paths_from_roots(roots: ListRootsResult | None) -> list[str]:
    if roots is None:
        return []
    return [unquote(urlparse(str(root.uri)).path) for root in roots.roots if str(root.uri).startswith("file://")]


def _progress_reporter(ctx: Context):
    """A thread-side progress callback that forwards to the client at most every 0.25 s."""
    last = 0.0

    def report(done: int, total: int | None, message: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_INTERVAL_S:
            return
        last = now
        try:
            anyio.from_thread.run(ctx.report_progress, float(done), float(total) if total else None, message)
        except Exception:  # progress is advisory; a client that went away must not fail the load
            log.debug("progress notification failed", exc_info=True)

    return report
