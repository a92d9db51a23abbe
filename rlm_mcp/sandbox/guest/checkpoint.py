"""Checkpoints of the REPL's variables, made and read only here, inside the sandbox.

After each exec the guest pickles the variables the code created or changed (cloudpickle, so functions
and classes defined in the REPL are kept by value) and sends the bytes to the host as raw frames on its
channel (no base64, no JSON), which stores them as opaque files under RLM_HOME and never unpickles them
(rlm_mcp/sandbox/checkpoints.py). When a REPL
starts again, the host puts those files into the session's read-only data directory and the guest loads
them here: whatever a truncated, garbage or hostile file does while loading, it does inside the jail,
and it can at most fail its own restore.

Two rules keep checkpoints small and faithful:
- a value that *is* one of the REPL's reserved names (`context`, `files`, `grep`...) is saved as a
  reference to that name, never as a copy of a context of hundreds of megabytes;
- a function defined in the REPL is saved without its globals and bound to the REPL's namespace again
  when it is loaded, so it sees today's `data`, not a copy of the one it saw when it was saved.

Runs on the guest interpreter (Python >= 3.10, the standard library and cloudpickle, mounted read-only).
"""

import ast
import hashlib
import io
import os
import pickle
import types

FORMAT = b"rlm-checkpoint-1\n"
SCALARS = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset, range)

# The guest's, set by `bind` before any dump or load: its namespace, its reserved names (name -> value)
# and how to get a reserved name's value (a lazy context is decoded only when something refers to it).
_state: dict = {"namespace": {}, "reserved": {}, "resolve": None, "reserved_ids": {}}


def bind(namespace: dict, reserved: dict, resolve) -> None:
    _state.update(namespace=namespace, reserved=reserved, resolve=resolve)


def file_name(name: str) -> str:
    """One file per variable; hashed, so names that differ only in case stay apart on any filesystem."""
    return "v-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".pkl"


# --- what an exec changed ----------------------------------------------------------------------------
def mutated_names(tree: ast.Module) -> set:
    """Names the code may have changed in place without rebinding: `d[k] = v`, `obj.x += 1`,
    `del d[k]`, `items.append(x)`. Reading a variable (`len(data)`, `data[0]`) is not a change, so a
    large value read by every exec is not saved again each time."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            found.update(_root_name(node.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            found.update(_root_name(node.func.value))
    return found


def _root_name(node) -> set:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return {node.id} if isinstance(node, ast.Name) else set()


# --- saving -------------------------------------------------------------------------------------------
def _reserved(name: str):
    """Loading a reference to a reserved name: today's value of that name in the restored REPL."""
    return _state["resolve"](name)


def _rebound(function: types.FunctionType) -> types.FunctionType:
    """Loading a REPL function: the same code, its globals the REPL's namespace again."""
    return _copy_function(function, _state["namespace"])


def _copy_function(function: types.FunctionType, globals_: dict) -> types.FunctionType:
    copy = types.FunctionType(function.__code__, globals_, function.__name__, function.__defaults__,
                              function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__ = function.__qualname__
    copy.__doc__ = function.__doc__
    copy.__module__ = function.__module__
    copy.__dict__.update(function.__dict__)
    copy.__annotations__ = dict(function.__annotations__)
    return copy


def _pickler_class():
    import cloudpickle  # mounted read-only beside this runtime; imported only when something is saved

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj):
            reserved = _state["reserved_ids"].get(id(obj))
            if reserved is not None:
                return _reserved, (reserved,)
            if isinstance(obj, types.FunctionType) and obj.__globals__ is _state["namespace"]:
                return _rebound, (_copy_function(obj, {"__builtins__": __builtins__}),)
            return super().reducer_override(obj)

    return Pickler


def dump(name: str, value) -> bytes:
    """The bytes of one variable's file: a format line, the name, then the pickle."""
    buffer = io.BytesIO()
    buffer.write(FORMAT + name.encode("utf-8", "surrogatepass") + b"\n")
    reserved = _state["reserved_ids"] = {id(value): name for name, value in _state["reserved"].items()}
    if id(value) in reserved:  # str values never reach reducer_override: `text = context` is a reference
        pickle.dump(_ReservedRef(reserved[id(value)]), buffer, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        _pickler_class()(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


class _ReservedRef:
    def __init__(self, name: str) -> None:
        self.name = name


def save(names, deleted, namespace: dict, request: dict, send_blob) -> dict:
    """Save `names` (created or changed) and drop `deleted`; what the host needs to keep them.

    `request` carries the per-session cap in bytes and the sizes of the variables saved so far, so a
    variable that would push the session over the cap is skipped by name. Each file goes to the host
    through `send_blob(file, data)` before the exec's reply, which lists what was sent."""
    cap = int(request.get("cap_bytes", 0))
    sizes = {k: int(v) for k, v in (request.get("sizes") or {}).items()}
    used = sum(size for key, size in sizes.items() if key not in names)
    saved, unsaved = [], {}
    for name in sorted(names):
        value = namespace[name]
        try:
            data = dump(name, value)
        except Exception as exc:  # open files, generators, sockets, locks...: named, never fatal
            unsaved[name] = f"{type(value).__name__} cannot be saved ({type(exc).__name__}: {str(exc)[:120]})"
            continue
        if used + len(data) > cap:
            unsaved[name] = (f"{type(value).__name__} of {len(data):,} bytes would pass RLM_CHECKPOINT_MAX_MB "
                             f"({cap // 2**20} MB a session); not saved")
            continue
        used += len(data)
        send_blob(file_name(name), data)
        saved.append({"name": name, "file": file_name(name), "bytes": len(data)})
    return {"saved": saved, "unsaved": unsaved, "deleted": sorted(deleted)}


# --- restoring ----------------------------------------------------------------------------------------
def restore(directory: str, namespace: dict, protected) -> dict:
    """Load every variable file in `directory` into `namespace`; each failure is named, none is fatal.
    Names in `protected` (the reserved ones) are never set."""
    restored, failed = [], {}
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        entries = []
    for entry in entries:
        if not (entry.startswith("v-") and entry.endswith(".pkl")):
            continue
        name = entry
        try:
            with open(os.path.join(directory, entry), "rb") as handle:
                if handle.readline() != FORMAT:
                    raise ValueError("not a checkpoint of this format")
                name = handle.readline().decode("utf-8", "surrogatepass").rstrip("\n")
                if not name.isidentifier() or name in protected:
                    raise ValueError(f"{name[:60]!r} is not a name a checkpoint may set")
                value = pickle.load(handle)
            if isinstance(value, _ReservedRef):
                value = _state["resolve"](value.name)
        except BaseException as exc:  # a hostile file may raise anything, SystemExit included
            failed[name] = f"{type(exc).__name__}: {str(exc)[:160]}"
            continue
        namespace[name] = value
        restored.append(name)
    return {"restored": restored, "failed": failed}
