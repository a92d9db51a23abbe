"""The Pyodide memory snapshot wasm sessions restore from, made by the server itself.

Why: a plain Pyodide load costs each wasm session 1.5-3 s of CPU; restoring a snapshot of the loaded
interpreter's WebAssembly memory costs ~0.3 s (measured on 2 cores: 2.85 s against 0.28 s). The snapshot lives
under RLM_HOME/wasm/snapshots, written to a temporary name and renamed into place (by deno/snapshot.js
itself: a server that stops meanwhile still leaves a whole file for the next), in a file whose name is
a key over everything that shapes that memory: Pyodide's build (a snapshot of another build is refused),
the guest code (guest/*.py and deno/*.js), the load options the policy gives, and the hash seed.

The hash seed: CPython draws one per process, and a snapshot freezes it for every session restored from
it. So the seed is drawn once per RLM_HOME (`hash_seed`: the file `hash-seed` beside the snapshots, readable
by this user alone; the value of PYTHONHASHSEED instead when the server's environment fixes one, as
CPython itself honours it), and every server run on that RLM_HOME restores the one snapshot: a new
server -- each new conversation of a host starts one -- has its guests in ~0.3 s instead of making a
snapshot first (3 s of CPU, 10 s and more on a loaded machine) while its first session loads plain. The
sessions of all those runs share the seed as the threads of one CPython process do; it stays as secret as
RLM_HOME itself, and deleting the file draws a new one. Other seeds' and keys' files are pruned to the
newest few. The snapshot is made in the background (~3 s of CPU): starts before it is ready load Pyodide
plain, with the run's seed too. Whatever goes wrong here leaves `None`: sessions then start plain, and
the log says so.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from .errors import SnapshotFailed
from .launch import GUEST_RUNTIME_DIR

log = logging.getLogger(__name__)

HOST_DIR = Path(__file__).with_name("deno")
SUFFIX = ".snap"
KEEP_OTHERS = 3  # snapshots of other runs or keys kept (about 20 MiB each); older ones are removed
MAKE_TIMEOUT_S = 180
STALE_TEMP_S = 3600  # a temporary file this old belongs to a maker that died


SEED_FILE = "hash-seed"


def _draw() -> int:
    return secrets.randbelow(2**32 - 1) + 1


RUN_HASH_SEED = _draw()  # where there is no RLM_HOME to keep one (a launcher without a snapshot directory)


def hash_seed(directory: Path | None) -> int:
    """The guests' hash seed: PYTHONHASHSEED when the server's environment fixes one; else the one of the
    snapshot `directory` (RLM_HOME/wasm/snapshots), drawn by the first server that needs it; else this run's."""
    fixed = os.environ.get("PYTHONHASHSEED", "")
    if fixed.isdigit() and int(fixed) < 2**32:
        return int(fixed)
    if directory is None:
        return RUN_HASH_SEED
    path = directory / SEED_FILE
    if path.exists():
        return _read_seed(path)
    seed, drawn = _draw(), directory / f"{SEED_FILE}.{os.getpid()}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(drawn, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(str(seed))
        os.link(drawn, path)  # whole or not at all: a server killed while writing leaves no empty seed behind
    except FileExistsError:
        return _read_seed(path)  # another server's, drawn meanwhile
    except OSError:
        return RUN_HASH_SEED
    finally:
        drawn.unlink(missing_ok=True)
    return seed


def _read_seed(path: Path) -> int:
    """The seed another server drew; this run's own if it is damaged."""
    with contextlib.suppress(OSError, ValueError):
        seed = int(path.read_text())
        if 0 < seed < 2**32:
            return seed
    return RUN_HASH_SEED
_lock = threading.Lock()
_futures: dict[Path, Future[Path | None]] = {}  # per snapshot path: found, being made, made, or failed (None)


