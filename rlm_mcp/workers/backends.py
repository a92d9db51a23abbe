"""The one place that chooses a model backend, for the root model and for workers alike.

- `claude-code/`, `codex/` and `gemini-cli/` models: the user's assistant CLI (cli_backend.py);
- `openai/...` at an explicit api_base, for plain prompts: the lean OpenAI-compatible client
  (openai_compatible.py), the cheapest path for worker fan-out;
- everything else, and every call that offers tools (the root model): litellm (litellm_backend.py),
  which knows each provider's tool-call format.

Callers then ask the backend, not the model string, what it can do (protocol.py's capabilities).
"""

from __future__ import annotations

from .cli_backend import CliBackend, cli_flavor
from .litellm_backend import LiteLLMBackend
from .openai_compatible import OpenAICompatibleBackend
from .protocol import ModelBackend


def backend_for(model: str | None, api_base: str | None, api_key: str | None = None, *,
                tools: bool = False) -> ModelBackend:
    """The backend for `model`; `tools=True` when the caller will offer tools (the root model's loop)."""
    if cli_flavor(model) is not None:
        return CliBackend()
    if model and model.startswith("openai/") and api_base and not tools:
        return OpenAICompatibleBackend(api_base=api_base, api_key=api_key)
    return LiteLLMBackend(api_base=api_base, api_key=api_key)
