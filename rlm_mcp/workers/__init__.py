"""Model calls: worker dispatch, the one ledger every model call of a session is checked against, usage,
and the trajectory log.

Knows nothing of the sandbox, sessions or the MCP transport (MCP sampling, the client's own model, is
asked by the server itself and never reaches this package). Imports only the standard library,
pydantic, anyio, aiohttp and litellm.
"""

from .backends import (
    LiteLLMBackend,
    OpenAICompatibleBackend,
    WorkerBackend,
    WorkerRequest,
    WorkerResponse,
    backend_for,
)
from .budget import Budget, BudgetLimits, Ledger, SpendAccount
from .dispatcher import WorkerDispatcher, WorkerResult, WorkerSettings
from .errors import BudgetExceeded, WorkerCallFailed, WorkerError, WorkerNotConfigured, WorkerTimeout
from .trajectory import TrajectoryLog
from .usage import Usage

__all__ = [
    "Budget",
    "BudgetExceeded",
    "BudgetLimits",
    "Ledger",
    "LiteLLMBackend",
    "OpenAICompatibleBackend",
    "SpendAccount",
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
