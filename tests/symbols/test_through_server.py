"""The index through the server: built after load_context, queried by find_symbol and from the REPL."""

from __future__ import annotations

import anyio
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
        assert any(r["path"] == "sessions/guest.py" for r in callers.structured_content["results"])
        repl = await client.call_tool("exec_code", {"code": (
            "defs = find_symbol('Session')\n"
            "print(defs[0]['path'], len(outline('sessions/session.py')) > 10,"
            " len(references('ensure_started')) >= 2)")})
        assert repl.structured_content["stdout"] == "sessions/session.py True True\n", repl


async def test_find_symbol_on_text_context_is_a_clear_error(server_env) -> None:
    async with stdio_client(server_env) as client:
        await client.call_tool("load_context", {"text": "just text"})
        assert "code index" in await tool_error(client, "find_symbol", {"name": "x"})


async def _finished(client, arguments: dict) -> list[dict]:
    """A kind/pattern query's results once the background build has seen every file (its `note` gone)."""
    for _ in range(100):
        result = (await client.call_tool("find_symbol", arguments)).structured_content
        if result.get("note") is None:
            return result["results"]
        await anyio.sleep(0.1)
    raise AssertionError(f"the index never finished: {result.get('note')}")


async def test_find_symbol_filters_by_the_new_kinds(server_env, tmp_path) -> None:
    """What a user of a C or TypeScript codebase asks: every macro, a pointer-returning function, a type alias."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "str.h").write_text("#define BUF 64\nconst char *const *names(void) { return 0; }\n")
    (code / "types.ts").write_text("export type Id = string;\n"
                                   "namespace Api { export function get(): Id { return ''; } }\n")
    async with stdio_client(server_env) as client:
        await client.call_tool("load_context", {"source": [str(code)]})
        (names,) = (await client.call_tool("find_symbol", {"name": "names"})).structured_content["results"]
        assert (names["kind"], names["start_line"]) == ("function", 2)
        assert [(r["name"], r["path"]) for r in await _finished(client, {"kind": "macro"})] == [("BUF", "str.h")]
        found = await _finished(client, {"pattern": "^Api\\.", "kind": "function"})
        assert [r["qualname"] for r in found] == ["Api.get"]
        assert [r["qualname"] for r in await _finished(client, {"kind": "type"})] == ["Id"]
