"""Errors of the autonomous loop (a subtree of rlm_mcp.errors).

    RLMError                 base: the loop cannot run (no root model configured, ...)
    └── RootModelError       the root model call failed (network, provider, malformed reply)
        └── RootContextFull  the conversation outgrew the root model's context window

Limits hit during a run are not errors: the run returns its best answer marked `best_effort`.
"""

from ..errors import RlmMcpError


class RLMError(RlmMcpError):
    """Base class for failures of the autonomous loop."""


class RootModelError(RLMError):
    """The root model could not be called or answered with something unusable."""


class RootContextFull(RootModelError):
    """The provider refused the request as longer than the model's context window: the loop can drop
    older turns (the REPL keeps every variable) and ask again."""
