"""The MCP surface of rlm-mcp: thin handlers over sessions, contexts and the sandbox.

Two error channels: a request that cannot be served (bad arguments, unknown names, a spent budget, a
failed sandbox) is a protocol error whose message says what to do -- every handler is wrapped by
`mcp_errors.translated`, the one boundary where errors become MCP errors; failures of the user's code
come back as a normal result with is_error set and a status.
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
from .errors import BadRequest
from .handles import HandleRegistry, UnknownSession
from .http import token_fingerprint
from .mcp_errors import translated
from .models import (
    AnswerModel,
    ContextBrief,
    ContextSummary,
    ExecReport,
    RLMReport,
    SessionReport,
    SubQueryReport,
    SymbolReport,
)
from .playbook import PLAYBOOK, SERVER_INSTRUCTIONS
from .rlm.calls import WorkerCalls, new_loop, session_calls
from .rlm.loop import RLMLimits
from .sessions import Session, SessionManager
from .unknown_names import install as install_unknown_names
from .workers.backends import load_litellm, uses_lean_path
from .workers.cli_backend import is_cli_model

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


def tool_result(model: Any, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=model.text())],
        structured_content=model.model_dump(mode="json"),
        is_error=is_error,
    )


def _needs_litellm(settings: Settings) -> bool:
    """Whether a configured model goes through litellm (assistant CLIs and the lean client do not)."""
    root = settings.root_model and not is_cli_model(settings.root_model)
    worker = settings.worker_model and not is_cli_model(settings.worker_model) and not uses_lean_path(
        settings.worker_model, settings.worker_api_base)
    return bool(root or worker)


def create_server(settings: Settings) -> MCPServer:
    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[AppState]:
        async with anyio.create_task_group() as group:
            sessions = SessionManager(settings, group, WorkerCalls.for_session)
            group.start_soon(sessions.reap_idle)
            if _needs_litellm(settings):  # warm the slow import off the event loop, before the first call waits for it
                group.start_soon(anyio.to_thread.run_sync, load_litellm)
            try:
                yield AppState(settings=settings, sessions=sessions, handles=HandleRegistry(sessions))
            finally:
                await sessions.close_all()
                group.cancel_scope.cancel()

    mcp = MCPServer("rlm-mcp", instructions=SERVER_INSTRUCTIONS, version=__version__, lifespan=lifespan)

    def tool(**options: Any) -> Callable[[Callable[..., Any]], Any]:
        """`mcp.tool` with the docstring dedented into the description a model reads, behind the error boundary."""

        def register(fn: Callable[..., Any]) -> Any:
            return mcp.tool(description=inspect.cleandoc(fn.__doc__ or ""), **options)(translated(fn.__name__)(fn))

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
        state: AppState = ctx.request_context.lifespan_context
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
            sources = source or _paths_from_roots(roots) or [str(Path.cwd())]
            allowed = list(state.settings.roots()) + [Path(p) for p in _paths_from_roots(roots)]
            stored = await current.load_paths(name, sources, allowed, on_progress=_progress_reporter(ctx), live=live)
        return tool_result(ContextSummary.from_stored(stored, current.code_index().summary(stored.name),
                                                      session=handle, live=stored.name in current.live))

    @tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False))
    async def exec_code(
        ctx: Context,
        code: Annotated[str, Field(description="Python code to run in the persistent REPL.", max_length=1_000_000)],
        timeout_s: Annotated[float | None, Field(description="Seconds before the code is interrupted "
                                                 "(default: the server's RLM_EXEC_TIMEOUT_S).", gt=0, le=3600)] = None,
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

        async def progress(done: int, total: int, message: str) -> None:
            await ctx.report_progress(float(done), float(total), message)

        outcome = await current.exec(code, timeout_s, progress)
        report = ExecReport.build(outcome.result, restarted=outcome.restarted, final_answer=outcome.final_answer,
                                  worker_usage=outcome.worker_usage, context_changed=outcome.context_note)
        return tool_result(report, is_error=report.status != "ok")

    @translated("sub_query")
    async def sample_if_needed(ctx: Context, prompt: str | None, prompts: list[str] | None, context: str | None,
                               path: str | None, start: int | None, end: int | None,
                               chunk_chars: int | None, session: str | None) -> Sample | None:
        """With no worker model, ask the client's own model (MCP sampling) for a single prompt."""
        capabilities = ctx.session.client_capabilities
        if settings.worker_model or capabilities is None or capabilities.sampling is None:
            return None
        if prompts or not prompt or chunk_chars:
            return None  # batches need a configured worker; the tool body says so
        current = await current_session(ctx, session)
        full = build_prompts(current, prompt, None, context, path, start, end, None)[0]
        return Sample([SamplingMessage(role="user", content=TextContent(type="text", text=full))], max_tokens=4096)

    @tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
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
        model: Annotated[str | None, Field(description="litellm model string overriding RLM_WORKER_MODEL.")] = None,
        session: SessionArg = None,
        sampled: Annotated[CreateMessageResult | None, Resolve(sample_if_needed)] = None,
    ) -> Annotated[CallToolResult, SubQueryReport]:
        """Ask cheap worker models directly from the host: one prompt, a batch, or one prompt mapped over chunks of a
        loaded context (e.g. context="main", path="src/app.py", or start/end character offsets). Use it to delegate
        reading of text you have not loaded into your own context. Answers come back in order; a failed prompt
        carries its error without failing the others. Budgets (calls, tokens, USD) apply.
        """
        current = await current_session(ctx, session)
        if sampled is not None:
            text = sampled.content.text if isinstance(sampled.content, TextContent) else str(sampled.content)
            answer = AnswerModel(text=text, model=sampled.model or "client")
            return tool_result(SubQueryReport(answers=[answer], backend="sampling"))
        changed = await current.refresh() if context else None
        questions = build_prompts(current, prompt, prompts, context, path, start, end, chunk_chars)
        calls = session_calls(current)
        mark = calls.usage.snapshot()
        results = await calls.dispatcher.query_batched(questions, calls.budget, model, _progress_reporter_async(ctx))
        answers = [AnswerModel(text=r.text, error=r.error, model=r.model, cached=r.cached) for r in results]
        report = SubQueryReport(answers=answers, backend="litellm", usage=calls.usage.since(mark),
                                context_changed=changed)
        return tool_result(report, is_error=all(a.error for a in answers))

    @tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True))
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
        if not settings.root_model:
            raise BadRequest("rlm_complete needs a root model: set RLM_ROOT_MODEL (e.g. openai/gpt-4o, or "
                          "ollama/qwen2.5-coder with RLM_ROOT_API_BASE) and restart; or drive exec_code yourself")
        current = await current_session(ctx, session)
        if not current.contexts:
            raise BadRequest("nothing is loaded in this session: call load_context first")
        async def progress(iteration: int, total: int, message: str) -> None:
            await ctx.report_progress(float(iteration), float(total), f"iteration {iteration}: {message}")

        calls = session_calls(current)
        mark = calls.usage.snapshot()
        limits = RLMLimits.from_settings(settings, max_iterations=max_iterations)
        result = await new_loop(current, limits=limits, on_iteration=progress).run(query)
        usage = result.usage
        report = RLMReport(
            answer=result.answer, status=result.status, reason=result.reason, iterations=usage.iterations,
            code_blocks=usage.code_blocks, root_calls=usage.root.calls, root_tokens=usage.root.tokens,
            root_cost_usd=usage.root.cost_usd, worker_usage=calls.usage.since(mark), spent=result.spent,
            elapsed_s=usage.elapsed_s, trajectory=str(current.trajectory.path) if current.trajectory else None,
        )
        return tool_result(report, is_error=result.status == "failed")

    @tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False))
    async def find_symbol(
        ctx: Context,
        name: Annotated[str | None, Field(description="Exact name or qualified name (Class.method).")] = None,
        pattern: Annotated[str | None, Field(description="Regex searched in qualified names.")] = None,
        kind: Annotated[str | None, Field(description="function, method, class, interface, struct, enum, trait, "
                                          "impl, object, extension, module or constant.")] = None,
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
        current = await current_session(ctx, session)
        payload: dict[str, Any] = {"context": context, "limit": limit}
        if callers_of:
            payload |= {"op": "references", "name": callers_of}
        elif path and not (name or pattern or kind):
            payload |= {"op": "outline", "path": path}
        else:
            if not (name or pattern or kind or path):
                raise BadRequest("give name, pattern, kind, path or callers_of")
            payload |= {"op": "find", "name": name, "pattern": pattern, "kind": kind, "path": path}
        changed = await current.refresh()
        found = await current.code_index().query(payload)
        return tool_result(SymbolReport(op=payload["op"], results=found["results"][:limit], note=found["note"],
                                        context_changed=changed))

    @tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True))
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
        state: AppState = ctx.request_context.lifespan_context
        handle = session or state.handles.handle_of(current, caller(ctx))
        return tool_result(_session_report(current, action, handle))

    @mcp.prompt(name="rlm_playbook", title="RLM playbook: analyse inputs far larger than your context")
    def rlm_playbook(task: str = "") -> str:
        """How to use rlm-mcp's tools as a Recursive Language Model: probe, filter with code, map with workers."""
        return PLAYBOOK + (f"\n\nThe task:\n{task}" if task else "")

    async def summary_of(ctx: Context, name: str, handle: str | None = None) -> dict[str, Any]:
        current = await current_session(ctx, handle)
        await current.refresh()  # a live context is read as it is now
        return current.context(name).to_dict()

    async def manifest_of(ctx: Context, name: str, handle: str | None = None) -> dict[str, Any]:
        from .contexts import read_manifest

        current = await current_session(ctx, handle)
        await current.refresh()
        return read_manifest(current.context(name))

    @mcp.resource(CONTEXT_URI, mime_type="application/json")
    @translated("resource " + CONTEXT_URI)
    async def context_summary(name: str, ctx: Context) -> dict[str, Any]:
        """The summary of one loaded context (sizes, files, languages, skipped); the session tool lists names."""
        return await summary_of(ctx, name)

    @mcp.resource(MANIFEST_URI, mime_type="application/json")
    @translated("resource " + MANIFEST_URI)
    async def context_manifest(name: str, ctx: Context) -> dict[str, Any]:
        """The file manifest of one loaded context: path, offsets, bytes, lines, language per file."""
        return await manifest_of(ctx, name)

    @mcp.resource(HANDLE_CONTEXT_URI, mime_type="application/json")
    @translated("resource " + HANDLE_CONTEXT_URI)
    async def handle_context_summary(session: str, name: str, ctx: Context) -> dict[str, Any]:
        """The summary of a context loaded in the session a handle names (one of yours)."""
        return await summary_of(ctx, name, session)

    @mcp.resource(HANDLE_MANIFEST_URI, mime_type="application/json")
    @translated("resource " + HANDLE_MANIFEST_URI)
    async def handle_context_manifest(session: str, name: str, ctx: Context) -> dict[str, Any]:
        """The file manifest of a context loaded in the session a handle names (one of yours)."""
        return await manifest_of(ctx, name, session)

    install_completions(mcp, (CONTEXT_URI, MANIFEST_URI, HANDLE_CONTEXT_URI, HANDLE_MANIFEST_URI), completion_values)
    install_unknown_names(mcp)
    return mcp


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


