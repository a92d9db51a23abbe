"""rlm-mcp: Recursive Language Model powers for MCP hosts."""

__version__ = "0.1.0"

__all__ = ["RLM", "__version__"]


def __getattr__(name: str) -> object:
    """`from rlm_mcp import RLM` without importing litellm for every user of the package."""
    if name == "RLM":
        from .rlm import RLM

        return RLM
    raise AttributeError(f"module 'rlm_mcp' has no attribute {name!r}")
