"""What model calls used: the one usage type of rlm-mcp.

The dispatcher totals its worker calls in one, an RLM run totals its root calls in another, each exec
reports the difference between two snapshots, and the MCP tools return it as it is (a pydantic model,
so its JSON schema is part of the tools' output schemas).
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Usage(BaseModel):
    calls: int = 0
    cached_calls: int = Field(0, description="of calls, answered from the session's cache (no spend)")
    failed_calls: int = Field(0, description="of calls, ended with an error")
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = Field(0.0, description="null when a model's price is unknown")

    def add(self, tokens_in: int, tokens_out: int, cost_usd: float | None, *, cached: bool = False,
            failed: bool = False) -> None:
        """Count one call; a cached or failed call adds no cost, an unpriced one makes the total unknown."""
        self.calls += 1
        self.cached_calls += cached
        self.failed_calls += failed
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        if cached or failed:
            return
        self.cost_usd = None if self.cost_usd is None or cost_usd is None else self.cost_usd + cost_usd

    def snapshot(self) -> Usage:
        return self.model_copy()

    def since(self, before: Usage) -> Usage:
        """What was used after `before` (a snapshot of the same counters)."""
        cost = None if self.cost_usd is None or before.cost_usd is None else round(self.cost_usd - before.cost_usd, 8)
        return Usage(calls=self.calls - before.calls, cached_calls=self.cached_calls - before.cached_calls,
                     failed_calls=self.failed_calls - before.failed_calls, tokens_in=self.tokens_in - before.tokens_in,
                     tokens_out=self.tokens_out - before.tokens_out, cost_usd=cost)

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def as_dict(self) -> dict[str, object]:
        return {**self.model_dump(), "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6)}
