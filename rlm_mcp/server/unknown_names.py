"""A prompt or resource that does not exist is the caller's mistake: INVALID_PARAMS naming what does.

The SDK answers `prompts/get` of an unknown prompt with an internal error (its ValueError reaches the
dispatcher) and `resources/read` of an unknown URI with a bare "Unknown resource". One middleware
(public, `MCPServer.middleware`) checks prompt names before the SDK sees them and completes the
resource message with the templates we serve, keeping the SDK's error data (SEP-2164).
"""

from __future__ import annotations

from typing import Any

from mcp import MCPError
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp_types import INVALID_PARAMS


def install(mcp: MCPServer) -> None:
    async def name_what_exists(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "prompts/get":
            name = (ctx.params or {}).get("name")
            prompts = sorted(prompt.name for prompt in await mcp.list_prompts())
            if name not in prompts:
                raise MCPError(code=INVALID_PARAMS, message=f"unknown prompt {name!r}: this server has "
                               f"{', '.join(prompts)}", data={"name": name})
        if ctx.method != "resources/read":
            return await call_next(ctx)
        try:
            return await call_next(ctx)
        except MCPError as exc:
            if exc.error.code != INVALID_PARAMS or not exc.error.message.startswith("Unknown resource"):
                raise
            templates = ", ".join(template.uri_template for template in await mcp.list_resource_templates())
            raise MCPError(code=INVALID_PARAMS, message=f"{exc.error.message}: this server serves {templates} "
                           "(the session tool lists the loaded context names)", data=exc.error.data) from exc

    mcp.middleware.append(name_what_exists)
