"""What a symbol query answers, as typed records: a definition, or a call site.

Inside the index a file's symbols stay packed in one string and become dicts only for the rows a query
touches (reader.py: memory at monorepo scale); a query's results leave the symbols package as these
records. Plain dataclasses, so this package needs no pydantic; the tools' result models (rlm_mcp/results/)
take them as they are, and the REPL's callback sends `asdict` of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CallSite", "Definition"]


@dataclass(frozen=True, slots=True)
class Definition:
    """One definition: its name, qualified name (Class.method), kind, file, line range and signature line."""

    name: str
    qualname: str
    kind: str
    path: str
    start_line: int
    end_line: int
    signature: str
    language: str | None = None

    @classmethod
    def of(cls, found: Mapping[str, Any]) -> Definition:
        """From the index's result dict (reader.py's `unpack`)."""
        return cls(found["name"], found["qualname"], found["kind"], found["path"], found["start_line"],
                   found["end_line"], found["signature"], found.get("language"))


@dataclass(frozen=True, slots=True)
class CallSite:
    """One line that calls a name: file, line number (1-based) and the line's text (stripped, at most 300)."""

    path: str
    line: int
    text: str

    @classmethod
    def of(cls, found: Mapping[str, Any]) -> CallSite:
        return cls(found["path"], found["line"], found["text"])
