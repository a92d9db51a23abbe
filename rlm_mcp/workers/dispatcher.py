"""Dispatch worker calls: concurrency, retries with backoff, per-call timeout, cache, accounting, budgets.

The dispatcher is shared by a whole call tree; every call names the Budget it spends from (a child
RLM passes its own, deeper view on the same ledger). It never raises for a failed call: the result
carries the error, so one failure cannot sink a batch.
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

import anyio

from .backends import WorkerBackend, WorkerRequest
from .budget import Budget
from .errors import BudgetExceeded, WorkerCallFailed, WorkerError, WorkerNotConfigured, WorkerTimeout
from .trajectory import TrajectoryLog

Progress = Callable[[int, int], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    model: str | None
    concurrency: int = 16
    timeout_s: float = 120.0
    retries: int = 3
    backoff_s: float = 0.5
    max_output_tokens: int | None = None
    cache_size: int = 10_000


@dataclass(frozen=True, slots=True)
class WorkerResult:
    text: str
    model: str
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = 0.0
    latency_s: float = 0.0
    cached: bool = False

    def as_reply(self) -> dict[str, object]:
        """What guest code receives through the callback channel."""
        return {"text": self.text, "error": self.error}


@dataclass(slots=True)
class Usage:
    calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = 0.0

    def add(self, result: WorkerResult) -> None:
        self.calls += 1
        self.cached_calls += result.cached
        self.failed_calls += result.error is not None
        self.tokens_in += result.tokens_in
        self.tokens_out += result.tokens_out
        if result.cached or result.error is not None:
            return
        unknown = self.cost_usd is None or result.cost_usd is None
        self.cost_usd = None if unknown else self.cost_usd + result.cost_usd  # type: ignore[operator]

    def since(self, before: Usage) -> Usage:
        cost = None if self.cost_usd is None or before.cost_usd is None else round(self.cost_usd - before.cost_usd, 8)
        return Usage(self.calls - before.calls, self.cached_calls - before.cached_calls,
                     self.failed_calls - before.failed_calls, self.tokens_in - before.tokens_in,
                     self.tokens_out - before.tokens_out, cost)

    def as_dict(self) -> dict[str, object]:
        return {"calls": self.calls, "cached_calls": self.cached_calls, "failed_calls": self.failed_calls,
                "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6)}


@dataclass(eq=False)
class WorkerDispatcher:
    settings: WorkerSettings
    backend: WorkerBackend
    trajectory: TrajectoryLog | None = None
    usage: Usage = field(default_factory=Usage)
    _cache: collections.OrderedDict[tuple[str, str], WorkerResult] = field(default_factory=collections.OrderedDict)
    _limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.settings.concurrency)
        return self._limiter

    async def aclose(self) -> None:
        """Close the backend's connections (the litellm backend keeps none of its own)."""
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()

    def resolve_model(self, model: str | None) -> str:
        return model or self.settings.model or ""

    async def query(self, prompt: str, budget: Budget, model: str | None = None) -> WorkerResult:
        chosen = self.resolve_model(model)
        started = time.perf_counter()
        try:
            if not chosen:
                raise WorkerNotConfigured()
            budget.note_prompt(chosen, prompt)
            cached = self._cache.get((chosen, prompt))
            if cached is not None:
                self._cache.move_to_end((chosen, prompt))
                result = replace(cached, cached=True, latency_s=0.0, tokens_in=0, tokens_out=0, cost_usd=0.0)
            else:
                budget.admit()
                result = await self._call(chosen, prompt, budget)
        except WorkerError as exc:
            result = WorkerResult(text=f"[llm_query error: {exc}]", model=chosen, error=str(exc),
                                  latency_s=time.perf_counter() - started)
        self.usage.add(result)
        self._record(result, prompt, budget)
        return result

    async def query_batched(self, prompts: Sequence[str], budget: Budget, model: str | None = None,
                            on_progress: Progress | None = None) -> list[WorkerResult]:
        """All prompts concurrently (up to the concurrency limit); results in order, failures in their slot."""
        budget.check_batch(len(prompts))
        results: list[WorkerResult | None] = [None] * len(prompts)
        done = 0

        async def one(index: int, prompt: str) -> None:
            nonlocal done
            results[index] = await self.query(prompt, budget, model)
            done += 1
            if on_progress is not None:
                maybe = on_progress(done, len(prompts))
                if maybe is not None:
                    await maybe

        async with anyio.create_task_group() as group:
            for index, prompt in enumerate(prompts):
                group.start_soon(one, index, prompt)
        return [result for result in results if result is not None]

    async def _call(self, model: str, prompt: str, budget: Budget) -> WorkerResult:
        request = WorkerRequest(model=model, prompt=prompt, timeout_s=self.settings.timeout_s,
                                max_tokens=self.settings.max_output_tokens)
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                async with self.limiter:
                    with anyio.fail_after(self.settings.timeout_s + 5):  # backstop if a backend ignores timeouts
                        response = await self.backend.complete(request)
                break
            except TimeoutError as exc:
                error: WorkerError = WorkerTimeout(self.settings.timeout_s)
                error.__cause__ = exc
            except (WorkerCallFailed, WorkerTimeout) as exc:
                error = exc
            retryable = getattr(error, "retryable", False)
            if not retryable or attempt >= self.settings.retries:
                raise error
            attempt += 1
            await anyio.sleep(self.settings.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
        budget.spend(response.tokens_in + response.tokens_out, response.cost_usd)
        result = WorkerResult(text=response.text, model=model, tokens_in=response.tokens_in,
                              tokens_out=response.tokens_out, cost_usd=response.cost_usd,
                              latency_s=time.perf_counter() - started)
        self._remember(model, prompt, result)
        return result

    def _remember(self, model: str, prompt: str, result: WorkerResult) -> None:
        if self.settings.cache_size <= 0:
            return
        self._cache[(model, prompt)] = result
        while len(self._cache) > self.settings.cache_size:
            self._cache.popitem(last=False)

    def _record(self, result: WorkerResult, prompt: str, budget: Budget) -> None:
        if self.trajectory is None:
            return
        self.trajectory.record({
            "type": "worker_call", "model": result.model, "prompt_chars": len(prompt),
            "response_chars": 0 if result.error else len(result.text), "tokens_in": result.tokens_in,
            "tokens_out": result.tokens_out, "cost_usd": result.cost_usd, "latency_s": round(result.latency_s, 4),
            "cached": result.cached, "error": result.error, "depth": budget.depth,
        })


__all__ = ["BudgetExceeded", "Usage", "WorkerDispatcher", "WorkerResult", "WorkerSettings"]
