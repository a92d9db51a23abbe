"""The one ledger of a session: every model call it makes is checked here before it is sent.

One `Ledger` holds the counters of a whole call tree -- worker calls (`llm_query`, batches,
`sub_query`), the root calls of `rlm_complete` and of every child RLM (`rlm_query`) at any depth --
so a child inherits exactly what is left. A `Budget` is a view on a ledger at one recursion depth.
`admit()` checks every limit and reserves a call before it is sent; `spend()` records what the provider
reported after it returns, so a token or USD cap is passed by at most the calls already in flight when
it was reached.

Decisions:
- Repeats: every request for the same (model, prompt) counts, cache hits included. A cache hit costs
  nothing, but a prompt asked more than `max_repeats` times means a loop that forgot its answer, so it
  is refused (BudgetExceeded "max_repeats") rather than served forever.
- Retries of one call do not count as extra worker calls; tokens and USD count what providers reported.
- Unknown prices (local models) add nothing to the USD counter: the max_cost_usd limit cannot see them
  (`Ledger.unknown_cost_calls` counts them); use max_worker_calls and max_tokens for such models.
- Each limit's environment variable (the hint in every BudgetExceeded): RLM_MAX_WORKER_CALLS,
  RLM_MAX_TOKENS, RLM_MAX_COST_USD, RLM_MAX_DEPTH, RLM_MAX_WALL_S, RLM_MAX_BATCH, RLM_MAX_REPEATS.
- Above the sessions stands the caller's `SpendAccount` (one per bearer token on a team server): every
  session of one caller spends from it, over a rolling window (RLM_TOKEN_SPEND_WINDOW_S, a day by
  default), so closing a session and opening another does not refill anything. A rolling window rather
  than a calendar day: there is no midnight at which a member can spend two days' worth at once.
  With a `journal` (RLM_HOME/accounts/<caller>.jsonl), each call and each cost is appended as it happens
  and read back by the next server, so restarting the server does not refill the window either.
"""

from __future__ import annotations

import collections
import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from filelock import FileLock

from .errors import BudgetExceeded


