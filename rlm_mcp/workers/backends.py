"""Worker backends: one Protocol, litellm for any provider, and a lean OpenAI-compatible client.

`LiteLLMBackend` is the only place that knows litellm's exception types; everything leaves here as
an error from errors.py with a `retryable` verdict (and the provider's Retry-After when it sent one).
`backend_for` is the one place that chooses a backend for a configured model.
"""

from __future__ import annotations

import email.utils
import importlib.util
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import anyio

from .errors import WorkerCallFailed, WorkerTimeout

# litellm reads this while it is imported: without it, it downloads its price map from GitHub (and on a
# machine without network retries for seconds). Set here too, so any import of this package protects
# the litellm imports that follow it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
MAX_RETRY_AFTER_S = 60.0  # a provider asking for longer is treated as a failure, not waited for


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


@cache
def price_map() -> dict[str, Any]:
    """litellm's bundled price map read as plain JSON: the very table `litellm.model_cost` holds with
    LITELLM_LOCAL_MODEL_COST_MAP set, in 25 ms instead of the 3 s importing litellm takes -- which the
    first worker call of a fresh server on the lean path used to wait for."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return {}
    try:
        return json.loads(Path(spec.origin).with_name("model_prices_and_context_window_backup.json").read_bytes())
    except (OSError, ValueError):
        return {}


def price_of(model: str) -> tuple[float, float] | None:
    """(USD per input token, per output token), or None when the model has no known price."""
    table = price_map()
    entry = table.get(model) or table.get(model.split("/", 1)[-1])
    prices = (entry.get("input_cost_per_token"), entry.get("output_cost_per_token")) if entry else None
    return prices if prices is not None and None not in prices else None  # type: ignore[return-value]


async def aload_litellm() -> ModuleType:
    """`load_litellm` without freezing the event loop for the seconds the first import takes."""
    if load_litellm.cache_info().currsize:
        return load_litellm()
    return await anyio.to_thread.run_sync(load_litellm)


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
        litellm = await aload_litellm()
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
            raise WorkerCallFailed(f"cannot reach the worker model: {_detail(exc)}", retryable=True) from exc
        except (litellm.AuthenticationError, litellm.PermissionDeniedError) as exc:
            raise WorkerCallFailed(f"the provider refused the credentials: {_detail(exc)}", status=401) from exc
        except litellm.NotFoundError as exc:
            raise WorkerCallFailed(f"unknown model {request.model!r}: {_detail(exc)}", status=404) from exc
        except Exception as exc:  # every other litellm error: decide by status code and by what caused it
            status = getattr(exc, "status_code", None)
            causes = _causes(exc)
            if causes & _UNREACHABLE:  # litellm reports a dropped connection as a 500
                raise WorkerCallFailed(f"cannot reach the worker model: {_detail(exc)}", retryable=True) from exc
            if "JSONDecodeError" in causes:
                raise WorkerCallFailed(f"the worker model sent a malformed reply (not JSON): {_detail(exc)}",
                                       status=status, retryable=True) from exc
            retryable = status in RETRYABLE_STATUS or isinstance(exc, litellm.RateLimitError)
            where = f" (HTTP {status})" if status else ""
            raise WorkerCallFailed(f"worker call failed{where}: {_detail(exc)}", status=status, retryable=retryable,
                                   retry_after_s=_litellm_retry_after(exc)) from exc
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


def _litellm_retry_after(exc: Exception) -> float | None:
    """litellm keeps the provider's headers on `litellm_response_headers` (its `response` is often a stub)."""
    for headers in (getattr(exc, "litellm_response_headers", None), getattr(exc, "headers", None),
                    getattr(getattr(exc, "response", None), "headers", None)):
        if (seconds := retry_after_seconds(headers)) is not None:
            return seconds
    return None


_UNREACHABLE = {"APIConnectionError", "ConnectError", "ConnectTimeout", "RemoteProtocolError", "ReadError",
                "ClientConnectorError", "ClientOSError", "ServerDisconnectedError", "ConnectionError"}
