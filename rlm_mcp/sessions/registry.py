"""The one registry of a server's sessions, keyed by handle (MCP 2026-07-28, SEP-2567).

MCP 2026-07-28 removed protocol sessions; its guidance for state across calls is a handle that a tool
mints and the model passes back. load_context returns one; every stateful tool takes it as `session`.
Every session has one, its connection's default session too (the one a call without a handle uses,
found by its connection key, server/requests.py's `session_key`), so a model can always pass on what
it was given, and nothing else addresses a session.

A handle is unguessable (secrets.token_urlsafe, 144 bits) and bound to the caller that minted it (the
bearer token's fingerprint over HTTP; over stdio the user, whose every server on one RLM_HOME is the same
caller): for another caller it is as unknown as a made-up one, and the error does not tell the two apart.

A session with a loaded context or a saved variable is written down in RLM_HOME after each call
(sessions/kept.py), and a handle this registry does not hold is taken up from there (sessions/resume.py),
by this server or a later one on the same RLM_HOME -- a new conversation, a restart. Idle longer than
RLM_SESSION_IDLE_S (checked when used, besides the reaper), a session's REPL is stopped and its memory
freed; its next call takes it up again. Unused for RLM_SESSION_KEEP_S, its files are removed and its
handle has expired; so has at once that of a session closed with nothing to keep. The error says how to
start again. The registry caps sessions per owner as well as in all (RLM_TOKEN_MAX_SESSIONS,
RLM_MAX_SESSIONS) and keeps one SpendAccount per owner that all its sessions spend from (journalled in
RLM_HOME/accounts, so a restart refills nothing), so one team member can exhaust
neither the sessions nor the model budget of the others.

Behind a proxy with several replicas (RLM_REPLICA_ID), a handle is `<replica>.<start>.<random>`: the proxy
routes on the part before the first dot, back to the one process that holds its REPL, without reading
the body; `<start>` names the run of the process that minted it. A replica restarted with its volume takes
its sessions up like any server; a handle of another replica reaching this one (the proxy could not reach
its own), or of an earlier run of this one that kept nothing, gets `ReplicaGone`, an error that says which
and how to start again.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from ..config import Settings
from ..errors import BadRequest, RlmMcpError, SessionLimitReached
from ..workers import SpendAccount, TrajectoryLog
from . import kept as files
from . import resume
from .guest import SandboxChoice
from .memory import release_memory
from .session import ChildRLM, Session, new_trajectory

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
    trajectories), whether it is a connection's default session, and the lock on its kept files."""

    handle: str
    owner: str
    key: str
    session: Session
    connection: str | None = None  # the connection key of a default session
    lock: files.SessionLock | None = None
    ready: anyio.Event | None = None  # set once a session being taken up is whole


def _shown(handle: str) -> str:
    return f"{handle[:6]}…" if len(handle) > 6 else handle


