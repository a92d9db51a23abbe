"""The request in flight: who is asking, which of their sessions it reaches, and how its progress is told.

Every tool, resource and completion of the server starts here, so the rules of ownership live in one
place: a caller is a bearer token (its fingerprint) over HTTP and the process over stdio, and no
request reaches a session of another caller.
"""

import logging
import time
from dataclasses import dataclass

import anyio
from mcp.server.mcpserver import Context

from ..config import Settings
from ..contexts import Reader
from ..progress import Progress
from ..sessions import Session, SessionRecord, SessionRegistry
from .http import token_fingerprint

log = logging.getLogger("rlm_mcp.server")
PROGRESS_INTERVAL_S = 0.25


@dataclass(slots=True)
class AppState:
    settings: Settings
    sessions: SessionRegistry


def state_of(ctx: Context) -> AppState:
    """The server's state (its lifespan context), as every handler reaches it."""
    return ctx.request_context.lifespan_context


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


async def current_record(ctx: Context, handle: str | None = None) -> SessionRecord:
    """The session a handle names for this caller, else the caller's default session for this connection."""
    sessions = state_of(ctx).sessions
    if handle:
        return await sessions.resolve(handle, caller(ctx))
    key = session_key(ctx)
    record = await sessions.default(key, caller(ctx))
    _close_with_connection(ctx, sessions, key)
    return record


async def current_session(ctx: Context, handle: str | None = None) -> Session:
    return (await current_record(ctx, handle)).session


def _close_with_connection(ctx: Context, sessions: SessionRegistry, key: str) -> None:
    """Close a legacy HTTP client's session (and its jail) when its connection ends.

    The SDK exposes the per-connection teardown stack only on its private `_connection`; the 2026
    protocol has no connection to outlive a request, so those sessions end by idle expiry instead.
    """
    connection = getattr(ctx.session, "_connection", None)
    if connection is None or not getattr(connection, "session_id", None) or connection.state.get("rlm-cleanup"):
        return
    connection.state["rlm-cleanup"] = True
    connection.exit_stack.push_async_callback(sessions.close_connection, key)


def exec_progress(ctx: Context) -> Progress:
    """Worker-batch progress of an exec, forwarded to the client."""

    async def forward(done: int, total: int | None, message: str) -> None:
        await ctx.report_progress(float(done), float(total) if total else None, message)

    return forward


def batch_progress(ctx: Context) -> Progress:
    """sub_query's progress: every 10 answers and the last."""

    async def report(done: int, total: int | None, message: str) -> None:
        if done == total or done % 10 == 0:
            await ctx.report_progress(float(done), float(total) if total else None, f"{message} (worker calls)")

    return report


def load_progress(ctx: Context) -> Progress:
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