@dataclass(frozen=True, slots=True)
class Spent(Mapping[str, float]):
    """What a call tree has used so far: model calls, tokens, USD (known prices), calls of unknown price, seconds.

    Also a read-only mapping of those names, as the ledger's report was a dict before it was typed: the
    Python API's `RLMResult.spent["cost_usd"]` (docs/drop-in.md) reads as it always did."""

    model_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    unknown_cost_calls: int = 0
    elapsed_s: float = 0.0

    def __getitem__(self, key: str) -> float:
        if key not in _SPENT_FIELDS:
            raise KeyError(key)
        value: float = getattr(self, key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(_SPENT_FIELDS)

    def __len__(self) -> int:
        return len(_SPENT_FIELDS)


_SPENT_FIELDS = tuple(f.name for f in fields(Spent))


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    max_worker_calls: int = 500  # model calls per call tree, roots included (cache hits excluded)
    max_tokens: int = 5_000_000  # tokens in + out per call tree
    max_cost_usd: float = 5.0  # USD per call tree, all model calls, from litellm's price map
    max_depth: int = 2  # levels of rlm_query below the root
    max_wall_s: float = 3600.0  # seconds since the call tree started; calls in flight are cut off then
    max_batch: int = 1000  # prompts in one llm_query_batched
    max_repeats: int = 20  # requests for one identical (model, prompt), cache hits included


def _locked(journal: Path) -> FileLock:
    """The lock of a spend journal, a file beside it (py-filelock: flock, or msvcrt on Windows)."""
    return FileLock(journal.with_name(journal.name + ".lock"))


@dataclass(slots=True)
class SpendAccount:
    """What one caller (a bearer token) spent on models across all its sessions in the last `window_s`."""

    max_cost_usd: float
    max_calls: int
    window_s: float
    journal: Path | None = None  # where each spending is appended for the next server (see the module's doc)
    _spending: collections.deque[tuple[float, int, float]] = field(default_factory=collections.deque)

    def __post_init__(self) -> None:
        if self.journal is not None:
            self._read_journal(self.journal)

    def _read_journal(self, journal: Path) -> None:
        """What the window still holds of earlier servers' spending (wall-clock times made monotonic); the
        journal is rewritten with just that, so it never grows beyond one window. Under the journal's lock,
        as every append is: another server of the same caller on this RLM_HOME may be spending meanwhile."""
        now_wall, now = time.time(), time.monotonic()
        kept: list[str] = []
        journal.parent.mkdir(parents=True, exist_ok=True)
        with _locked(journal):
            with contextlib.suppress(OSError):
                for line in journal.read_text(encoding="utf-8").splitlines():
                    with contextlib.suppress(ValueError, TypeError, KeyError):
                        at, calls, cost = (entry := json.loads(line))["t"], int(entry["calls"]), float(entry["cost"])
                        if now_wall - float(at) < self.window_s:
                            self._spending.append((now - (now_wall - float(at)), calls, cost))
                            kept.append(line)
            temporary = journal.with_suffix(".tmp")
            temporary.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
            temporary.replace(journal)

    def _add(self, calls: int, cost: float) -> None:
        self._spending.append((time.monotonic(), calls, cost))
        if self.journal is not None:
            with contextlib.suppress(OSError), _locked(self.journal), self.journal.open("a", encoding="utf-8") as out:
                out.write(json.dumps({"t": round(time.time(), 3), "calls": calls, "cost": cost}) + "\n")

    def _totals(self) -> tuple[int, float]:
        horizon = time.monotonic() - self.window_s
        while self._spending and self._spending[0][0] < horizon:
            self._spending.popleft()
        return sum(calls for _, calls, _ in self._spending), sum(cost for _, _, cost in self._spending)

    def admit(self) -> None:
        """Refuse a call once the caller's window is spent; else count it."""
        calls, cost = self._totals()
        window = f"{self.window_s / 3600:g} h"
        if calls >= self.max_calls:
            raise BudgetExceeded("token_max_calls", limit=self.max_calls, used=calls,
                                 hint=f"Your token made that many model calls in the last {window}, across all its "
                                      "sessions; wait, or ask the server's operator to raise "
                                      "RLM_TOKEN_MAX_CALLS (or RLM_TOKEN_SPEND_WINDOW_S).")
        if cost >= self.max_cost_usd:
            raise BudgetExceeded("token_max_cost_usd", limit=self.max_cost_usd, used=round(cost, 6),
                                 hint=f"Your token spent that much in the last {window}, across all its sessions; "
                                      "wait, or ask the server's operator to raise RLM_TOKEN_MAX_COST_USD.")
        self._add(1, 0.0)

    def spend(self, cost_usd: float) -> None:
        self._add(0, cost_usd)

    def used(self) -> dict[str, float | int]:
        calls, cost = self._totals()
        return {"model_calls": calls, "cost_usd": round(cost, 6), "window_s": self.window_s,
                "max_calls": self.max_calls, "max_cost_usd": self.max_cost_usd}


@dataclass(slots=True)
class Ledger:
    limits: BudgetLimits
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    unknown_cost_calls: int = 0
    started: float = field(default_factory=time.monotonic)
    repeats: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    account: SpendAccount | None = None  # the caller's, shared by all its sessions

    def restart_clock(self) -> None:
        """A new call tree's wall clock (a session reset); what was spent stays spent."""
        self.started = time.monotonic()

    def used(self) -> Spent:
        """What the call tree has used so far, for reports."""
        return Spent(self.calls, self.tokens, round(self.cost_usd, 6), self.unknown_cost_calls,
                     round(time.monotonic() - self.started, 1))


@dataclass(frozen=True, slots=True)
class Budget:
    ledger: Ledger
    depth: int = 0

    @classmethod
    def new(cls, limits: BudgetLimits, account: SpendAccount | None = None) -> Budget:
        return cls(Ledger(limits, account=account))

    @property
    def limits(self) -> BudgetLimits:
        return self.ledger.limits

    def child(self) -> Budget:
        """The budget of a sub-RLM: same counters (what is left of the parent's), one level deeper."""
        if not self.can_recurse():
            raise BudgetExceeded("max_depth", limit=self.limits.max_depth, used=self.depth + 1,
                                 hint="Answer at this level with llm_query, or raise RLM_MAX_DEPTH.")
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

    def admit(self, *, overtime_s: float = 0.0) -> None:
        """Check every spending limit and reserve one call (atomically: no await in between); `overtime_s` lets
        the call start that long past the wall clock (an RLM run's last call for its answer)."""
        ledger, limits = self.ledger, self.limits
        if ledger.calls >= limits.max_worker_calls:
            raise BudgetExceeded("max_worker_calls", limit=limits.max_worker_calls, used=ledger.calls,
                                 hint="Batch more text per call, or raise RLM_MAX_WORKER_CALLS.")
        if ledger.tokens >= limits.max_tokens:
            raise BudgetExceeded("max_tokens", limit=limits.max_tokens, used=ledger.tokens,
                                 hint="Filter with code before asking workers, or raise RLM_MAX_TOKENS.")
        if ledger.cost_usd >= limits.max_cost_usd:
            raise BudgetExceeded("max_cost_usd", limit=limits.max_cost_usd, used=round(ledger.cost_usd, 6),
                                 hint="Use cheaper models, or raise RLM_MAX_COST_USD (it covers every model call "
                                      "of the session: workers, sub_query and RLM roots).")
        if self.seconds_left() + overtime_s <= 0:
            raise self.out_of_time()
        if ledger.account is not None:
            ledger.account.admit()
        ledger.calls += 1

    def seconds_left(self) -> float:
        """Of the call tree's wall clock: a call in flight, or waiting to retry, is cut off at zero."""
        return self.limits.max_wall_s - (time.monotonic() - self.ledger.started)

    def out_of_time(self) -> BudgetExceeded:
        return BudgetExceeded("max_wall_s", limit=self.limits.max_wall_s,
                              used=round(time.monotonic() - self.ledger.started, 1),
                              hint="Reset the session to start a new call tree, or raise RLM_MAX_WALL_S.")

    def spend(self, tokens: int, cost_usd: float | None) -> None:
        self.ledger.tokens += tokens
        if cost_usd is None:
            self.ledger.unknown_cost_calls += 1
        else:
            self.ledger.cost_usd += cost_usd
            if self.ledger.account is not None:
                self.ledger.account.spend(cost_usd)
