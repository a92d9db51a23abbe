"""What a session keeps in RLM_HOME, so that a later server -- or this one, after an idle spell -- takes it up
again under the same handle.

Every new Claude Code conversation, every `claude --continue`, a Claude Desktop restart and a replica's
restart start a new server process, while the host's model still holds the handle in its transcript. So a
session writes down, after every call that changed it, what it would take to build it again:

    RLM_HOME/sessions/<digest of the handle>/
        session.json   who owns it, its key, its contexts (how to find each again), spend, usage, trajectory
        checkpoint/    the REPL's variables (sandbox/checkpoints.py: written by the guest, never unpickled here)
        lock           held by the one server process that has the session open

A digest, not the handle: the handle comes from the client (it must not name a path) and is a bearer
secret (it is not written down). The lock: two servers on one RLM_HOME (two editor windows, both "stdio")
must not run one session at once and write its checkpoint over each other; an OS lock goes with its
process, however that process ends.

Two clocks: a session idle longer than RLM_SESSION_IDLE_S has its REPL stopped (its memory freed) and is
taken up from these files on its next call; unused for RLM_SESSION_KEEP_S, its files are removed and the
handle has expired.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import BadRequest

log = logging.getLogger(__package__)

RECORD = "session.json"
LOCK = "lock"
GONE = ".gone"
VERSION = 1


class SessionHeldElsewhere(BadRequest):
    """Another server process on the same RLM_HOME has this session open."""


@dataclass(frozen=True, slots=True)
class KeptContext:
    """A loaded context as a later server finds it again: by its fingerprint in the shared store, else (files)
    by loading its sources anew; a live one is always checked against its files."""

    name: str
    kind: str  # "text" or "files"
    fingerprint: str
    live: bool = False
    sources: tuple[str, ...] = ()
    roots: tuple[str, ...] = ()  # the roots its load was allowed to read
    base_dir: str = ""  # what its relative sources resolved against


@dataclass(frozen=True, slots=True)
class KeptSpend:
    """The session's ledger (workers/budget.py): a later server starts from here, never from zero."""

    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    unknown_cost_calls: int = 0
    elapsed_s: float = 0.0  # of the call tree's wall clock (RLM_MAX_WALL_S), as it stood


@dataclass(frozen=True, slots=True)
class KeptSession:
    owner: str
    key: str
    created: float
    last_used: float  # time.time() of the last call
    contexts: tuple[KeptContext, ...] = ()
    spend: KeptSpend = KeptSpend()
    usage: dict[str, float] = field(default_factory=dict)  # SessionUsage's fields
    worker_usage: dict[str, Any] = field(default_factory=dict)  # workers.Usage, as dumped
    trajectory: str | None = None
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> KeptSession:
        """Raises ValueError (or TypeError/KeyError) on a record this version cannot read."""
        data = json.loads(text)
        if data.get("version") != VERSION:
            raise ValueError(f"record version {data.get('version')!r}, this server reads {VERSION}")
        contexts = tuple(KeptContext(**{**item, "sources": tuple(item["sources"]), "roots": tuple(item["roots"])})
                         for item in data.pop("contexts"))
        return cls(**{**data, "contexts": contexts, "spend": KeptSpend(**data.pop("spend"))})


def directory_of(home: Path, handle: str) -> Path:
    """RLM_HOME/sessions/<digest>: the session's files, whatever the handle holds."""
    return home / "sessions" / hashlib.sha256(handle.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def write(directory: Path, kept: KeptSession) -> None:
    """Replace the record in one step: a server killed while writing leaves the previous one."""
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f"{RECORD}.{os.getpid()}.tmp"
    temporary.write_text(kept.to_json(), encoding="utf-8")
    os.replace(temporary, directory / RECORD)


def read(directory: Path) -> KeptSession | None:
    """The record, or None when there is none or it cannot be read (then the session is as good as gone)."""
    try:
        text = (directory / RECORD).read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        return KeptSession.from_json(text)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("kept session %s cannot be read (%s): it is not taken up", directory.name, exc)
        return None


class SessionLock:
    """The one server process that has a kept session open: an OS lock on `lock`, gone with its process."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        self._file: IO[bytes] | None = os.fdopen(descriptor, "r+b")  # held until release(); byte 0 is the lock
        if not _try_lock(self._file):
            self._file.close()
            self._file = None
            raise SessionHeldElsewhere(
                "this session is open in another rlm-mcp server on the same RLM_HOME (another editor window or "
                "conversation): use it there, or close that one and call again; for a separate session here, "
                "call load_context with new_session=true")

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the lock
            self._file = None


def _try_lock(file: IO[bytes]) -> bool:
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def is_held(directory: Path) -> bool:
    """Whether a server process has this session open now (its lock cannot be taken)."""
    try:
        lock = SessionLock(directory)
    except SessionHeldElsewhere:
        return True
    except OSError:
        return False
    lock.release()
    return False


def remove(directory: Path, owner: str | None = None) -> None:
    """Remove a session's files; with its `owner`, leave a note that it expired (`<digest>.gone`), so that its
    handle is told "expired" rather than "unknown" -- to its owner only -- for another keep period."""
    if owner is not None:  # first: a lookup while the files go finds the note, never nothing
        with contextlib.suppress(OSError):
            directory.with_suffix(GONE).write_text(json.dumps({"owner": owner}), encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)


def expired_for(directory: Path) -> str | None:
    """The owner of a session whose files `remove` took, if its note is still there."""
    try:
        return str(json.loads(directory.with_suffix(GONE).read_text(encoding="utf-8"))["owner"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _newest_file(directory: Path) -> float:
    """When a session with no record (it never wrote one) was last used: its newest file's time."""
    with contextlib.suppress(OSError):
        return max((path.stat().st_mtime for path in directory.rglob("*")), default=directory.stat().st_mtime)
    return 0.0


def _kept_directories(home: Path) -> Iterator[Path]:
    root = home / "sessions"
    with contextlib.suppress(OSError):
        yield from (path for path in root.iterdir() if path.is_dir())


def sweep(home: Path, keep_s: float) -> int:
    """Remove the files of sessions unused for `keep_s` (RLM_SESSION_KEEP_S) that no server has open, and the
    notes of sessions removed a keep period ago."""
    removed, cutoff = 0, time.time() - keep_s
    for directory in _kept_directories(home):
        kept = read(directory)
        used = kept.last_used if kept is not None else _newest_file(directory)
        if used < cutoff and not is_held(directory):
            remove(directory, kept.owner if kept is not None else None)
            removed += 1
    with contextlib.suppress(OSError):
        for note in (home / "sessions").glob(f"*{GONE}"):
            if note.stat().st_mtime < cutoff:
                note.unlink(missing_ok=True)
    return removed


@dataclass(frozen=True, slots=True)
class KeptTotals:
    """What `rlm-mcp doctor` shows of RLM_HOME/sessions."""

    sessions: int
    bytes: int
    open_now: int


def totals(home: Path) -> KeptTotals:
    sessions = size = held = 0
    for directory in _kept_directories(home):
        sessions += 1
        held += is_held(directory)
        with contextlib.suppress(OSError):
            size += sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
    return KeptTotals(sessions, size, held)
