"""A session written down after each call, and taken up again from what was written (kept.py has the files).

Taking up builds the session as its model left it: its contexts (found again in the shared store by
fingerprint; a live one loaded from its files as they are now, which the store answers by stat alone when
nothing changed), then its variables (the checkpoint, loaded by the guest inside the jail), its ledger and
usage (a new server never refills a budget), its trajectory (appended to). What could not come back is
said once, in the next call's `context_changed` note, by name.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from pathlib import Path
from typing import Literal

from ..config import Settings
from ..contexts import ContextError
from ..contexts.boundary import within
from ..errors import RlmMcpError
from ..workers import TrajectoryLog, Usage
from . import kept as files
from .kept import KeptContext, KeptSession, KeptSpend
from .session import Session, SessionUsage, new_trajectory

log = logging.getLogger(__package__)


def record_of(session: Session) -> KeptSession:
    """What a later server needs to build `session` again."""
    ledger = session.calls.budget.ledger
    spend = KeptSpend(calls=ledger.calls, tokens=ledger.tokens, cost_usd=ledger.cost_usd,
                      unknown_cost_calls=ledger.unknown_cost_calls, elapsed_s=time.monotonic() - ledger.started)
    contexts = tuple(_kept_context(session, name) for name in session.contexts)
    trajectory = str(session.trajectory.path) if session.trajectory is not None else None
    last_used = time.time() - (time.monotonic() - session.last_used)  # the session's clock, on the wall's
    return KeptSession(owner=session.owner, key=session.key, created=session.created, last_used=last_used,
                       contexts=contexts, spend=spend, usage=dataclasses.asdict(session.usage),
                       worker_usage=session.calls.usage.model_dump(), trajectory=trajectory)


def _kept_context(session: Session, name: str) -> KeptContext:
    stored, request = session.contexts[name], session.loaded.requests.get(name)
    if request is None:
        return KeptContext(name, stored.kind, stored.fingerprint)
    return KeptContext(name, stored.kind, stored.fingerprint, live=name in session.live,
                       sources=tuple(request.sources), roots=tuple(str(root) for root in request.allowed_roots),
                       base_dir=str(request.base_dir))


KEEP_EVERY_S = 60.0  # a session in use is written down at least this often


class Keeper:
    """Writes one session down while it has something worth taking up (a context or a saved variable): when
    what a later server builds it from changed -- its contexts, live or not, or its spend -- at its close,
    and at least every KEEP_EVERY_S while it is used. A small exec that changes none of them costs no disk
    write (it cost 0.3 ms of a 2 ms call); a server killed meanwhile loses at most that much of the wall
    clock's time and of the usage counts (never a worker call's spend, never a variable: the checkpoint has
    its own record)."""

    def __init__(self) -> None:
        self._written: tuple[object, ...] | None = ()  # None: no record on disk (a taken-up session has one)
        self._at = 0.0

    def __call__(self, session: Session, final: bool = False) -> None:
        if session.kept_at is None:
            return
        if not (session.contexts or session.checkpoints.sizes):  # nothing (or, after a reset, nothing more) to take up
            if self._written is not None:
                (session.kept_at / files.RECORD).unlink(missing_ok=True)
                self._written = None
            return
        ledger = session.calls.budget.ledger
        state = (tuple((name, stored.fingerprint) for name, stored in session.contexts.items()),
                 tuple(session.live), ledger.calls, ledger.tokens, ledger.cost_usd)
        if final or state != self._written or time.monotonic() - self._at >= KEEP_EVERY_S:
            files.write(session.kept_at, record_of(session))
            self._written, self._at = state, time.monotonic()


def trajectory_of(settings: Settings, record: KeptSession) -> TrajectoryLog:
    """The kept session's trajectory, appended to; a new one if the record names none of ours."""
    path = Path(record.trajectory) if record.trajectory else None
    if path is not None and path.parent == settings.home / "trajectories":
        return TrajectoryLog(path)
    return new_trajectory(settings, record.key)


def has_kept(session: Session) -> bool:
    return session.kept_at is not None and (session.kept_at / files.RECORD).exists()


