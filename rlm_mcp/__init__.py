"""rlm-mcp: Recursive Language Model powers for MCP hosts."""

__version__ = "0.1.0"
