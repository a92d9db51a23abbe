"""Worker model calls for the REPL and the host: dispatch, budgets, accounting and the trajectory log.

Knows nothing of the sandbox's internals or the MCP transport; the server plugs in an MCP-sampling
backend through the same `WorkerBackend` Protocol as litellm.
"""

from .backends import (
    LiteLLMBackend,
    OpenAICompatibleBackend,
    WorkerBackend,
    WorkerRequest,
    WorkerResponse,
    backend_for,
)
from .budget import Budget, BudgetLimits, Ledger
from .dispatcher import Usage, WorkerDispatcher, WorkerResult, WorkerSettings
from .errors import BudgetExceeded, WorkerCallFailed, WorkerError, WorkerNotConfigured, WorkerTimeout
from .trajectory import TrajectoryLog

__all__ = [
    "Budget",
    "BudgetExceeded",
    "BudgetLimits",
    "Ledger",
    "LiteLLMBackend",
    "OpenAICompatibleBackend",
    "TrajectoryLog",
    "Usage",
    "WorkerBackend",
    "WorkerCallFailed",
    "WorkerDispatcher",
    "WorkerError",
    "WorkerNotConfigured",
    "WorkerRequest",
    "WorkerResponse",
    "WorkerResult",
    "WorkerSettings",
    "WorkerTimeout",
    "backend_for",
]
