"""The MCP surface's tools and resources: thin handlers over sessions, contexts and the sandbox.

Each tool handler parses its arguments, calls one function of a lower layer and returns that layer's
result type. Handlers are plain module functions, registered in one place (app.py's `_register`) behind
errors.py, the one boundary where errors become what a client receives: for a tool, a result with
is_error whose text says what to do (SEP-1303), be it a bad argument, an unknown handle, a spent budget
or a failed sandbox; failures of the user's code come back as results with is_error and a status.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
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

from ..contexts import read_manifest, read_scope
from ..contexts.slices import worker_prompts
from ..errors import BadRequest, RlmMcpError
from ..results import (
    AnswerModel,
    ContextSummary,
    ExecReport,
    Report,
    RLMReport,
    SessionReport,
    SubQueryReport,
    SymbolReport,
)
from ..rlm.calls import answer, require_root_model
from ..sandbox.policy import MAX_EXEC_TIMEOUT_S
from ..sessions import Session, service
from .playbook import PLAYBOOK
from .requests import (
    batch_progress,
    caller,
    current_record,
    current_session,
    exec_progress,
    load_progress,
    reader_of,
    state_of,
)

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


def tool_result(report: Report, ctx: Context, *, is_error: bool = False) -> CallToolResult:
    """The designed view (models.py, shaping.py): compact structured content, which Claude Code and Codex show their
    model, and the text block, which Gemini CLI and OpenCode show theirs (Claude Code: for errors); both cut to
    RLM_RESULT_BUDGET_CHARS."""
    budget = state_of(ctx).settings.result_budget_chars
    return CallToolResult(content=[TextContent(type="text", text=report.capped_text(budget))],
                          structured_content=report.structured(budget), is_error=is_error)


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
        record = await state.sessions.open(caller(ctx))
    else:
        record = await current_record(ctx, session)
    handle, current = record.handle, record.session
    if text is not None:
        stored = await current.load_text(name, text)
    else:
        declared = [str(root.uri) for root in roots.roots] if roots else []
        scope = read_scope(reader_of(ctx), state.settings.roots(), declared)
        stored = await current.load_paths(name, source or list(scope.default_sources), list(scope.roots),
                                          on_progress=load_progress(ctx), live=live)
    sandbox = current.sandbox.backend if current.sandbox else ""
    return tool_result(ContextSummary.from_stored(stored, current.code_index().summary(stored.name), session=handle,
                                                  sandbox=sandbox, live=stored.name in current.live), ctx)


async def exec_code(
    ctx: Context,
    code: Annotated[str, Field(description="Python code to run in the persistent REPL.", max_length=1_000_000)],
    timeout_s: Annotated[float | None, Field(description="Seconds before the code is interrupted "
                                             "(default: RLM_EXEC_TIMEOUT_S, else the sandbox policy's).",
                                             gt=0, le=MAX_EXEC_TIMEOUT_S)] = None,
    session: SessionArg = None,
) -> Annotated[CallToolResult, ExecReport]:
    """Run Python in this session's persistent, sandboxed REPL (no network, no host files) where loaded contexts
    live as variables: `context` (all text), `files[path]`, `contexts[name]`, plus helpers grep(pattern),
    find_symbol(name), outline(path), references(name), chunk(text, size), count_tokens(text),
    llm_query(prompt), llm_query_batched(prompts), rlm_query(prompt, context), SHOW_VARS(), FINAL(answer).

    Variables persist between calls. Print only what you need: output is cut in the middle beyond the budget.
    grep(), find_symbol() and references() cut long lists and say so on stderr with the full count: pass
    max_hits=None (grep) or limit=None (the others) to get every result.
    Returns stdout, stderr, changed variables with types and sizes, and elapsed time.
    """
    current = await current_session(ctx, session)
    outcome = await current.exec(code, timeout_s, exec_progress(ctx))
    report = ExecReport.build(outcome.result, restarted=outcome.restarted, final_answer=outcome.final_answer,
                              worker_usage=outcome.worker_usage, context_changed=outcome.context_note,
                              restored=outcome.restored)
    return tool_result(report, ctx, is_error=report.status != "ok")


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
                                          backend="sampling"), ctx)
    current = await current_session(ctx, session)
    report = await service.sub_query(current, prompt, prompts, service.Slice(context, path, start, end, chunk_chars),
                                     model, batch_progress(ctx))
    return tool_result(report, ctx, is_error=all(a.error for a in report.answers))


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
    return tool_result(report, ctx, is_error=report.status == "failed")


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
    limit: Annotated[int, Field(ge=1, le=service.TOOL_MAX_LIMIT, description="At most this many results; when "
                                "there are more, `note` says how many and how to get all.")] = 100,
    session: SessionArg = None,
) -> Annotated[CallToolResult, SymbolReport]:
    """Where is X defined, what is in this file, who calls Y: answered from the tree-sitter index of a loaded
    codebase (16 languages) without reading files. Returns definitions with kind, qualified name, file, line range
    and signature line, or call sites with file:line. At most `limit` results: when there are more, `note` says
    how many and how to get all (limit=None in exec_code's find_symbol() or references()). For anything subtler,
    use exec_code (find_symbol(), outline(), references() and grep() are there too).
    """
    query = service.SymbolQuery.of_tool(name=name, pattern=pattern, kind=kind, path=path, callers_of=callers_of,
                                        context=context, limit=limit)
    current = await current_session(ctx, session)
    return tool_result(await service.find_symbol(current, query), ctx)


async def session(
    ctx: Context,
    action: Annotated[Literal["status", "reset"], Field(
        description="'status' shows contexts, usage and limits; 'reset' starts a fresh REPL (variables dropped).")]
        = "status",
    keep_contexts: Annotated[bool, Field(description="On reset, keep loaded contexts attached.")] = True,
    session: SessionArg = None,
) -> Annotated[CallToolResult, SessionReport]:
    """Show this session's handle, loaded contexts, REPL state, usage and limits, or reset the REPL."""
    record = await current_record(ctx, session)
    if action == "reset":
        await record.session.reset(keep_contexts=keep_contexts)
    return tool_result(service.status(record.session, action, record.handle), ctx)


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


