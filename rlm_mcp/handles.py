"""Session handles: state carried across calls as an ordinary tool argument (MCP 2026-07-28, SEP-2567).

MCP 2026-07-28 removed protocol sessions; its guidance for state across calls is a handle that a tool
mints and the model passes back. load_context returns one; every stateful tool takes it as `session`.
Without one, a call uses its connection's default session (server.session_key), which has a handle
too, so a model can always pass on what it was given.

A handle is unguessable (secrets.token_urlsafe, 144 bits) and bound to the caller that minted it (the
bearer token's fingerprint over HTTP, the process over stdio): for another caller it is as unknown as a
made-up one, and the error does not tell the two apart. It expires with its session: idle longer than
RLM_SESSION_IDLE_S (checked when it is used, besides the SessionManager's reaper) or closed; the error
says how to start again. The registry only maps handles to sessions; SessionManager owns them.
"""

from __future__ import annotations

import secrets
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from .errors import BadRequest
from .sessions import Session, SessionManager

REMEMBERED = 10_000  # handles kept to tell "expired" from "unknown"; older ones become unknown


class UnknownSession(BadRequest):
    """A handle this caller was never given (or one so old it is forgotten)."""


class SessionExpired(UnknownSession):
    """A handle whose session was closed: idle too long, or its connection ended."""


@dataclass(frozen=True, slots=True)
class _Entry:
    key: str  # the SessionManager key of its session
    owner: str
    session: weakref.ref[Session]


def _shown(handle: str) -> str:
    return f"{handle[:6]}…" if len(handle) > 6 else handle


class HandleRegistry:
    """Mints handles for sessions and resolves them for the caller that minted them."""

    def __init__(self, sessions: SessionManager) -> None:
        self.sessions = sessions
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_session: dict[tuple[str, str], str] = {}  # (session key, owner) -> its handle

    def _mint(self, session: Session, owner: str) -> str:
        handle = secrets.token_urlsafe(18)
        self._entries[handle] = _Entry(session.key, owner, weakref.ref(session))
        self._by_session[(session.key, owner)] = handle
        while len(self._entries) > REMEMBERED:
            old, entry = self._entries.popitem(last=False)
            if self._by_session.get((entry.key, entry.owner)) == old:
                del self._by_session[(entry.key, entry.owner)]
        return handle

    def handle_of(self, session: Session, owner: str) -> str:
        """The handle naming `session` for `owner`, minted on first use (a connection's default session)."""
        handle = self._by_session.get((session.key, owner))
        if handle is not None and self._entries[handle].session() is session:
            return handle
        return self._mint(session, owner)

    async def open(self, owner: str) -> tuple[str, Session]:
        """A fresh session of its own and the handle that names it."""
        key = "handle-" + secrets.token_hex(6)
        session = await self.sessions.get(key)
        return self._mint(session, owner), session

    async def resolve(self, handle: str, owner: str) -> Session:
        """The live session `handle` names for `owner`; UnknownSession or SessionExpired with the way back."""
        entry = self._entries.get(handle)
        if entry is None or not secrets.compare_digest(entry.owner, owner):
            raise UnknownSession(
                f"no session has the handle {_shown(handle)!r} for you: pass the `session` value that load_context "
                "returned to you exactly, or omit `session` to use this connection's default session. To start a "
                "separate one, call load_context with new_session=true."
            )
        session = entry.session()
        live = self.sessions.sessions.get(entry.key)
        idle_s = self.sessions.settings.session_idle_s
        if session is not None and live is session and await self.sessions.close_if_idle(entry.key, session,
                                                                                          time.monotonic()):
            live = None
        if session is None or live is not session:
            raise SessionExpired(
                f"session {_shown(handle)!r} has expired: it was idle longer than {idle_s:g} s (RLM_SESSION_IDLE_S) "
                "or its connection ended, and its REPL variables and loaded contexts are gone. Start again: call "
                "load_context (new_session=true for a separate session) and pass the handle it returns as `session`."
            )
        session.touch()
        return session

