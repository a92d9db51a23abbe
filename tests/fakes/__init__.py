"""Test doubles that run for real: a local OpenAI-compatible HTTP server with fault injection."""

from .openai_server import FakeOpenAI, Fault

__all__ = ["FakeOpenAI", "Fault"]
