"""Budgets per session and per call tree (DESIGN.md section 6).

One `Ledger` holds the counters of a whole call tree (a session and every sub-RLM it spawns), so a
child inherits exactly what is left. A `Budget` is a view on a ledger at one recursion depth.
Checks happen before a call is sent; spending is recorded after it returns.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

from .errors import BudgetExceeded


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    max_worker_calls: int = 500
    max_tokens: int = 5_000_000
    max_cost_usd: float = 5.0
    max_depth: int = 2
    max_wall_s: float = 3600.0
    max_batch: int = 1000
    max_repeats: int = 20


@dataclass(slots=True)
class Ledger:
    limits: BudgetLimits
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    unknown_cost_calls: int = 0
    started: float = field(default_factory=time.monotonic)
    repeats: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)


@dataclass(frozen=True, slots=True)
class Budget:
    ledger: Ledger
    depth: int = 0

    @classmethod
    def new(cls, limits: BudgetLimits) -> Budget:
        return cls(Ledger(limits))

    @property
    def limits(self) -> BudgetLimits:
        return self.ledger.limits

    def child(self) -> Budget:
        """The budget of a sub-RLM: same counters, one level deeper."""
        return Budget(self.ledger, self.depth + 1)

    def can_recurse(self) -> bool:
        return self.depth + 1 <= self.limits.max_depth

    def check_batch(self, size: int) -> None:
        if size > self.limits.max_batch:
            raise BudgetExceeded("max_batch", limit=self.limits.max_batch, used=size,
                                 hint="Send fewer, larger prompts (chunk more coarsely) or raise RLM_MAX_BATCH.")

    def note_prompt(self, model: str, prompt: str) -> None:
        """Count one more sending of this prompt (cached or not): a runaway loop stops here."""
        key = (model, prompt)
        if self.ledger.repeats[key] >= self.limits.max_repeats:
            raise BudgetExceeded("max_repeats", limit=self.limits.max_repeats, used=self.ledger.repeats[key],
                                 hint="The same prompt keeps being sent: keep its answer in a variable, "
                                      "or raise RLM_MAX_REPEATS.")
        self.ledger.repeats[key] += 1

    def admit(self) -> None:
        """Check every spending limit and reserve one call (atomically: no await in between)."""
        ledger, limits = self.ledger, self.limits
        if ledger.calls >= limits.max_worker_calls:
            raise BudgetExceeded("max_worker_calls", limit=limits.max_worker_calls, used=ledger.calls,
                                 hint="Batch more text per call, or raise RLM_MAX_WORKER_CALLS.")
        if ledger.tokens >= limits.max_tokens:
            raise BudgetExceeded("max_tokens", limit=limits.max_tokens, used=ledger.tokens,
                                 hint="Filter with code before asking workers, or raise RLM_MAX_TOKENS.")
        if ledger.cost_usd >= limits.max_cost_usd:
            raise BudgetExceeded("max_cost_usd", limit=limits.max_cost_usd, used=round(ledger.cost_usd, 6),
                                 hint="Use a cheaper worker model, or raise RLM_MAX_COST_USD.")
        elapsed = time.monotonic() - ledger.started
        if elapsed >= limits.max_wall_s:
            raise BudgetExceeded("max_wall_s", limit=limits.max_wall_s, used=round(elapsed, 1),
                                 hint="Reset the session to start a new call tree, or raise RLM_MAX_WALL_S.")
        ledger.calls += 1

    def spend(self, tokens: int, cost_usd: float | None) -> None:
        self.ledger.tokens += tokens
        if cost_usd is None:
            self.ledger.unknown_cost_calls += 1
        else:
            self.ledger.cost_usd += cost_usd
