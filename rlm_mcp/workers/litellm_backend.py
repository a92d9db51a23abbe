"""Any provider litellm knows, local servers included (Ollama, vLLM, llama.cpp) through api_base.

This is the only module that knows litellm's exception types and reply objects: every call leaves
here as a `ModelResponse` (tool calls parsed) or as an error from errors.py with a `retryable` verdict
(and the provider's Retry-After when it sent one), a prompt too long for the model's window as
`ContextWindowExceeded`.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from types import ModuleType
from typing import Any

import anyio

from .errors import ContextWindowExceeded, WorkerCallFailed, WorkerTimeout
from .protocol import RETRYABLE_STATUS, ModelRequest, ModelResponse, ToolCall, retry_after_seconds, short
from .usage import cost_of, price_map

# litellm reads this while it is imported: without it, it downloads its price map from GitHub (and on a
# machine without network retries for seconds). Set here too, so any import of this package protects
# the litellm imports that follow it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

_UNREACHABLE = {"APIConnectionError", "ConnectError", "ConnectTimeout", "RemoteProtocolError", "ReadError",
                "ClientConnectorError", "ClientOSError", "ServerDisconnectedError", "ConnectionError"}
_LITELLM_PREFIX = re.compile(r"^(litellm\.\w+:\s*)?(\w+Error:\s*)?(\w+Exception\s*-\s*)?")


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


async def aload_litellm() -> ModuleType:
    """`load_litellm` without freezing the event loop for the seconds the first import takes."""
    if load_litellm.cache_info().currsize:
        return load_litellm()
    return await anyio.to_thread.run_sync(load_litellm)


class LiteLLMBackend:
    """`ModelBackend` for every model string litellm understands."""

    name = "litellm"
    process_per_call = False
    loads_litellm = True

    def __init__(self, *, api_base: str | None = None, api_key: str | None = None) -> None:
        self.api_base = api_base
        self.api_key = api_key

    def supports_tools(self, model: str) -> bool:
        """litellm's verdict for models it knows; for unknown (local, self-hosted) ones, yes: most
        OpenAI-compatible servers accept tools, and the root falls back to fenced code if one refuses."""
        table = price_map()
        if model not in table and model.split("/", 1)[-1] not in table:
            return True
        try:
            return bool(load_litellm().supports_function_calling(model=model))
        except Exception:  # litellm raises for models it half knows
            return True

    async def complete(self, request: ModelRequest) -> ModelResponse:
        litellm = await aload_litellm()
        options: dict[str, Any] = {"model": request.model, "messages": list(request.messages),
                                   "timeout": request.timeout_s, "num_retries": 0}
        if self.api_base:
            options["api_base"] = self.api_base
        if self.api_key:
            options["api_key"] = self.api_key
        if request.max_tokens:
            options["max_tokens"] = request.max_tokens
        if request.tools:
            options["tools"] = list(request.tools)
        try:
            response = await litellm.acompletion(**options)
        except Exception as exc:
            raise _translated(litellm, exc, request) from exc
        return await self._response(response, request)

    async def _response(self, response: Any, request: ModelRequest) -> ModelResponse:
        try:
            message = response.choices[0].message
        except (AttributeError, IndexError, TypeError) as exc:
            raise WorkerCallFailed(f"{request.model} sent a reply without a message", retryable=True) from exc
        usage = getattr(response, "usage", None)
        tokens_in = getattr(usage, "prompt_tokens", 0) or 0
        tokens_out = getattr(usage, "completion_tokens", 0) or 0
        calls = _tool_calls(message) if request.tools else ()
        return ModelResponse(text=message.content or "", model=request.model, tokens_in=tokens_in,
                             tokens_out=tokens_out, cost_usd=await cost_of(request.model, tokens_in, tokens_out),
                             backend=self.name, tool_calls=calls)

    async def aclose(self) -> None:
        """litellm keeps no connections of ours to close."""


def _tool_calls(message: Any) -> tuple[ToolCall, ...]:
    calls: list[ToolCall] = []
    for raw in getattr(message, "tool_calls", None) or []:
        try:
            arguments = json.loads(raw.function.arguments or "{}")
        except (TypeError, ValueError):
            arguments = {"_malformed": str(raw.function.arguments)[:2000]}
        if not isinstance(arguments, dict):
            arguments = {"_malformed": str(raw.function.arguments)[:2000]}
        calls.append(ToolCall(id=raw.id or f"call_{len(calls)}", name=raw.function.name or "", arguments=arguments))
    return tuple(calls)


def _translated(litellm: ModuleType, exc: Exception, request: ModelRequest) -> Exception:
    """litellm's exception as ours: the one place its types are known."""
    if isinstance(exc, litellm.Timeout):
        return WorkerTimeout(request.timeout_s)
    if isinstance(exc, litellm.ContextWindowExceededError):  # a 400 too, but not a refusal of tools
        return ContextWindowExceeded(f"{request.model}: the prompt is longer than its context window "
                                     f"({_detail(exc)})")
    if isinstance(exc, litellm.APIConnectionError):
        return WorkerCallFailed(f"cannot reach {request.model}: {_detail(exc)}", retryable=True)
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return WorkerCallFailed(f"the provider refused the credentials: {_detail(exc)}", status=401)
    if isinstance(exc, litellm.NotFoundError):
        return WorkerCallFailed(f"unknown model {request.model!r}: {_detail(exc)}", status=404)
    status = getattr(exc, "status_code", None)  # every other error: decide by status code and by its cause
    causes = _causes(exc)
    if causes & _UNREACHABLE:  # litellm reports a dropped connection as a 500
        return WorkerCallFailed(f"cannot reach {request.model}: {_detail(exc)}", retryable=True)
    if "JSONDecodeError" in causes:
        return WorkerCallFailed(f"{request.model} sent a malformed reply (not JSON): {_detail(exc)}",
                                status=status, retryable=True)
    retryable = status in RETRYABLE_STATUS or isinstance(exc, litellm.RateLimitError)
    where = f" (HTTP {status})" if status else ""
    return WorkerCallFailed(f"call to {request.model} failed{where}: {_detail(exc)}", status=status,
                            retryable=retryable, retry_after_s=_retry_after(exc))


def _retry_after(exc: Exception) -> float | None:
    """litellm keeps the provider's headers on `litellm_response_headers` (its `response` is often a stub)."""
    for headers in (getattr(exc, "litellm_response_headers", None), getattr(exc, "headers", None),
                    getattr(getattr(exc, "response", None), "headers", None)):
        if (seconds := retry_after_seconds(headers)) is not None:
            return seconds
    return None


def _causes(exc: BaseException) -> set[str]:
    """Class names along the cause chain (litellm wraps openai, which wraps httpx or aiohttp)."""
    names: set[str] = set()
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            break
        names.update(cls.__name__ for cls in type(current).__mro__)
        current = current.__cause__ or current.__context__
    return names


def _detail(exc: Exception) -> str:
    """litellm's message without its "litellm.XError: XError: OpenAIException - " preamble."""
    return _LITELLM_PREFIX.sub("", short(exc)) or type(exc).__name__
