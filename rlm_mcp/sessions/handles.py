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

Behind a proxy with several replicas (RLM_REPLICA_ID), a handle is `<replica>.<start>.<random>`: the proxy
routes on the part before the first dot, back to the one process that holds its REPL, without reading
the body; `<start>` names this run of the process. A handle of another replica reaching this one (the
proxy could not reach its own) or of an earlier run of this one gets `ReplicaGone`, an error that says
which and how to start again; the session it named is gone with its process.
"""

from __future__ import annotations

import secrets
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from ..errors import BadRequest
from .session import Session, SessionManager

REMEMBERED = 10_000  # handles kept to tell "expired" from "unknown"; older ones become unknown


class UnknownSession(BadRequest):
    """A handle this caller was never given (or one so old it is forgotten)."""


class SessionExpired(UnknownSession):
    """A handle whose session was closed: idle too long, or its connection ended."""


class ReplicaGone(UnknownSession):
    """A handle minted by another replica the proxy could not reach, or by this replica before it restarted."""


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
        self._run = secrets.token_hex(3)  # this run of the process: a restart makes older handles tell why

    @property
    def replica(self) -> str:
        return self.sessions.settings.replica_id

    def _mint(self, session: Session, owner: str) -> str:
        random = secrets.token_urlsafe(18)  # has no dots
        handle = f"{self.replica}.{self._run}.{random}" if self.replica else random
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

    def live_handles(self, owner: str) -> list[str]:
        """`owner`'s handles whose sessions are still open (for completions)."""
        return [handle for handle, entry in self._entries.items()
                if entry.owner == owner and (session := entry.session()) is not None
                and self.sessions.sessions.get(entry.key) is session]

    async def open(self, owner: str) -> tuple[str, Session]:
        """A fresh session of its own and the handle that names it."""
        key = f"{owner}/handle-{secrets.token_hex(6)}"
        session = await self.sessions.get(key, owner)
        return self._mint(session, owner), session

    def _gone_with_its_replica(self, handle: str) -> str | None:
        """Why a handle this registry does not know names a session of another process, if it does."""
        if "." not in handle:
            return None
        replica, _, rest = handle.partition(".")
        if replica != self.replica:
            return (f"was started on replica {replica!r} and this is replica {self.replica or '(unnamed)'!r}: the "
                    "proxy could not reach the replica that held it (it stopped or was removed)")
        if rest.partition(".")[0] != self._run:
            return f"was started on this replica ({replica!r}) before it restarted"
        return None

    async def resolve(self, handle: str, owner: str) -> Session:
        """The live session `handle` names for `owner`; UnknownSession or SessionExpired with the way back."""
        entry = self._entries.get(handle)
        if entry is None and (gone := self._gone_with_its_replica(handle)):
            raise ReplicaGone(
                f"session {_shown(handle)!r} {gone}, and a REPL cannot move between replicas or outlive its "
                "process, so its variables and contexts are gone. Start again: call load_context "
                "(new_session=true for a separate session) and pass the handle it returns as `session`."
            )
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

