"""Errors of the rlm_mcp service layer (sessions and server).

    RlmError                      base for failures a caller can act on
    ├── UnknownContext            a context name that was never loaded
    ├── SessionLimitReached       too many concurrent sessions
    └── NoSourceGiven             load_context without text, paths or client roots

Components keep their own trees: rlm_mcp.sandbox.errors, rlm_mcp.contexts.errors,
rlm_mcp.workers (worker and budget errors), rlm_mcp.index. The server turns all of them into
messages that name the problem and the fix.
"""


class RlmError(Exception):
    """Base class: the message is written for the model or person who must fix the call."""


class UnknownContext(RlmError, KeyError):
    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class SessionLimitReached(RlmError):
    pass


class NoSourceGiven(RlmError):
    pass
