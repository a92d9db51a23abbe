"""The host side of the persistent REPL: one guest process, its control channel and its callbacks.

Requests (exec, get, call) go one at a time; while one runs, the guest may send any number of
callback requests (from several threads) which are answered concurrently. Everything the guest sends
is size-capped and validated: the guest runs hostile code and may forge or flood the channel.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

from ..errors import BadRequest
from .checkpoints import CheckpointStore, RestoreNote
from .datadir import unreachable_reason
from .errors import GuestCallFailed, ProtocolViolation, SandboxClosed, SandboxCrashed, SandboxStartError
from .launch import Launcher
from .policy import SandboxPolicy
from .results import CapturedText, ExecResult, VariableInfo, VariableValue

log = logging.getLogger(__name__)

Callback = Callable[[Any], Awaitable[Any]]
STARTUP_TIMEOUT_S = 30.0
LOG_TAIL_BYTES = 64 * 1024
MAX_CODE_CHARS = 1_000_000
MAX_CALLBACK_NAME = 64
BLOB_PART_BYTES = 1 << 20


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
        self.prelude = prelude
        self.answer_with(callbacks or {}, checkpoints)
        self.guest_info: dict[str, Any] = {}
        self.starts = 0
        self._process: Process | None = None
        self._stdout: BufferedByteReceiveStream | None = None
        self._task_group: TaskGroup | None = None
        self._cancel: anyio.CancelScope | None = None
        self._request_lock = anyio.Lock()
        self._write_lock = anyio.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[anyio.Event, list[Any]]] = {}
        self._log_tail: collections.deque[bytes] = collections.deque()
        self._log_bytes = 0
        self._cleanup: list[Path] = []
        self._death: SandboxCrashed | None = None
        self._closed = False

    def answer_with(self, callbacks: Mapping[str, Callback], checkpoints: CheckpointStore | None = None) -> None:
        """The host functions the guest's callbacks reach and the store its checkpoints go to; set again when a
        guest started ahead with none (a spare) is adopted by its session."""
        self.callbacks = dict(callbacks)
        self.checkpoints = checkpoints

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def isolated(self) -> bool:
        return self.launcher.isolated

    @property
    def backend(self) -> str:
        """The backend's name and why it runs here, e.g. "wasm (auto: nsjail cannot run here (...))"."""
        return f"{self.launcher.name} ({self.launcher.reason})" if self.launcher.reason else self.launcher.name

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None and self._death is None

    @property
    def max_message_bytes(self) -> int:
        return self.policy.limits.max_message_mb * 1024 * 1024

    async def start(self, task_group: TaskGroup) -> None:
        """Start the guest and wait until it is ready; background readers live in `task_group`."""
        if self._closed:
            raise SandboxClosed("this sandbox was closed; create a new one")
        self._task_group = task_group
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.launcher.expected_uid is not None and (problem := unreachable_reason(self.data_dir)):
            raise SandboxStartError(problem)
        plan = self.launcher.plan(self.data_dir)
        self._cleanup += plan.cleanup_paths
        self._death = None
        self._log_tail.clear()
        self._log_bytes = 0
        self._process = await anyio.open_process(
            plan.argv, env=plan.env, cwd=plan.cwd, start_new_session=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._stdout = BufferedByteReceiveStream(self._process.stdout)  # type: ignore[arg-type]
        task_group.start_soon(self._drain_stderr, self._process)
        self.starts += 1
        try:
            with anyio.fail_after(STARTUP_TIMEOUT_S):
                ready = await self._read_message()
        except (TimeoutError, SandboxCrashed, ProtocolViolation) as exc:
            await self._kill()
            detail = str(exc) or ("it was not ready in time" if isinstance(exc, TimeoutError) else "it exited")
            raise SandboxStartError(f"the sandbox did not start ({detail}); {self.launcher.start_fix}",
                                    log=self.log_tail()) from exc
        finally:
            for path in plan.startup_paths:
                shutil.rmtree(path, ignore_errors=True)
        if ready.get("op") != "ready":
            await self._kill()
            raise SandboxStartError(f"unexpected first message from the guest: {ready!r}", log=self.log_tail())
        self.guest_info = ready
        if isinstance(warning := ready.get("warning"), str):  # e.g. a wasm snapshot that did not restore
            log.warning("%s sandbox in %s: %s", self.launcher.name, self.data_dir.name, warning[:500])
        expected_uid = self.launcher.expected_uid
        if expected_uid is not None and ready.get("uid") != expected_uid:
            await self._kill()
            raise SandboxStartError(f"guest runs as uid {ready.get('uid')}, expected {expected_uid}")
        self._cancel = anyio.CancelScope()
        task_group.start_soon(self._pump, self._cancel, self._process)
        if self.prelude:
            reply = await self._request({"op": "prelude", "code": self.prelude}, deadline_s=STARTUP_TIMEOUT_S)
            if reply.get("status") != "ok":
                await self._kill()
                raise SandboxStartError(f"the prelude failed: {reply.get('error')}")

    async def restart(self) -> None:
        """Kill the guest if it runs and start a fresh one (all variables are lost)."""
        task_group = self._task_group
        if task_group is None:
            raise SandboxClosed("restart() before start()")
        await self._kill()
        await self.start(task_group)

    async def close(self) -> None:
        """Kill the guest and its whole process tree; idempotent."""
        self._closed = True
        await self._kill()
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)
        self._cleanup.clear()

    async def _kill(self) -> None:
        process = self._process
        if self._cancel is not None:
            self._cancel.cancel()
            self._cancel = None
        if process is None:
            return
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                await _kill_jail(process)
            with anyio.move_on_after(5):
                await process.aclose()
        self._fail_waiters(self._death or SandboxCrashed("killed by the host"))

    def log_tail(self) -> str:
        """The last lines nsjail and the guest wrote to stderr (for diagnostics)."""
        return b"".join(self._log_tail).decode("utf-8", "replace")

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
            await self._kill()
            return _dead_result(
                "killed",
                f"the code ignored its {timeout:g} s timeout (it never let the interrupt through) and "
                f"the {self.launcher.name} REPL was killed; its variables are lost",
                started,
            )
        except SandboxCrashed as exc:
            return _dead_result("killed", f"{exc}; its variables are lost", started)
        except ProtocolViolation as exc:
            return _dead_result("sandbox_fault", str(exc), started)
        result = _exec_result(reply)
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
        note = _restore_note(reply)
        store.forget(note.failed)
        return note

    async def get(self, name: str, *, max_chars: int = 100_000) -> VariableValue:
        """Read a variable back: JSON for plain data, repr otherwise, cut at `max_chars`."""
        reply = await self._request({"op": "get", "name": name, "max_chars": max_chars}, deadline_s=30)
        if reply.get("status") != "ok":
            raise KeyError(str(reply.get("error")))
        text = _string(reply.get("value"))[:max_chars]
        is_json = bool(reply.get("json")) and not reply.get("truncated")
        return VariableValue(
            name=name, type=_string(reply.get("type")), value=json.loads(text) if is_json else text,
            is_json=is_json, truncated=bool(reply.get("truncated")), chars=_int(reply.get("chars")),
        )

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
        async with self._request_lock:
            if not self.alive:
                raise self._death or SandboxCrashed("the sandbox is not running")
            request_id = next(self._ids)
            event, slot = anyio.Event(), []
            self._waiting[request_id] = (event, slot)
            try:
                await self._send({**message, "id": request_id})
                with anyio.fail_after(deadline_s):
                    await event.wait()
            finally:
                self._waiting.pop(request_id, None)
            reply = slot[0]
            if isinstance(reply, BaseException):
                raise reply
            return reply

    async def _send(self, message: dict[str, Any]) -> None:
        process = self._process
        if process is None or process.stdin is None:
            raise SandboxCrashed("the sandbox is not running")
        data = json.dumps(message, ensure_ascii=False).encode() + b"\n"
        async with self._write_lock:
            try:
                await process.stdin.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise SandboxCrashed(f"cannot write to the guest: {exc}") from exc

    # --- background readers ----------------------------------------------------------------------
    async def _pump(self, cancel: anyio.CancelScope, process: Process) -> None:
        with cancel:
            async with anyio.create_task_group() as group:
                try:
                    while True:
                        message = await self._read_message()
                        if message.get("op") == "blob":
                            await self._receive_blob(message)
                        else:
                            self._dispatch(message, group)
                except ProtocolViolation as exc:
                    self._death = SandboxCrashed(str(exc))
                    self._fail_waiters(exc)
                    await _kill_jail(process)
                except (SandboxCrashed, anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    with anyio.move_on_after(2):
                        await process.wait()
                    self._death = SandboxCrashed(_describe_exit(process.returncode), exit_code=process.returncode)
                    self._fail_waiters(self._death)
                group.cancel_scope.cancel()

    async def _read_message(self) -> dict[str, Any]:
        assert self._stdout is not None
        try:
            line = await self._stdout.receive_until(b"\n", self.max_message_bytes)
        except anyio.DelimiterNotFound as exc:
            raise ProtocolViolation(f"the guest sent a message over {self.policy.limits.max_message_mb} MB") from exc
        except (anyio.IncompleteRead, anyio.EndOfStream) as exc:
            raise SandboxCrashed("the guest closed its channel") from exc
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise ProtocolViolation(f"the guest sent a malformed message: {line[:80]!r}") from exc
        if not isinstance(message, dict):
            raise ProtocolViolation("the guest sent a message that is not an object")
        return message

    async def _receive_blob(self, message: dict[str, Any]) -> None:
        """The raw bytes that follow a blob header (a checkpoint file, guest/runtime.py's send_blob), read in
        parts into the checkpoint store; bytes the store refuses are read and dropped, so the channel stays
        in step. A size beyond what any store here accepts is a protocol violation."""
        size, file = message.get("bytes"), str(message.get("file", ""))
        limit = self.checkpoints.max_bytes if self.checkpoints is not None else 0
        if not isinstance(size, int) or not 0 <= size <= limit:
            raise ProtocolViolation(f"the guest announced {size!r} raw bytes (at most {limit} are accepted here)")
        assert self._stdout is not None
        sink = None
        try:
            sink = self.checkpoints.open_blob(file, size) if self.checkpoints is not None else None
        except (ValueError, OSError) as exc:
            log.warning("dropping a checkpoint file from the guest: %s", exc)
        try:
            while size:
                part = await self._stdout.receive_exactly(min(size, BLOB_PART_BYTES))
                size -= len(part)
                if sink is not None:
                    sink.write(part)
        except (anyio.IncompleteRead, anyio.EndOfStream) as exc:
            raise SandboxCrashed("the guest closed its channel in the middle of a checkpoint") from exc
        finally:
            if sink is not None:
                sink.close()

    def _dispatch(self, message: dict[str, Any], group: TaskGroup) -> None:
        op = message.get("op")
        if op == "done":
            waiter = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
            if waiter is not None:
                waiter[1].append(message)
                waiter[0].set()
        elif op == "callback":
            group.start_soon(self._answer_callback, message)
        else:
            raise ProtocolViolation(f"the guest sent an unknown message type {op!r}")

    async def _answer_callback(self, message: dict[str, Any]) -> None:
        cid, name = message.get("cid"), message.get("name")
        if not isinstance(cid, int) or not isinstance(name, str) or len(name) > MAX_CALLBACK_NAME:
            log.warning("dropping a malformed callback from the guest")
            return
        handler = self.callbacks.get(name)
        if handler is None:
            reply = {"op": "reply", "cid": cid, "ok": False, "error": f"no host function named {name!r}"}
        else:
            try:
                reply = {"op": "reply", "cid": cid, "ok": True, "value": await handler(message.get("payload"))}
            except Exception as exc:  # the handler's failure is the guest's error, never ours
                reply = {"op": "reply", "cid": cid, "ok": False, "error": str(exc) or type(exc).__name__}
        with contextlib.suppress(SandboxCrashed):
            await self._send(reply)

    async def _drain_stderr(self, process: Process) -> None:
        assert process.stderr is not None
        try:
            async for chunk in process.stderr:
                self._log_tail.append(chunk)
                self._log_bytes += len(chunk)
                while self._log_bytes > LOG_TAIL_BYTES and len(self._log_tail) > 1:
                    self._log_bytes -= len(self._log_tail.popleft())
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return

    def _fail_waiters(self, error: BaseException) -> None:
        for event, slot in list(self._waiting.values()):
            if not slot:
                slot.append(error)
            event.set()


async def _kill_jail(process: Process) -> None:
    """Kill the guest first so nsjail reaps it, then nsjail itself.

    The guest shares nsjail's process group (skip_setsid) and is the init of its pid namespace, so
    killing the group's members takes every guest process. Killing nsjail first would orphan the
    guest to the host's init, which may never reap it. Without /proc or process groups (macOS,
    Windows: the wasm backend, one Deno process) killing the process itself is all there is.
    """
    if not hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        return
    for pid in _group_members(process.pid):
        if pid != process.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with anyio.move_on_after(1):
        await process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _group_members(pgid: int) -> list[int]:
    members: list[int] = []
    if not os.path.isdir("/proc"):
        return members
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
    return members


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    signal_number = -code if code < 0 else code - 128 if code > 128 else None
    if signal_number == getattr(signal, "SIGKILL", None):
        return "killed by SIGKILL (out of memory, the session's CPU or wall-clock limit, or a hard kill)"
    if signal_number == getattr(signal, "SIGSYS", None):
        return "killed by the seccomp policy (a forbidden system call)"
    if signal_number == getattr(signal, "SIGXCPU", None):
        return "killed for using up the session's CPU-time limit"
    if signal_number and signal_number in signal.Signals._value2member_map_:
        return f"killed by signal {signal.Signals(signal_number).name}"
    return f"exited with status {code}"


def _dead_result(status: str, error: str, started: float) -> ExecResult:
    return ExecResult(
        status=status, stdout=CapturedText(""), stderr=CapturedText(""),  # type: ignore[arg-type]
        elapsed_s=time.perf_counter() - started, error=error,
    )


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _captured(value: Any) -> CapturedText:
    if not (isinstance(value, list) and len(value) == 3):
        return CapturedText("")
    head, tail, dropped = value
    return CapturedText.from_parts(_string(head), _string(tail), _int(dropped))


def _restore_note(reply: dict[str, Any]) -> RestoreNote:
    restored = [_string(name)[:200] for name in reply.get("restored") or [] if isinstance(name, str)]
    failed = reply.get("failed") if isinstance(reply.get("failed"), dict) else {}
    return RestoreNote(restored=tuple(restored[:1000]),
                       failed={_string(k)[:200]: _string(v)[:300] for k, v in list(failed.items())[:100]})


def _exec_result(reply: dict[str, Any]) -> ExecResult:
    """Validate an exec reply field by field; anything odd becomes empty, never an exception."""
    status = reply.get("status")
    variables = []
    for item in reply.get("vars") or []:
        if isinstance(item, dict):
            size = item.get("size")
            variables.append(VariableInfo(
                name=_string(item.get("name"))[:200], type=_string(item.get("type"))[:100],
                size=size if isinstance(size, int) else None, preview=_string(item.get("preview"))[:200],
            ))
    elapsed = reply.get("elapsed_s")
    error = reply.get("error")
    return ExecResult(
        status=status if status in ("ok", "error", "timeout") else "sandbox_fault",
        stdout=_captured(reply.get("stdout")),
        stderr=_captured(reply.get("stderr")),
        elapsed_s=float(elapsed) if isinstance(elapsed, int | float) else 0.0,
        error=_string(error)[:2000] or None,
        variables=tuple(variables[:100]),
    )
