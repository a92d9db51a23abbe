"""A session: its own jailed REPL, contexts, code index, worker calls, usage and trajectory.

A session starts its REPL lazily (the first load or exec), survives crashes of its guest by restarting it
with its contexts and variables (guest.py), follows its live contexts (loaded.py), and is closed by its
registry (registry.py) when idle for too long, when the client goes away, or when the server stops. After
each call that changed it, it is written down for a later server (`keeper`: resume.py). It knows nothing of
the MCP transport. It is built one way, `Session.build`, with its worker calls passed in (calls.py).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..config import Settings
from ..contexts import StoredContext
from ..contexts.search import ContextSearch
from ..progress import Progress
from ..sandbox import ExecResult, RestoreNote, SandboxPolicy, SpareKeeper
from ..workers import SpendAccount, TrajectoryLog, Usage
from .calls import Reply, WorkerCalls, prompt_of, text_of
from .guest import Callback, SessionRepl, thread_side
from .index import SessionIndex
from .loaded import SessionContexts
from .service import repl_index

log = logging.getLogger(__package__)  # rlm_mcp.sessions, for every module of the package

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
    kept_at: Path | None = None  # where it is kept for a later server (sessions/kept.py); None: not kept
    keeper: Callable[[Session, bool], None] | None = None  # writes it down when it changed (sessions/resume.py)
    spares: SpareKeeper | None = None  # the server's, where its backend keeps a guest started ahead (wasm)
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    usage: SessionUsage = field(default_factory=SessionUsage)
    final_answer: str | None = None
    pending_note: str | None = None  # for the model's next call: what taking the session up changed
    repl: SessionRepl = field(init=False)
    loaded: SessionContexts = field(init=False)
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    def __post_init__(self) -> None:
        callbacks: dict[str, Callback] = {
            "llm_query": self.calls.llm_query, "llm_query_batched": self.calls.llm_query_batched,
            "rlm_query": functools.partial(rlm_query, self), "final": self._record_final,
            "index": lambda payload: repl_index(self.code_index())(payload),
            "grep": lambda payload: ContextSearch(self.contexts).query(payload),
        }
        self.repl = SessionRepl(self.settings, self.policy, self.task_group, key=self.key, callbacks=callbacks,
                                kept_at=self.kept_at, spares=self.spares, on_restart=self._restarted)
        self.loaded = SessionContexts(self.settings, self.task_group, self.repl, self._lock, key=self.key,
                                      changed=self.keep)

    @classmethod
    def build(cls, settings: Settings, policy: SandboxPolicy, task_group: TaskGroup, *, key: str,
              owner: str = "stdio", account: SpendAccount | None = None, trajectory: TrajectoryLog | None = None,
              observer: Callable[[dict[str, Any]], None] | None = None, recurse: ChildRLM | None = None,
              calls: WorkerCalls | None = None, spares: SpareKeeper | None = None, kept_at: Path | None = None,
              keeper: Callable[[Session, bool], None] | None = None) -> Session:
        """The one way a session is built -- by the registry, for a child RLM (`child`), by the Python API:
        its worker calls are passed in, or new ones drawing on the owner's `account`; `spares`, the server's
        guests started ahead (wasm), when it keeps them; `kept_at` and `keeper`, where and how it is written
        down for a later server (the registry's sessions)."""
        return cls(key, settings, policy, task_group, calls or WorkerCalls.new(settings, account, trajectory),
                   owner=owner, trajectory=trajectory, observer=observer, recurse=recurse, spares=spares,
                   kept_at=kept_at, keeper=keeper)

    def child(self) -> Session:
        """A child RLM's session (rlm_query): its own REPL; the parent's dispatcher and trajectory, and one
        level deeper in the parent's ledger."""
        key = f"{self.key}/d{self.calls.budget.depth + 1}"
        return Session.build(self.settings, self.policy, self.task_group, key=key, owner=self.owner,
                             trajectory=self.trajectory, recurse=self.recurse, calls=self.calls.child())

    # --- its parts, as callers reach them ------------------------------------------------------------
    sandbox = property(lambda self: self.repl.sandbox, doc="The running REPL's sandbox, once started.")
    data_dir = property(lambda self: self.repl.data_dir, doc="Where the REPL reads the session's data from.")
    checkpoints = property(lambda self: self.repl.checkpoints, doc="The REPL's saved variables.")
    contexts = property(lambda self: self.loaded.stored, doc="The loaded contexts, by name.")
    live = property(lambda self: self.loaded.live, doc="The contexts that follow their files, by name.")

    def code_index(self) -> SessionIndex:
        return self.loaded.code_index()

    def context(self, name: str) -> StoredContext:
        return self.loaded.context(name)

    async def load_text(self, name: str, text: str) -> StoredContext:
        return await self.loaded.load_text(name, text)

    async def load_paths(self, name: str, sources: Sequence[str], roots: Sequence[Path],
                         on_progress: Progress | None = None, live: bool = True,
                         base_dir: Path | None = None) -> StoredContext:
        return await self.loaded.load_paths(name, sources, roots, on_progress, live, base_dir)

    def _restarted(self) -> None:
        self.usage.restarts += 1

    def touch(self) -> None:
        self.last_used = time.monotonic()

    @property
    def busy(self) -> bool:
        """An exec, a load, a reset or an RLM run holds the session: it is not idle, whatever its clock says."""
        return self._lock.locked()

    async def restore_variables(self) -> None:
        """The checkpoint's variables into the REPL (started now if need be), after the contexts they may refer
        to: a session taken up from its kept files. The next exec reports them (`restored`)."""
        if self.checkpoints.sizes:
            async with self._lock:
                await self.repl.ensure_started(self.contexts.values())
                await self.repl.restore_variables(self.contexts.values())

    def keep(self, final: bool = False) -> None:
        """Write the session down for a later server (resume.py) after a call; `final` at its close, always."""
        if not final:  # the end of a call that changed it is when it was last used (a close is no use)
            self.touch()
        if self.keeper is not None:
            try:
                self.keeper(self, final)
            except OSError as exc:
                log.warning("session %s could not be written down for a later server: %s", self.key, exc)

    # --- what the REPL calls back ---------------------------------------------------------------------
    async def _record_final(self, payload: Any) -> bool:
        answer = payload.get("answer") if isinstance(payload, dict) else None
        self.final_answer = str(answer)[:1_000_000] if answer is not None else None
        return True

    # --- code ------------------------------------------------------------------------------
    async def refresh(self) -> str | None:
        """Bring live contexts up to date before a call reads them; returns the note for the model, if any.

        While an exec (or a load, or a reset) holds the session, the contexts stay as that call found them:
        a find_symbol alongside a long exec answers at once instead of waiting for it."""
        if self._lock.locked():
            return None
        async with self._lock:
            return await self._refresh()

    async def _refresh(self) -> str | None:
        notes = [self.pending_note] if self.pending_note else []
        self.pending_note = None
        return " ".join(notes + await self.loaded.refresh()) or None

    async def exec(self, code: str, timeout_s: float | None = None, progress: Progress | None = None,
                   tags: dict[str, Any] | None = None) -> ExecOutcome:
        """Run code; `progress` receives worker-batch progress while this exec runs; `tags` (such as the
        RLM loop's iteration) go into the trajectory's record of this exec, the one record of it."""
        async with self._lock:
            self.calls.progress = progress
            self.repl.on_start = thread_side(progress) if progress is not None else None
            try:
                note = await self._refresh()
                outcome = await self._exec(code, timeout_s, tags or {})
                outcome.context_note = note
                return outcome
            finally:
                self.calls.progress = self.repl.on_start = None

    async def _exec(self, code: str, timeout_s: float | None, tags: dict[str, Any]) -> ExecOutcome:
        self.touch()
        sandbox = await self.repl.ensure_started(self.contexts.values())
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
            await self.repl.restart(self.contexts.values())
        restored, self.repl.restored = self.repl.restored, None  # this restart's, or one this exec's start needed
        self.keep()
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
                await self.loaded.drop_all()
            self.repl.clear()
            if self.repl.sandbox is not None:
                await self.repl.restart(self.contexts.values())
                self.repl.restored = None
            self.calls.restart_clock()
            self.final_answer = None
            self.keep()

    async def close(self) -> None:
        """Stop the jail, close the worker calls and the trajectory, delete the data. Each step runs even when
        one before it failed (nothing leaks); the first failure is raised afterwards."""
        self.keep(final=True)  # what the last call spent, whatever wrote it down before
        failures: list[Exception] = []
        for step in (self.loaded.keep_live_versions, self.repl.close, self.calls.aclose):
            try:
                await step()
            except Exception as exc:
                failures.append(exc)
        if self.trajectory is not None:
            self.trajectory.close()
        if failures:
            raise failures[0]


async def rlm_query(session: Session, payload: Any) -> Reply:
    """The REPL's rlm_query: a child RLM over `context` with its own REPL; a plain worker call at the depth
    limit, or where no root model is set."""
    prompt = prompt_of(payload)
    context = payload.get("context")
    context = text_of(context, "context") if context is not None else ""
    root_model = session.settings.sub_rlm_model or session.settings.root_model
    if session.recurse is None or not root_model or not session.calls.budget.can_recurse():
        return await session.calls.ask(f"{prompt}\n\n{context}" if context else prompt)
    return await session.recurse(session, prompt, context)


def new_trajectory(settings: Settings, key: str) -> TrajectoryLog:
    """RLM_HOME/trajectories/<time>-<session>.jsonl, rendered by `rlm-mcp trace`."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", key)[:40]
    return TrajectoryLog(settings.home / "trajectories" / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}.jsonl")
