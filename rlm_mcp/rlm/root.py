"""The root model behind the autonomous loop: one litellm call per iteration, tools when supported.

Answers reach the loop as structured tool calls where the model supports them. For models without
tool calling, the fallback reads fenced code blocks and the loop learns of the answer from FINAL()
running in the REPL, so no regular expression ever has to find an answer inside prose.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..workers.backends import load_litellm
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
        self.use_tools = _supports_tools(model) if use_tools is None else use_tools

    async def reply(self, messages: list[dict[str, Any]], *, allow_tools: bool = True) -> RootReply:
        options: dict[str, Any] = {"model": self.model, "messages": messages, "timeout": self.timeout_s}
        if self.api_base:
            options["api_base"] = self.api_base
        offered = self.use_tools and allow_tools
        if offered:
            options["tools"] = TOOLS
        litellm = load_litellm()
        try:
            response = await litellm.acompletion(**options)
        except Exception as exc:  # litellm raises many types; they all mean "the root call failed"
            if isinstance(exc, litellm.ContextWindowExceededError):  # a 400 too, but not a refusal of tools
                raise RootContextFull(f"root model {self.model}: the conversation is longer than its context "
                                      f"window ({exc})") from exc
            if offered and getattr(exc, "status_code", None) in (400, 422):
                self.use_tools = False  # a server that rejects `tools`: continue with fenced code blocks
                return await self.reply(messages, allow_tools=False)
            raise RootModelError(f"root model {self.model} failed: {type(exc).__name__}: {exc}") from exc
        return _parse(response, offered)


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
