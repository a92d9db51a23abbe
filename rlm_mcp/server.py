"""The MCP surface of rlm-mcp: thin handlers over sessions, contexts and the sandbox.

Each tool handler parses its arguments, calls one function of a lower layer and returns that layer's
result type. Handlers are plain module functions; `create_server` registers every one of them --
tools, resources, the prompt and the completion values -- in one place, `_register`, which puts each
behind `mcp_errors.translated`, the one boundary where errors become MCP errors. Two error channels:
a request that cannot be served (bad arguments, unknown names, a spent budget, a failed sandbox) is a
protocol error whose message says what to do; failures of the user's code come back as a normal
result with is_error set and a status.
"""


import inspect
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import ListRoots, Resolve, Sample
from mcp_types import (
    CallToolResult,
    CreateMessageResult,
    ListRootsResult,
    SamplingMessage,
    TextContent,
    ToolAnnotations,
)
from pydantic import Field, WithJsonSchema

from . import __version__
from .completions import install as install_completions
from .config import Settings
from .contexts import Reader, read_manifest, read_scope
from .errors import BadRequest, RlmMcpError
from .handles import HandleRegistry, UnknownSession
from .http import SHUTDOWN_GRACE_S, token_fingerprint
from .mcp_errors import translated
from .models import (
    AnswerModel,
    ContextSummary,
    ExecReport,
    Report,
    RLMReport,
    SessionReport,
    SubQueryReport,
    SymbolReport,
)
from .playbook import PLAYBOOK, SERVER_INSTRUCTIONS
from .rlm.calls import WorkerCalls, answer, require_root_model, session_calls, status_report
from .sandbox.checkpoints import sweep as sweep_checkpoints
from .sandbox.datadir import default_runtime_root
from .sessions import Session, SessionManager
from .slices import worker_prompts
from .unknown_names import install as install_unknown_names
from .workers import backend_for, load_litellm

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.25
CONTEXT_URI = "rlm://contexts/{name}"
MANIFEST_URI = CONTEXT_URI + "/manifest"
HANDLE_CONTEXT_URI = "rlm://sessions/{session}/contexts/{name}"
HANDLE_MANIFEST_URI = HANDLE_CONTEXT_URI + "/manifest"


SessionArg = Annotated[str | None, Field(max_length=64), WithJsonSchema({
    "type": "string", "maxLength": 64, "x-mcp-header": "Session",
    "description": "The session handle that load_context returned: pass it on every call to keep working in "
    "that session (its REPL variables and contexts). Omit for this connection's default session."})]
"""`x-mcp-header` (MCP 2026-07-28): conforming HTTP clients copy the handle into an `Mcp-Param-Session` header,
which a proxy routes on without reading the body (examples/deploy/); the SDK rejects a header that disagrees
with the argument. The schema says "string" alone, as that revision requires of a header parameter; null is
still accepted, meaning "omitted"."""


@dataclass(slots=True)
class AppState:
    settings: Settings
    sessions: SessionManager
    handles: HandleRegistry


def caller(ctx: Context) -> str:
    """Who is asking, and so whose sessions a request may reach: the bearer token (its fingerprint) over
    HTTP, the process over stdio. Loopback HTTP without tokens has one caller, "http"."""
    headers = ctx.headers
    if headers is None:
        return "stdio"
    token = headers.get("authorization", "")
    return f"token-{token_fingerprint(token)}" if token else "http"


def reader_of(ctx: Context) -> Reader:
    """Whose roots count when this request reads files (contexts/boundary.py): over stdio the user's own
    editor, whose declared roots are trusted; over HTTP a token holder, held to RLM_ALLOWED_ROOTS."""
    return Reader.LOCAL_CLIENT if ctx.headers is None else Reader.REMOTE_CLIENT


