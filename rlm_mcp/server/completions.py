"""MCP completions (`completion/complete`): the arguments of the context resources -- loaded context
names and the caller's session handles.

Registering a handler with `MCPServer.completion()` is what declares the completions capability. The
SDK calls that handler with the reference and the argument only, while the values to offer belong to
the caller's sessions, which only the request can tell; a middleware (public, `MCPServer.middleware`)
keeps each completion request in a context variable for the handler. A reference we do not serve,
such as a prompt argument that is free text, gets an empty completion, as the protocol expects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import Completion, CompletionArgument, CompletionContext, PromptReference, ResourceTemplateReference

MAX_VALUES = 100  # the protocol's cap on values in one completion
_REQUEST: ContextVar[ServerRequestContext[Any, Any] | None] = ContextVar("rlm_completion_request", default=None)


def matching(names: Iterable[str], partial: str) -> Completion:
    """The names that start with what the user typed, sorted, at most MAX_VALUES of them."""
    hits = sorted(name for name in set(names) if name.startswith(partial))
    return Completion(values=hits[:MAX_VALUES], total=len(hits), has_more=len(hits) > MAX_VALUES)


async def _remember_request(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    if ctx.method != "completion/complete":
        return await call_next(ctx)
    token = _REQUEST.set(ctx)
    try:
        return await call_next(ctx)
    finally:
        _REQUEST.reset(token)


ValuesOf = Callable[[Context, str, dict[str, str]], Awaitable[Iterable[str]]]


def install(mcp: MCPServer, templates: Iterable[str], values_of: ValuesOf) -> None:
    """Complete the arguments of the resource `templates` with `values_of(ctx, argument, arguments given)`."""
    served = frozenset(templates)
    mcp.middleware.append(_remember_request)

    @mcp.completion()
    async def complete(ref: ResourceTemplateReference | PromptReference, argument: CompletionArgument,
                       context: CompletionContext | None) -> Completion | None:
        request = _REQUEST.get()
        if request is None or not isinstance(ref, ResourceTemplateReference) or ref.uri not in served:
            return None
        given = dict(context.arguments or {}) if context is not None else {}
        values = await values_of(Context(request_context=request, mcp_server=mcp), argument.name, given)
        return matching(values, argument.value)