def _session_report(current: Session, action: str, handle: str) -> SessionReport:
    settings = current.settings
    sandbox = current.sandbox
    return SessionReport(
        session=current.key, handle=handle, isolated=settings.sandbox == "nsjail",
        repl_running=bool(sandbox and sandbox.alive),
        contexts=[ContextBrief(name=s.name, kind=s.kind, chars=s.chars, files=s.file_count,
                               estimated_tokens=s.estimated_tokens, index=current.code_index().summary(s.name))
                  for s in current.contexts.values()],
        execs=current.usage.execs, exec_seconds=round(current.usage.exec_seconds, 3),
        restarts=current.usage.restarts, timeouts=current.usage.timeouts,
        limits={"exec_timeout_s": settings.exec_timeout_s, "max_output_chars": settings.max_output_chars,
                "max_worker_calls": settings.max_worker_calls, "max_cost_usd": settings.max_cost_usd,
                "max_tokens": settings.max_tokens, "max_depth": settings.max_depth, "max_wall_s": settings.max_wall_s,
                "session_idle_s": settings.session_idle_s},
        worker_model=settings.worker_model, action=action, **_spending(current),
    )


def _spending(current: Session) -> dict[str, Any]:
    calls = current.extension
    if not isinstance(calls, WorkerCalls):
        return {}
    return {"worker_usage": calls.usage, "spent": calls.budget.ledger.used()}


