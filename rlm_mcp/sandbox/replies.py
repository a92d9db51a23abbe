"""The guest's replies read into the sandbox's results, field by field.

The guest runs hostile code and may forge any reply: every field is checked for its type and cut to a
size, and anything odd becomes empty -- never an exception in the host.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .checkpoints import RestoreNote
from .results import CapturedText, ExecResult, ExecStatus, VariableInfo, VariableValue

MAX_VARIABLES = 100


def exec_result(reply: dict[str, Any]) -> ExecResult:
    """An exec's reply: status, captured streams, the variables it created or changed."""
    status = reply.get("status")
    elapsed = reply.get("elapsed_s")
    return ExecResult(
        status=status if status in ("ok", "error", "timeout") else "sandbox_fault",
        stdout=_captured(reply.get("stdout")),
        stderr=_captured(reply.get("stderr")),
        elapsed_s=float(elapsed) if isinstance(elapsed, int | float) else 0.0,
        error=_string(reply.get("error"))[:2000] or None,
        variables=tuple(_variables(reply.get("vars"))[:MAX_VARIABLES]),
    )


def dead_result(status: ExecStatus, error: str, started: float) -> ExecResult:
    """The result of an exec whose guest died or was killed under it: no output, `error` says why."""
    return ExecResult(status=status, stdout=CapturedText(""), stderr=CapturedText(""),
                      elapsed_s=time.perf_counter() - started, error=error)


def restore_note(reply: dict[str, Any]) -> RestoreNote:
    """A restore's reply: the names brought back and, by name, why the others were not."""
    restored = [_string(name)[:200] for name in reply.get("restored") or [] if isinstance(name, str)]
    failed = reply.get("failed") if isinstance(reply.get("failed"), dict) else {}
    return RestoreNote(restored=tuple(restored[:1000]),
                       failed={_string(k)[:200]: _string(v)[:300] for k, v in list(failed.items())[:100]})


def variable_value(name: str, reply: dict[str, Any], max_chars: int) -> VariableValue:
    """A get's reply: JSON for plain data (when it was not cut), its repr otherwise."""
    text = _string(reply.get("value"))[:max_chars]
    is_json = bool(reply.get("json")) and not reply.get("truncated")
    return VariableValue(
        name=name, type=_string(reply.get("type")), value=json.loads(text) if is_json else text,
        is_json=is_json, truncated=bool(reply.get("truncated")), chars=_int(reply.get("chars")),
    )


def _variables(items: Any) -> list[VariableInfo]:
    variables = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            size = item.get("size")
            variables.append(VariableInfo(
                name=_string(item.get("name"))[:200], type=_string(item.get("type"))[:100],
                size=size if isinstance(size, int) else None, preview=_string(item.get("preview"))[:200],
            ))
    return variables


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _captured(value: Any) -> CapturedText:
    if not (isinstance(value, list) and len(value) == 3):
        return CapturedText("")
    head, tail, dropped = value
    return CapturedText.from_parts(_string(head), _string(tail), _int(dropped))
