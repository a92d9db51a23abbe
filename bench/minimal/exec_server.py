"""The smallest in-process MCP server on the same SDK: one `exec_code` tool that runs code in its own
interpreter (no jail, no sessions, no ledger) and returns what it printed. The yardstick of
bench/handler_bench.py, never a way to run model code."""

import contextlib
import io

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("minimal-exec")
namespace: dict[str, object] = {}


@mcp.tool()
def exec_code(code: str) -> str:
    """Run Python in this process and return its stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, namespace)
    return out.getvalue()


if __name__ == "__main__":
    mcp.run()
