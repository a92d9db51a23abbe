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


@dataclass(frozen=True, slots=True)
class CapturedText:
    """Head and tail of a stream with the middle cut; `cut_chars` says how much is missing."""

    text: str
    cut_chars: int = 0

    @classmethod
    def from_parts(cls, head: str, tail: str, dropped: int) -> CapturedText:
        if not dropped:
            return cls(head + tail)
        marker = f"\n... [{dropped} characters cut: print less, or slice what you need] ...\n"
        return cls(head + marker + tail, dropped)


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
