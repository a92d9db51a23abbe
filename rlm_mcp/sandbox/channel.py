"""The host's end of one guest's control channel: JSON lines over its stdin and stdout, the raw bytes of the
checkpoint files it sends, and the callbacks its code makes.

Requests (exec, get, call, ...) go one at a time; while one runs, the guest may send any number of
callback requests (from several threads) which are answered concurrently. Everything the guest sends
is size-capped and validated: the guest runs hostile code and may forge or flood the channel. One
channel per guest process: a restart opens a new one (lifecycle.py).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import Process, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

from .checkpoints import CheckpointStore
from .errors import ProtocolViolation, SandboxCrashed
from .process import describe_exit, kill_jail

log = logging.getLogger(__name__)

Callback = Callable[[Any], Awaitable[Any]]
MAX_CALLBACK_NAME = 64
BLOB_PART_BYTES = 1 << 20


@dataclass(eq=False)
class HostSide:
    """What the guest's messages reach on the host: the functions its callbacks call, and the store its
    checkpoint files go to. One per sandbox, shared by each channel it opens; set again when a guest
    started ahead with none (a spare, spare.py) is adopted by its session."""

    callbacks: dict[str, Callback]
    checkpoints: CheckpointStore | None = None


class GuestChannel:
    """Requests to one guest process and the messages it sends back, read by a pump in the background."""

    def __init__(self, process: Process, host: HostSide, max_message_mb: int) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.host = host
        self.max_message_mb = max_message_mb
        self.death: SandboxCrashed | None = None  # why the guest stopped answering, once it has
        self._stdout = BufferedByteReceiveStream(process.stdout)
        self._request_lock = anyio.Lock()
        self._write_lock = anyio.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[anyio.Event, list[Any]]] = {}
        self._cancel: anyio.CancelScope | None = None

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and self.death is None

    def listen(self, task_group: TaskGroup) -> None:
        """Start reading replies, callbacks and blobs in `task_group` (after the guest said it is ready)."""
        self._cancel = anyio.CancelScope()
        task_group.start_soon(self._pump, self._cancel)

    def stop_listening(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self._cancel = None

    async def request(self, message: dict[str, Any], *, deadline_s: float) -> dict[str, Any]:
        """Send one request and wait for its reply; TimeoutError after `deadline_s`, SandboxCrashed or
        ProtocolViolation when the guest dies or breaks the protocol meanwhile."""
        async with self._request_lock:
            if not self.alive:
                raise self.death or SandboxCrashed("the sandbox is not running")
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

    async def read_message(self) -> dict[str, Any]:
        """The next message, which must be one JSON object on one line of at most `max_message_mb`."""
        try:
            line = await self._stdout.receive_until(b"\n", self.max_message_mb * 1024 * 1024)
        except anyio.DelimiterNotFound as exc:
            raise ProtocolViolation(f"the guest sent a message over {self.max_message_mb} MB") from exc
        except (anyio.IncompleteRead, anyio.EndOfStream) as exc:
            raise SandboxCrashed("the guest closed its channel") from exc
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise ProtocolViolation(f"the guest sent a malformed message: {line[:80]!r}") from exc
        if not isinstance(message, dict):
            raise ProtocolViolation("the guest sent a message that is not an object")
        return message

    def fail_waiters(self, error: BaseException) -> None:
        """Wake every request still waiting, with `error` as its reply."""
        for event, slot in list(self._waiting.values()):
            if not slot:
                slot.append(error)
            event.set()

    async def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, ensure_ascii=False).encode() + b"\n"
        async with self._write_lock:
            try:
                await self.process.stdin.send(data)  # type: ignore[union-attr]
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise SandboxCrashed(f"cannot write to the guest: {exc}") from exc

    async def _pump(self, cancel: anyio.CancelScope) -> None:
        with cancel:
            async with anyio.create_task_group() as group:
                try:
                    while True:
                        message = await self.read_message()
                        if message.get("op") == "blob":
                            await self._receive_blob(message)
                        else:
                            self._dispatch(message, group)
                except ProtocolViolation as exc:
                    self.death = SandboxCrashed(str(exc))
                    self.fail_waiters(exc)
                    await kill_jail(self.process)
                except (SandboxCrashed, anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    with anyio.move_on_after(2):
                        await self.process.wait()
                    code = self.process.returncode
                    self.death = SandboxCrashed(describe_exit(code), exit_code=code)
                    self.fail_waiters(self.death)
                group.cancel_scope.cancel()

    async def _receive_blob(self, message: dict[str, Any]) -> None:
        """The raw bytes that follow a blob header (a checkpoint file, guest/runtime.py's send_blob), read in
        parts into the checkpoint store; bytes the store refuses are read and dropped, so the channel stays
        in step. A size beyond what any store here accepts is a protocol violation."""
        size, file = message.get("bytes"), str(message.get("file", ""))
        store = self.host.checkpoints
        limit = store.max_bytes if store is not None else 0
        if not isinstance(size, int) or not 0 <= size <= limit:
            raise ProtocolViolation(f"the guest announced {size!r} raw bytes (at most {limit} are accepted here)")
        sink = None
        try:
            sink = store.open_blob(file, size) if store is not None else None
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
        handler = self.host.callbacks.get(name)
        if handler is None:
            reply = {"op": "reply", "cid": cid, "ok": False, "error": f"no host function named {name!r}"}
        else:
            try:
                reply = {"op": "reply", "cid": cid, "ok": True, "value": await handler(message.get("payload"))}
            except Exception as exc:  # the handler's failure is the guest's error, never ours
                reply = {"op": "reply", "cid": cid, "ok": False, "error": str(exc) or type(exc).__name__}
        with contextlib.suppress(SandboxCrashed):
            await self._send(reply)
