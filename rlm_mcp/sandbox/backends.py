"""Which isolation backend runs: nsjail where it works, else WebAssembly; `none` only when named.

`auto` (the default) probes nsjail once per process: its binary, a guest interpreter the jail can
read, and one real jail (user namespaces may be switched off even on Linux). Every launcher carries
the reason it was chosen, which the session status and `rlm-mcp doctor` show.
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Literal, get_args

from ..progress import Progress
from .errors import SandboxUnavailable
from .interpreter import find_guest_interpreter
from .launch import Launcher, NsjailLauncher, UnisolatedLauncher
from .policy import SandboxPolicy
from .wasm import wasm_launcher

SandboxKind = Literal["auto", "wasm", "nsjail", "none"]
SANDBOX_KINDS: tuple[str, ...] = get_args(SandboxKind)  # the one list: settings, `--sandbox`, doctor
KINDS_HELP = ("auto (the default: nsjail where it works, else wasm), wasm (CPython in WebAssembly under Deno), "
              "nsjail, or none (NO isolation: model code runs as you, dev only)")  # RLM_SANDBOX's and --sandbox's
Backend = Literal["wasm", "nsjail", "none"]  # what `auto` becomes
UNISOLATED_WARNING = (
    "RLM_SANDBOX=none: model-written code runs WITHOUT ISOLATION, with your user's files, network and "
    "credentials. Use this only for development on a machine where neither nsjail nor wasm can run."
)
PROBE_TIMEOUT_S = 10


def choose_backend(kind: SandboxKind, policy: SandboxPolicy, guest_python: str | None = None) -> tuple[Backend, str]:
    """The backend `kind` runs on here, and why (the reason the session status and `rlm-mcp doctor` show):
    `auto` is nsjail where a test jail runs, else wasm."""
    if kind == "auto":
        problem = nsjail_problem(policy, guest_python)
        if problem is None:
            return "nsjail", "auto: nsjail works on this machine"
        return "wasm", f"auto: nsjail cannot run here ({problem})"
    if kind == "none":
        return "none", "RLM_SANDBOX=none: NO isolation"
    if kind in SANDBOX_KINDS:
        return kind, f"RLM_SANDBOX={kind}"
    raise SandboxUnavailable(f"unknown sandbox kind {kind!r}: use one of {', '.join(SANDBOX_KINDS)} (auto is the "
                             "default; none runs code without isolation)")


def create_launcher(kind: SandboxKind, policy: SandboxPolicy, guest_python: str | None = None, *,
                    home: Path | None = None, on_progress: Progress | None = None) -> Launcher:
    """The launcher for `kind` with its reason; wasm needs `home` (RLM_HOME) for its Pyodide cache, and
    reports the first fetch of Pyodide to `on_progress`."""
    backend, reason = choose_backend(kind, policy, guest_python)
    launcher: Launcher
    if backend == "nsjail":
        launcher = NsjailLauncher(policy, find_guest_interpreter(guest_python))
    elif backend == "wasm":
        launcher = wasm_launcher(policy, _home(home), on_progress)
    else:
        logging.getLogger("rlm_mcp").warning(UNISOLATED_WARNING)
        launcher = UnisolatedLauncher(policy, find_guest_interpreter(guest_python))
    launcher.reason = reason
    return launcher


def _home(home: Path | None) -> Path:
    if home is None:
        raise SandboxUnavailable("the wasm backend needs RLM_HOME (home=...) for its Pyodide cache")
    return home


def nsjail_problem(policy: SandboxPolicy, guest_python: str | None = None) -> str | None:
    """Why nsjail cannot isolate code here (first line of the reason), or None when it can."""
    try:
        launcher = NsjailLauncher(policy, find_guest_interpreter(guest_python))
    except SandboxUnavailable as exc:
        return str(exc).splitlines()[0]
    return _jail_probe(launcher.binary, launcher.interpreter.executable, policy.identity.uid, policy.identity.gid)


@functools.cache
def _jail_probe(binary: str, interpreter: str, uid: int, gid: int) -> str | None:
    """Start one trivial jail (new namespaces, the jail's uid); cached: the machine does not change."""
    program = shutil.which("true") or interpreter
    command = [binary, "-Mo", "--quiet", "--chroot", "/", "--user", str(uid), "--group", str(gid), "--", program]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nsjail does not start: {exc}"
    if completed.returncode != 0:
        errors = [line for line in completed.stderr.splitlines() if "[E]" in line or "[F]" in line]
        return f"a test jail failed: {(errors or completed.stderr.splitlines() or ['no output'])[-1][-200:]}"
    return None