def session_key(ctx: Context) -> str:
    """Which of the caller's sessions a request without a handle belongs to.

    stdio has one client per process. Over HTTP, legacy-protocol clients carry an Mcp-Session-Id (which
    the SDK binds to the token that opened it, http.py); the 2026 protocol is stateless, so its clients
    name a session with an X-RLM-Session header, or share one session per bearer token. Every key starts
    with its caller: the same name or id from another token is another session.
    """
    owner = caller(ctx)
    headers = ctx.headers
    if headers is None:
        return owner
    if connection := headers.get("mcp-session-id"):
        return f"{owner}/connection:{connection[:128]}"
    if named := headers.get("x-rlm-session"):
        return f"{owner}/named:{named[:128]}"
    return owner


async def current_session(ctx: Context, handle: str | None = None) -> Session:
    """The session a handle names for this caller, else the caller's session for this connection."""
    state: AppState = ctx.request_context.lifespan_context
    if handle:
        return await state.handles.resolve(handle, caller(ctx))
    key = session_key(ctx)
    session = await state.sessions.get(key, caller(ctx))
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


def tool_result(report: Report, *, is_error: bool = False) -> CallToolResult:
    """The designed view (models.py, shaping.py): compact structured content, which Claude Code and Codex show their
    model, and the text block, which Gemini CLI and OpenCode show theirs (Claude Code: for errors)."""
    return CallToolResult(content=[TextContent(type="text", text=report.capped_text())],
                          structured_content=report.structured(), is_error=is_error)


def _needs_litellm(settings: Settings) -> bool:
    """Whether a configured model's backend imports litellm (assistant CLIs and the lean client do not)."""
    root = settings.root_model and backend_for(settings.root_model, settings.root_api_base, tools=True)
    worker = settings.worker_model and backend_for(settings.worker_model, settings.worker_api_base)
    return any(backend and backend.loads_litellm for backend in (root, worker))


def state_of(ctx: Context) -> AppState:
    return ctx.request_context.lifespan_context


def client_roots(source: list[str] | None, text: str | None, ctx: Context) -> ListRoots | None:
    """Ask the client for its workspace roots only when the call names no source."""
    if source or text is not None:
        return None
    capabilities = ctx.session.client_capabilities
    return ListRoots() if capabilities is not None and capabilities.roots is not None else None


