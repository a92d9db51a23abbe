"""The server in-process through the SDK's in-memory client, on both protocol versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp_types import ListRootsResult, Root

from rlm_mcp.config import load_settings
from rlm_mcp.server.app import create_server

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("mode", ["auto", "legacy"])]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "config.py").write_text("import os\nDB = os.environ.get('DB_URL')\nKEY = os.environ['API_KEY']\n")
    (root / "lib" / "other.py").write_text("def f():\n    return 1\n")
    return root


def server_for(tmp_path: Path, *roots: Path):
    settings = load_settings(flags={"home": tmp_path / "home", "allowed_roots": ":".join(map(str, roots))}, environ={})
    return create_server(settings)


async def test_load_and_query_in_memory(tmp_path: Path, workspace: Path, mode: str) -> None:
    async with Client(server_for(tmp_path, workspace), mode=mode) as client:
        loaded = await client.call_tool("load_context", {"source": [str(workspace / "lib" / "*.py")]})
        assert loaded.structured_content["files"] == 2
        keys = await client.call_tool("exec_code", {"code": (
            "import re\nsorted(set(re.findall(r\"environ(?:\\.get)?[\\[(]'(\\w+)'\", context)))")})
        assert keys.structured_content["stdout"] == "['API_KEY', 'DB_URL']\n"


async def test_no_source_uses_the_client_roots(tmp_path: Path, workspace: Path, mode: str) -> None:
    async def list_roots(context) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=workspace.as_uri(), name="workspace")])

    # The workspace is not in the configured roots: the client's roots admit it.
    server = server_for(tmp_path, tmp_path / "elsewhere")
    async with Client(server, mode=mode, list_roots_callback=list_roots) as client:
        loaded = await client.call_tool("load_context", {})
        assert not loaded.is_error, loaded
        assert loaded.structured_content["files"] == 2
        assert loaded.structured_content["roots"] == [str(workspace)]


async def test_final_answer_is_reported(tmp_path: Path, workspace: Path, mode: str) -> None:
    async with Client(server_for(tmp_path, workspace), mode=mode) as client:
        result = await client.call_tool("exec_code", {"code": "answer = 6 * 7\nFINAL_VAR('answer')"})
        assert result.structured_content["final_answer"] == "42"
        playbook = await client.get_prompt("rlm_playbook", {"task": "count the callers"})
        assert "llm_query_batched" in playbook.messages[0].content.text


async def test_bad_guest_input_is_a_bad_request_logged_in_one_line(tmp_path: Path, workspace: Path, mode: str,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Guest code that calls the host's grep with a malformed payload gets the BadRequest's message; the
    server logs one line naming the session and the callback, no traceback (it is not a server bug)."""
    async with Client(server_for(tmp_path, workspace), mode=mode) as client:
        await client.call_tool("load_context", {"text": "one line\n"})
        with caplog.at_level("WARNING", logger="rlm_mcp.sessions"):
            result = await client.call_tool("exec_code", {"code": "_rlm_callback('grep', {'context': 7})"})
    assert result.is_error and "grep: 'context' must be a context name" in result.structured_content["error"]
    refused = [r for r in caplog.records if "REPL callback grep refused" in r.getMessage()]
    assert len(refused) == 1 and refused[0].exc_info is None and refused[0].levelname == "WARNING"
