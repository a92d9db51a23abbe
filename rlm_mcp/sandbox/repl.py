"""The persistent REPL as its callers see it: start it, run code in it, read variables back, call the
prelude's functions, bring checkpointed variables back after a restart.

How the guest process starts, restarts and dies is lifecycle.py's; the channel to it (frames, callbacks,
checkpoint bytes) channel.py's; its replies are read into results by replies.py.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..errors import BadRequest
from .channel import Callback, HostSide
from .checkpoints import CheckpointStore, RestoreNote
from .errors import GuestCallFailed, ProtocolViolation, SandboxCrashed
from .launch import Launcher
from .lifecycle import GuestLifecycle
from .policy import SandboxPolicy
from .replies import dead_result, exec_result, restore_note, variable_value
from .results import ExecResult, VariableValue

MAX_CODE_CHARS = 1_000_000


class Sandbox:
    """A persistent Python REPL in a jail.

    `prelude` is helper code run at every (re)start; the names it defines are reserved and restored
    after each exec. `callbacks` are the host functions guest code may call through
    `_rlm_callback(name, payload)`. With `checkpoints`, the variables each exec creates or changes are
    saved by the guest into that store, and `restore()` brings them back into a restarted REPL.
    """

    def __init__(
        self,
        launcher: Launcher,
        policy: SandboxPolicy,
        data_dir: Path,
        *,
        prelude: str = "",
        callbacks: Mapping[str, Callback] | None = None,
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        self.launcher = launcher
        self.policy = policy
        self.data_dir = data_dir
        self.host = HostSide(dict(callbacks or {}), checkpoints)
        self.guest = GuestLifecycle(launcher, policy, data_dir, prelude, self.host)

    def answer_with(self, callbacks: Mapping[str, Callback], checkpoints: CheckpointStore | None = None) -> None:
        """The host functions the guest's callbacks reach and the store its checkpoints go to; set again when a
        guest started ahead with none (a spare) is adopted by its session."""
        self.host.callbacks = dict(callbacks)
        self.host.checkpoints = checkpoints

    @property
    def checkpoints(self) -> CheckpointStore | None:
        return self.host.checkpoints

    @property
    def isolated(self) -> bool:
        return self.launcher.isolated

    @property
    def backend(self) -> str:
        """The backend's name and why it runs here, e.g. "wasm (auto: nsjail cannot run here (...))"."""
        return f"{self.launcher.name} ({self.launcher.reason})" if self.launcher.reason else self.launcher.name

    @property
    def alive(self) -> bool:
        return self.guest.alive

    @property
    def guest_info(self) -> dict[str, Any]:
        """What the guest said when it was ready (its uid, a wasm start's warning)."""
        return self.guest.guest_info

    @property
    def pid(self) -> int | None:
        """The host process of the guest (nsjail, Deno), the head of its process group; None before a start."""
        return self.guest.channel.process.pid if self.guest.channel is not None else None

    def log_tail(self) -> str:
        """The last lines nsjail and the guest wrote to stderr (for diagnostics)."""
        return self.guest.log_tail()

    # --- lifecycle (lifecycle.py) ----------------------------------------------------------------
    async def start(self, task_group: TaskGroup) -> None:
        """Start the guest and wait until it is ready; background readers live in `task_group`."""
        await self.guest.start(task_group)

    async def restart(self) -> None:
        """Kill the guest if it runs and start a fresh one (all variables are lost)."""
        await self.guest.restart()

    async def close(self) -> None:
        """Kill the guest and its whole process tree; idempotent."""
        await self.guest.close()

    # --- requests ------------------------------------------------------------------------------
    async def exec(self, code: str, *, timeout_s: float | None = None, max_output_chars: int = 20_000) -> ExecResult:
        """Run code in the persistent namespace. User-code failures come back as a status."""
        if len(code) > MAX_CODE_CHARS:
            raise BadRequest(f"code is {len(code):,} characters; the limit is {MAX_CODE_CHARS:,}: run it in parts, "
                             "or load large data with load_context instead of pasting it into code")
        timeout = timeout_s if timeout_s is not None else self.policy.limits.exec_timeout_s
        started = time.perf_counter()
        request = {"op": "exec", "code": code, "timeout_s": timeout, "max_output": max_output_chars}
        if self.checkpoints is not None:
            request["checkpoint"] = self.checkpoints.request()
        try:
            reply = await self._request(request, deadline_s=timeout + self.policy.limits.hard_kill_grace_s)
        except TimeoutError:
            await self.guest.kill()
            return dead_result(
                "killed",
                f"the code ignored its {timeout:g} s timeout (it never let the interrupt through) and "
                f"the {self.launcher.name} REPL was killed; its variables are lost",
                started,
            )
        except SandboxCrashed as exc:
            return dead_result("killed", f"{exc}; its variables are lost", started)
        except ProtocolViolation as exc:
            return dead_result("sandbox_fault", str(exc), started)
        result = exec_result(reply)
        if self.checkpoints is not None:
            result = dataclasses.replace(result, checkpoint=self.checkpoints.commit(reply.get("checkpoint")))
        return result

    async def restore(self) -> RestoreNote:
        """Bring the saved variables back into this (fresh) REPL; call it once the contexts are attached, so
        a variable that refers to one finds it. A checkpoint that kills or hangs its guest is dropped and the
        REPL started again clean: a bad file costs its own restore, never the session."""
        store = self.checkpoints
        staged = self.data_dir / ".checkpoint"  # no context can have this name (CONTEXT_NAME_RE)
        if store is None or not await anyio.to_thread.run_sync(store.stage, staged):
            return RestoreNote()
        try:
            reply = await self._request({"op": "restore", "dir": self.guest_path(staged)},
                                        deadline_s=self.policy.limits.exec_timeout_s)
        except (TimeoutError, SandboxCrashed, ProtocolViolation) as exc:
            store.clear()
            await self.restart()
            reason = "it did not finish loading" if isinstance(exc, TimeoutError) else str(exc)
            return RestoreNote(failed={"(all)": f"the checkpoint could not be loaded ({reason}); the REPL started "
                                                "clean and the checkpoint was dropped"}, repl_restarted=True)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        note = restore_note(reply)
        store.forget(note.failed)
        return note

    async def get(self, name: str, *, max_chars: int = 100_000) -> VariableValue:
        """Read a variable back: JSON for plain data, repr otherwise, cut at `max_chars`."""
        reply = await self._request({"op": "get", "name": name, "max_chars": max_chars}, deadline_s=30)
        if reply.get("status") != "ok":
            raise KeyError(str(reply.get("error")))
        return variable_value(name, reply, max_chars)

    async def call(self, function: str, *args: Any, timeout_s: float = 60) -> Any:
        """Call a function the prelude defined, with JSON arguments; returns its JSON result."""
        reply = await self._request({"op": "call", "fn": function, "args": list(args)}, deadline_s=timeout_s)
        if reply.get("status") != "ok":
            raise GuestCallFailed(f"{function} failed in the sandbox: {reply.get('error')}")
        return reply.get("value")

    def check_capacity(self, size_bytes: int, what: str) -> None:
        """Refuse data this backend's guest cannot hold (wasm: WebAssembly's memory), before it is attached."""
        limit = self.launcher.max_context_bytes
        if limit is not None and size_bytes > limit:
            raise BadRequest(
                f"{what} is {size_bytes / 2**20:,.1f} MB; the {self.launcher.name} sandbox holds at most "
                f"{limit / 2**20:,.1f} MB (WebAssembly addresses 4 GiB, and a context is decoded as one str; "
                "[wasm] max_context_mb in the sandbox policy). Load a subdirectory or a glob such as "
                "'src/**/*.py', or run rlm-mcp on Linux, where nsjail has no such ceiling"
            )

    def guest_path(self, host_path: Path) -> str:
        """Where a file under the data directory appears inside the guest."""
        return self.launcher.guest_path(host_path, self.data_dir)

    async def _request(self, message: dict[str, Any], *, deadline_s: float) -> dict[str, Any]:
        if self.guest.channel is None:
            raise SandboxCrashed("the sandbox is not running")
        return await self.guest.channel.request(message, deadline_s=deadline_s)
