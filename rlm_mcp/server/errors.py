"""The one place where rlm-mcp's errors become what an MCP client receives (the server's error boundary).

Two channels, as MCP's SEP-1303 (final, 2025-11-25) draws them. Every handler of the server -- its tools,
resources, prompt and completion values -- is registered behind `translated` or `translated_tool` in one place (app.py's
`_register`), so no exception of ours or of Python's crosses to a client raw:

- a tool call: whatever its body raises becomes a tool result with `isError` whose text the host's model
  reads and acts on -- an unknown or expired handle, a path outside the roots, a cap or a budget, a bad
  regular expression, arguments the schema cannot express (BadRequest and its kin), a failed sandbox
  (what happens next and where to look), the machine failing (an OSError such as a full or read-only
  RLM_HOME, a wheel's binary gone: our EnvironmentFault, naming the place and the fix, never called a
  bug), and a bug (logged with its traceback, and called one);
- a resource, the prompt or a completion, which have no `isError`: the same messages as JSON-RPC errors,
  INVALID_PARAMS for what the caller can fix, INTERNAL_ERROR for the rest.

JSON-RPC errors otherwise stay for protocol matters, which the SDK and unknown_names.py answer: an unknown
tool, prompt or resource, a malformed request. Failures of the user's code are not errors at all: tools
return them as results with `is_error` and a status.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import ParamSpec, TypeVar

from mcp import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, CallToolResult, TextContent

from ..contexts import ContextError
from ..errors import BadRequest, RlmMcpError, environment_fault
from ..sandbox import SandboxError, SandboxUnavailable
from ..workers import BudgetExceeded

log = logging.getLogger("rlm_mcp.server")
P = ParamSpec("P")
R = TypeVar("R")
CALLER_FIXABLE = (BadRequest, ContextError, BudgetExceeded)  # re.error has its own message, below


Places = Mapping[str, Path]  # the server's directories (setting -> path), for naming the one a disk fault hit


def ours(exc: Exception, where: str, places: Places | None = None) -> Exception:
    """`exc`, or the EnvironmentFault it stands for when the machine caused it (a full or read-only directory,
    a binary gone)."""
    if isinstance(exc, OSError) and (fault := environment_fault(exc, places)) is not None:
        log.warning("environment fault in %s: %s", where, exc)
        return fault
    return exc


def message_for(exc: Exception, where: str) -> str:
    """What the caller reads about `exc`, raised while serving `where`: the problem and its fix."""
    if isinstance(exc, re.error):
        return f"invalid regular expression: {exc}; fix the pattern (Python `re` syntax) or escape it with re.escape"
    if isinstance(exc, SandboxUnavailable):  # nothing started, so there is no REPL to restart: only the fix helps
        return f"the sandbox cannot start: {exc}"
    if isinstance(exc, SandboxError):
        return (f"the sandbox failed: {exc}. The next call starts a fresh REPL (variables are lost, loaded contexts "
                "are attached again); if this repeats, run `rlm-mcp doctor`")
    if isinstance(exc, RlmMcpError):
        return str(exc)
    log.error("unexpected error in %s", where, exc_info=exc)
    return (f"internal error in {where}: {type(exc).__name__}: {str(exc)[:300]}. This is a bug in rlm-mcp, not in "
            "your request: the server's log (stderr) has the traceback; retry, or reset the session (session "
            "action='reset') if it repeats")


def to_mcp_error(exc: Exception, where: str, places: Places | None = None) -> MCPError:
    """The JSON-RPC error for `exc` raised by a resource, the prompt or a completion (they have no isError)."""
    if isinstance(exc, MCPError):
        return exc
    exc = ours(exc, where, places)
    code = INVALID_PARAMS if isinstance(exc, (re.error, *CALLER_FIXABLE)) else INTERNAL_ERROR
    return MCPError(code=code, message=message_for(exc, where))


def to_tool_error(exc: Exception, where: str, places: Places | None = None) -> CallToolResult:
    """The tool result with `isError` for `exc` raised by the tool `where`: its text is what the model reads."""
    text = message_for(ours(exc, where, places), where)
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def translated(where: str, places: Places | None = None,
               ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap a resource, prompt or completion handler so whatever it raises leaves as an MCPError (its
    signature is kept for the SDK)."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def handler(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                raise to_mcp_error(exc, where, places) from exc

        return handler

    return wrap


def translated_tool(
    where: str, places: Places | None = None,
) -> Callable[[Callable[P, Awaitable[CallToolResult]]], Callable[P, Awaitable[CallToolResult]]]:
    """Wrap a tool handler so whatever it raises comes back as a tool result with `isError` (SEP-1303)."""

    def wrap(fn: Callable[P, Awaitable[CallToolResult]]) -> Callable[P, Awaitable[CallToolResult]]:
        @functools.wraps(fn)
        async def handler(*args: P.args, **kwargs: P.kwargs) -> CallToolResult:
            try:
                return await fn(*args, **kwargs)
            except MCPError:
                raise  # a protocol matter the SDK or a resolver already decided
            except Exception as exc:
                return to_tool_error(exc, where, places)

        return handler

    return wrap
