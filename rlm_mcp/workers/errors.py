"""Errors of model calls, the root model's and workers' alike (a subtree of rlm_mcp.errors).

    WorkerError                     base: a model call did not produce an answer
    ├── WorkerNotConfigured         no worker model and no sampling client: says how to configure one
    ├── WorkerCallFailed            the provider answered with an error (status, retryable, retry_after_s)
    │   │                           or with a body that is not a chat completion
    │   └── ContextWindowExceeded   the prompt is longer than the model's context window
    ├── WorkerTimeout               no answer within the per-call timeout
    └── BudgetExceeded              a budget stops further calls: which one, the limit, how to raise it

Each backend translates what lies beneath it into these at its own boundary: litellm's many exception
types in litellm_backend.py (the only module that knows them), HTTP replies in openai_compatible.py,
a CLI's output in cli_backend.py.
"""

from __future__ import annotations

from ..errors import RlmMcpError


class WorkerError(RlmMcpError):
    """Base class; the message is meant for the model or person reading the REPL output."""


class WorkerNotConfigured(WorkerError):
    def __init__(self) -> None:
        super().__init__(
            "no worker model is configured and this MCP client offers no sampling. Set RLM_WORKER_MODEL to a "
            "model (e.g. RLM_WORKER_MODEL=openai/gpt-4o-mini with OPENAI_API_KEY set, or a local "
            "RLM_WORKER_MODEL=ollama/llama3.2 RLM_WORKER_API_BASE=http://localhost:11434, or an assistant CLI you "
            "are logged in to, e.g. RLM_WORKER_MODEL=claude-code/haiku) and restart the server."
        )


class WorkerCallFailed(WorkerError):
    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after_s = retry_after_s  # the provider's Retry-After, when it sent one


class ContextWindowExceeded(WorkerCallFailed):
    """The provider refused the prompt as longer than the model's window: the root loop can drop older
    turns (rlm/loop.py) and ask again; a worker's caller has to send less."""


class WorkerTimeout(WorkerError):
    retryable = True

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"the worker model did not answer within {timeout_s:g} s (RLM_WORKER_TIMEOUT_S)")
        self.timeout_s = timeout_s


class BudgetExceeded(WorkerError):
    """A budget was crossed; what was computed before stays valid."""

    def __init__(self, budget: str, *, limit: float, used: float, hint: str) -> None:
        super().__init__(f"budget {budget} reached ({used:g} of {limit:g}): no further model calls. {hint}")
        self.budget = budget
        self.limit = limit
        self.used = used
        self.hint = hint
