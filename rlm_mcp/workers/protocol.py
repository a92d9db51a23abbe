"""The one interface to a model, for the root model and for workers alike: request, response, backend.

Every backend (backends.py chooses one per model string) takes a `ModelRequest` and returns a
`ModelResponse`, raising only errors.py's errors. What differs between backends is said by the backend
itself, as capabilities (`supports_tools`, `process_per_call`, `loads_litellm`), never asked of a model
string at a call site. Imports nothing of the package but errors.py.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
MAX_RETRY_AFTER_S = 60.0  # a provider asking for longer is treated as a failure, not waited for

Message = dict[str, Any]  # an OpenAI-style chat message: {"role": ..., "content": ..., "tool_calls"?: ...}


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One call: a conversation (a worker's is one user message), and the tools offered, if any."""

    model: str
    messages: tuple[Message, ...]
    timeout_s: float
    max_tokens: int | None = None
    tools: tuple[dict[str, Any], ...] = ()  # OpenAI function-tool schemas; only when the backend supports them

    @classmethod
    def of_prompt(cls, model: str, prompt: str, timeout_s: float, max_tokens: int | None = None) -> ModelRequest:
        """A worker call: one user message."""
        return cls(model, ({"role": "user", "content": prompt},), timeout_s, max_tokens)

    @property
    def single_prompt(self) -> str | None:
        """The prompt of a worker call (one user message, nothing else), else None."""
        if len(self.messages) == 1 and self.messages[0].get("role") == "user":
            return str(self.messages[0].get("content") or "")
        return None


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelResponse:
    text: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float | None  # None: the price is unknown, never reported as zero
    backend: str = ""  # the name of the backend that answered
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)


class ModelBackend(Protocol):
    """What every backend offers. `name` is reported with each answer (sub_query's `backend`)."""

    name: str
    process_per_call: bool  # each call starts a process: run fewer at once (RLM_CLI_CONCURRENCY)
    loads_litellm: bool  # its first call imports litellm (seconds): the server warms that import at start

    def supports_tools(self, model: str) -> bool:
        """Whether `model` can be offered tools through this backend (else: fenced code blocks)."""
        ...

    async def complete(self, request: ModelRequest) -> ModelResponse: ...

    async def aclose(self) -> None: ...


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The Retry-After (or retry-after-ms) of a reply, in seconds: a number or an HTTP date; None if absent."""
    if not headers:
        return None
    try:
        if isinstance(headers, dict):  # a plain dict is case-sensitive; httpx's and aiohttp's headers are not
            headers = {str(key).lower(): value for key, value in headers.items()}
        if (milliseconds := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(milliseconds) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, AttributeError):
        return None


def short(exc: BaseException) -> str:
    """An exception's message on one line, at most 300 characters."""
    return " ".join(str(exc).split())[:300]