def _minted_by(handle: str, replica: str) -> bool:
    """Whether this replica may take the handle's session up: its own (a replica restarted with its volume),
    never another's, whose REPL may well be alive behind the proxy."""
    return not replica or handle.partition(".")[0] == replica


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
        self.sandbox = SandboxChoice(settings, self.policy, task_group)  # made at start-up: server/app.py
        self._defaults: dict[str, str] = {}  # connection key -> the handle of its default session
        self._closed: OrderedDict[str, str] = OrderedDict()  # handle -> owner, of closed sessions
        self.replica = settings.replica_id
        self.run = secrets.token_hex(3)  # this run of the process: a restart makes older handles tell why
        self._lock = anyio.Lock()

    # --- finding and opening ---------------------------------------------------------------------
    async def default(self, connection: str, owner: str) -> SessionRecord:
        """The default session of a connection (its key embeds its owner), opened on first use."""
        await self._may_open()
        record = self.peek_default(connection)
        if record is None and (parked := self._defaults.get(connection)):
            try:
                record = await self._take_up(parked, owner, connection)  # idle before: its REPL stopped, files kept
            except SessionExpired:  # unused past RLM_SESSION_KEEP_S: the connection gets a new default session
                del self._defaults[connection]
        if record is None:
            async with self._lock:
                record = self.peek_default(connection) or self._open(owner, connection, connection)
        if record.owner != owner:  # keys embed their owner (server/requests.py): a bug, never a lookup
            raise RlmMcpError(f"session key {connection!r} belongs to another caller")
        if record.ready is not None:  # being taken up by another call
            await record.ready.wait()
        record.session.touch()
        return record

    def peek_default(self, connection: str) -> SessionRecord | None:
        """The default session of a connection if it is open; asking opens nothing."""
        handle = self._defaults.get(connection)
        return self.records.get(handle) if handle is not None else None

    async def open(self, owner: str) -> SessionRecord:
        """A fresh session of its own (load_context's new_session)."""
        await self._may_open()
        async with self._lock:
            return self._open(owner, f"{owner}/handle-{secrets.token_hex(6)}", None)

    def _open(self, owner: str, key: str, connection: str | None) -> SessionRecord:
        _check_room(self.settings, len(self.owned_by(owner)), len(self.records))
        random = secrets.token_urlsafe(18)  # has no dots
        handle = f"{self.replica}.{self.run}.{random}" if self.replica else random
        return self._hold(handle, owner, key, connection, new_trajectory(self.settings, key))

    def _hold(self, handle: str, owner: str, key: str, connection: str | None,
              trajectory: TrajectoryLog) -> SessionRecord:
        """A new session under `handle`, kept in RLM_HOME as it changes; SessionHeldElsewhere when another
        server process holds that handle's files."""
        directory = files.directory_of(self.settings.home, handle)
        lock = files.SessionLock(directory)
        session = Session.build(self.settings, self.policy, self.task_group, key=key, owner=owner,
                                account=self.account(owner), trajectory=trajectory, recurse=self.recurse,
                                spares=self.sandbox.spares, kept_at=directory, keeper=resume.Keeper())
        record = SessionRecord(handle, owner, key, session, connection, lock)
        self.records[handle] = record
        if connection is not None:
            self._defaults[connection] = handle
        session.touch()
        return record

    async def resolve(self, handle: str, owner: str) -> SessionRecord:
        """The session `handle` names for `owner`, held here or taken up from its kept files; UnknownSession,
        SessionExpired or ReplicaGone with the way back."""
        record = self.records.get(handle)
        if record is None and _minted_by(handle, self.replica):
            record = await self._take_up(handle, owner)
        if record is None or not secrets.compare_digest(record.owner, owner):
            raise _unknown(handle, owner, self._closed.get(handle), self)
        if record.ready is not None:
            await record.ready.wait()
        if self._expired(record, time.monotonic()):
            await self._close_logged(handle, forget=True)
            raise _unknown(handle, owner, owner, self)
        record.session.touch()
        return record

    async def _take_up(self, handle: str, owner: str, connection: str | None = None) -> SessionRecord | None:
        """The session of `handle` as its kept files left it, for its owner only; None when nothing is kept."""
        kept = await anyio.to_thread.run_sync(resume.find_kept, self.settings, handle, owner)
        if kept == resume.EXPIRED:
            raise _unknown(handle, owner, owner, self)
        if not isinstance(kept, resume.KeptSession):
            return None
        await self._may_open()
        async with self._lock:
            if handle in self.records:  # taken up meanwhile
                return self.records[handle]
            _check_room(self.settings, len(self.owned_by(owner)), len(self.records))
            record = self._hold(handle, owner, kept.key, connection, resume.trajectory_of(self.settings, kept))
            record.ready = anyio.Event()
        try:
            await resume.take_up(record.session, kept, remote=owner != "stdio")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._close_logged(handle)
            raise
        finally:
            record.ready.set()
        log.info("session %s taken up from RLM_HOME", kept.key)
        return record

    def live_handles(self, owner: str) -> list[str]:
        """`owner`'s handles whose sessions are open (for completions)."""
        return [handle for handle, record in self.records.items() if record.owner == owner]

    def owned_by(self, owner: str) -> list[Session]:
        return [record.session for record in self.records.values() if record.owner == owner]

    def account(self, owner: str) -> SpendAccount:
        """The spend account all of `owner`'s sessions draw on (it outlives them: closing refills nothing)."""
        if owner not in self.accounts:
            self.accounts[owner] = _new_account(self.settings, owner)
        return self.accounts[owner]

    async def _may_open(self) -> None:
        """Refuse once the server stops; else wait for the start-up's choice of sandbox if it is being made (the
        first session then adopts the spare it starts)."""
        if self.stopping:
            raise RlmMcpError(f"{self.stopping}: no call is served any more; your host starts it again")
        await self.sandbox.made()


    # --- closing ------------------------------------------------------------------------------
    async def close(self, handle: str, *, forget: bool = False) -> None:
        """Close the session `handle` names. What it keeps stays in RLM_HOME for a later call to take up (a
        connection's default session stays its default) unless `forget`; a session that keeps nothing is gone,
        and its handle then tells "expired" (for a while: REMEMBERED)."""
        async with self._lock:
            record = self.records.pop(handle, None)
            if record is None:
                return
        try:
            await record.session.close()
        finally:
            self._forget_unless_kept(record, forget)
            release_memory()

    def _forget_unless_kept(self, record: SessionRecord, forget: bool) -> None:
        if resume.let_go(record.session, record.lock, forget):
            if record.connection is not None and self._defaults.get(record.connection) == record.handle:
                del self._defaults[record.connection]
            self._closed[record.handle] = record.owner
            while len(self._closed) > REMEMBERED:
                self._closed.popitem(last=False)

    async def close_connection(self, connection: str) -> None:
        """Close a connection's default session (a legacy HTTP client's connection ended)."""
        handle = self._defaults.get(connection)
        if handle is not None:
            await self.close(handle)

    async def close_all(self) -> None:
        for handle in list(self.records):
            with anyio.CancelScope(shield=True):
                await self._close_logged(handle)
        with anyio.CancelScope(shield=True):
            await self.sandbox.aclose()

    async def _close_logged(self, handle: str, *, forget: bool = False) -> None:
        """Close one session; a failure is logged, never allowed to stop the caller's loop over sessions."""
        record = self.records.get(handle)
        try:
            await self.close(handle, forget=forget)
        except Exception:
            key = record.key if record is not None else _shown(handle)
            log.exception("closing session %s failed; its resources were released as far as possible", key)

    async def reap_idle(self, interval_s: float = 30.0) -> None:
        """Run forever: close sessions idle longer than settings.session_idle_s (one failing close included;
        what they keep stays). Kept sessions past settings.session_keep_s are swept by server/app.py."""
        while True:
            await anyio.sleep(interval_s)
            now = time.monotonic()
            for record in list(self.records.values()):
                if self._idle(record, now):
                    log.info("closing idle session %s", record.key)
                    await self._close_logged(record.handle)

    def _idle(self, record: SessionRecord, now: float) -> bool:
        """Idle longer than settings.session_idle_s and not busy (an exec or RLM run holds it): the one idle
        rule, for the reaper and for handles."""
        return now - record.session.last_used > self.settings.session_idle_s and not record.session.busy

    def _expired(self, record: SessionRecord, now: float) -> bool:
        """Idle with nothing to take up again, or unused longer than settings.session_keep_s."""
        kept_too_long = now - record.session.last_used > self.settings.session_keep_s and not record.session.busy
        return kept_too_long or (self._idle(record, now) and not resume.has_kept(record.session))


