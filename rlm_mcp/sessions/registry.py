"""The one registry of a server's sessions, keyed by handle (MCP 2026-07-28, SEP-2567).

MCP 2026-07-28 removed protocol sessions; its guidance for state across calls is a handle that a tool
mints and the model passes back. load_context returns one; every stateful tool takes it as `session`.
Every session has one, its connection's default session too (the one a call without a handle uses,
found by its connection key, server/requests.py's `session_key`), so a model can always pass on what
it was given, and nothing else addresses a session.

A handle is unguessable (secrets.token_urlsafe, 144 bits) and bound to the caller that minted it (the
bearer token's fingerprint over HTTP, the process over stdio): for another caller it is as unknown as a
made-up one, and the error does not tell the two apart. It expires with its session: idle longer than
RLM_SESSION_IDLE_S (checked when it is used, besides the reaper) or closed; the error says how to start
again. The registry caps sessions per owner as well as in all (RLM_TOKEN_MAX_SESSIONS, RLM_MAX_SESSIONS)
and keeps one SpendAccount per owner that all its sessions spend from, so one team member can exhaust
neither the sessions nor the model budget of the others.

Behind a proxy with several replicas (RLM_REPLICA_ID), a handle is `<replica>.<start>.<random>`: the proxy
routes on the part before the first dot, back to the one process that holds its REPL, without reading
the body; `<start>` names this run of the process. A handle of another replica reaching this one (the
proxy could not reach its own) or of an earlier run of this one gets `ReplicaGone`, an error that says
which and how to start again; the session it named is gone with its process.

Each session is held by a `SessionRecord` (handle, owner, key, and the live session): what a session is
known by, so that a record can later be written beside a session's checkpoint and read back.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from ..config import Settings
from ..errors import BadRequest, RlmMcpError, SessionLimitReached
from ..memory import release_memory
from ..sandbox import SpareKeeper
from ..sandbox.prelude import PRELUDE
from ..workers import SpendAccount
from .session import ChildRLM, Session, launcher_for, new_trajectory

log = logging.getLogger(__package__)
REMEMBERED = 10_000  # closed handles kept to tell "expired" from "unknown"; older ones become unknown


class UnknownSession(BadRequest):
    """A handle this caller was never given (or one so old it is forgotten)."""


class SessionExpired(UnknownSession):
    """A handle whose session was closed: idle too long, or its connection ended."""


class ReplicaGone(UnknownSession):
    """A handle minted by another replica the proxy could not reach, or by this replica before it restarted."""


@dataclass(eq=False, slots=True)
class SessionRecord:
    """A session as the registry knows it: the handle that names it, its owner, its key (its name in logs and
    trajectories), and whether it is a connection's default session."""

    handle: str
    owner: str
    key: str
    session: Session
    connection: str | None = None  # the connection key of a default session


def _shown(handle: str) -> str:
    return f"{handle[:6]}…" if len(handle) > 6 else handle


def _gone_with_its_replica(handle: str, this_replica: str, this_run: str) -> str | None:
    """Why a handle this registry does not know names a session of another process, if it does."""
    if "." not in handle:
        return None
    replica, _, rest = handle.partition(".")
    if replica != this_replica:
        return (f"was started on replica {replica!r} and this is replica {this_replica or '(unnamed)'!r}: the "
                "proxy could not reach the replica that held it (it stopped or was removed)")
    if rest.partition(".")[0] != this_run:
        return f"was started on this replica ({replica!r}) before it restarted"
    return None


