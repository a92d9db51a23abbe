"""The one place where rlm-mcp's errors become MCP errors (the server's error boundary).

Every handler of the server -- its tools, resources, prompt and completion values -- is registered
behind `translated` in one place (server.py's `_register`), so no exception of ours or of Python's
crosses to a client raw (a tool's argument resolver raises nothing of ours: it leaves a request it
cannot serve to the tool body):

- a request that cannot be served as asked (BadRequest and its kin, IndexNotReady among them;
  ContextError, a bad regular expression, a spent budget) -> INVALID_PARAMS with our message, which
  names the problem and the fix;
- the sandbox failing (SandboxError) -> INTERNAL_ERROR saying what happens next and where to look;
- the machine failing (an OSError such as a full or read-only RLM_HOME, a wheel's binary gone) -> our
  EnvironmentFault, naming the place and the fix, never called a bug;
- any other RlmMcpError -> INTERNAL_ERROR with its message (written for the caller);
- anything else is a bug: logged with its traceback and the tool's name, and answered with an
  INTERNAL_ERROR that says so, never with the exception's raw text alone.

Failures of the user's code are not errors here: tools return them as results with `is_error`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import ParamSpec, TypeVar

from mcp import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from .contexts import ContextError
from .errors import BadRequest, RlmMcpError, environment_fault
from .sandbox import SandboxError
from .workers import BudgetExceeded

log = logging.getLogger("rlm_mcp.server")
P = ParamSpec("P")
R = TypeVar("R")
CALLER_FIXABLE = (BadRequest, ContextError, BudgetExceeded)  # re.error has its own message, above


def to_mcp_error(exc: Exception, where: str, places: Mapping[str, Path] | None = None) -> MCPError:
    """The MCP error a client receives for `exc`, raised while serving `where` (a tool or resource); `places`
    are the server's directories (setting -> path), for naming the one a disk fault hit."""
    if isinstance(exc, MCPError):
        return exc
    if isinstance(exc, OSError) and (fault := environment_fault(exc, places)) is not None:
        log.warning("environment fault in %s: %s", where, exc)
        exc = fault
    if isinstance(exc, re.error):
        return MCPError(code=INVALID_PARAMS, message=f"invalid regular expression: {exc}; fix the pattern "
                                                     "(Python `re` syntax) or escape it with re.escape")
    if isinstance(exc, CALLER_FIXABLE):
        return MCPError(code=INVALID_PARAMS, message=str(exc))
    if isinstance(exc, SandboxError):
        return MCPError(code=INTERNAL_ERROR, message=f"the sandbox failed: {exc}. The next call starts a fresh "
                        "REPL (variables are lost, loaded contexts are attached again); if this repeats, run "
                        "`rlm-mcp doctor`")
    if isinstance(exc, RlmMcpError):
        return MCPError(code=INTERNAL_ERROR, message=str(exc))
    log.error("unexpected error in %s", where, exc_info=exc)
    return MCPError(code=INTERNAL_ERROR, message=f"internal error in {where}: {type(exc).__name__}: {str(exc)[:300]}. "
                    "This is a bug in rlm-mcp, not in your request: the server's log (stderr) has the traceback; "
                    "retry, or reset the session (session action='reset') if it repeats")


def translated(where: str, places: Mapping[str, Path] | None = None,
               ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap an async handler so whatever it raises leaves as an MCPError (its signature is kept for the SDK)."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def handler(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                raise to_mcp_error(exc, where, places) from exc

        return handler

    return wrap