async def load_context(
    ctx: Context,
    source: Annotated[list[str] | None, Field(
        description="Paths to load: files, directories or globs like 'src/**/*.py'. Omit (with no text) to "
        "load the client's workspace roots.")] = None,
    text: Annotated[str | None, Field(description="Inline text to load instead of paths (a log, a doc).")] = None,
    name: Annotated[str, Field(description="Context name; 'main' becomes `context` and `files` in the REPL.",
                               pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")] = "main",
    session: SessionArg = None,
    new_session: Annotated[bool, Field(description="Start a separate session (its own REPL and contexts) for "
                                       "this load and return its handle, e.g. for a second analysis.")] = False,
    live: Annotated[bool, Field(description="Follow the files: edits, new and deleted files show up in the next "
                                "call. false keeps a fixed snapshot.")] = True,
    roots: Annotated[ListRootsResult | None, Resolve(client_roots)] = None,
) -> Annotated[CallToolResult, ContextSummary]:
    """Load a whole codebase, directory, file set or large text ONCE into this session's sandboxed Python REPL,
    so later exec_code calls can search and analyse all of it with code instead of reading files one by one.

    Use this before answering questions that need a global view: every caller of a function, every place a
    config key is read, which modules swallow exceptions, patterns across thousands of files or a huge log.
    .gitignore is honoured; binaries, vendored dirs and oversized files are skipped. Returns a summary (size,
    files, languages, skipped) - never the content - and a session handle: pass it as `session` to every later
    call (exec_code, sub_query, find_symbol, rlm_complete, session) to work in this session. Reloading an
    unchanged tree is cheap.
    """
    state = state_of(ctx)
    if text is not None and source:
        raise BadRequest("give either `text` or `source`, not both")
    if new_session and session:
        raise BadRequest("give `session` (to load into that session) or new_session=true (to start one), not both")
    if new_session:
        handle, current = await state.handles.open(caller(ctx))
    else:
        current = await current_session(ctx, session)
        handle = session or state.handles.handle_of(current, caller(ctx))
    if text is not None:
        stored = await current.load_text(name, text)
    else:
        declared = [str(root.uri) for root in roots.roots] if roots else []
        scope = read_scope(reader_of(ctx), state.settings.roots(), declared)
        stored = await current.load_paths(name, source or list(scope.default_sources), list(scope.roots),
                                          on_progress=_progress_reporter(ctx), live=live)
    sandbox = current.sandbox.backend if current.sandbox else ""
    return tool_result(ContextSummary.from_stored(stored, current.code_index().summary(stored.name), session=handle,
                                                  sandbox=sandbox, live=stored.name in current.live))


async def exec_code(
    ctx: Context,
    code: Annotated[str, Field(description="Python code to run in the persistent REPL.", max_length=1_000_000)],
    timeout_s: Annotated[float | None, Field(description="Seconds before the code is interrupted "
                                             "(default: RLM_EXEC_TIMEOUT_S, else the sandbox policy's).",
                                             gt=0, le=3600)] = None,
    session: SessionArg = None,
) -> Annotated[CallToolResult, ExecReport]:
    """Run Python in this session's persistent, sandboxed REPL (no network, no host files) where loaded contexts
    live as variables: `context` (all text), `files[path]`, `contexts[name]`, plus helpers grep(pattern),
    find_symbol(name), outline(path), references(name), chunk(text, size), count_tokens(text),
    llm_query(prompt), llm_query_batched(prompts), rlm_query(prompt, context), SHOW_VARS(), FINAL(answer).

    Variables persist between calls. Print only what you need: output is cut in the middle beyond the budget.
    Returns stdout, stderr, changed variables with types and sizes, and elapsed time.
    """
    current = await current_session(ctx, session)
    outcome = await current.exec(code, timeout_s, _progress_forwarder(ctx))
    report = ExecReport.build(outcome.result, restarted=outcome.restarted, final_answer=outcome.final_answer,
                              worker_usage=outcome.worker_usage, context_changed=outcome.context_note,
                              restored=outcome.restored)
    return tool_result(report, is_error=report.status != "ok")


async def sample_if_needed(ctx: Context, prompt: str | None, prompts: list[str] | None, context: str | None,
                           path: str | None, start: int | None, end: int | None,
                           chunk_chars: int | None, session: str | None) -> Sample | None:
    """With no worker model, ask the client's own model (MCP sampling) for a single prompt.

    It raises nothing of ours: a request it cannot serve is left to the tool body, which raises the same
    error behind the server's one error boundary."""
    capabilities = ctx.session.client_capabilities
    if state_of(ctx).settings.worker_model or capabilities is None or capabilities.sampling is None:
        return None
    if prompts or not prompt or chunk_chars:
        return None  # batches need a configured worker; the tool body says so
    try:
        current = await current_session(ctx, session)
        full = worker_prompts(prompt, None, current.context(context) if context else None, path, start, end, None)[0]
    except RlmMcpError:
        return None
    return Sample([SamplingMessage(role="user", content=TextContent(type="text", text=full))], max_tokens=4096)


async def sub_query(
    ctx: Context,
    prompt: Annotated[str | None, Field(description="One question for a worker model.")] = None,
    prompts: Annotated[list[str] | None, Field(description="Several questions, answered concurrently, in order.",
                                               max_length=10_000)] = None,
    context: Annotated[str | None, Field(description="Name of a loaded context whose text is appended to each "
                                         "prompt (so you need not paste text you have not read).")] = None,
    path: Annotated[str | None, Field(description="With context: just this file of it.")] = None,
    start: Annotated[int | None, Field(description="With context: first character of the slice.", ge=0)] = None,
    end: Annotated[int | None, Field(description="With context: end of the slice (exclusive).", ge=0)] = None,
    chunk_chars: Annotated[int | None, Field(description="Split the slice into chunks of this many characters "
                                             "and ask `prompt` about each one (a map step).", ge=200)] = None,
    model: Annotated[str | None, Field(description="Model overriding RLM_WORKER_MODEL: a litellm model string or "
                                       "an assistant CLI (claude-code/haiku, ...).")] = None,
    session: SessionArg = None,
    sampled: Annotated[CreateMessageResult | None, Resolve(sample_if_needed)] = None,
) -> Annotated[CallToolResult, SubQueryReport]:
    """Ask cheap worker models directly from the host: one prompt, a batch, or one prompt mapped over chunks of a
    loaded context (e.g. context="main", path="src/app.py", or start/end character offsets). Use it to delegate
    reading of text you have not loaded into your own context. Answers come back in order; a failed prompt
    carries its error without failing the others. Budgets (calls, tokens, USD) apply.
    """
    if sampled is not None:
        text = sampled.content.text if isinstance(sampled.content, TextContent) else str(sampled.content)
        return tool_result(SubQueryReport(answers=[AnswerModel(text=text, model=sampled.model or "client")],
                                          backend="sampling"))
    current = await current_session(ctx, session)
    changed = await current.refresh() if context else None
    questions = worker_prompts(prompt, prompts, current.context(context) if context else None, path, start, end,
                               chunk_chars)
    report = await session_calls(current).sub_query(questions, model, _batch_progress(ctx))
    report.context_changed = changed
    return tool_result(report, is_error=all(a.error for a in report.answers))


async def rlm_complete(
    ctx: Context,
    query: Annotated[str, Field(description="The question to answer about the loaded context(s).",
                                min_length=1, max_length=100_000)],
    max_iterations: Annotated[int, Field(description="Root-model turns before the best answer so far is "
                                         "returned.", ge=1, le=200)] = 20,
    session: SessionArg = None,
) -> Annotated[CallToolResult, RLMReport]:
    """Answer a question about the loaded context(s) autonomously: a server-side root model (RLM_ROOT_MODEL) writes
    code against this session's REPL and calls worker models until it has an answer. Use it to delegate a whole
    analysis instead of driving exec_code yourself. Returns the answer, whether it is final or the best so far
    (when a limit stopped the run), and its cost. Reports progress per iteration.
    """
    async def progress(iteration: int, total: int, message: str) -> None:
        await ctx.report_progress(float(iteration), float(total), f"iteration {iteration}: {message}")

    require_root_model(state_of(ctx).settings)
    current = await current_session(ctx, session)
    report = await answer(current, query, max_iterations=max_iterations, on_iteration=progress)
    return tool_result(report, is_error=report.status == "failed")


async def find_symbol(
    ctx: Context,
    name: Annotated[str | None, Field(description="Exact name or qualified name (Class.method).")] = None,
    pattern: Annotated[str | None, Field(description="Regex searched in qualified names.")] = None,
    kind: Annotated[str | None, Field(description="function, method, class, interface, struct, enum, trait, "
                                      "impl, object, extension, module, namespace, record, annotation, type "
                                      "(alias, typedef, named type), union, macro, constant or static.")] = None,
    path: Annotated[str | None, Field(description="Only this file; with nothing else: its outline.")] = None,
    callers_of: Annotated[str | None, Field(description="Instead: call sites of this name.")] = None,
    context: Annotated[str, Field(description="Which loaded context.")] = "main",
    limit: Annotated[int, Field(ge=1, le=1000)] = 100,
    session: SessionArg = None,
) -> Annotated[CallToolResult, SymbolReport]:
    """Where is X defined, what is in this file, who calls Y: answered from the tree-sitter index of a loaded
    codebase (16 languages) without reading files. Returns definitions with kind, qualified name, file, line range
    and signature line, or call sites with file:line. For anything subtler, use exec_code (find_symbol(),
    outline(), references() and grep() are there too).
    """
    payload: dict[str, Any] = {"context": context, "limit": limit}
    if callers_of:
        payload |= {"op": "references", "name": callers_of}
    elif path and not (name or pattern or kind):
        payload |= {"op": "outline", "path": path}
    else:
        if not (name or pattern or kind or path):
            raise BadRequest("give name, pattern, kind, path or callers_of")
        payload |= {"op": "find", "name": name, "pattern": pattern, "kind": kind, "path": path}
    current = await current_session(ctx, session)
    changed = await current.refresh()
    found = await current.code_index().query(payload)
    return tool_result(SymbolReport(op=payload["op"], results=found["results"][:limit], note=found["note"],
                                    context_changed=changed))


async def session(
    ctx: Context,
    action: Annotated[Literal["status", "reset"], Field(
        description="'status' shows contexts, usage and limits; 'reset' starts a fresh REPL (variables dropped).")]
        = "status",
    keep_contexts: Annotated[bool, Field(description="On reset, keep loaded contexts attached.")] = True,
    session: SessionArg = None,
) -> Annotated[CallToolResult, SessionReport]:
    """Show this session's handle, loaded contexts, REPL state, usage and limits, or reset the REPL."""
    current = await current_session(ctx, session)
    if action == "reset":
        await current.reset(keep_contexts=keep_contexts)
    handle = session or state_of(ctx).handles.handle_of(current, caller(ctx))
    return tool_result(status_report(current, action, handle))


async def rlm_playbook(task: str = "") -> str:
    """How to use rlm-mcp's tools as a Recursive Language Model: probe, filter with code, map with workers."""
    return PLAYBOOK + (f"\n\nThe task:\n{task}" if task else "")


async def _fresh_session(ctx: Context, handle: str | None = None) -> Session:
    """The session, its live contexts brought up to date first: a resource is read as the files are now."""
    current = await current_session(ctx, handle)
    await current.refresh()
    return current


async def context_summary(name: str, ctx: Context) -> dict[str, Any]:
    """The summary of one loaded context (sizes, files, languages, skipped); the session tool lists names."""
    return (await _fresh_session(ctx)).context(name).to_dict()


async def context_manifest(name: str, ctx: Context) -> dict[str, Any]:
    """The file manifest of one loaded context: path, offsets, bytes, lines, language per file."""
    return read_manifest((await _fresh_session(ctx)).context(name))


async def handle_context_summary(session: str, name: str, ctx: Context) -> dict[str, Any]:
    """The summary of a context loaded in the session a handle names (one of yours)."""
    return (await _fresh_session(ctx, session)).context(name).to_dict()


async def handle_context_manifest(session: str, name: str, ctx: Context) -> dict[str, Any]:
    """The file manifest of a context loaded in the session a handle names (one of yours)."""
    return read_manifest((await _fresh_session(ctx, session)).context(name))


READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
TOOLS: list[tuple[Callable[..., Awaitable[CallToolResult]], ToolAnnotations]] = [
    (load_context, READ_ONLY),
    (exec_code, ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)),
    (sub_query, ToolAnnotations(read_only_hint=True, open_world_hint=True)),
    (rlm_complete, ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)),
    (find_symbol, READ_ONLY),
    (session, ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)),
]
RESOURCES: list[tuple[str, Callable[..., Awaitable[dict[str, Any]]]]] = [
    (CONTEXT_URI, context_summary), (MANIFEST_URI, context_manifest),
    (HANDLE_CONTEXT_URI, handle_context_summary), (HANDLE_MANIFEST_URI, handle_context_manifest),
]


