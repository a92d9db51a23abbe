"""Model calls: the one model interface (root and workers), worker dispatch, the one ledger every model
call of a session is checked against, usage and prices, and the trajectory log.

Knows nothing of the sandbox, sessions or the MCP transport (MCP sampling, the client's own model, is
asked by the server itself and never reaches this package). Imports only the standard library,
pydantic, anyio, aiohttp and litellm.
"""

from .backends import backend_for
from .budget import Budget, BudgetLimits, Ledger, SpendAccount, Spent
from .cli_backend import CliBackend
from .dispatcher import WorkerDispatcher, WorkerResult, WorkerSettings
from .errors import (
    BudgetExceeded,
    ContextWindowExceeded,
    WorkerCallFailed,
    WorkerError,
    WorkerNotConfigured,
    WorkerTimeout,
)
from .litellm_backend import LiteLLMBackend, load_litellm
from .openai_compatible import OpenAICompatibleBackend
from .protocol import ModelBackend, ModelRequest, ModelResponse, ToolCall
from .trajectory import TrajectoryLog
from .usage import Usage, price_of

__all__ = [
    "Budget",
    "BudgetExceeded",
    "BudgetLimits",
    "CliBackend",
    "ContextWindowExceeded",
    "Ledger",
    "LiteLLMBackend",
    "ModelBackend",
    "ModelRequest",
    "ModelResponse",
    "OpenAICompatibleBackend",
    "SpendAccount", "Spent",
    "ToolCall",
    "TrajectoryLog",
    "Usage",
    "WorkerCallFailed",
    "WorkerDispatcher",
    "WorkerError",
    "WorkerNotConfigured",
    "WorkerResult",
    "WorkerSettings",
    "WorkerTimeout",
    "backend_for",
    "load_litellm",
    "price_of",
]