def let_go(session: Session, lock: files.SessionLock | None, forget: bool) -> bool:
    """After a close: leave what the session keeps for a later call unless `forget` (then note that it
    expired); release its lock. True when nothing of it is left."""
    gone = forget or not has_kept(session)
    if lock is not None:
        lock.release()  # first: Windows deletes no directory with an open file in it
    if gone and session.kept_at is not None:
        files.remove(session.kept_at, session.owner if forget else None)
    elif not gone:
        log.info("session %s closed; kept in RLM_HOME for its handle", session.key)
    return gone


EXPIRED = "expired"


def find_kept(settings: Settings, handle: str, owner: str) -> KeptSession | Literal["expired"] | None:
    """The record of `owner`'s session kept for `handle`; None when there is none of theirs; EXPIRED when it
    was kept and is no more (unused past RLM_SESSION_KEEP_S: its files are removed, unless a server holds it)."""
    directory = files.directory_of(settings.home, handle)
    kept = files.read(directory)
    if kept is None or not secrets.compare_digest(kept.owner, owner):
        gone_for = files.expired_for(directory)
        if kept is None and gone_for is not None and secrets.compare_digest(gone_for, owner):
            return EXPIRED
        return None
    if time.time() - kept.last_used > settings.session_keep_s:
        if not files.is_held(directory):
            files.remove(directory, owner)
        return EXPIRED
    return kept


async def take_up(session: Session, record: KeptSession, *, remote: bool) -> None:
    """Build `session` (new, empty, its checkpoint directory the kept one's) as `record` left it. `remote`:
    its owner is an HTTP caller, held to today's RLM_ALLOWED_ROOTS whatever roots its load had then.

    The record on disk stays as it was until the session is whole: each context's registration would write
    it down with the contexts taken up so far, and a server that died half way would lose the rest."""
    keeper, session.keeper = session.keeper, None  # left unset if this fails: the close writes nothing
    _restore_spend(session, record)
    notes = [f"This session was taken up by a new server process (last used {_ago(record.last_used)})."]
    for context in record.contexts:
        notes.extend(await _take_up_context(session, context, remote))
    await session.restore_variables()
    session.record({"type": "taken_up", "contexts": [c.name for c in record.contexts]})
    session.pending_note = " ".join(notes)
    session.keeper = keeper
    session.keep()


def _restore_spend(session: Session, record: KeptSession) -> None:
    ledger = session.calls.budget.ledger
    ledger.calls, ledger.tokens = record.spend.calls, record.spend.tokens
    ledger.cost_usd, ledger.unknown_cost_calls = record.spend.cost_usd, record.spend.unknown_cost_calls
    ledger.started = time.monotonic() - record.spend.elapsed_s  # the clock resumes; the downtime is not counted
    session.usage = SessionUsage(**{k: v for k, v in record.usage.items() if k in SessionUsage.__dataclass_fields__})
    if record.worker_usage:
        session.calls.dispatcher.usage = Usage.model_validate(record.worker_usage)


async def _take_up_context(session: Session, context: KeptContext, remote: bool) -> list[str]:
    """One context back into the session; the notes on what differs from before."""
    name = context.name
    try:
        if not context.live and await session.loaded.adopt_stored(name, context.fingerprint) is not None:
            return []
        if context.kind != "files":
            return [f"Context {name!r} is gone (its stored text was evicted from the store under RLM_HOME): "
                    "load it again."]
        roots = [root for root in context.roots if not remote or any(within(root, str(allowed))
                                                                      for allowed in session.settings.roots())]
        if not roots:
            return [f"Context {name!r} was not loaded again: its roots are outside RLM_ALLOWED_ROOTS now."]
        stored = await session.load_paths(name, list(context.sources), [Path(root) for root in roots],
                                          live=context.live, base_dir=Path(context.base_dir))
    except (ContextError, RlmMcpError, OSError) as exc:
        log.warning("session %s: context %s not taken up: %s", session.key, name, exc)
        return [f"Context {name!r} could not be loaded again ({exc}): load it again."]
    if stored.fingerprint == context.fingerprint:
        return []
    why = "its files changed since" if context.live else "its stored copy was evicted; read again from its files"
    return [f"Context {name!r} is as its files are now ({why})."]


def _ago(when: float) -> str:
    seconds = max(0.0, time.time() - when)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"