def build_prompts(current: Session, prompt: str | None, prompts: list[str] | None, context: str | None,
                  path: str | None, start: int | None, end: int | None, chunk_chars: int | None) -> list[str]:
    """The worker prompts of a sub_query call, with the named slice of a context appended."""
    if bool(prompt) == bool(prompts):
        raise BadRequest("give exactly one of `prompt` or `prompts`")
    questions = [prompt] if prompt else list(prompts or [])
    if context is None:
        if path is not None or start is not None or end is not None or chunk_chars:
            raise BadRequest("`path`, `start`, `end` and `chunk_chars` need `context` (a loaded context's name)")
        return questions
    text = context_slice(current, context, path, start, end)
    if chunk_chars:
        if not prompt:
            raise BadRequest("`chunk_chars` maps one `prompt` over the chunks; do not combine it with `prompts`")
        pieces = [text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars)] or [""]
        return [f"{prompt}\n\n---\n{piece}" for piece in pieces]
    return [f"{question}\n\n---\n{text}" for question in questions]


def context_slice(current: Session, name: str, path: str | None, start: int | None, end: int | None) -> str:
    stored = current.context(name)
    with open(stored.content_path, encoding="utf-8", newline="") as handle:  # offsets count "\r\n" as two
        text = handle.read()
    if path is not None:
        from .contexts import read_manifest

        entry = next((e for e in read_manifest(stored)["files"] if e["path"] == path), None)
        if entry is None:
            raise BadRequest(f"{path!r} is not a file of context {name!r}; list them with exec_code: list(files)")
        text = text[entry["start"] : entry["end"]]
    return text[start or 0 : end]


def _progress_reporter_async(ctx: Context):
    async def report(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            await ctx.report_progress(float(done), float(total), f"{done}/{total} worker calls")

    return report


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