def create_server(settings: Settings, *, exit_on_signals: bool = False) -> MCPServer:
    """The server; with `exit_on_signals` (stdio), SIGTERM and SIGINT close every session, then end the process
    (see `_exit_on_signal`); over HTTP uvicorn handles them and the lifespan closes the sessions."""

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[AppState]:
        async with anyio.create_task_group() as group:
            sessions = SessionManager(settings, group, WorkerCalls.for_session)
            group.start_soon(sessions.reap_idle)
            group.start_soon(sessions.choose_sandbox)
            group.start_soon(anyio.to_thread.run_sync, sweep_checkpoints, settings.home / "sessions",
                             settings.session_idle_s)
            if exit_on_signals and sys.platform != "win32":  # asyncio on Windows has no signal handlers
                group.start_soon(_exit_on_signal, sessions)
            if _needs_litellm(settings):  # warm the slow import off the event loop, before the first call waits for it
                group.start_soon(anyio.to_thread.run_sync, load_litellm)
            try:
                yield AppState(settings=settings, sessions=sessions, handles=HandleRegistry(sessions))
            finally:
                await sessions.close_all()
                group.cancel_scope.cancel()

    mcp = MCPServer("rlm-mcp", instructions=SERVER_INSTRUCTIONS, version=__version__, lifespan=lifespan)
    _register(mcp, {"RLM_HOME": settings.home, "RLM_RUNTIME_DIR": settings.runtime_dir or default_runtime_root()})
    return mcp


