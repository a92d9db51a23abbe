"""Errors of the autonomous loop.

    RLMError                 base
    └── RootModelError       the root model call failed (network, provider, malformed reply)

Limits hit during a run are not errors: the run returns its best answer marked `best_effort`.
"""


class RLMError(Exception):
    """Base class for failures of the autonomous loop."""


class RootModelError(RLMError):
    """The root model could not be called or answered with something unusable."""
