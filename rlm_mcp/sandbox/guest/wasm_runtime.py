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
import random
import sys

import runtime


class JsChannel:
    """Lines out through the Worker's postMessage; the same interface as runtime.Channel's send."""

    def __init__(self, send, send_blob) -> None:
        self._send = send
        self._send_blob = send_blob

    def send(self, message: dict) -> None:
        self._send(json.dumps(message, ensure_ascii=False, default=repr))

    def send_blob(self, file: str, data: bytes) -> None:
        """runtime.Channel.send_blob's frame, which the Deno host (deno/host.js) writes for us."""
        self._send_blob(file, data)


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
        request = json.loads(line)
        try:
            reply = self.handle(request)
        except KeyboardInterrupt:
            reply = self.interrupted_outside_the_code(request)
        return json.dumps(reply, ensure_ascii=False, default=repr)

    def interrupted_outside_the_code(self, request: dict) -> dict:
        """The reply when the timeout's interrupt lands while the guest sets up or reports a run rather than
        inside the user's code: the host raises it again every second until the result reaches it, so on a
        busy machine it can arrive after the code ended. The namespace is intact; only this run's output and
        variable report are lost."""
        self.disarm_timer()
        return {"status": "timeout" if request.get("op") == "exec" else "error", "id": request.get("id"),
                "op": "done", "error": "the exec's timeout interrupted the REPL outside your code (while it "
                "started or reported the run); variables are kept, this run's output is lost",
                "elapsed_s": 0.0, "stdout": ("", "", 0), "stderr": ("", "", 0), "vars": []}


def read_text(path: str) -> str:
    """The whole file as str (no mmap under Pyodide): the bytes and the str exist together once."""
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", "replace")


def no_processes(*args, **kwargs):
    """os.system under Pyodide reaches for a shell through Deno, which the permissions deny with an error
    Pyodide treats as fatal; a Python error is kinder (the interpreter would be restarted otherwise)."""
    raise OSError(errno.ENOSYS, "the wasm sandbox runs no programs")


def start(send, send_blob, wait_reply, exec_done, env_json: str, warning: str = ""):
    """Build the guest and announce it; returns the object whose `handle` the Worker calls.

    It runs after every load, a restored memory snapshot's too (worker.js), so whatever that snapshot froze
    is made this session's own here: the environment becomes exactly the policy's variables (Pyodide adds
    its own, one naming a host path, and a snapshot keeps its maker's), and `random`, which Pyodide imports
    at start, is reseeded from the host's entropy (else every session restored from one snapshot would
    draw the same numbers). `warning` (a snapshot that did not restore) goes to the host's log."""
    os.environ.clear()
    os.environ.update(json.loads(env_json))
    random.seed()
    for path in [path for path in sys.path_importer_cache if path.startswith("/rlm/")]:
        del sys.path_importer_cache[path]  # what a snapshot saw of our mounts, not these (all of it: +0.2 s)
    os.system = posix.system = no_processes
    guest = WasmGuest(JsChannel(send, send_blob), wait_reply, exec_done)
    ready = {"op": "ready", "python": sys.version.split()[0], "pid": os.getpid(), "uid": None}
    if warning:
        ready["warning"] = warning
    send(json.dumps(ready))
    return guest
