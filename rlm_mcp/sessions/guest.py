"""A session's jailed REPL: started when first needed, restarted after a crash with its contexts attached
again and its checkpoint's variables restored.

It adopts the server's spare guest where the backend keeps one (wasm: a guest started ahead, whose data
directory this session then uses), and keeps the REPL's variables in a checkpoint under RLM_HOME (the
session's kept directory, sessions/kept.py, or one of its own that goes with it). It knows the contexts
only as stored files to map in; which ones a session has is sessions/loaded.py's.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskGroup, TaskStatus

from ..config import Settings
from ..contexts import StoredContext
from ..errors import RlmMcpError
from ..progress import Progress
from ..sandbox import (
    CheckpointStore,
    Launcher,
    RestoreNote,
    Sandbox,
    SandboxPolicy,
    Spare,
    SpareKeeper,
    create_launcher,
    new_data_dir,
)
from ..sandbox.channel import Callback
from ..sandbox.prelude import PRELUDE

log = logging.getLogger(__package__)


class SessionRepl:
    """The REPL of session `key`, its guest's callbacks answered by `callbacks` (each failure logged)."""

    def __init__(self, settings: Settings, policy: SandboxPolicy, task_group: TaskGroup, *, key: str,
                 callbacks: dict[str, Callback], kept_at: Path | None = None,
                 spares: SpareKeeper | None = None, on_restart: Callable[[], None] | None = None) -> None:
        self.settings, self.policy, self.task_group, self.key = settings, policy, task_group, key
        self.callbacks = {name: self._logged(name, callback) for name, callback in callbacks.items()}
        self.kept_at = kept_at  # the session's kept directory (sessions/kept.py); None: not kept
        self.spares = spares  # the server's, where its backend keeps a guest started ahead (wasm)
        self.sandbox: Sandbox | None = None
        self.on_restart = on_restart  # counts the restarts (the session's usage)
        self.restored: RestoreNote | None = None  # the last restart's, until an exec reports it
        self.on_start: Progress | None = None  # who hears of a slow start (the call waiting for it)
        self._attached: dict[str, str] = {}  # name -> fingerprint live in the REPL
        self._spare: Spare | None = None  # claimed with the data directory, adopted when the REPL is first needed
        self._data_dir: Path | None = None
        self._checkpoints: CheckpointStore | None = None

    @property
    def data_dir(self) -> Path:
        """The directory the REPL reads the session's data from: the spare's when the server keeps one (its
        guest was started with read access to it), else a new one. First used on the event loop (a claim
        starts the next spare), never first in a worker thread."""
        if self._data_dir is None:
            self._spare = self.spares.claim() if self.spares is not None else None
            spare_dir = self._spare.data_dir if self._spare is not None else None
            self._data_dir = spare_dir or new_data_dir(self.settings.runtime_dir)
        return self._data_dir

    @property
    def checkpoints(self) -> CheckpointStore:
        """The REPL variables this session keeps under RLM_HOME/sessions (guest-written, never unpickled here):
        in its kept directory, else (a child RLM's, the Python API's) in one of its own, removed at close."""
        if self._checkpoints is None:
            directory = (self.kept_at or self.settings.home / "sessions" / secrets.token_hex(12)) / "checkpoint"
            self._checkpoints = CheckpointStore(directory, self.settings.checkpoint_max_mb * 2**20)
        return self._checkpoints

    async def ensure_started(self, contexts: Iterable[StoredContext]) -> Sandbox:
        """The running REPL: started, or restarted after a crash with `contexts` and the checkpoint back."""
        if self.sandbox is None:
            launcher = await anyio.to_thread.run_sync(launcher_for, self.settings, self.policy, self.on_start)
            data_dir = self.data_dir  # claims the server's spare, if it keeps one
            self.sandbox = await self._adopt_spare()
            if self.sandbox is None:
                self.sandbox = Sandbox(launcher, self.policy, data_dir, prelude=PRELUDE, callbacks=self.callbacks,
                                       checkpoints=self.checkpoints)
                await self.sandbox.start(self.task_group)
            elif not self.sandbox.alive:  # the spare died while it waited
                await self.sandbox.restart()
        elif not self.sandbox.alive:
            await self.restart(contexts)
        return self.sandbox

    async def _adopt_spare(self) -> Sandbox | None:
        """The claimed spare's guest, started with the same prelude, now with this session's callbacks; None
        when there is none or its start failed (the keeper logged why): the caller starts its own."""
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        try:
            return await spare.adopt(self.callbacks, self.checkpoints)
        except Exception:
            return None

    def _logged(self, name: str, callback: Callback) -> Callback:
        """A REPL callback whose failures (which the guest sees as its own error) also reach the server's
        log with this session's key: ours as one line, anything else with its traceback."""

        async def call(payload: Any) -> Any:
            try:
                return await callback(payload)
            except RlmMcpError as exc:
                log.warning("session %s: REPL callback %s refused: %s", self.key, name, exc)
                raise
            except Exception:
                log.exception("session %s: REPL callback %s failed", self.key, name)
                raise

        return call

    async def restart(self, contexts: Iterable[StoredContext]) -> None:
        """A fresh REPL with `contexts` attached again, then the variables of the checkpoint restored."""
        assert self.sandbox is not None
        contexts = list(contexts)
        await self.sandbox.restart()
        if self.on_restart is not None:
            self.on_restart()
        await self.attach_all(contexts)
        await self.restore_variables(contexts)

    async def restore_variables(self, contexts: Iterable[StoredContext]) -> None:
        """The checkpoint's variables into the running REPL, after the contexts they may refer to; the next
        exec reports them. A checkpoint that kills its REPL leaves it restarted clean, `contexts` attached."""
        assert self.sandbox is not None
        self.restored = await self.sandbox.restore()
        if self.restored.repl_restarted:
            await self.attach_all(contexts)

    async def attach_all(self, contexts: Iterable[StoredContext]) -> None:
        """Every context into a REPL that has none yet (a new or restarted one)."""
        self._attached.clear()
        for stored in contexts:
            await self.attach(stored)

    async def attach(self, stored: StoredContext) -> None:
        """Map a stored context into the REPL, unless the very same version is already there."""
        assert self.sandbox is not None
        if self._attached.get(stored.name) == stored.fingerprint and stored.reused:
            return
        content, manifest = Path(stored.content_path), Path(stored.manifest_path)
        await self.sandbox.call(
            "_rlm_attach", stored.name, self.sandbox.guest_path(content), self.sandbox.guest_path(manifest)
        )
        self._attached[stored.name] = stored.fingerprint

    def clear(self) -> None:
        """Forget the saved variables (a reset)."""
        self.checkpoints.clear()

    async def close(self) -> None:
        """Stop the jail (or give back the unused spare), delete the data; the checkpoint goes too unless the
        session is kept (then it is its registry's to remove)."""
        try:
            if self.sandbox is not None:
                await self.sandbox.close()
        finally:
            await self._discard_spare_and_files()

    async def _discard_spare_and_files(self) -> None:
        try:
            if self._spare is not None:
                await self._spare.discard()
        finally:
            if self._data_dir is not None:
                shutil.rmtree(self._data_dir, ignore_errors=True)
            if self._checkpoints is not None and self.kept_at is None:
                shutil.rmtree(self._checkpoints.directory.parent, ignore_errors=True)


