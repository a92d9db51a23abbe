"""Dispatch worker calls: concurrency, retries with backoff, per-call timeout, cache, accounting, budgets.

The dispatcher is shared by a whole call tree; every call names the Budget it spends from (a child
RLM passes its own, deeper view on the same ledger), or falls back to the dispatcher's own `budget`.
It never raises for a failed call: the result carries the error, so one failure cannot sink a batch.

Order of a call: repeat guard (cache hits count too) -> cache -> wait for a concurrency slot ->
budget check and reservation (inside the slot, so token and USD limits see what finished before) ->
backend with per-call timeout -> retries with exponential backoff and jitter, or the provider's
Retry-After when it is longer -> accounting, cache, trajectory. Identical prompts in flight at the same
time are sent once; the others wait and are served as cache hits.
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import anyio

from ..progress import Progress, tell
from .budget import Budget, BudgetLimits
from .errors import WorkerCallFailed, WorkerError, WorkerNotConfigured, WorkerTimeout
from .protocol import MAX_RETRY_AFTER_S, ModelBackend, ModelRequest
from .trajectory import TrajectoryLog
from .usage import Usage


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How worker calls are made. Defaults suit hosted APIs; the environment names are the lead's config."""

    model: str | None  # RLM_WORKER_MODEL, any model string backends.py accepts; None: none configured
    concurrency: int = 16  # calls in flight per dispatcher (RLM_WORKER_CONCURRENCY)
    timeout_s: float = 120.0  # per attempt, seconds (RLM_WORKER_TIMEOUT_S)
    retries: int = 3  # extra attempts on 429, 5xx, connection errors, timeouts (RLM_WORKER_RETRIES)
    backoff_s: float = 0.5  # first retry waits about this long (x0.5-1.5 jitter), doubling each time
    max_output_tokens: int | None = None  # max_tokens sent with each call; None: the provider's default
    cache_size: int = 10_000  # entries of the (model, prompt) response cache; 0 turns it off
    cache: bool = True  # False: never serve or store cached answers

    @property
    def caching(self) -> bool:
        return self.cache and self.cache_size > 0


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
    backend: str = ""  # the backend that answered (the answer's, for a cache hit); "" when none was called

    def as_reply(self) -> dict[str, object]:
        """What guest code receives through the callback channel."""
        return {"text": self.text, "error": self.error}


