"""The root model behind the autonomous loop: one model call per iteration, tools when supported.

The root model is called through the same backends as workers (workers/backends.py chooses one per
model string; every provider's errors arrive as workers/errors.py's). Every call it sends is first
admitted by the session's ledger (`Budget.admit`) and its tokens and cost are counted there after it
returns, exactly like a worker call, so RLM_MAX_COST_USD and the other session limits cover root calls
at every depth; a call in flight is cut off at the ledger's wall clock.

Answers reach the loop as structured tool calls where the backend and model support them. Otherwise
(an assistant CLI, a model without tool calling, a server that refuses `tools`) the root writes fenced
code blocks and the loop learns of the answer from FINAL() running in the REPL, so no regular
expression ever has to find an answer inside prose.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..workers import Budget, ContextWindowExceeded, ModelRequest, ModelResponse, ToolCall, WorkerError, backend_for
from .errors import RootContextFull, RootModelError

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "exec_code",
            "description": "Run Python in the persistent REPL that holds the input; returns its printed output.",
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "description": "Python code to run."}},
                "required": ["code"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "final_answer",
            "description": "Finish with the complete answer to the question.",
            "parameters": {
                "type": "object",
                "properties": {"answer": {"type": "string", "description": "The final answer."}},
                "required": ["answer"],
            },
        },
    },
]
FENCE = re.compile(r"```(?:python|py|repl)?[ \t]*\n(.*?)```", re.DOTALL)


@dataclass(slots=True)
class RootReply:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    code_blocks: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    message: dict[str, Any] = field(default_factory=dict)  # the assistant message to append to history


class RootModel:
    """A model string, the backend that calls it, and whether to offer it tools."""

    def __init__(self, model: str, *, api_base: str | None = None, timeout_s: float = 300) -> None:
        self.model = model
        self.timeout_s = timeout_s
        self.backend = backend_for(model, api_base, tools=True)
        self.use_tools = self.backend.supports_tools(model)

    async def reply(self, messages: list[dict[str, Any]], budget: Budget, *, allow_tools: bool = True,
                    overtime_s: float = 0.0) -> RootReply:
        """One root call, admitted by `budget` (raises BudgetExceeded, nothing sent) and counted in it; it may
        run `overtime_s` past the ledger's wall clock (a run's last call for its answer, rlm/loop.py)."""
        offered = self.use_tools and allow_tools
        request = ModelRequest(self.model, tuple(messages), self.timeout_s, tools=tuple(TOOLS) if offered else ())
        budget.admit(overtime_s=overtime_s)
        try:
            with anyio.fail_after(budget.seconds_left() + overtime_s):
                response = await self.backend.complete(request)
        except TimeoutError as exc:  # the ledger's wall clock ran out with the call in flight
            raise budget.out_of_time() from exc
        except ContextWindowExceeded as exc:
            raise RootContextFull(f"root model {self.model}: {exc}") from exc
        except WorkerError as exc:
            if offered and getattr(exc, "status", None) in (400, 422):
                self.use_tools = False  # a server that rejects `tools`: continue with fenced code blocks
                return await self.reply(messages, budget, allow_tools=False, overtime_s=overtime_s)
            raise RootModelError(f"root model {self.model} failed: {exc}") from exc
        budget.spend(response.tokens_in + response.tokens_out, response.cost_usd)
        return _reply(response)


def _reply(response: ModelResponse) -> RootReply:
    """The backend's answer as the loop's reply: tool calls, or else the fenced code blocks of its text."""
    assistant: dict[str, Any] = {"role": "assistant", "content": response.text}
    if response.tool_calls:
        assistant["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in response.tool_calls
        ]
    blocks = [] if response.tool_calls else [b.strip() for b in FENCE.findall(response.text)]
    return RootReply(text=response.text, tool_calls=response.tool_calls, code_blocks=blocks,
                     tokens_in=response.tokens_in, tokens_out=response.tokens_out, cost_usd=response.cost_usd,
                     message=assistant)
