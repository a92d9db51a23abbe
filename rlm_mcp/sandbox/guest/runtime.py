"""The guest side of the sandbox: a persistent Python REPL speaking JSON lines to its host.

Runs inside the jail on the guest interpreter with only the standard library (it must work on any
Python >= 3.10 a user points RLM_GUEST_PYTHON at). The control channel is a private copy of fds 0 and
1; the real fd 0 becomes /dev/null and fd 1 is pointed at stderr, so nothing user code prints, writes
to fd 1 or reads from stdin can corrupt the protocol. The main thread runs user code (so SIGALRM can
interrupt it); a reader thread routes callback replies to the guest threads waiting for them.
"""

import ast
import itertools
import json
import mmap
import os
import queue
import re
import reprlib
import signal
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Libraries the host mounts read-only for the guest's own use (cloudpickle, for checkpoints.py); never on
# the path the host's site-packages, which the jail does not see.
sys.path.append(os.environ.pop("RLM_GUEST_LIB", "/rlm/lib"))

import checkpoint

PREVIEW = reprlib.Repr()
PREVIEW.maxstring = 80
PREVIEW.maxother = 80
PREVIEW.maxlist = PREVIEW.maxtuple = PREVIEW.maxdict = PREVIEW.maxset = 6
MAX_REPORTED_VARS = 60
_MISSING = object()  # stands for a reserved name the code deleted


class ExecTimeout(BaseException):
    """Raised in the main thread when an exec outlives its timeout (BaseException: `except Exception`
    in user code does not swallow it; the timer re-fires in case a bare `except:` does)."""


class CallbackError(Exception):
    """The host answered a callback with an error; the message is the host's."""


class CappedWriter:
    """A text sink that keeps the head and the tail of what is written, counting what it drops.

    Capping happens while writing, so a loop printing gigabytes costs the guest no memory.
    """

    def __init__(self, limit: int) -> None:
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head: list[str] = []
        self.head_len = 0
        self.tail: list[str] = []
        self.tail_len = 0
        self.dropped = 0
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self.lock:
            room = self.head_limit - self.head_len
            if room > 0:
                self.head.append(text[:room])
                self.head_len += min(room, len(text))
                text = text[room:]
            if text:
                self.tail.append(text)
                self.tail_len += len(text)
                if self.tail_len > 2 * self.tail_limit + 4096:
                    self._trim_tail()
        return len(text)

    def _trim_tail(self) -> None:
        joined = "".join(self.tail)
        keep = joined[-self.tail_limit :] if self.tail_limit else ""
        self.dropped += len(joined) - len(keep)
        self.tail = [keep]
        self.tail_len = len(keep)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def result(self) -> tuple[str, str, int]:
        """(head, tail, dropped chars): the host joins head and tail around a marker."""
        with self.lock:
            self._trim_tail()
            return "".join(self.head), "".join(self.tail), self.dropped


class Channel:
    """JSON lines over the private copies of fds 0 and 1."""

    def __init__(self) -> None:
        self.reader = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
        self.writer = os.fdopen(os.dup(1), "wb", buffering=0)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(2, 1)
        self.write_lock = threading.Lock()

    def send(self, message: dict) -> None:
        data = json.dumps(message, ensure_ascii=False, default=repr).encode("utf-8", "surrogatepass")
        with self.write_lock:
            self.writer.write(data + b"\n")

    def send_blob(self, file: str, data: bytes) -> None:
        """Raw bytes for the host: a header line naming the file and its size, then the bytes themselves."""
        header = json.dumps({"op": "blob", "file": file, "bytes": len(data)}).encode() + b"\n"
        with self.write_lock:
            self.writer.write(header)
            view = memoryview(data)
            while view:
                view = view[self.writer.write(view):]

    def receive(self):
        line = self.reader.readline()
        if not line:
            return None
        return json.loads(line)