@dataclass(eq=False)
class WorkerDispatcher:
    """`WorkerDispatcher(settings, backend, trajectory, budget=...)`; `usage` totals the session."""

    settings: WorkerSettings
    backend: ModelBackend
    trajectory: TrajectoryLog | None = None
    budget: Budget | None = None  # used by calls that pass none; None there: a fresh default Budget
    usage: Usage = field(default_factory=Usage)
    _cache: collections.OrderedDict[tuple[str, str], WorkerResult] = field(default_factory=collections.OrderedDict)
    _inflight: dict[tuple[str, str], anyio.Event] = field(default_factory=dict)
    _limiter: anyio.CapacityLimiter | None = None

    def __post_init__(self) -> None:
        if self.budget is None:
            self.budget = Budget.new(BudgetLimits())

    def _budget(self, budget: Budget | None) -> Budget:
        if budget is None:
            assert self.budget is not None
            return self.budget
        if not isinstance(budget, Budget):  # query(prompt, "openai/x"): the model goes by keyword
            raise TypeError(f"budget must be a Budget, not {type(budget).__name__}; pass the model as model=...")
        return budget

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.settings.concurrency)
        return self._limiter

    async def aclose(self) -> None:
        """Close the backend's connections (the lean client's pool; the others keep none)."""
        await self.backend.aclose()

    def resolve_model(self, model: str | None) -> str:
        return model or self.settings.model or ""

    async def query(self, prompt: str, budget: Budget | None = None, model: str | None = None) -> WorkerResult:
        """One worker call; never raises for a failed call: the result's `error` says what went wrong."""
        budget = self._budget(budget)
        chosen = self.resolve_model(model)
        started = time.perf_counter()
        try:
            if not chosen:
                raise WorkerNotConfigured()
            budget.note_prompt(chosen, prompt)
            key = (chosen, prompt)
            result = self._cached(key)
            while result is None and (leader := self._inflight.get(key)) is not None:
                await leader.wait()  # the same prompt is on its way: share its answer (or try again if it failed)
                result = self._cached(key)
            if result is None:
                result = await self._call_once(key, budget)
        except WorkerError as exc:
            result = WorkerResult(text=f"[llm_query error: {exc}]", model=chosen, error=str(exc),
                                  latency_s=time.perf_counter() - started)
        self.usage.add(result.tokens_in, result.tokens_out, result.cost_usd, cached=result.cached,
                       failed=result.error is not None)
        self._record(result, prompt, budget)
        return result

    async def query_batched(self, prompts: Sequence[str], budget: Budget | None = None, model: str | None = None,
                            on_progress: Progress | None = None) -> list[WorkerResult]:
        """All prompts concurrently (up to the concurrency limit); results in order, failures in their slot.

        Raises BudgetExceeded only for a batch over max_batch (nothing is sent). A budget crossed midway
        leaves the answers computed so far in their slots; the later slots carry the budget error.
        """
        budget = self._budget(budget)
        budget.check_batch(len(prompts))
        results: list[WorkerResult | None] = [None] * len(prompts)
        done = 0

        async def one(index: int, prompt: str) -> None:
            nonlocal done
            results[index] = await self.query(prompt, budget, model)
            done += 1
            await tell(on_progress, done, len(prompts), f"{done}/{len(prompts)} answers")

        async with anyio.create_task_group() as group:
            for index, prompt in enumerate(prompts):
                group.start_soon(one, index, prompt)
        return [result for result in results if result is not None]

    def _cached(self, key: tuple[str, str]) -> WorkerResult | None:
        if not self.settings.caching or (hit := self._cache.get(key)) is None:
            return None
        self._cache.move_to_end(key)
        return replace(hit, cached=True, latency_s=0.0, tokens_in=0, tokens_out=0, cost_usd=0.0)

    async def _call_once(self, key: tuple[str, str], budget: Budget) -> WorkerResult:
        """Send one prompt, letting identical prompts that arrive meanwhile wait for this answer."""
        if not self.settings.caching:
            return await self._call(*key, budget)
        self._inflight[key] = done = anyio.Event()
        try:
            return await self._call(*key, budget)
        finally:
            if self._inflight.get(key) is done:
                del self._inflight[key]
            done.set()

    async def _call(self, model: str, prompt: str, budget: Budget) -> WorkerResult:
        request = ModelRequest.of_prompt(model, prompt, self.settings.timeout_s, self.settings.max_output_tokens)
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                async with self.limiter:
                    if attempt == 0:
                        budget.admit()  # in the slot: token and USD limits see every call finished before
                    # The backend's own timeout, a backstop if it ignores it, and the call tree's wall clock.
                    with anyio.fail_after(min(self.settings.timeout_s + 5, budget.seconds_left())):
                        response = await self.backend.complete(request)
                break
            except TimeoutError as exc:
                if budget.seconds_left() <= 0:
                    raise budget.out_of_time() from exc
                error: WorkerError = WorkerTimeout(self.settings.timeout_s)
                error.__cause__ = exc
            except (WorkerCallFailed, WorkerTimeout) as exc:
                error = exc
            retry_after = getattr(error, "retry_after_s", None)
            if (not getattr(error, "retryable", False) or attempt >= self.settings.retries
                    or (retry_after is not None and retry_after > MAX_RETRY_AFTER_S)):
                raise error
            attempt += 1
            backoff = self.settings.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
            wait = max(backoff, retry_after or 0.0)
            if wait >= budget.seconds_left():
                await anyio.sleep(max(budget.seconds_left(), 0.0))
                raise budget.out_of_time() from error
            await anyio.sleep(wait)  # the limiter's slot is free while waiting
        budget.spend(response.tokens_in + response.tokens_out, response.cost_usd)
        result = WorkerResult(text=response.text, model=model, tokens_in=response.tokens_in,
                              tokens_out=response.tokens_out, cost_usd=response.cost_usd,
                              latency_s=time.perf_counter() - started, backend=response.backend)
        self._remember(model, prompt, result)
        return result

    def _remember(self, model: str, prompt: str, result: WorkerResult) -> None:
        if not self.settings.caching:
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
            "cached": result.cached, "error": result.error, "depth": budget.depth, "backend": result.backend,
        })


__all__ = ["WorkerDispatcher", "WorkerResult", "WorkerSettings"]
