"""What model calls used and what they cost: the one usage type and the one price table of rlm-mcp.

The dispatcher totals its worker calls in one `Usage`, an RLM run totals its root calls in another,
each exec reports the difference between two snapshots, and the MCP tools return it as it is (a
pydantic model, so its JSON schema is part of the tools' output schemas). Every backend prices its
calls with `cost_of`, from litellm's bundled price map, so a model costs the same whichever backend
answered, and a model without a known price costs "unknown", never zero.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, Field


@cache
def price_map() -> dict[str, Any]:
    """litellm's bundled price map read as plain JSON: the very table `litellm.model_cost` holds with
    LITELLM_LOCAL_MODEL_COST_MAP set, without the seconds importing litellm takes, and never from the
    network."""
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


async def cost_of(model: str, tokens_in: int, tokens_out: int) -> float | None:
    """What one call cost at `model`'s list price; None when the price is unknown. The price map is read
    off the event loop the first time."""
    if not price_map.cache_info().currsize:
        await anyio.to_thread.run_sync(price_map)
    prices = price_of(model)
    return None if prices is None else tokens_in * prices[0] + tokens_out * prices[1]


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