_LITELLM_PREFIX = re.compile(r"^(litellm\.\w+:\s*)?(\w+Error:\s*)?(\w+Exception\s*-\s*)?")


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
    return _LITELLM_PREFIX.sub("", _short(exc)) or type(exc).__name__


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


class OpenAICompatibleBackend:
    """A lean path for `openai/<model>` served at an explicit api_base (vLLM, llama.cpp, Ollama's /v1, a proxy).

    Why not litellm here: litellm (with telemetry, debug info and the price-map download off; no
    setting we tried made it leaner) spends ~3.9 ms of CPU per call, against ~1.0 ms for a bare httpx
    client, ~0.26 ms for bare aiohttp and ~0.33 ms for our dispatcher on this path (bench/workers_bench.py,
    zero-latency fake upstream, medians). The issue's bar is <= 1.5x a bare client; only this path
    meets it, and every millisecond saved is event-loop time left for the REPL and the MCP transport.
    This backend speaks only the one wire format those servers share; every other model still goes
    through litellm. aiohttp rather than httpx: cheaper per request, and at 64 concurrent requests
    its pool kept within 5% of the ideal wall time where httpx's lost ~20%. Prices come from
    litellm's bundled price map (`price_of`), looked up once per model, without importing litellm.
    """

    name = "openai-compatible"

    def __init__(self, *, api_base: str, api_key: str | None = None, max_connections: int = 256) -> None:
        self.url = api_base.rstrip("/") + "/chat/completions"
        self.headers = {"authorization": f"Bearer {api_key or os.environ.get('OPENAI_API_KEY', 'none')}"}
        self.max_connections = max_connections
        self._session: Any = None
        self._prices: dict[str, tuple[float, float] | None] = {}

    def _client(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.max_connections))
        return self._session

    async def complete(self, request: WorkerRequest) -> WorkerResponse:
        import aiohttp

        model = request.model.split("/", 1)[1] if request.model.startswith("openai/") else request.model
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": request.prompt}]}
        if request.max_tokens:
            body["max_tokens"] = request.max_tokens
        try:
            async with self._client().post(self.url, json=body, headers=self.headers,
                                           timeout=aiohttp.ClientTimeout(total=request.timeout_s)) as response:
                status, raw = response.status, await response.read()
                retry_after = retry_after_seconds(response.headers) if status != 200 else None
        except TimeoutError as exc:
            raise WorkerTimeout(request.timeout_s) from exc
        except aiohttp.ClientError as exc:
            raise WorkerCallFailed(f"cannot reach the worker model: {_short(exc)}", retryable=True) from exc
        if status != 200:
            text = raw[:300].decode("utf-8", "replace")
            raise WorkerCallFailed(f"worker call failed: HTTP {status}: {text}", status=status,
                                   retryable=status in RETRYABLE_STATUS, retry_after_s=retry_after)
        try:
            data = json.loads(raw)
            text = data["choices"][0]["message"].get("content") or ""
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise WorkerCallFailed("the worker model sent a malformed reply", retryable=True) from exc
        tokens_in, tokens_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        if request.model not in self._prices:
            self._prices[request.model] = await anyio.to_thread.run_sync(price_of, request.model)
        prices = self._prices[request.model]
        cost = None if prices is None else tokens_in * prices[0] + tokens_out * prices[1]
        return WorkerResponse(text=text, model=request.model, tokens_in=tokens_in, tokens_out=tokens_out,
                              cost_usd=cost)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def uses_lean_path(model: str | None, api_base: str | None) -> bool:
    return bool(model and model.startswith("openai/") and api_base)


def backend_for(model: str | None, api_base: str | None, api_key: str | None = None) -> WorkerBackend:
    """The user's assistant CLI for `claude-code/`, `codex/` and `gemini-cli/` models (cli_backend.py); the
    lean OpenAI-compatible path for `openai/...` at an explicit api_base; litellm for everything else."""
    from .cli_backend import CliBackend, is_cli_model  # it imports this module

    if is_cli_model(model):
        return CliBackend()
    if uses_lean_path(model, api_base):
        return OpenAICompatibleBackend(api_base=api_base, api_key=api_key)
    return LiteLLMBackend(api_base=api_base, api_key=api_key)