def _unknown(handle: str, owner: str, closed_by: str | None, registry: SessionRegistry) -> UnknownSession:
    """Why `handle` names no session of `owner`'s, with the way back: expired (closed here, nothing kept), gone
    with another replica or an earlier run, or unknown -- another caller's handle reads exactly as a made-up one."""
    start_again = ("Start again: call load_context (new_session=true for a separate session) and pass the handle "
                   "it returns as `session`.")
    if closed_by is not None and secrets.compare_digest(closed_by, owner):
        settings = registry.settings
        return SessionExpired(
            f"session {_shown(handle)!r} has expired: it was idle longer than {settings.session_idle_s:g} s "
            "(RLM_SESSION_IDLE_S) with no context loaded and no variable saved, or its connection ended, or it "
            f"was unused longer than {settings.session_keep_s:g} s (RLM_SESSION_KEEP_S, how long a session's "
            "contexts and variables are kept), and nothing of it is left. " + start_again)
    if closed_by is None and (gone := _gone_with_its_replica(handle, registry.replica, registry.run)):
        return ReplicaGone(
            f"session {_shown(handle)!r} {gone}, and nothing of it is kept in this replica's RLM_HOME (it kept "
            "nothing, was unused longer than RLM_SESSION_KEEP_S, or RLM_HOME was not kept across the restart), "
            "so its variables and contexts are gone. " + start_again)
    return UnknownSession(
        f"no session has the handle {_shown(handle)!r} for you: pass the `session` value that load_context "
        "returned to you exactly, or omit `session` to use this connection's default session. To start a "
        "separate one, call load_context with new_session=true.")


def _new_account(settings: Settings, owner: str) -> SpendAccount:
    """`owner`'s spend account, journalled in RLM_HOME/accounts so that a restart refills nothing."""
    journal = settings.home / "accounts" / f"{re.sub(r'[^A-Za-z0-9_-]', '_', owner)}.jsonl"
    return SpendAccount(settings.token_max_cost_usd, settings.token_max_calls, settings.token_spend_window_s,
                        journal)


def _check_room(settings: Settings, mine: int, total: int) -> None:
    """SessionLimitReached when a caller with `mine` open sessions, of `total`, may open no other."""
    cap = settings.sessions_per_caller()
    if mine >= cap:
        raise SessionLimitReached(
            f"you have {mine} sessions open and the limit per token is {cap} (RLM_TOKEN_MAX_SESSIONS): reuse "
            "one by passing its handle as `session`, let an idle one stop (RLM_SESSION_IDLE_S), or ask the "
            "server's operator to raise RLM_TOKEN_MAX_SESSIONS"
        )
    if total >= settings.max_sessions:
        raise SessionLimitReached(
            f"{total} sessions are open, the server's limit is {settings.max_sessions} "
            "(RLM_MAX_SESSIONS): retry when an idle one has closed, or ask the server's operator to raise it"
        )
