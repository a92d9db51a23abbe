"""The guest runtime under Pyodide (the wasm backend): runtime.py's Guest with a JavaScript channel.

Pyodide has no threads and no signals, so three things differ from the nsjail guest and nothing else:
requests arrive one at a time from the Worker (rlm_mcp/sandbox/deno/worker.js calls `handle`), a
callback blocks in JavaScript until the host's reply arrives, and the exec timeout is a
KeyboardInterrupt the Deno host thread raises through Pyodide's interrupt buffer (code that never
reaches an interrupt check, such as `while True: pass`, is killed by the host instead).
"""

import errno
import json
import os
import posix
import sys

import runtime


class JsChannel:
    """Lines out through the Worker's postMessage; the same interface as runtime.Channel's send."""

    def __init__(self, send) -> None:
        self._send = send

    def send(self, message: dict) -> None:
        self._send(json.dumps(message, ensure_ascii=False, default=repr))


class WasmGuest(runtime.Guest):
    timeout_errors = (KeyboardInterrupt,)

    def __init__(self, channel: JsChannel, wait_reply, exec_done) -> None:
        super().__init__(channel)
        self._wait_reply = wait_reply
        self._exec_done = exec_done
        self.reserve("_rlm_read_text", read_text)

    def callback(self, name: str, payload=None):
        """Ask the host and block (in JavaScript) for its answer; the timeout interrupts the wait."""
        cid = next(self.callback_ids)
        self.channel.send({"op": "callback", "cid": cid, "name": name, "payload": payload})
        text = self._wait_reply(cid)
        if text is None:
            raise KeyboardInterrupt
        reply = json.loads(text)
        if not reply.get("ok"):
            raise runtime.CallbackError(str(reply.get("error", "callback failed")))
        return reply.get("value")

    def arm_timer(self, timeout: float) -> None:
        """The Deno host thread arms it when it forwards the exec (rlm_mcp/sandbox/deno/host.js)."""

    def disarm_timer(self) -> None:
        self._exec_done()

    def handle_line(self, line: str) -> str:
        return json.dumps(self.handle(json.loads(line)), ensure_ascii=False, default=repr)


def read_text(path: str) -> str:
    """The whole file as str (no mmap under Pyodide): the bytes and the str exist together once."""
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", "replace")


def no_processes(*args, **kwargs):
    """os.system under Pyodide reaches for a shell through Deno, which the permissions deny with an error
    Pyodide treats as fatal; a Python error is kinder (the interpreter would be restarted otherwise)."""
    raise OSError(errno.ENOSYS, "the wasm sandbox runs no programs")


def start(send, wait_reply, exec_done, env_json: str):
    """Build the guest and announce it; returns the object whose `handle` the Worker calls. The
    environment becomes exactly the policy's variables (Pyodide adds its own, one naming a host path)."""
    os.environ.clear()
    os.environ.update(json.loads(env_json))
    os.system = posix.system = no_processes
    guest = WasmGuest(JsChannel(send), wait_reply, exec_done)
    send(json.dumps({"op": "ready", "python": sys.version.split()[0], "pid": os.getpid(), "uid": None}))
    return guest
