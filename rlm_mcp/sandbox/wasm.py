"""The WebAssembly backend: CPython from npm's pyodide package, run by Deno (the `deno` wheel).

Where nsjail cannot run (macOS, Windows, Linux without user namespaces) this is the isolation:
WebAssembly's own (no system calls, one linear memory) plus Deno's permissions (read only Pyodide,
the guest runtime and the session's data; no network, subprocess, environment or writes). The Deno
side lives in deno/host.js and deno/worker.js, the Python side in guest/wasm_runtime.py; the REPL
(repl.py) talks to it exactly as to the nsjail guest. Pyodide itself is fetched once through the npm
registry into RLM_HOME/wasm, never while code runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sysconfig
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..errors import binary_fault
from ..progress import Progress
from .errors import SandboxUnavailable
from .launch import (
    GUEST_RUNTIME_DIR,
    JAIL_DATA_DIR,
    JAIL_RUNTIME_DIR,
    LaunchPlan,
    guest_library_mounts,
    jail_data_path,
)
from .policy import SandboxPolicy
from .snapshot import HOST_DIR, hash_seed, snapshot_soon

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 600
FETCH_BYTES = 12_600_000  # Pyodide 0.29.0 as npm unpacks it: the scale of the fetch's progress
PROGRESS_EVERY_S = 0.5
_fetching_lock = threading.Lock()
_fetch_locks: dict[Path, threading.Lock] = {}  # one fetch at a time per DENO_DIR ...
_fetch_listeners: dict[Path, list[Progress]] = {}  # ... heard by every session waiting for it
FIX = "run `rlm-mcp doctor --fix` once with network access (it fetches Pyodide through the npm registry)"


def deno_binary() -> str:
    """The deno from the `deno` wheel (a dependency of rlm-mcp on every platform); a binary gone or not
    executable (a damaged install) is named, with the reinstall that brings it back."""
    try:
        from deno import find_deno_bin
    except ImportError as exc:
        raise SandboxUnavailable("the wasm sandbox needs Deno: pip install deno") from exc
    try:
        found = str(find_deno_bin())
    except (OSError, RuntimeError) as exc:  # the wheel is there, its binary is not
        # The wheel puts it among this environment's scripts; find_deno_bin's error names the last place it
        # looked (the user's scripts), which would send the reader to the wrong directory.
        expected = Path(sysconfig.get_path("scripts")) / f"deno{sysconfig.get_config_var('EXE') or ''}"
        raise SandboxUnavailable(str(binary_fault(expected, missing=True))) from exc
    if not os.access(found, os.X_OK):
        raise SandboxUnavailable(str(binary_fault(found, missing=False)))
    return found


class PyodideCache:
    """Pyodide `version` in Deno's npm cache under `root` (RLM_HOME/wasm/deno)."""

    def __init__(self, root: Path, version: str) -> None:
        self.deno_dir = root / "deno"
        self.version = version

    def find(self) -> Path | None:
        """The cached package directory (the registry's host name is part of the path), or None."""
        for wasm in sorted(self.deno_dir.glob(f"npm/*/pyodide/{self.version}/pyodide.asm.wasm")):
            if (wasm.parent / "python_stdlib.zip").is_file():
                # Resolved: Deno treats Pyodide as an npm package (CommonJS parts included) only when its
                # path lies inside DENO_DIR as Deno itself resolves it, symlinks followed.
                return wasm.parent.resolve()
        return None

    def discard(self) -> bool:
        """Remove this version's cached package, a damaged copy (a cut download, a full disk), so the next fetch
        brings it whole: Deno fetches a package again only when its directory is gone. Whether one was there."""
        found = False
        for package in self.deno_dir.glob(f"npm/*/pyodide/{self.version}"):
            shutil.rmtree(package, ignore_errors=True)
            found = True
        return found

    def refetch(self) -> Path:
        """Fetch this version again over a cached copy that does not start (damaged, yet every file there): the
        copy is moved aside, and put back if the fetch fails, so a `doctor --fix` offline loses nothing."""
        moved = []
        for package in self.deno_dir.glob(f"npm/*/pyodide/{self.version}"):
            aside = package.with_name(f".{self.version}.damaged")
            shutil.rmtree(aside, ignore_errors=True)
            package.rename(aside)
            moved.append((aside, package))
        try:
            found = self.fetch()
        except SandboxUnavailable:
            for aside, package in moved:
                if not package.exists():
                    aside.rename(package)
            raise
        for aside, _ in moved:
            shutil.rmtree(aside, ignore_errors=True)
        return found

    def fetch(self, on_progress: Progress | None = None) -> Path:
        """Fetch Pyodide through the npm registry (Deno's npm client honours NPM_CONFIG_REGISTRY), telling
        `on_progress` what has arrived about twice a second (Deno prints no progress of its own). A cached copy
        that misses a file is discarded first: Deno would call it cached and fetch nothing."""
        log.warning("fetching Pyodide %s (about 12 MB) from the npm registry into %s, once", self.version,
                    self.deno_dir)
        if self.find() is None and self.discard():
            log.warning("Pyodide's cached files in %s were incomplete: fetching them again", self.deno_dir)
        self.deno_dir.mkdir(parents=True, exist_ok=True)
        command = [deno_binary(), "cache", "--no-config", "--node-modules-dir=none", f"npm:pyodide@{self.version}"]
        env = {**os.environ, "DENO_DIR": str(self.deno_dir), "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
        try:
            process = subprocess.Popen(command, env=env, cwd=self.deno_dir, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            raise SandboxUnavailable(f"could not fetch Pyodide {self.version}: {exc}; {FIX}") from exc
        try:
            stderr = self._wait_reporting(process, on_progress)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.wait()
            raise SandboxUnavailable(f"could not fetch Pyodide {self.version}: {exc}; {FIX}") from exc
        found = self.find()
        if process.returncode != 0 or found is None:
            lines = stderr.strip().splitlines()
            detail = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "no output")
            detail = detail.strip()[:300]
            raise SandboxUnavailable(
                f"could not fetch Pyodide {self.version} from the npm registry ({detail}); the wasm sandbox "
                f"needs it once, cached in {self.deno_dir}: {FIX}"
            )
        if on_progress is not None:
            on_progress(FETCH_BYTES, FETCH_BYTES, f"fetched Pyodide {self.version}")
        return found

    def _wait_reporting(self, process: subprocess.Popen[str], on_progress: Progress | None) -> str:
        """Wait for `deno cache`, reporting the bytes under DENO_DIR/npm; its stderr."""
        deadline = time.monotonic() + FETCH_TIMEOUT_S
        while True:
            try:
                return process.communicate(timeout=PROGRESS_EVERY_S)[1] or ""
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise
            if on_progress is not None:
                arrived = min(_bytes_under(self.deno_dir / "npm"), FETCH_BYTES)
                on_progress(arrived, FETCH_BYTES, f"fetching Pyodide {self.version} once (about "
                            f"{FETCH_BYTES / 2**20:.0f} MB): {arrived / 2**20:.1f} MB so far")

    def ensure(self, on_progress: Progress | None = None) -> Path:
        """The cached Pyodide, fetched first if missing: once, however many sessions start at the same time
        (the others wait for that fetch and hear its progress too)."""
        found = self.find()
        if found is not None:
            return found
        key = self.deno_dir.resolve()
        with _fetching_lock:
            lock = _fetch_locks.setdefault(key, threading.Lock())
            listeners = _fetch_listeners.setdefault(key, [])
        if on_progress is not None:
            listeners.append(on_progress)
        try:
            with lock:
                return self.find() or self.fetch(lambda *report: [listen(*report) for listen in list(listeners)])
        finally:
            if on_progress is not None:
                listeners.remove(on_progress)


def _bytes_under(directory: Path) -> int:
    total = 0
    for root, _, names in os.walk(directory):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


class WasmLauncher:
    """Starts Deno with the permissions the policy allows; every value comes from the policy."""

    isolated = True
    name = "wasm"
    expected_uid = None  # WebAssembly has no users
    reason = ""

    def __init__(self, policy: SandboxPolicy, pyodide_dir: Path, deno_dir: Path,
                 snapshot_dir: Path | None = None, seed: int | None = None) -> None:
        self.policy = policy
        self.pyodide_dir = pyodide_dir
        self.deno_dir = deno_dir.resolve()
        self.deno = deno_binary()
        self.hash_seed = seed if seed is not None else hash_seed(snapshot_dir)  # snapshot.py: one per RLM_HOME
        self.snapshot_dir = snapshot_dir
        # A start costs 0.4-3 s of CPU: the server keeps one guest started ahead unless [wasm] spare = false.
        self.keeps_spare = policy.wasm.spare
        self.start_fix = (f"if Pyodide's files in {self.deno_dir} are damaged (a cut download, a full disk; the log "
                          "below says), run `rlm-mcp doctor --fix`: it fetches them again")
        self._made_snapshot()  # starts making it now, in the background, if it is not there

    def _made_snapshot(self) -> Future[Path | None] | None:
        if self.snapshot_dir is None:
            return None
        return snapshot_soon(self.snapshot_dir, self.pyodide_dir, self.snapshot_config(), self.deno,
                             self.environment())

    @property
    def snapshot(self) -> Path | None:
        """The memory snapshot starts restore from; None while it is being made, or when it cannot be."""
        made = self._made_snapshot()
        return made.result() if made is not None and made.done() else None

    def wait_for_snapshot(self, timeout_s: float | None = None) -> Path | None:
        """The snapshot once made (None if it cannot be): for a caller that would rather wait than start plain."""
        made = self._made_snapshot()
        return None if made is None else made.result(timeout_s)

    @property
    def max_context_bytes(self) -> int:
        return self.policy.wasm.max_context_mb * 1024 * 1024

    def snapshot_config(self) -> dict[str, Any]:
        """What deno/snapshot.js loads Pyodide with: a session's own options (guest_setup.js) with this
        RLM_HOME's hash seed, which every session restored from the snapshot keeps (see snapshot.py)."""
        return {
            "pyodide_dir": str(self.pyodide_dir) + os.sep,
            "pyodide_url": self.pyodide_dir.as_uri() + "/",
            "env": {**self.policy_env(), "PYTHONHASHSEED": str(self.hash_seed)},
            "mounts": [[str(GUEST_RUNTIME_DIR), JAIL_RUNTIME_DIR], *map(list, guest_library_mounts())],
            "guest_dir": JAIL_RUNTIME_DIR,
            "memory_mb": min(self.policy.wasm.memory_mb, 4096),
        }

    def policy_env(self) -> dict[str, str]:
        return dict(var.split("=", 1) for var in self.policy.environment.vars)

    def config(self, data_dir: Path) -> dict[str, Any]:
        """A session's: Pyodide loaded with this RLM_HOME's hash seed (restored or not, every session has it),
        the guest's environment exactly the policy's."""
        limits = self.policy.limits
        snapshot = self.snapshot
        return {
            **self.snapshot_config(),
            "guest_env": self.policy_env(),
            "mounts": [*self.snapshot_config()["mounts"], [str(data_dir), JAIL_DATA_DIR]],
            "snapshot": str(snapshot) if snapshot else None,
            "scratch_mb": limits.tmp_size_mb,
            "file_size_mb": limits.file_size_mb,
            "max_reply_bytes": limits.max_message_mb * 1024 * 1024,
        }

    def environment(self) -> dict[str, str]:
        env = {"DENO_DIR": str(self.deno_dir), "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
        if "SYSTEMROOT" in os.environ:  # Windows processes need it to start at all
            env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
        return env

    def plan(self, data_dir: Path) -> LaunchPlan:
        config = self.config(data_dir)
        libraries = [Path(host) for host, _ in guest_library_mounts()]
        readable = [self.pyodide_dir, GUEST_RUNTIME_DIR, HOST_DIR, *libraries, data_dir]
        readable += [Path(config["snapshot"])] if config["snapshot"] else []
        argv = [
            self.deno, "run", "--no-prompt", "--no-config", "--no-lock", "--cached-only",
            f"--allow-read={','.join(map(str, readable))}",  # and nothing else: no net, run, env, ffi, sys or write
            str(HOST_DIR / "host.js"), json.dumps(config),
        ]
        return LaunchPlan(argv=argv, env=self.environment(), cwd=str(data_dir))

    def guest_path(self, host_path: Path, data_dir: Path) -> str:
        return jail_data_path(host_path, data_dir)


def wasm_launcher(policy: SandboxPolicy, home: Path, on_progress: Progress | None = None) -> WasmLauncher:
    """The wasm launcher, fetching Pyodide first if this RLM_HOME has never had it (`on_progress` hears how
    far), and making this server run's memory snapshot if it has none yet (once: later calls find it)."""
    cache = PyodideCache(home / "wasm", policy.wasm.pyodide_version)
    return WasmLauncher(policy, cache.ensure(on_progress), cache.deno_dir, home / "wasm" / "snapshots")
