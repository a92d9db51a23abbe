"""The root model behind the autonomous loop: one litellm call per iteration, tools when supported.

Every call it sends is first admitted by the session's ledger (`Budget.admit`) and its tokens and
cost are counted there after it returns, exactly like a worker call, so RLM_MAX_COST_USD and the other
session limits cover root calls at every depth; a call in flight is cut off at the ledger's wall clock.

Answers reach the loop as structured tool calls where the model supports them. For models without
tool calling, the fallback reads fenced code blocks and the loop learns of the answer from FINAL()
running in the REPL, so no regular expression ever has to find an answer inside prose.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..workers import Budget, WorkerError
from ..workers.backends import aload_litellm, load_litellm
from ..workers.cli_backend import CliBackend, as_one_prompt, is_cli_model, says_context_full
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


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class RootReply:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    code_blocks: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    message: dict[str, Any] = field(default_factory=dict)  # the assistant message to append to history


class RootModel:
    """A litellm model string plus how to call it."""

    def __init__(self, model: str, *, api_base: str | None = None, timeout_s: float = 300,
                 use_tools: bool | None = None) -> None:
        self.model = model
        self.api_base = api_base
        self.timeout_s = timeout_s
        if is_cli_model(model):  # an assistant CLI takes text only: fenced code blocks, never tool calls
            use_tools = False
        self.use_tools = _supports_tools(model) if use_tools is None else use_tools

    async def reply(self, messages: list[dict[str, Any]], budget: Budget, *, allow_tools: bool = True) -> RootReply:
        """One root call, admitted by `budget` (raises BudgetExceeded, nothing sent) and counted in it."""
        if is_cli_model(self.model):
            return await self._reply_through_cli(messages, budget)
        options: dict[str, Any] = {"model": self.model, "messages": messages, "timeout": self.timeout_s}
        if self.api_base:
            options["api_base"] = self.api_base
        offered = self.use_tools and allow_tools
        if offered:
            options["tools"] = TOOLS
        litellm = await aload_litellm()
        budget.admit()
        try:
            with anyio.fail_after(budget.seconds_left()):
                response = await litellm.acompletion(**options)
        except TimeoutError as exc:
            if budget.seconds_left() <= 0:  # the ledger's wall clock ran out with the call in flight
                raise budget.out_of_time() from exc
            raise RootModelError(f"root model {self.model} timed out: {exc}") from exc
        except Exception as exc:  # litellm raises many types; they all mean "the root call failed"
            if isinstance(exc, litellm.ContextWindowExceededError):  # a 400 too, but not a refusal of tools
                raise RootContextFull(f"root model {self.model}: the conversation is longer than its context "
                                      f"window ({exc})") from exc
            if offered and getattr(exc, "status_code", None) in (400, 422):
                self.use_tools = False  # a server that rejects `tools`: continue with fenced code blocks
                return await self.reply(messages, budget, allow_tools=False)
            raise RootModelError(f"root model {self.model} failed: {type(exc).__name__}: {exc}") from exc
        reply = _parse(response, offered)
        budget.spend(reply.tokens_in + reply.tokens_out, reply.cost_usd)
        return reply

    async def _reply_through_cli(self, messages: list[dict[str, Any]], budget: Budget) -> RootReply:
        """The user's assistant CLI as root model (workers/cli_backend.py): the conversation goes as one
        prompt per call, a fresh process each time, and the code comes back in fenced blocks."""
        system, prompt = as_one_prompt(messages)
        budget.admit()
        try:
            with anyio.fail_after(budget.seconds_left()):
                response = await CliBackend().ask(self.model, prompt, system=system, timeout_s=self.timeout_s)
        except TimeoutError as exc:
            raise budget.out_of_time() from exc
        except WorkerError as exc:
            error = RootContextFull if says_context_full(exc) else RootModelError
            raise error(f"root model {self.model} failed: {exc}") from exc
        budget.spend(response.tokens_in + response.tokens_out, response.cost_usd)
        return RootReply(text=response.text, code_blocks=[b.strip() for b in FENCE.findall(response.text)],
                         tokens_in=response.tokens_in, tokens_out=response.tokens_out, cost_usd=response.cost_usd,
                         message={"role": "assistant", "content": response.text})


def _supports_tools(model: str) -> bool:
    """litellm's verdict for models it knows; for unknown (local, self-hosted) ones, try tools: most
    OpenAI-compatible servers accept them, and `reply` falls back to fenced code if one refuses."""
    litellm = load_litellm()
    known = model in litellm.model_cost or model.split("/", 1)[-1] in litellm.model_cost
    if not known:
        return True
    try:
        return bool(litellm.supports_function_calling(model=model))
    except Exception:
        return True


def _parse(response: Any, tools_offered: bool) -> RootReply:
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError) as exc:
        raise RootModelError(f"the root model sent a reply without a message: {response!r:.300}") from exc
    text = message.content or ""
    calls = []
    for raw in (getattr(message, "tool_calls", None) or []) if tools_offered else []:
        try:
            arguments = json.loads(raw.function.arguments or "{}")
        except (TypeError, ValueError):
            arguments = {"_malformed": str(raw.function.arguments)[:2000]}
        calls.append(ToolCall(id=raw.id or f"call_{len(calls)}", name=raw.function.name or "", arguments=arguments))
    usage = getattr(response, "usage", None)
    try:
        cost: float | None = float(load_litellm().completion_cost(completion_response=response))
    except Exception:  # unknown price: report unknown, never zero
        cost = None
    assistant: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        assistant["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in calls
        ]
    return RootReply(
        text=text, tool_calls=calls, code_blocks=[] if calls else [b.strip() for b in FENCE.findall(text)],
        tokens_in=getattr(usage, "prompt_tokens", 0) or 0, tokens_out=getattr(usage, "completion_tokens", 0) or 0,
        cost_usd=cost, message=assistant,
    )