class SessionRegistry:
    """Every session of a server process, by handle; the reaper closes idle ones."""

    def __init__(self, settings: Settings, task_group: TaskGroup, recurse: ChildRLM | None = None) -> None:
        self.settings = settings
        self.task_group = task_group
        self.recurse = recurse  # what rlm_query runs in every session (rlm/calls.py's child_rlm)
        self.policy = settings.policy()
        self.records: dict[str, SessionRecord] = {}  # by handle
        self.accounts: dict[str, SpendAccount] = {}
        self.stopping: str | None = None  # why no session opens any more (the server is shutting down)
        self.spares: SpareKeeper | None = None  # guests started ahead for the next new session (wasm)
        self._defaults: dict[str, str] = {}  # connection key -> the handle of its default session
        self._closed: OrderedDict[str, str] = OrderedDict()  # handle -> owner, of closed sessions
        self._run = secrets.token_hex(3)  # this run of the process: a restart makes older handles tell why
        self._lock = anyio.Lock()

    @property
    def replica(self) -> str:
        return self.settings.replica_id

    async def choose_sandbox(self) -> None:
        """Make the sandbox choice now, at start-up, in a worker thread: probing the guest interpreter and a
        test jail takes time the first session's start would otherwise wait for (wasm: fetching Pyodide if
        RLM_HOME has none, and setting this run's memory snapshot in the making). Then, where the backend asks
        for it, start the spare guest the next new session adopts. A failure is left for the first session's
        start to report."""
        try:
            launcher = await anyio.to_thread.run_sync(launcher_for, self.settings, self.policy)
        except Exception as exc:
            log.info("sandbox not chosen at start-up (%s): the first session reports it", exc)
            return
        if launcher.keeps_spare and self.spares is None:
            self.spares = SpareKeeper(launcher, self.policy, self.task_group, prelude=PRELUDE,
                                      runtime_dir=self.settings.runtime_dir)
            self.spares.fill()

    # --- finding and opening ---------------------------------------------------------------------
    async def default(self, connection: str, owner: str) -> SessionRecord:
        """The default session of a connection (its key embeds its owner), opened on first use."""
        self._refuse_if_stopping()
        record = self.peek_default(connection)
        if record is None:
            async with self._lock:
                record = self.peek_default(connection) or self._open(owner, connection, connection)
        if record.owner != owner:  # keys embed their owner (server/requests.py): a bug, never a lookup
            raise RlmMcpError(f"session key {connection!r} belongs to another caller")
        record.session.touch()
        return record

    def peek_default(self, connection: str) -> SessionRecord | None:
        """The default session of a connection if it is open; asking opens nothing."""
        handle = self._defaults.get(connection)
        return self.records.get(handle) if handle is not None else None

    async def open(self, owner: str) -> SessionRecord:
        """A fresh session of its own (load_context's new_session)."""
        self._refuse_if_stopping()
        async with self._lock:
            return self._open(owner, f"{owner}/handle-{secrets.token_hex(6)}", None)

    def _open(self, owner: str, key: str, connection: str | None) -> SessionRecord:
        self._check_room(owner)
        session = Session.build(self.settings, self.policy, self.task_group, key=key, owner=owner,
                                account=self.account(owner), trajectory=new_trajectory(self.settings, key),
                                recurse=self.recurse, spares=self.spares)
        random = secrets.token_urlsafe(18)  # has no dots
        handle = f"{self.replica}.{self._run}.{random}" if self.replica else random
        record = SessionRecord(handle, owner, key, session, connection)
        self.records[handle] = record
        if connection is not None:
            self._defaults[connection] = handle
        session.touch()
        return record

    async def resolve(self, handle: str, owner: str) -> SessionRecord:
        """The live session `handle` names for `owner`; UnknownSession, SessionExpired or ReplicaGone with the
        way back."""
        record = self.records.get(handle)
        closed_by = self._closed.get(handle)
        if record is None and closed_by is None and (gone := _gone_with_its_replica(handle, self.replica, self._run)):
            raise ReplicaGone(
                f"session {_shown(handle)!r} {gone}, and a REPL cannot move between replicas or outlive its "
                "process, so its variables and contexts are gone. Start again: call load_context "
                "(new_session=true for a separate session) and pass the handle it returns as `session`."
            )
        known_owner = record.owner if record is not None else closed_by
        if known_owner is None or not secrets.compare_digest(known_owner, owner):
            raise UnknownSession(
                f"no session has the handle {_shown(handle)!r} for you: pass the `session` value that load_context "
                "returned to you exactly, or omit `session` to use this connection's default session. To start a "
                "separate one, call load_context with new_session=true."
            )
        if record is None or await self.close_if_idle(record, time.monotonic()):
            raise SessionExpired(
                f"session {_shown(handle)!r} has expired: it was idle longer than {self.settings.session_idle_s:g} s "
                "(RLM_SESSION_IDLE_S) or its connection ended, and its REPL variables and loaded contexts are gone. "
                "Start again: call load_context (new_session=true for a separate session) and pass the handle it "
                "returns as `session`."
            )
        record.session.touch()
        return record

    def live_handles(self, owner: str) -> list[str]:
        """`owner`'s handles whose sessions are open (for completions)."""
        return [handle for handle, record in self.records.items() if record.owner == owner]

    def owned_by(self, owner: str) -> list[Session]:
        return [record.session for record in self.records.values() if record.owner == owner]

    def account(self, owner: str) -> SpendAccount:
        """The spend account all of `owner`'s sessions draw on (it outlives them: closing refills nothing)."""
        if owner not in self.accounts:
            settings = self.settings
            self.accounts[owner] = SpendAccount(settings.token_max_cost_usd, settings.token_max_calls,
                                                settings.token_spend_window_s)
        return self.accounts[owner]

    def _refuse_if_stopping(self) -> None:
        if self.stopping:
            raise RlmMcpError(f"{self.stopping}: no call is served any more; your host starts it again")

    def _check_room(self, owner: str) -> None:
        cap, mine = self.settings.sessions_per_caller(), len(self.owned_by(owner))
        if mine >= cap:
            raise SessionLimitReached(
                f"you have {mine} sessions open and the limit per token is {cap} (RLM_TOKEN_MAX_SESSIONS): reuse "
                "one by passing its handle as `session`, let an idle one expire (RLM_SESSION_IDLE_S), or ask the "
                "server's operator to raise RLM_TOKEN_MAX_SESSIONS"
            )
        if len(self.records) >= self.settings.max_sessions:
            raise SessionLimitReached(
                f"{len(self.records)} sessions are open, the server's limit is {self.settings.max_sessions} "
                "(RLM_MAX_SESSIONS): retry when an idle one has closed, or ask the server's operator to raise it"
            )

    # --- closing ------------------------------------------------------------------------------
    async def close(self, handle: str) -> None:
        """Close the session `handle` names; its handle then tells "expired" (for a while: REMEMBERED)."""
        async with self._lock:
            record = self.records.pop(handle, None)
            if record is None:
                return
            if record.connection is not None and self._defaults.get(record.connection) == handle:
                del self._defaults[record.connection]
            self._closed[handle] = record.owner
            while len(self._closed) > REMEMBERED:
                self._closed.popitem(last=False)
        await record.session.close()
        release_memory()

    async def close_connection(self, connection: str) -> None:
        """Close a connection's default session (a legacy HTTP client's connection ended)."""
        handle = self._defaults.get(connection)
        if handle is not None:
            await self.close(handle)

    async def close_all(self) -> None:
        for handle in list(self.records):
            with anyio.CancelScope(shield=True):
                await self._close_logged(handle)
        if self.spares is not None:
            with anyio.CancelScope(shield=True):
                await self.spares.aclose()

    async def _close_logged(self, handle: str) -> None:
        """Close one session; a failure is logged, never allowed to stop the caller's loop over sessions."""
        record = self.records.get(handle)
        try:
            await self.close(handle)
        except Exception:
            key = record.key if record is not None else _shown(handle)
            log.exception("closing session %s failed; its resources were released as far as possible", key)

    async def reap_idle(self, interval_s: float = 30.0) -> None:
        """Run forever: close sessions idle longer than settings.session_idle_s (one failing close included)."""
        while True:
            await anyio.sleep(interval_s)
            now = time.monotonic()
            for record in list(self.records.values()):
                await self.close_if_idle(record, now)

    async def close_if_idle(self, record: SessionRecord, now: float) -> bool:
        """Close `record`'s session if it has been idle longer than settings.session_idle_s and is not busy (an
        exec or RLM run holds it); the one idle rule, for the reaper and for handles."""
        if now - record.session.last_used <= self.settings.session_idle_s or record.session.busy:
            return False
        log.info("closing idle session %s", record.key)
        await self._close_logged(record.handle)
        return True
