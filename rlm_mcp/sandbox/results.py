"""Small typed results the sandbox hands back; plain data, no behaviour beyond formatting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .checkpoints import CheckpointNote

# ok: the code ran; error: it raised; timeout: interrupted at its timeout, state kept;
# killed: the guest had to be killed (ignored the timeout, out of memory), state lost;
# sandbox_fault: the sandbox itself failed (protocol violation, crash at start).
ExecStatus = Literal["ok", "error", "timeout", "killed", "sandbox_fault"]


def cut_marker(count: int, what: str = "characters cut") -> str:
    """What stands where the middle of a text was cut: how much went (`what` names it, and may say what to do)."""
    return f"\n... [{count:,} {what}] ...\n"


def cut_middle(text: str, keep: int, what: str = "characters cut") -> str:
    """`text` with its middle replaced by a marker saying how much went, `keep` characters of head and tail kept:
    the one way a long text is shortened for a model, whichever limit asks -- an exec's output (the guest keeps
    head and tail while the code prints; `CapturedText.from_parts` joins them), a tool result past the host's
    budget (rlm_mcp/results/shaping.py), an exec's report to the root model (rlm_mcp/rlm/loop.py). Here, in the
    lowest layer that cuts text, so that each of those reaches it."""
    if len(text) <= keep:
        return text
    head, tail = text[: keep // 2], text[len(text) - (keep - keep // 2):] if keep else ""
    return head + cut_marker(len(text) - keep, what) + tail


@dataclass(frozen=True, slots=True)
class CapturedText:
    """Head and tail of a stream with the middle cut; `cut_chars` says how much is missing."""

    text: str
    cut_chars: int = 0

    @classmethod
    def from_parts(cls, head: str, tail: str, dropped: int) -> CapturedText:
        if not dropped:
            return cls(head + tail)
        return cls(head + cut_marker(dropped, "characters cut: print less, or slice what you need") + tail, dropped)


@dataclass(frozen=True, slots=True)
class VariableInfo:
    name: str
    type: str
    size: int | None
    preview: str


@dataclass(frozen=True, slots=True)
class ExecResult:
    status: ExecStatus
    stdout: CapturedText
    stderr: CapturedText
    elapsed_s: float
    error: str | None = None
    variables: tuple[VariableInfo, ...] = field(default_factory=tuple)
    checkpoint: CheckpointNote | None = None  # what this exec's checkpoint could not keep

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class VariableValue:
    name: str
    type: str
    value: Any
    is_json: bool
    truncated: bool
    chars: int
