"""Find and describe the Python interpreter the guest runs on.

The guest needs only the standard library, but the jail maps it to an unprivileged uid, so the
interpreter and its stdlib must be readable by "others": pyenv builds under /root (mode 0700) are not.
The probe runs the interpreter once to learn its real paths, which become read-only binds.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import SandboxUnavailable

MIN_GUEST_VERSION = (3, 10)
FALLBACK_INTERPRETERS = ("/usr/bin/python3", "/usr/local/bin/python3")
_PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'executable': sys.executable, "
    "'version': list(sys.version_info[:3]), 'base_prefix': sys.base_prefix, "
    "'stdlib': sysconfig.get_paths()['stdlib'], 'platstdlib': sysconfig.get_paths()['platstdlib'], "
    "'libdir': sysconfig.get_config_var('LIBDIR') or ''}))"
)


@dataclass(frozen=True, slots=True)
class GuestInterpreter:
    executable: str
    version: tuple[int, int, int]
    bind_paths: tuple[str, ...]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def readable_by_others(path: str | Path) -> bool:
    """True when an unrelated unprivileged uid can reach and read `path`."""
    path = Path(path).resolve()
    try:
        for parent in reversed(path.parents):
            if not parent.stat().st_mode & stat.S_IXOTH:
                return False
        mode = path.stat().st_mode
    except OSError:
        return False
    needed = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() or os.access(path, os.X_OK) else 0)
    return mode & needed == needed


@cache
def probe(executable: str) -> GuestInterpreter:
    """Describe an interpreter; raise SandboxUnavailable with the fix when it cannot serve as guest."""
    real = os.path.realpath(executable)
    if not os.path.isfile(real):
        raise SandboxUnavailable(f"guest interpreter {executable!r} does not exist; set RLM_GUEST_PYTHON")
    try:
        output = subprocess.run(
            [real, "-I", "-S", "-c", _PROBE], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"guest interpreter {real} does not run: {exc}") from exc
    info = json.loads(output)
    version = tuple(info["version"])
    if version[:2] < MIN_GUEST_VERSION:
        raise SandboxUnavailable(
            f"guest interpreter {real} is Python {'.'.join(map(str, version))}; the guest needs "
            f">= {'.'.join(map(str, MIN_GUEST_VERSION))}. Set RLM_GUEST_PYTHON to a newer one."
        )
    paths = {real, info["stdlib"], info["platstdlib"]}
    if info["libdir"] and any(Path(info["libdir"]).glob("libpython*")):
        paths.add(info["libdir"])
    unreadable = sorted(p for p in paths if not readable_by_others(p))
    if unreadable:
        raise SandboxUnavailable(
            f"guest interpreter {real} is not readable by the jail's unprivileged uid ({', '.join(unreadable)} "
            "or a parent directory lacks 'others' read/execute). Point RLM_GUEST_PYTHON at a system "
            "interpreter such as /usr/bin/python3, or install one outside a private home directory."
        )
    return GuestInterpreter(executable=real, version=version, bind_paths=tuple(sorted(paths)))  # type: ignore[arg-type]


def find_guest_interpreter(configured: str | None = None) -> GuestInterpreter:
    """The configured interpreter, else this one if the jail can read it, else a system python3."""
    if configured:
        return probe(configured)
    problems = []
    for candidate in (sys.executable, *FALLBACK_INTERPRETERS):
        try:
            return probe(candidate)
        except SandboxUnavailable as exc:
            problems.append(str(exc))
    raise SandboxUnavailable(
        "no Python >= 3.10 readable by the jail's unprivileged uid was found. Install one "
        "(Debian/Ubuntu: apt-get install python3) or set RLM_GUEST_PYTHON.\n" + "\n".join(problems)
    )
