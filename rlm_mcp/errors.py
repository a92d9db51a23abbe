"""The errors of rlm-mcp: one tree under `RlmMcpError`, every message naming the problem and its fix.

    RlmMcpError                         base of every error rlm-mcp raises on purpose
    ├── BadRequest (ValueError)         a request cannot be served as asked; nothing was done
    │   ├── UnknownContext (KeyError)   a context name that was never loaded
    │   ├── UnknownSession              handles.py: a session handle this caller does not hold
    │   │   ├── SessionExpired          its session was closed (idle, or its connection ended)
    │   │   └── ReplicaGone             minted by another replica, or by this one before it restarted
    │   └── IndexNotReady               indexing.py: the code index is still building or failed
    ├── SessionLimitReached             too many concurrent sessions
    ├── ConfigError (ValueError)        config.py: a setting is invalid (names it and where it came from)
    │   └── InsecureBind                http.py: serving beyond loopback without a bearer token
    ├── SandboxError                    sandbox/errors.py: the sandbox itself, never the user's code
    │   ├── SandboxUnavailable          no usable isolation on this machine
    │   ├── SandboxStartError           the jail or its guest did not come up
    │   ├── SandboxCrashed              the guest died outside any exec
    │   ├── ProtocolViolation           the guest broke the wire protocol
    │   ├── SandboxClosed               used after close
    │   ├── GuestCallFailed             a prelude function called by the host raised
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
the whole tree into MCP errors at one boundary (`mcp_errors.to_mcp_error`); the CLI prints the
message and exits 1, also at one place (cli.py's `main`).
"""

import contextlib
from collections.abc import Iterator


class RlmMcpError(Exception):
    """Base class: the message is written for the model or person who must fix the call."""


class BadRequest(RlmMcpError, ValueError):
    """The request is wrong (a missing, conflicting or out-of-range argument); the message says how to fix it."""


class UnknownContext(BadRequest, KeyError):
    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class SessionLimitReached(RlmMcpError):
    pass


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
