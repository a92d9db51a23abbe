"""What a host's model reads of a tool result: compact, and never past the host's output limit.

Measured with the real Claude Code CLI against a scripted model endpoint (tests/hosts/): when a result
carries structured content, Claude Code hands its model `JSON.stringify(structuredContent)` and drops the
text block -- with or without an output schema -- and shows the text block only for `isError` results.
Two limits decide whether the model sees a result at all (Claude Code 2.1.332): a result over 50,000
characters is saved to a file and the model gets a 2 KB preview and the path ("<persisted-output>"), and
one over `MAX_MCP_OUTPUT_TOKENS` (25,000 tokens by default) gets a "saved to <file>, read it in chunks"
error instead. So the structured content *is* the model's view: fields at their default (nulls, zeros,
empty lists, `restarted: false`) are left out, and a result whose JSON exceeds `RESULT_BUDGET_CHARS`
has its largest strings and lists cut, saying what was cut.
"""

from __future__ import annotations

import json
from typing import Any

from ..sandbox.results import cut_middle

__all__ = ["CUT_NOTE", "RESULT_BUDGET_CHARS", "budget_why", "cap_text", "cut_middle", "fit", "json_chars"]

# Under Claude Code's 50,000-character persistence threshold (and so its 25,000-token MAX_MCP_OUTPUT_TOKENS),
# with room for the notes it appends: the default of RLM_RESULT_BUDGET_CHARS (rlm_mcp/config.py), which the
# tools pass in. exec_code's stdout and stderr are capped earlier (RLM_MAX_OUTPUT_CHARS, at most this).
RESULT_BUDGET_CHARS = 40_000
HOST_PERSISTS_CHARS = 50_000  # Claude Code: a result longer than this reaches its model as a file path
CUT_NOTE = ("cut to fit the host's tool output limit: `cut` counts what was left out (characters of a text, items of "
            "a list); ask for less (a smaller limit or slice) or keep the full value in a REPL variable")


def json_chars(value: Any) -> int:
    """Characters of the JSON a host builds (JSON.stringify: compact separators, non-ASCII kept)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def fit(data: dict[str, Any], max_chars: int = RESULT_BUDGET_CHARS) -> dict[str, Any]:
    """`data` with its largest top-level strings (middle cut) and lists (tail cut) shortened until it fits."""
    if json_chars(data) <= max_chars:
        return data
    excess = json_chars(data) - max_chars + len(CUT_NOTE) + 100  # room for `cut` and `cut_note`
    data, cut = dict(data), dict(data.get("cut") or {})
    for key in sorted((k for k, v in data.items() if isinstance(v, str | list)), key=lambda k: -json_chars(data[k])):
        value = data[key]
        before = json_chars(value)
        if isinstance(value, str):
            keep = max(0, len(value) - excess - 200)  # 200: room for the marker and the `cut` entry
            removed = len(value) - keep
            data[key] = cut_middle(value, keep)
        else:
            sizes, size = [json_chars(item) + 1 for item in value], before
            while sizes and size > before - excess - 200:
                size -= sizes.pop()
            removed = len(value) - len(sizes)
            data[key] = value[: len(sizes)]
        cut[key] = cut.get(key, 0) + removed
        excess -= before - json_chars(data[key])
        if excess <= 0:
            break
    return {**data, "cut": cut, "cut_note": CUT_NOTE}


def budget_why(max_output_chars: int, result_budget_chars: int) -> str:
    """The output limits in force and why, as the session tool and `rlm-mcp doctor` say them."""
    host = ("under Claude Code's 50,000, past which it hands its model a file instead"
            if result_budget_chars < HOST_PERSISTS_CHARS else "above Claude Code's 50,000: it will hand its model a "
            "file instead of a long result")
    return (f"exec_code keeps {max_output_chars:,} characters of stdout and of stderr (RLM_MAX_OUTPUT_CHARS, head and "
            f"tail); a whole tool result is cut to {result_budget_chars:,} (RLM_RESULT_BUDGET_CHARS, {host}), "
            "and `cut` says what went")


def cap_text(text: str, max_chars: int = RESULT_BUDGET_CHARS) -> str:
    """A text block kept under the same budget (hosts show it for error results): head and tail kept."""
    return cut_middle(text, max_chars - 100, "characters cut to fit the host's output limit")
