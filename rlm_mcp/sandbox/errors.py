"""Errors of the sandbox component (a subtree of rlm_mcp.errors).

    SandboxError                 base: something about the sandbox itself, never the user's code
    ├── SandboxUnavailable       the isolation backend cannot run here (why, and what to do)
    ├── SandboxStartError        the guest did not come up (nsjail or interpreter failed)
    ├── SandboxCrashed           the guest died or was killed (OOM, hard kill); restart() recovers
    ├── ProtocolViolation        the guest sent something invalid or oversized; it was killed
    ├── SandboxClosed            the sandbox was closed and cannot take requests
    ├── GuestCallFailed          a host-side call of a prelude function (attaching a context) failed
    ├── SnapshotFailed           the wasm backend's memory snapshot was not made; sessions start plain
    └── PolicyError (ValueError) the jail policy (RLM_SANDBOX_POLICY) cannot be read or has a bad key

Failures of user code (exceptions, timeouts) are not errors here: they come back as an ExecResult
with a status, because the REPL survives them.
"""


from ..errors import RlmMcpError


class SandboxError(RlmMcpError):
    """Base class for failures of the sandbox itself."""


class SandboxUnavailable(SandboxError):
    """Isolation cannot run on this machine; the message says why and how to fix it."""


class SandboxStartError(SandboxError):
    """The guest process did not reach its ready state."""

    def __init__(self, message: str, *, log: str = "") -> None:
        super().__init__(message + (f"\n--- jail log ---\n{log}" if log else ""))
        self.log = log


class SandboxCrashed(SandboxError):
    """The guest died; `reason` is a short human explanation (e.g. killed by signal 9)."""

    def __init__(self, reason: str, *, exit_code: int | None = None) -> None:
        super().__init__(f"the sandbox process died: {reason}")
        self.reason = reason
        self.exit_code = exit_code


class ProtocolViolation(SandboxError):
    """The guest broke the protocol (malformed or oversized message) and was killed."""


class SandboxClosed(SandboxError):
    """The sandbox was closed."""


class GuestCallFailed(SandboxError):
    """A prelude function the host called (such as attaching a context) raised inside the guest."""


class SnapshotFailed(SandboxError):
    """deno/snapshot.js wrote no snapshot; the message holds the end of what it printed."""


class PolicyError(SandboxError, ValueError):
    """The policy file or an override is unreadable, not TOML, or names an unknown key or a wrong type."""
