"""Worker backends: one Protocol, a litellm implementation, and MCP sampling (provided by the server).

`LiteLLMBackend` is the only place that knows litellm's exception types; everything leaves here as
an error from errors.py with a `retryable` verdict.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, Protocol

from .errors import WorkerCallFailed, WorkerTimeout

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


@dataclass(frozen=True, slots=True)
class WorkerRequest:
    model: str
    prompt: str
    timeout_s: float
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class WorkerResponse:
    text: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float | None  # None: the price is unknown, never reported as zero


@cache
def load_litellm() -> ModuleType:
    """Import litellm on first use: it takes seconds, and a server that never calls a model should not pay.

    The price map must come from the installed package, never from the network at run time.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


class WorkerBackend(Protocol):
    name: str

    async def complete(self, request: WorkerRequest) -> WorkerResponse: ...


class LiteLLMBackend:
    """Any provider litellm knows, local servers included (Ollama, vLLM, llama.cpp) through api_base."""

    name = "litellm"

    def __init__(self, *, api_base: str | None = None, api_key: str | None = None) -> None:
        self.api_base = api_base
        self.api_key = api_key

    async def complete(self, request: WorkerRequest) -> WorkerResponse:
        litellm = load_litellm()
        options: dict[str, Any] = {
            "model": request.model, "messages": [{"role": "user", "content": request.prompt}],
            "timeout": request.timeout_s, "num_retries": 0,
        }
        if self.api_base:
            options["api_base"] = self.api_base
        if self.api_key:
            options["api_key"] = self.api_key
        if request.max_tokens:
            options["max_tokens"] = request.max_tokens
        try:
            response = await litellm.acompletion(**options)
        except litellm.Timeout as exc:
            raise WorkerTimeout(request.timeout_s) from exc
        except litellm.APIConnectionError as exc:
            raise WorkerCallFailed(f"cannot reach the worker model: {_short(exc)}", retryable=True) from exc
        except (litellm.AuthenticationError, litellm.PermissionDeniedError) as exc:
            raise WorkerCallFailed(f"the provider refused the credentials: {_short(exc)}", status=401) from exc
        except litellm.NotFoundError as exc:
            raise WorkerCallFailed(f"unknown model {request.model!r}: {_short(exc)}", status=404) from exc
        except Exception as exc:  # every other litellm error: decide by status code
            status = getattr(exc, "status_code", None)
            retryable = status in RETRYABLE_STATUS or isinstance(exc, litellm.RateLimitError)
            raise WorkerCallFailed(f"worker call failed: {_short(exc)}", status=status, retryable=retryable) from exc
        return _response(response, request.model)


def _response(response: Any, model: str) -> WorkerResponse:
    try:
        text = response.choices[0].message.content or ""
    except (AttributeError, IndexError, TypeError) as exc:
        raise WorkerCallFailed("the worker model sent a reply without a message", retryable=True) from exc
    usage = getattr(response, "usage", None)
    try:
        cost: float | None = float(load_litellm().completion_cost(completion_response=response))
    except Exception:  # the model has no known price
        cost = None
    return WorkerResponse(
        text=text, model=model, tokens_in=getattr(usage, "prompt_tokens", 0) or 0,
        tokens_out=getattr(usage, "completion_tokens", 0) or 0, cost_usd=cost,
    )


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]