@functools.cache
def _digest(path: Path, size: int, mtime_ns: int) -> str:
    """sha256 of a file, cached per (path, size, mtime): Pyodide's 10 MB wasm is hashed once per process."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _file_digest(path: Path) -> str:
    stat = path.stat()
    return _digest(path, stat.st_size, stat.st_mtime_ns)


def snapshot_key(pyodide_dir: Path, config: Mapping[str, Any]) -> str:
    """The key of the snapshot that `config` (snapshot.js's, the hash seed in its env) makes."""
    hasher = hashlib.sha256()
    shaping = [pyodide_dir / name for name in ("pyodide.asm.wasm", "pyodide.asm.js", "python_stdlib.zip")]
    shaping += sorted(GUEST_RUNTIME_DIR.glob("*.py")) + sorted(HOST_DIR.glob("*.js"))
    for path in shaping:
        hasher.update(f"{path.name}:{_file_digest(path)}\n".encode())
    hasher.update(json.dumps(config, sort_keys=True).encode())
    return hasher.hexdigest()[:32]


def snapshot_soon(directory: Path, pyodide_dir: Path, config: Mapping[str, Any], deno: str,
                  env: Mapping[str, str]) -> Future[Path | None]:
    """The snapshot for `config`: found, or made in a background thread (once per process and key), so no
    start waits for it -- the ones before it is ready load Pyodide plain. Its result is None when it could
    not be made, which the log explains once."""
    path = directory / f"{snapshot_key(pyodide_dir, config)}{SUFFIX}"
    with _lock:
        future = _futures.get(path)
        if future is not None and not (future.done() and (made := future.result()) is not None and not made.is_file()):
            return future  # (a file that went -- pruned by another server's run -- is made again)
        future = _futures[path] = Future()
    if path.is_file():  # this run's seed fixed by PYTHONHASHSEED, and made by an earlier run
        with contextlib.suppress(OSError):
            os.utime(path)  # in use: the newest files survive pruning
        future.set_result(path)
    else:  # a daemon: a process that ends first (`rlm-mcp ask`) does not wait for it
        threading.Thread(target=lambda: future.set_result(_make_logged(path, config, deno, env)),
                         name="rlm-pyodide-snapshot", daemon=True).start()
    return future


def _make_logged(path: Path, config: Mapping[str, Any], deno: str, env: Mapping[str, str]) -> Path | None:
    started = time.perf_counter()
    try:
        _make(path, config, deno, env)
    except (OSError, subprocess.SubprocessError, SnapshotFailed) as exc:
        log.warning("could not make the Pyodide memory snapshot (%s): wasm sessions start plain, 1.5-3 s each "
                    "instead of ~0.4 s", exc)
        return None
    log.info("made the Pyodide memory snapshot %s in %.1f s", path, time.perf_counter() - started)
    with contextlib.suppress(OSError):
        _prune(path.parent, keep=path)
    return path


def _make(path: Path, config: Mapping[str, Any], deno: str, env: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    mounted = [Path(host) for host, _ in config["mounts"]]  # the guest runtime and its libraries
    readable = ",".join(str(p) for p in (Path(config["pyodide_dir"]), HOST_DIR, *mounted, temporary, path))
    argv = [deno, "run", "--no-prompt", "--no-config", "--no-lock", "--cached-only", f"--allow-read={readable}",
            f"--allow-write={temporary},{path}",  # these two files (a rename reads them too); no network
            str(HOST_DIR / "snapshot.js"), json.dumps(dict(config)), str(temporary), str(path)]
    try:
        completed = subprocess.run(argv, env=dict(env), cwd=path.parent, capture_output=True, text=True,
                                   timeout=MAKE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        temporary.unlink(missing_ok=True)
        raise
    if completed.returncode != 0 or not path.is_file():
        temporary.unlink(missing_ok=True)
        tail = completed.stderr.strip().splitlines()[-3:] or ["no output"]
        raise SnapshotFailed(f"deno exited with {completed.returncode}: {' / '.join(tail)[-400:]}")


def _prune(directory: Path, keep: Path) -> None:
    """Remove all but the newest KEEP_OTHERS snapshots besides `keep`, and temporary files of dead makers. A
    server whose file goes finds it missing at its next session, which then starts plain and says so."""
    now = time.time()
    snapshots = []
    for entry in directory.iterdir():
        try:
            stat = entry.stat()
        except OSError:
            continue
        if entry.name.endswith(".tmp") and now - stat.st_mtime > STALE_TEMP_S:
            entry.unlink(missing_ok=True)
        elif entry.suffix == SUFFIX and entry != keep:
            snapshots.append((stat.st_mtime, entry))
    for _, entry in sorted(snapshots, reverse=True)[KEEP_OTHERS:]:
        try:
            entry.unlink(missing_ok=True)
        except OSError:  # Windows: in use by a restore right now; the next prune takes it
            continue