class Guest:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.requests: queue.Queue = queue.Queue()
        self.pending: dict[int, list] = {}
        self.pending_lock = threading.Lock()
        self.callback_ids = itertools.count(1)
        self.namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
        self.reserved: dict = {}
        self.reserve("_rlm_callback", self.callback)
        self.lazy: dict = {}  # reserved name -> factory, run when code first names it
        self.reserve("_rlm_read_text", read_text)
        self.reserve("_rlm_reserve", self.reserve)
        self.reserve("_rlm_reserve_lazy", self.reserve_lazy)

    def reserve(self, name: str, value) -> None:
        self.reserved[name] = value
        self.namespace[name] = value

    def reserve_lazy(self, name: str, factory) -> None:
        """Reserve `name` without paying for its value until code mentions it: a context of hundreds of
        megabytes becomes a str of up to four bytes per character, and many sessions only ever search
        it through helpers that read the mapped file instead."""
        self.reserved.pop(name, None)
        self.namespace.pop(name, None)
        self.lazy[name] = factory

    def materialize(self, names) -> None:
        """Give the lazy `names` their values (the code about to run uses them: see `mentioned`)."""
        for name in names:
            self.reserve(name, self.lazy.pop(name)())

    # --- callbacks: guest code asks the host and waits -------------------------------------------
    def callback(self, name: str, payload=None):
        """Ask the host to run `name` with a JSON payload and wait for its answer; safe from threads."""
        cid = next(self.callback_ids)
        slot: list = [threading.Event(), None]
        with self.pending_lock:
            self.pending[cid] = slot
        try:
            self.channel.send({"op": "callback", "cid": cid, "name": name, "payload": payload})
            slot[0].wait()
        finally:
            with self.pending_lock:
                self.pending.pop(cid, None)
        reply = slot[1]
        if not reply.get("ok"):
            raise CallbackError(str(reply.get("error", "callback failed")))
        return reply.get("value")

    def read_loop(self) -> None:
        """Reader thread: callback replies wake their waiters, everything else queues for main."""
        while True:
            message = self.channel.receive()
            if message is None:
                self.requests.put({"op": "shutdown"})
                return
            if message.get("op") == "reply":
                with self.pending_lock:
                    slot = self.pending.get(message.get("cid"))
                if slot is not None:
                    slot[1] = message
                    slot[0].set()
            else:
                self.requests.put(message)

    # --- requests ---------------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            request = self.requests.get()
            if request.get("op") == "shutdown":
                return
            self.channel.send(self.handle(request))

    def handle(self, request: dict) -> dict:
        """One request's reply (the wasm guest calls this directly, once per request)."""
        handlers = {"exec": self.do_exec, "get": self.do_get, "call": self.do_call, "prelude": self.do_prelude,
                    "restore": self.do_restore}
        op = request.get("op")
        handler = handlers.get(op)
        reply = handler(request) if handler else {"status": "error", "error": f"unknown op {op!r}"}
        reply["id"] = request.get("id")
        reply["op"] = "done"
        return reply

    # --- the exec timeout: SIGALRM here; the wasm guest is interrupted from outside instead ----------
    timeout_errors: tuple = (ExecTimeout,)

    def arm_timer(self, timeout: float) -> None:
        signal.signal(signal.SIGALRM, raise_timeout)
        signal.setitimer(signal.ITIMER_REAL, timeout, 1.0)

    def disarm_timer(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)

    def do_prelude(self, request: dict) -> dict:
        """Run helper code once; every public name it defines becomes reserved."""
        before = set(self.namespace)
        exec(compile(request["code"], "<rlm-prelude>", "exec"), self.namespace)
        for name in set(self.namespace) - before:
            self.reserved[name] = self.namespace[name]
        return {"status": "ok"}

    def do_call(self, request: dict) -> dict:
        function = self.reserved.get(request.get("fn"))
        if function is None or not callable(function):
            return {"status": "error", "error": f"no reserved function {request.get('fn')!r}"}
        try:
            return {"status": "ok", "value": function(*request.get("args", []))}
        except Exception as exc:
            return {"status": "error", "error": f"{type(exc).__name__}: {exc}"}

    def restore_reserved(self) -> str:
        """Put back every reserved name the code rebound or deleted; a note for stderr naming them, so the
        user learns why `json = ...` did not stick (nothing when all were left alone)."""
        changed = sorted(name for name, value in self.reserved.items()
                         if not name.startswith("_") and self.namespace.get(name, _MISSING) is not value)
        self.namespace.update(self.reserved)
        if not changed:
            return ""
        return (f"note: {', '.join(changed)} {'is a reserved name' if len(changed) == 1 else 'are reserved names'} "
                "of this REPL and restored after each run; keep your value under another name\n")

    def do_get(self, request: dict) -> dict:
        name = request.get("name")
        if name in self.lazy:
            self.materialize([name])
        if name not in self.namespace:
            return {"status": "error", "error": f"no variable named {name!r}"}
        value = self.namespace[name]
        limit = int(request.get("max_chars", 1 << 20))
        text, is_json = render_value(value, limit)
        return {
            "status": "ok", "type": type(value).__name__, "value": text[:limit],
            "json": is_json, "truncated": len(text) > limit, "chars": len(text),
        }

    def do_exec(self, request: dict) -> dict:
        limit = int(request.get("max_output", 20000))
        timeout = float(request.get("timeout_s", 60))
        out, err = CappedWriter(limit), CappedWriter(limit)
        before = snapshot(self.namespace, self.reserved)
        status, error, mutated = "ok", None, set()
        started = time.perf_counter()
        sys.stdout, sys.stderr = out, err
        self.arm_timer(timeout)
        try:
            tree = ast.parse(request["code"], "<exec>", "exec")
            mutated = checkpoint.mutated_names(tree)
            if self.lazy:
                self.materialize(mentioned(tree, set(self.lazy)))
            run_cell(tree, self.namespace)
        except self.timeout_errors:
            status, error = "timeout", f"execution exceeded {timeout:g} s and was interrupted"
        except SyntaxError as exc:
            status, error = "error", f"SyntaxError: {exc}"
            err.write(format_exception(exc))
        except BaseException as exc:  # user code may raise anything, SystemExit included
            status, error = "error", f"{type(exc).__name__}: {exc}"
            err.write(format_exception(exc))
        finally:
            self.disarm_timer()
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        elapsed = time.perf_counter() - started
        err.write(self.restore_reserved())
        after = snapshot(self.namespace, self.reserved)
        reply = {
            "status": status, "error": error, "elapsed_s": elapsed,
            "stdout": out.result(), "stderr": err.result(), "vars": changed_vars(before, after, self.namespace),
        }
        if request.get("checkpoint") is not None:
            reply["checkpoint"] = self.save_checkpoint(before, after, mutated, request["checkpoint"])
        return reply

    # --- checkpoints: the variables an exec changed, saved by the guest (checkpoint.py) --------------
    def save_checkpoint(self, before: dict, after: dict, mutated: set, request: dict) -> dict:
        changed = {name for name, mark in after.items() if before.get(name) != mark}
        changed |= {name for name in mutated & set(after) if not isinstance(self.namespace[name], checkpoint.SCALARS)}
        deleted = set(before) - set(after)
        if not changed and not deleted:
            return {}
        checkpoint.bind(self.namespace, self.reserved, self.reserved_value)
        try:
            return checkpoint.save(changed, deleted, self.namespace, request, self.channel.send_blob)
        except BaseException as exc:  # an interrupt while saving (wasm's late timeout): this save only
            return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}

    def reserved_value(self, name: str):
        if name in self.lazy:
            self.materialize([name])
        return self.namespace[name]

    def do_restore(self, request: dict) -> dict:
        """Load the variables of a checkpoint the host put into the data directory (read-only)."""
        checkpoint.bind(self.namespace, self.reserved, self.reserved_value)
        protected = set(self.reserved) | set(self.lazy)
        return {"status": "ok", **checkpoint.restore(str(request.get("dir")), self.namespace, protected)}


