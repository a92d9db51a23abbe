"""Test doubles that run for real: a local OpenAI-compatible HTTP server with fault injection.

Imported lazily, so `python -m tests.fakes.openai_server` (benchmarks) runs the module only once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .openai_server import FakeOpenAI, Fault

__all__ = ["FakeOpenAI", "Fault"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import openai_server

        return getattr(openai_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
