"""A lean client for `openai/<model>` served at an explicit api_base (vLLM, llama.cpp, Ollama's /v1, a proxy).

Why not litellm here: litellm (with telemetry, debug info and the price-map download off; no setting
we tried made it leaner) spends ~3.9 ms of CPU per call, against ~1.0 ms for a bare httpx client,
~0.26 ms for bare aiohttp and ~0.33 ms for our dispatcher on this path (bench/workers_bench.py,
zero-latency fake upstream, medians). Worker fan-out is where that counts: every millisecond saved is
event-loop time left for the REPL and the MCP transport. This backend speaks only plain chat in the one
wire format those servers share (no tools: the root model, which needs them, goes through litellm).
aiohttp rather than httpx: cheaper per request, and at 64 concurrent requests its pool kept within 5%
of the ideal wall time where httpx's lost ~20%. Prices come from usage.py, without importing litellm.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import WorkerCallFailed, WorkerTimeout
from .protocol import RETRYABLE_STATUS, ModelRequest, ModelResponse, retry_after_seconds, short
from .usage import cost_of


class OpenAICompatibleBackend:
    """`ModelBackend` over one aiohttp session, opened on the first call and closed by `aclose`."""

    name = "openai-compatible"
    process_per_call = False
    loads_litellm = False

    def __init__(self, *, api_base: str, api_key: str | None = None, max_connections: int = 256) -> None:
        self.url = api_base.rstrip("/") + "/chat/completions"
        self.headers = {"authorization": f"Bearer {api_key or os.environ.get('OPENAI_API_KEY', 'none')}"}
        self.max_connections = max_connections
        self._session: Any = None

    def supports_tools(self, model: str) -> bool:
        return False

    def _client(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.max_connections))
        return self._session

    async def complete(self, request: ModelRequest) -> ModelResponse:
        import aiohttp

        model = request.model.split("/", 1)[1] if request.model.startswith("openai/") else request.model
        body: dict[str, Any] = {"model": model, "messages": list(request.messages)}
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
            raise WorkerCallFailed(f"cannot reach {request.model}: {short(exc)}", retryable=True) from exc
        if status != 200:
            text = raw[:300].decode("utf-8", "replace")
            raise WorkerCallFailed(f"call to {request.model} failed: HTTP {status}: {text}", status=status,
                                   retryable=status in RETRYABLE_STATUS, retry_after_s=retry_after)
        try:
            data = json.loads(raw)
            text = data["choices"][0]["message"].get("content") or ""
            usage = data.get("usage") or {}
            tokens_in, tokens_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise WorkerCallFailed(f"{request.model} sent a malformed reply", retryable=True) from exc
        return ModelResponse(text=text, model=request.model, tokens_in=tokens_in, tokens_out=tokens_out,
                             cost_usd=await cost_of(request.model, tokens_in, tokens_out), backend=self.name)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