def mentioned(tree: ast.Module, names: set) -> set:
    """Which of `names` the code uses as a name, declares global, or writes inside a string (as in
    globals()['context']); a keyword argument of that name (`rlm_query(q, context=...)`) is not a use."""
    words = {name: re.compile(rf"\b{re.escape(name)}\b") for name in names}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in names:
            found.add(node.id)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            found.update(names.intersection(node.names))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(name for name, word in words.items() if word.search(node.value))
    return found


def raise_timeout(signum, frame):
    raise ExecTimeout()


def run_cell(tree: ast.Module, namespace: dict) -> None:
    """Run parsed code like a notebook cell: a trailing expression's repr is printed."""
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        tree.body.pop()
        exec(compile(tree, "<exec>", "exec"), namespace)
        value = eval(compile(ast.Expression(last.value), "<exec>", "eval"), namespace)
        if value is not None:
            namespace["_"] = value
            print(repr(value))
    else:
        exec(compile(tree, "<exec>", "exec"), namespace)


def format_exception(exc: BaseException) -> str:
    """The traceback without the runtime's own frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if f.filename in ("<exec>", "<rlm-prelude>") or not f.filename.startswith("/rlm/")]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(user)] if user else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def size_of(value):
    try:
        return len(value)
    except Exception:
        return None


def snapshot(namespace: dict, reserved: dict) -> dict:
    return {
        name: (id(value), type(value).__name__, size_of(value))
        for name, value in namespace.items()
        if not name.startswith("_") and name not in reserved
    }


def changed_vars(before: dict, after: dict, namespace: dict) -> list:
    changed = [name for name, mark in after.items() if before.get(name) != mark]
    report = []
    for name in changed[:MAX_REPORTED_VARS]:
        value = namespace[name]
        try:
            preview = PREVIEW.repr(value)
        except Exception as exc:
            preview = f"<repr failed: {type(exc).__name__}>"
        report.append({"name": name, "type": type(value).__name__, "size": size_of(value), "preview": preview})
    if len(changed) > MAX_REPORTED_VARS:  # a cut says so: how many more, and where to see them all
        more = len(changed) - MAX_REPORTED_VARS
        report.append({"name": f"... and {more} more", "type": "not listed", "size": more,
                       "preview": "SHOW_VARS() lists every variable"})
    deleted = [name for name in before if name not in after]
    if deleted:
        more = f" ({len(deleted) - 20} more not named)" if len(deleted) > 20 else ""
        report.append({"name": ", ".join(deleted[:20]), "type": "deleted", "size": None, "preview": more.strip()})
    return report


def render_value(value, limit: int) -> tuple[str, bool]:
    """JSON when the value is plain data, repr otherwise; huge strings are cut before rendering."""
    if isinstance(value, str) and len(value) > limit:
        value = value[: limit + 1]
    try:
        return json.dumps(value, ensure_ascii=False), True
    except (TypeError, ValueError):
        return reprlib.Repr().repr(value) if size_of(value) and size_of(value) > 10000 else repr(value), False


def read_text(path: str) -> str:
    """Decode a read-only mounted file straight from a memory map (one copy: the str itself)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return ""
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return str(mapped, "utf-8", "replace")


def main() -> None:
    import lockdown  # Linux only: the wasm guest imports this module without it

    channel = Channel()
    lockdown.deny_exec()
    guest = Guest(channel)
    threading.Thread(target=guest.read_loop, name="rlm-channel", daemon=True).start()
    channel.send({"op": "ready", "python": sys.version.split()[0], "pid": os.getpid(), "uid": os.getuid()})
    guest.serve()


if __name__ == "__main__":
    main()
