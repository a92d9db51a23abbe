"""The index through the server: built after load_context, queried by find_symbol and from the REPL."""

from __future__ import annotations

import pytest

from tests.helpers import REPO, stdio_client, tool_error

pytestmark = pytest.mark.anyio


async def test_find_symbol_and_repl_helpers_over_own_source(server_env) -> None:
    async with stdio_client(server_env) as client:
        loaded = await client.call_tool("load_context", {"source": [str(REPO / "rlm_mcp")]})
        assert "Code index" in loaded.content[0].text
        # Right after the load, while the index builds in the background: answered at once, complete.
        status = await client.call_tool("find_symbol", {"name": "Sandbox", "kind": "class"})
        (sandbox,) = status.structured_content["results"]
        assert sandbox["path"] == "sandbox/repl.py" and sandbox["signature"] == "class Sandbox:"
        outline = await client.call_tool("find_symbol", {"path": "sandbox/errors.py"})
        names = [s["qualname"] for s in outline.structured_content["results"]]
        assert names[0] == "SandboxError" and "SandboxCrashed.__init__" in names
        callers = await client.call_tool("find_symbol", {"callers_of": "new_data_dir"})
        assert any(r["path"] == "sessions/session.py" for r in callers.structured_content["results"])
        repl = await client.call_tool("exec_code", {"code": (
            "defs = find_symbol('Session')\n"
            "print(defs[0]['path'], len(outline('sessions/session.py')) > 10,"
            " len(references('ensure_started')) >= 2)")})
        assert repl.structured_content["stdout"] == "sessions/session.py True True\n", repl


async def test_find_symbol_on_text_context_is_a_clear_error(server_env) -> None:
    async with stdio_client(server_env) as client:
        await client.call_tool("load_context", {"text": "just text"})
        assert "code index" in await tool_error(client, "find_symbol", {"name": "x"})