async def _exit_on_signal(sessions: SessionManager) -> None:
    """Stop a stdio server the way hosts and service managers ask (SIGTERM) and terminals do (SIGINT): refuse
    new calls, close every session -- running execs stopped, jails and Deno ended, live contexts kept in the
    store -- and leave. It leaves with os._exit because the SDK reads stdin in a worker thread that no
    cancellation interrupts: a cancelled server would otherwise wait for its client's next line."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        async for signum in received:
            log.warning("%s received: closing every session, then exiting", signal.Signals(signum).name)
            sessions.stopping = f"the server is shutting down ({signal.Signals(signum).name})"
            with anyio.move_on_after(SHUTDOWN_GRACE_S):
                await sessions.close_all()
            logging.shutdown()
            os._exit(0)


def _register(mcp: MCPServer, places: dict[str, Path]) -> None:
    """Every handler, each behind the one error boundary (`translated`, told the server's directories so a disk
    fault names the one it hit): the only place handlers are registered."""
    for tool, annotations in TOOLS:
        register = mcp.tool(description=inspect.cleandoc(tool.__doc__ or ""), annotations=annotations)
        register(translated(tool.__name__, places)(tool))
    for uri, read in RESOURCES:
        mcp.resource(uri, mime_type="application/json")(translated(f"resource {uri}", places)(read))
    mcp.prompt(name="rlm_playbook", title="RLM playbook: analyse inputs far larger than your context")(
        translated("prompt rlm_playbook", places)(rlm_playbook))
    install_completions(mcp, [uri for uri, _ in RESOURCES], translated("completion", places)(completion_values))
    install_unknown_names(mcp)


async def completion_values(ctx: Context, argument: str, given: dict[str, str]) -> list[str]:
    """What a resource argument may be, for this caller only: its live handles for `session`, else the
    contexts loaded in the session `given["session"]` names or in its default one. Asking opens nothing."""
    state: AppState = ctx.request_context.lifespan_context
    owner = caller(ctx)
    if argument == "session":
        return state.handles.live_handles(owner)
    if argument != "name":
        return []
    if handle := given.get("session"):
        try:
            session: Session | None = await state.handles.resolve(handle, owner)
        except UnknownSession:
            return []
    else:
        session = state.sessions.sessions.get(session_key(ctx))
    return list(session.contexts) if session else []


def _progress_forwarder(ctx: Context) -> Callable[[int, int, str], Awaitable[None]]:
    """Worker-batch progress of an exec, forwarded to the client."""

    async def forward(done: int, total: int, message: str) -> None:
        await ctx.report_progress(float(done), float(total), message)

    return forward


def _batch_progress(ctx: Context) -> Callable[[int, int], Awaitable[None]]:
    """sub_query's progress: every 10 answers and the last."""

    async def report(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            await ctx.report_progress(float(done), float(total), f"{done}/{total} worker calls")

    return report


def _progress_reporter(ctx: Context) -> Callable[[int, int | None, str], None]:
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
