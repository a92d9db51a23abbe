"""A session: its own jailed REPL, contexts, code index, worker calls, usage and trajectory.

A session starts its sandbox lazily (the first load or exec), survives crashes of its guest by
restarting it and re-attaching every loaded context, and is closed by its registry (registry.py) when
idle for too long, when the client goes away, or when the server stops. It knows nothing of the MCP
transport. It is built one way, `Session.build`, with its worker calls passed in (sessions/calls.py).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    store_text,
)
from ..contexts.search import ContextSearch
from ..errors import RlmMcpError, UnknownContext
from ..sandbox import (
    CheckpointStore,
    ExecResult,
    Launcher,
    RestoreNote,
    Sandbox,
    SandboxPolicy,
    Spare,
    SpareKeeper,
    create_launcher,
    new_data_dir,
)
from ..sandbox.prelude import PRELUDE
from ..workers import SpendAccount, TrajectoryLog, Usage
from .calls import Reply, WorkerCalls, prompt_of, text_of
from .index import SessionIndex
from .service import repl_index

log = logging.getLogger(__package__)  # rlm_mcp.sessions, for every module of the package

ProgressCallback = Callable[[int, int | None, str], None]
Callback = Callable[[Any], Awaitable[Any]]
LiveCheck = tuple[str, Change | None, Exception | None]  # a live context's name, change, failure
ChildRLM = Callable[["Session", str, str], Awaitable[Reply]]  # (parent, prompt, context): rlm/calls.py's child_rlm


@dataclass(slots=True)
class ExecOutcome:
    result: ExecResult
    restarted: bool = False
    final_answer: str | None = None
    worker_usage: Usage = field(default_factory=Usage)
    context_note: str | None = None  # live contexts that changed since the last call
    restored: RestoreNote | None = None  # after a restart: the variables the checkpoint brought back


@dataclass(slots=True)
class SessionUsage:
    execs: int = 0
    exec_seconds: float = 0.0
    restarts: int = 0
    timeouts: int = 0


@dataclass(eq=False)
class Session:
    key: str
    settings: Settings
    policy: SandboxPolicy
    task_group: TaskGroup
    calls: WorkerCalls  # its worker calls and ledger (sessions/calls.py)
    owner: str = "stdio"
    trajectory: TrajectoryLog | None = None
    recurse: ChildRLM | None = None  # what rlm_query runs: a child RLM (rlm/calls.py); None: a plain worker call
    observer: Callable[[dict[str, Any]], None] | None = None  # sees every recorded event (the ask CLI)
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    contexts: dict[str, StoredContext] = field(default_factory=dict)
    usage: SessionUsage = field(default_factory=SessionUsage)
    final_answer: str | None = None
    progress: Callable[[int, int, str], Awaitable[None]] | None = None  # set by the host call in flight
    index: SessionIndex | None = None
    live: dict[str, LiveContext] = field(default_factory=dict)  # contexts that follow their files
    _attached: dict[str, str] = field(default_factory=dict)  # name -> fingerprint live in the REPL
    spares: SpareKeeper | None = None  # the server's, where its backend keeps a guest started ahead (wasm)
    _sandbox: Sandbox | None = None
    _spare: Spare | None = None  # claimed with the data directory, adopted when the REPL is first needed
    _load_progress: ProgressCallback | None = None  # the progress of the load in flight (thread-side)
    _data_dir: Path | None = None
    _checkpoints: CheckpointStore | None = None
    _restored: RestoreNote | None = None  # the last restart's, until an exec reports it
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    @classmethod
    def build(cls, settings: Settings, policy: SandboxPolicy, task_group: TaskGroup, *, key: str,
              owner: str = "stdio", account: SpendAccount | None = None, trajectory: TrajectoryLog | None = None,
              observer: Callable[[dict[str, Any]], None] | None = None, recurse: ChildRLM | None = None,
              calls: WorkerCalls | None = None, spares: SpareKeeper | None = None) -> Session:
        """The one way a session is built -- by the registry, for a child RLM (`child`), by the Python API:
        its worker calls are passed in, or new ones drawing on the owner's `account`; `spares`, the server's
        guests started ahead (wasm), when it keeps them."""
        return cls(key, settings, policy, task_group, calls or WorkerCalls.new(settings, account, trajectory),
                   owner=owner, trajectory=trajectory, observer=observer, recurse=recurse, spares=spares)

    def child(self) -> Session:
        """A child RLM's session (rlm_query): its own REPL; the parent's dispatcher and trajectory, and one
        level deeper in the parent's ledger."""
        key = f"{self.key}/d{self.calls.budget.depth + 1}"
        return Session.build(self.settings, self.policy, self.task_group, key=key, owner=self.owner,
                             trajectory=self.trajectory, recurse=self.recurse, calls=self.calls.child())

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
    def sandbox(self) -> Sandbox | None:
        return self._sandbox

    @property
    def checkpoints(self) -> CheckpointStore:
        """The REPL variables this session keeps under RLM_HOME/sessions (guest-written, never unpickled here).
        The directory's name is random: until handles outlive the server, nothing looks for it after close."""
        if self._checkpoints is None:
            directory = self.settings.home / "sessions" / secrets.token_hex(12) / "checkpoint"
            self._checkpoints = CheckpointStore(directory, self.settings.checkpoint_max_mb * 2**20)
        return self._checkpoints

    def touch(self) -> None:
        self.last_used = time.monotonic()

    @property
    def busy(self) -> bool:
        """An exec, a load, a reset or an RLM run holds the session: it is not idle, whatever its clock says."""
        return self._lock.locked()

    async def ensure_started(self) -> Sandbox:
        if self._sandbox is None:
            launcher = await anyio.to_thread.run_sync(launcher_for, self.settings, self.policy, self._report_start)
            callbacks: dict[str, Callback] = {
                "llm_query": self.calls.llm_query, "llm_query_batched": self._llm_query_batched,
                "rlm_query": self._rlm_query, "final": self._record_final,
                "index": repl_index(self.code_index()), "grep": ContextSearch(self.contexts).query,
            }
            logged = {name: self._logged(name, callback) for name, callback in callbacks.items()}
            data_dir = self.data_dir  # claims the server's spare, if it keeps one
            self._sandbox = await self._adopt_spare(logged)
            if self._sandbox is None:
                self._sandbox = Sandbox(launcher, self.policy, data_dir, prelude=PRELUDE, callbacks=logged,
                                        checkpoints=self.checkpoints)
                await self._sandbox.start(self.task_group)
            elif not self._sandbox.alive:  # the spare died while it waited
                await self._sandbox.restart()
        elif not self._sandbox.alive:
            await self._restart()
        return self._sandbox

    def _report_start(self, done: int, total: int | None, message: str) -> None:
        """Progress of a slow sandbox start (the first fetch of Pyodide), from the launcher's worker thread, to
        the host call waiting for it: a load's progress, or an exec's."""
        if self._load_progress is not None:
            self._load_progress(done, total, message)
        elif self.progress is not None and total:
            try:
                anyio.from_thread.run(self.progress, done, total, message)
            except Exception:  # progress is advisory: a client that went away must not fail the start
                log.debug("start progress not delivered", exc_info=True)

    async def _adopt_spare(self, callbacks: dict[str, Callback]) -> Sandbox | None:
        """The claimed spare's guest, started with the same prelude, now with this session's callbacks; None
        when there is none or its start failed (the keeper logged why): the caller starts its own."""
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        try:
            return await spare.adopt(callbacks, self.checkpoints)
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

    async def _restart(self) -> None:
        """A fresh REPL with the contexts attached again, then the variables of the checkpoint restored."""
        assert self._sandbox is not None
        await self._sandbox.restart()
        self.usage.restarts += 1
        await self._attach_all()
        self._restored = await self._sandbox.restore()
        if self._restored.repl_restarted:  # the checkpoint killed its REPL, which started again without contexts
            await self._attach_all()

    async def _attach_all(self) -> None:
        """Every loaded context into a REPL that has none yet (a new or restarted one)."""
        self._attached.clear()
        for stored in self.contexts.values():
            await self._attach(stored)

    async def _llm_query_batched(self, payload: Any) -> list[Reply]:
        return await self.calls.llm_query_batched(payload, self._batch_progress)

    async def _batch_progress(self, done: int, total: int) -> None:
        """Forward batch progress to the host call in flight (every 10 answers and the last)."""
        if self.progress is not None and (done == total or done % 10 == 0):
            await self.progress(done, total, f"llm_query_batched: {done}/{total} answers")

    async def _rlm_query(self, payload: Any) -> Reply:
        """A child RLM over `context` with its own REPL; a plain worker call at the depth limit."""
        prompt = prompt_of(payload)
        context = payload.get("context")
        context = text_of(context, "context") if context is not None else ""
        root_model = self.settings.sub_rlm_model or self.settings.root_model
        if self.recurse is None or not root_model or not self.calls.budget.can_recurse():
            return await self.calls.ask(f"{prompt}\n\n{context}" if context else prompt)
        return await self.recurse(self, prompt, context)

    async def _record_final(self, payload: Any) -> bool:
        answer = payload.get("answer") if isinstance(payload, dict) else None
        self.final_answer = str(answer)[:1_000_000] if answer is not None else None
        return True

    # --- contexts ----------------------------------------------------------------------------
    def content_store(self) -> ContentStore:
        """The store under RLM_HOME shared by every server and session of this user."""
        return ContentStore(self.settings.home / "store", self.settings.store_max_bytes)

    async def load_text(self, name: str, text: str) -> StoredContext:
        data_dir = self.data_dir  # here on the event loop: a first use claims the spare, which starts the next
        stored = await anyio.to_thread.run_sync(
            lambda: store_text(name, text, data_dir, self.content_store()))
        self._stop_following(name)
        return await self._register(stored)

    async def load_paths(
        self, name: str, sources: Sequence[str], roots: Sequence[Path], on_progress: ProgressCallback | None = None,
        live: bool = True,
    ) -> StoredContext:
        """Store the sources; with `live`, the context then follows them (see `refresh`)."""
        limits = LoadLimits(
            max_file_bytes=self.settings.max_file_bytes,
            max_total_bytes=self.settings.max_context_bytes,
            max_files=self.settings.max_files,
            # Our own files are never context: trajectories, caches, the sessions' stored texts.
            skip_paths=frozenset(os.path.realpath(path) for path in (self.settings.home, self.data_dir.parent)),
        )
        request = LoadRequest(name, list(sources), list(roots), limits, Path.cwd())
        self._load_progress = on_progress  # the sandbox's start reports here too (a first Pyodide fetch)
        try:
            return await self._load_paths(request, on_progress, live)
        finally:
            self._load_progress = None

    async def _load_paths(self, request: LoadRequest, on_progress: ProgressCallback | None,
                          live: bool) -> StoredContext:
        if self._sandbox is None:
            self.task_group.start_soon(self._boot)  # the jail starts while the tree is walked
        store, data_dir = self.content_store(), self.data_dir  # the data directory claimed on the event loop
        stored, follower = await anyio.to_thread.run_sync(
            lambda: open_context(request, data_dir, store, live=live, on_progress=on_progress))
        self._stop_following(request.name)
        if follower is not None:
            self.live[request.name] = follower
        return await self._register(stored)

    async def _boot(self) -> None:
        """Start the sandbox ahead of the load that needs it. A failure is that load's to report: its
        `_register` starts the sandbox again and raises."""
        try:
            async with self._lock:
                await self.ensure_started()
        except Exception as exc:
            log.info("session %s: the sandbox did not start ahead of a load (%s)", self.key, exc)

    async def _keep_live_versions(self) -> None:
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

    def _stop_following(self, name: str) -> None:
        follower = self.live.pop(name, None)
        if follower is not None:
            follower.close()

    async def refresh(self) -> str | None:
        """Bring live contexts up to date before a call reads them; returns the note for the model, if any.

        While an exec (or a load, or a reset) holds the session, the contexts stay as that call found them:
        a find_symbol alongside a long exec answers at once instead of waiting for it."""
        if self._lock.locked():
            return None
        async with self._lock:
            return await self._refresh()

    async def _refresh(self) -> str | None:
        if not self.live:
            return None
        notes = []
        for name, change, failure in await anyio.to_thread.run_sync(self._check_live, list(self.live.items())):
            if failure is not None:  # the tree grew past a limit, a disk error...
                log.warning("session %s: context %s could not follow its files: %s", self.key, name, failure)
                notes.append(f"context {name!r} could not follow its files ({failure}); it stays as last seen.")
                continue
            if change is None:
                continue
            if change.stored is not None:
                await self.ensure_started()
                await self._attach(change.stored)
                self.contexts[name] = change.stored
                await self.code_index().refresh(change.stored, change.changed, change.removed, self.task_group)
            notes.append(change.describe(name))
        return " ".join(notes) or None

    @staticmethod
    def _check_live(followers: list[tuple[str, LiveContext]]) -> list[LiveCheck]:
        """Every live context's check in one trip to a worker thread (this runs before each exec)."""
        checked: list[LiveCheck] = []
        for name, follower in followers:
            try:
                checked.append((name, follower.check(), None))
            except (ContextError, OSError) as exc:
                checked.append((name, None, exc))
        return checked

    async def _register(self, stored: StoredContext) -> StoredContext:
        async with self._lock:
            self.touch()
            sandbox = await self.ensure_started()
            sandbox.check_capacity(stored.bytes, f"context {stored.name!r}")
            await self._attach(stored)
            self.contexts[stored.name] = stored
        self.code_index().start(stored, self.task_group)  # text search works now; symbols follow
        return stored

    def code_index(self) -> SessionIndex:
        if self.index is None:
            self.index = SessionIndex(self.content_store().index_dir)
        return self.index

    async def _attach(self, stored: StoredContext) -> None:
        """Map a stored context into the REPL, unless the very same version is already there."""
        assert self._sandbox is not None
        if self._attached.get(stored.name) == stored.fingerprint and stored.reused:
            return
        content, manifest = Path(stored.content_path), Path(stored.manifest_path)
        await self._sandbox.call(
            "_rlm_attach", stored.name, self._sandbox.guest_path(content), self._sandbox.guest_path(manifest)
        )
        self._attached[stored.name] = stored.fingerprint

    def context(self, name: str) -> StoredContext:
        if name not in self.contexts:
            loaded = ", ".join(sorted(self.contexts)) or "none yet"
            raise UnknownContext(f"no context named {name!r} (loaded: {loaded}); call load_context first")
        return self.contexts[name]

    # --- code ------------------------------------------------------------------------------
    async def exec(self, code: str, timeout_s: float | None = None,
                   progress: Callable[[int, int, str], Awaitable[None]] | None = None,
                   tags: dict[str, Any] | None = None) -> ExecOutcome:
        """Run code; `progress` receives worker-batch progress while this exec runs; `tags` (such as the
        RLM loop's iteration) go into the trajectory's record of this exec, the one record of it."""
        async with self._lock:
            self.progress = progress
            try:
                note = await self._refresh()
                outcome = await self._exec(code, timeout_s, tags or {})
                outcome.context_note = note
                return outcome
            finally:
                self.progress = None

    async def _exec(self, code: str, timeout_s: float | None, tags: dict[str, Any]) -> ExecOutcome:
        self.touch()
        sandbox = await self.ensure_started()
        self.final_answer = None
        mark = self.calls.usage.snapshot()
        result = await sandbox.exec(
            code,
            timeout_s=timeout_s,  # None: the policy's, which RLM_EXEC_TIMEOUT_S set (config.py, Settings.policy)
            max_output_chars=self.settings.max_output_chars,
        )
        worker_usage = self.calls.usage.since(mark)
        self.record({"type": "code", **tags, "code": code[:20_000], "status": result.status,
                     "stdout": result.stdout.text[:4000], "stderr": result.stderr.text[:2000],
                     "elapsed_s": round(result.elapsed_s, 4), "error": result.error})
        self.usage.execs += 1
        self.usage.exec_seconds += result.elapsed_s
        self.usage.timeouts += result.status == "timeout"
        if result.status in ("killed", "sandbox_fault"):
            await self._restart()
        restored, self._restored = self._restored, None  # this restart's, or one this exec's start needed
        return ExecOutcome(result=result, restarted=restored is not None, final_answer=self.final_answer,
                           worker_usage=worker_usage, restored=restored)

    def record(self, event: dict[str, Any]) -> None:
        if self.trajectory is not None:
            self.trajectory.record({"session": self.key, **event})
        if self.observer is not None:
            self.observer(event)

    async def reset(self, keep_contexts: bool = True) -> None:
        """A fresh REPL: variables are dropped; contexts are re-attached, or dropped with their stored
        files and their code index, so nothing answers from them afterwards."""
        async with self._lock:
            if not keep_contexts:
                for name in list(self.contexts):
                    self._stop_following(name)
                    await anyio.to_thread.run_sync(delete_stored, name, self.data_dir)
                    self.code_index().drop(name)
                self.contexts.clear()
            self.checkpoints.clear()
            if self._sandbox is not None:
                await self._restart()
                self._restored = None
            self.calls.restart_clock()
            self.final_answer = None

    async def close(self) -> None:
        """Stop the jail, close the worker calls and the trajectory, delete the data. Each step runs even when
        one before it failed (nothing leaks); the first failure is raised afterwards."""
        failures: list[Exception] = []
        for step in (self._keep_live_versions, self._sandbox and self._sandbox.close,
                     self._spare and self._spare.discard, self.calls.aclose):
            try:
                if step:
                    await step()
            except Exception as exc:
                failures.append(exc)
        if self.trajectory is not None:
            self.trajectory.close()
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
        if self._checkpoints is not None:
            shutil.rmtree(self._checkpoints.directory.parent, ignore_errors=True)
        if failures:
            raise failures[0]


def new_trajectory(settings: Settings, key: str) -> TrajectoryLog:
    """RLM_HOME/trajectories/<time>-<session>.jsonl, rendered by `rlm-mcp trace`."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", key)[:40]
    return TrajectoryLog(settings.home / "trajectories" / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}.jsonl")


def launcher_for(settings: Settings, policy: SandboxPolicy, on_progress: ProgressCallback | None = None) -> Launcher:
    """The configured sandbox's launcher (its probes are cached: the machine does not change); a first fetch
    of Pyodide reports to `on_progress`."""
    return create_launcher(settings.sandbox, policy, settings.guest_python, home=settings.home,
                           on_progress=on_progress)
