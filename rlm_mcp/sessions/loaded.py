"""A session's loaded contexts: stored under RLM_HOME, mapped into its REPL, indexed, and -- live ones --
following their files.

Loads and live checks end in the same place (`_register`): the context is mapped into the REPL under the
session's lock, its code index started, and the session told it changed (so it is written down for a
later server, sessions/resume.py). What each files context was loaded from is kept (`requests`), so a
later server can load it again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from ..config import Settings
from ..contexts import (
    Change,
    ContentStore,
    ContextError,
    LiveContext,
    LoadLimits,
    LoadRequest,
    StoredContext,
    delete_stored,
    open_context,
    relink_stored,
    store_text,
)
from ..errors import UnknownContext
from ..progress import Progress
from .guest import SessionRepl
from .index import SessionIndex

log = logging.getLogger(__package__)

LiveCheck = tuple[str, Change | None, Exception | None]  # a live context's name, change, failure


class SessionContexts:
    """The contexts of session `key`, mapped into `repl` under `lock` (the session's); `changed` is called
    after each load."""

    def __init__(self, settings: Settings, task_group: TaskGroup, repl: SessionRepl, lock: anyio.Lock, *,
                 key: str, changed: Callable[[], None]) -> None:
        self.settings, self.task_group, self.repl, self.lock, self.key = settings, task_group, repl, lock, key
        self.changed = changed
        self.stored: dict[str, StoredContext] = {}  # by name
        self.live: dict[str, LiveContext] = {}  # contexts that follow their files
        self.requests: dict[str, LoadRequest] = {}  # how each files context was loaded
        self.index: SessionIndex | None = None

    def content_store(self) -> ContentStore:
        """The store under RLM_HOME shared by every server and session of this user."""
        return ContentStore(self.settings.home / "store", self.settings.store_max_bytes)

    def code_index(self) -> SessionIndex:
        if self.index is None:
            self.index = SessionIndex(self.content_store().index_dir)
        return self.index

    def context(self, name: str) -> StoredContext:
        if name not in self.stored:
            loaded = ", ".join(sorted(self.stored)) or "none yet"
            raise UnknownContext(f"no context named {name!r} (loaded: {loaded}); call load_context first")
        return self.stored[name]

    # --- loading -------------------------------------------------------------------------------
    async def load_text(self, name: str, text: str) -> StoredContext:
        data_dir = self.repl.data_dir  # here on the event loop: a first use claims the spare, which starts the next
        stored = await anyio.to_thread.run_sync(lambda: store_text(name, text, data_dir, self.content_store()))
        self._stop_following(name)
        self.requests.pop(name, None)
        return await self._register(stored)

    async def adopt_stored(self, name: str, fingerprint: str) -> StoredContext | None:
        """The stored context of that fingerprint, from the store under RLM_HOME, as context `name`; None when
        the store no longer has it."""
        data_dir = self.repl.data_dir
        stored = await anyio.to_thread.run_sync(relink_stored, name, fingerprint, data_dir, self.content_store())
        return await self._register(stored) if stored is not None else None

    async def load_paths(self, name: str, sources: Sequence[str], roots: Sequence[Path],
                         on_progress: Progress | None = None, live: bool = True,
                         base_dir: Path | None = None) -> StoredContext:
        """Store the sources (relative ones from `base_dir`, default the working directory); with `live`, the
        context then follows them (see `refresh`)."""
        limits = LoadLimits(
            max_file_bytes=self.settings.max_file_bytes,
            max_total_bytes=self.settings.max_context_bytes,
            max_files=self.settings.max_files,
            # Our own files are never context: trajectories, caches, the sessions' stored texts.
            skip_paths=frozenset(os.path.realpath(path) for path in (self.settings.home, self.repl.data_dir.parent)),
        )
        request = LoadRequest(name, list(sources), list(roots), limits, base_dir or Path.cwd())
        self.repl.on_start = on_progress  # the sandbox's start reports here too (a first Pyodide fetch)
        try:
            return await self._load_paths(request, on_progress, live)
        finally:
            self.repl.on_start = None

    async def _load_paths(self, request: LoadRequest, on_progress: Progress | None,
                          live: bool) -> StoredContext:
        if self.repl.sandbox is None:
            self.task_group.start_soon(self._boot)  # the jail starts while the tree is walked
        store, data_dir = self.content_store(), self.repl.data_dir  # the data directory claimed on the event loop
        stored, follower = await anyio.to_thread.run_sync(
            lambda: open_context(request, data_dir, store, live=live, on_progress=on_progress))
        self._stop_following(request.name)
        if follower is not None:
            self.live[request.name] = follower
        self.requests[request.name] = request
        return await self._register(stored)

    async def _boot(self) -> None:
        """Start the sandbox ahead of the load that needs it. A failure is that load's to report: its
        `_register` starts the sandbox again and raises."""
        try:
            async with self.lock:
                await self.repl.ensure_started(self.stored.values())
        except Exception as exc:
            log.info("session %s: the sandbox did not start ahead of a load (%s)", self.key, exc)

    async def _register(self, stored: StoredContext) -> StoredContext:
        async with self.lock:
            sandbox = await self.repl.ensure_started(self.stored.values())
            sandbox.check_capacity(stored.bytes, f"context {stored.name!r}")
            await self.repl.attach(stored)
            self.stored[stored.name] = stored
        self.code_index().start(stored, self.task_group)  # text search works now; symbols follow
        self.changed()
        return stored

    # --- following the files -------------------------------------------------------------------------
    async def refresh(self) -> list[str]:
        """Live contexts brought up to date (the caller holds the session's lock); the notes for the model."""
        if not self.live:
            return []
        notes = []
        for name, change, failure in await anyio.to_thread.run_sync(_check_live, list(self.live.items())):
            if failure is not None:  # the tree grew past a limit, a disk error...
                log.warning("session %s: context %s could not follow its files: %s", self.key, name, failure)
                notes.append(f"context {name!r} could not follow its files ({failure}); it stays as last seen.")
                continue
            if change is None:
                continue
            if change.stored is not None:
                await self.repl.ensure_started(self.stored.values())
                await self.repl.attach(change.stored)
                self.stored[name] = change.stored
                await self.code_index().refresh(change.stored, change.changed, change.removed, self.task_group)
            notes.append(change.describe(name))
        return notes

    def _stop_following(self, name: str) -> None:
        follower = self.live.pop(name, None)
        if follower is not None:
            follower.close()

    async def drop_all(self) -> None:
        """Every context gone, with its stored files and its code index, so nothing answers from them."""
        for name in list(self.stored):
            self._stop_following(name)
            await anyio.to_thread.run_sync(delete_stored, name, self.repl.data_dir)
            self.code_index().drop(name)
        self.stored.clear()
        self.requests.clear()

    async def keep_live_versions(self) -> None:
        """Stop following, and put what live contexts changed to (their text and their index) into the store
        under RLM_HOME for the next server: it then reuses them instead of storing and indexing again."""
        followers, self.live = list(self.live.values()), {}
        for follower in followers:
            follower.close()
        try:
            for follower in followers:
                await anyio.to_thread.run_sync(follower.keep)
        finally:
            if self.index is not None:
                await self.index.save()


def _check_live(followers: list[tuple[str, LiveContext]]) -> list[LiveCheck]:
    """Every live context's check in one trip to a worker thread (this runs before each exec)."""
    checked: list[LiveCheck] = []
    for name, follower in followers:
        try:
            checked.append((name, follower.check(), None))
        except (ContextError, OSError) as exc:
            checked.append((name, None, exc))
    return checked