def launcher_for(settings: Settings, policy: SandboxPolicy, on_progress: Progress | None = None) -> Launcher:
    """The configured sandbox's launcher (its probes are cached: the machine does not change); a first fetch
    of Pyodide reports to `on_progress`."""
    return create_launcher(settings.sandbox, policy, settings.guest_python, home=settings.home,
                           on_progress=on_progress)


CHOICE_WAIT_S = 2.0  # the choice takes ~20 ms (wasm) to ~120 ms (nsjail's test jail) once Pyodide is cached


class SandboxChoice:
    """The sandbox chosen at start-up, in a worker thread (probing the guest interpreter and a test jail, wasm:
    fetching Pyodide if RLM_HOME has none, the memory snapshot in the making), then the spare guest started
    where the backend keeps one. Sessions opened meanwhile wait for it (`made`), so the first adopts the spare
    it starts instead of starting a second guest beside it: two wasm starts at once take 0.75 s each on two
    cores, one 0.4 s. A failure is left for the first session's start to report."""

    def __init__(self, settings: Settings, policy: SandboxPolicy, task_group: TaskGroup) -> None:
        self.settings, self.policy, self.task_group = settings, policy, task_group
        self.spares: SpareKeeper | None = None
        self._made: anyio.Event | None = None

    async def make(self, *, task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
        """Choose; `task_status` says the choice began (sessions opened from then on wait for it)."""
        self._made = made = anyio.Event()
        task_status.started()
        try:
            self.spares = self.spares or await self._start_spares()
        finally:
            made.set()

    async def made(self) -> None:
        """Return once the choice is made (at once if none is being made), or after CHOICE_WAIT_S: a first
        fetch of Pyodide takes minutes, and the session's own start then joins it and hears its progress."""
        if self._made is not None:
            with anyio.move_on_after(CHOICE_WAIT_S):
                await self._made.wait()

    async def aclose(self) -> None:
        if self.spares is not None:
            await self.spares.aclose()

    async def _start_spares(self) -> SpareKeeper | None:
        try:
            launcher = await anyio.to_thread.run_sync(launcher_for, self.settings, self.policy)
        except Exception as exc:
            log.info("sandbox not chosen at start-up (%s): the first session reports it", exc)
            return None
        if not launcher.keeps_spare:
            return None
        spares = SpareKeeper(launcher, self.policy, self.task_group, prelude=PRELUDE,
                             runtime_dir=self.settings.runtime_dir)
        spares.fill()
        return spares


def thread_side(progress: Progress) -> Progress:
    """An exec's async progress as a callback a worker thread can call (a slow REPL start reports to it)."""

    def report(done: int, total: int | None, message: str) -> None:
        if not total:
            return
        try:
            anyio.from_thread.run(progress, done, total, message)
        except Exception:  # progress is advisory: a client that went away must not fail the start
            log.debug("start progress not delivered", exc_info=True)

    return report
