"""Deterministic stand-ins for models, served over real HTTP by tests/fakes' OpenAI-compatible server.

The worker labels `<id><TAB><question>` lines as a perfect classifier would (oolong.label_of). The
scripted root answers the way a strong root model would: it sends the task's reference program as an
exec_code tool call. Together they let the real-model path (litellm, the RLM loop, rlm_complete) run
end to end with known answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .oolong import label_of
from .tasks import Task

LINE = re.compile(r"^(\d+)\t(.+)$", re.MULTILINE)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else json.dumps(content)


def worker(request: dict[str, Any]) -> str:
    prompt = _text(request["messages"][-1])
    lines = LINE.findall(prompt)
    if not lines:
        return "This worker only labels lines written as <id><TAB><question>."
    return "\n".join(f"{number}\t{label_of(question) or 'unknown'}" for number, question in lines)


def scripted_root(tasks: list[Task]) -> Callable[[dict[str, Any]], str | dict[str, Any]]:
    def respond(request: dict[str, Any]) -> str | dict[str, Any]:
        conversation = "\n".join(_text(m) for m in request["messages"])
        task = next((t for t in tasks if t.question in conversation), None)
        if task is None:
            return "I do not know this task."
        call = {"id": "call-1", "type": "function",
                "function": {"name": "exec_code", "arguments": json.dumps({"code": task.reference})}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    return respond
