"""The WebAssembly backend: CPython from npm's pyodide package, run by Deno (the `deno` wheel).

Where nsjail cannot run (macOS, Windows, Linux without user namespaces) this is the isolation:
WebAssembly's own (no system calls, one linear memory) plus Deno's permissions (read only Pyodide,
the guest runtime and the session's data; no network, subprocess, environment or writes). The Deno
side lives in deno/host.js and deno/worker.js, the Python side in guest/wasm_runtime.py; the REPL
(repl.py) talks to it exactly as to the nsjail guest. Pyodide itself is fetched once through the npm
registry into RLM_HOME/wasm, never while code runs.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

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

log = logging.getLogger(__name__)

HOST_DIR = Path(__file__).with_name("deno")
FETCH_TIMEOUT_S = 600
FIX = "run `rlm-mcp doctor --fix` once with network access (it fetches Pyodide through the npm registry)"


def deno_binary() -> str:
    """The deno from the `deno` wheel (a dependency of rlm-mcp on every platform)."""
    try:
        from deno import find_deno_bin
    except ImportError as exc:
        raise SandboxUnavailable("the wasm sandbox needs Deno: pip install deno") from exc
    return str(find_deno_bin())


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

    def fetch(self) -> Path:
        """Fetch Pyodide through the npm registry (Deno's npm client honours NPM_CONFIG_REGISTRY)."""
        log.warning("fetching Pyodide %s (about 12 MB) from the npm registry into %s, once", self.version,
                    self.deno_dir)
        self.deno_dir.mkdir(parents=True, exist_ok=True)
        command = [deno_binary(), "cache", "--no-config", "--node-modules-dir=none", f"npm:pyodide@{self.version}"]
        env = {**os.environ, "DENO_DIR": str(self.deno_dir), "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
        try:
            completed = subprocess.run(command, env=env, cwd=self.deno_dir, capture_output=True, text=True,
                                       timeout=FETCH_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"could not fetch Pyodide {self.version}: {exc}; {FIX}") from exc
        found = self.find()
        if completed.returncode != 0 or found is None:
            lines = completed.stderr.strip().splitlines()
            detail = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "no output")
            detail = detail.strip()[:300]
            raise SandboxUnavailable(
                f"could not fetch Pyodide {self.version} from the npm registry ({detail}); the wasm sandbox "
                f"needs it once, cached in {self.deno_dir}: {FIX}"
            )
        return found

    def ensure(self) -> Path:
        return self.find() or self.fetch()


class WasmLauncher:
    """Starts Deno with the permissions the policy allows; every value comes from the policy."""

    isolated = True
    name = "wasm"
    expected_uid = None  # WebAssembly has no users
    reason = ""

    def __init__(self, policy: SandboxPolicy, pyodide_dir: Path, deno_dir: Path) -> None:
        self.policy = policy
        self.pyodide_dir = pyodide_dir
        self.deno_dir = deno_dir.resolve()
        self.deno = deno_binary()

    @property
    def max_context_bytes(self) -> int:
        return self.policy.wasm.max_context_mb * 1024 * 1024

    def config(self, data_dir: Path) -> dict:
        limits = self.policy.limits
        return {
            "pyodide_dir": str(self.pyodide_dir) + os.sep,
            "pyodide_url": self.pyodide_dir.as_uri() + "/",
            "env": dict(var.split("=", 1) for var in self.policy.environment.vars),
            "mounts": [[str(GUEST_RUNTIME_DIR), JAIL_RUNTIME_DIR], *map(list, guest_library_mounts()),
                       [str(data_dir), JAIL_DATA_DIR]],
            "guest_dir": JAIL_RUNTIME_DIR,
            "memory_mb": min(self.policy.wasm.memory_mb, 4096),
            "scratch_mb": limits.tmp_size_mb,
            "file_size_mb": limits.file_size_mb,
            "max_reply_bytes": limits.max_message_mb * 1024 * 1024,
        }

    def plan(self, data_dir: Path) -> LaunchPlan:
        libraries = [host for host, _ in guest_library_mounts()]
        readable = ",".join(str(path) for path in (self.pyodide_dir, GUEST_RUNTIME_DIR, HOST_DIR, *libraries, data_dir))
        argv = [
            self.deno, "run", "--no-prompt", "--no-config", "--no-lock", "--cached-only",
            f"--allow-read={readable}",  # and nothing else: no net, run, env, ffi, sys or write
            str(HOST_DIR / "host.js"), json.dumps(self.config(data_dir)),
        ]
        env = {"DENO_DIR": str(self.deno_dir), "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
        if "SYSTEMROOT" in os.environ:  # Windows processes need it to start at all
            env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
        return LaunchPlan(argv=argv, env=env, cwd=str(data_dir))

    def guest_path(self, host_path: Path, data_dir: Path) -> str:
        return jail_data_path(host_path, data_dir)


def wasm_launcher(policy: SandboxPolicy, home: Path) -> WasmLauncher:
    """The wasm launcher, fetching Pyodide first if this RLM_HOME has never had it."""
    cache = PyodideCache(home / "wasm", policy.wasm.pyodide_version)
    return WasmLauncher(policy, cache.ensure(), cache.deno_dir)
