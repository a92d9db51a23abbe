"""The file boundary through the real server: over HTTP a token holder's declared workspace roots may only
choose among RLM_ALLOWED_ROOTS; over stdio the user's own editor is trusted with its roots.

Each HTTP case declares roots with the real `mcp` client -- on the 2026-07-28 protocol (the input-required
round trip) and the legacy one (the roots request) -- and calls load_context with no source. "Nothing read"
is checked where it would show: no context in the session, and the secret's text nowhere under RLM_HOME.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ListRootsResult, Root

from tests.helpers import stdio_client
from tests.server.test_http import start, stop

pytestmark = pytest.mark.anyio
TOKEN = "boundary-token-5c1e"
SECRET = "SECRET-OUTSIDE-THE-ROOTS-7f3a"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("boundary").resolve()
    (base / "allowed" / "repo").mkdir(parents=True)
    (base / "allowed" / "repo" / "app.py").write_text("def handler():\n    return 'inside'\n")
    (base / "outside").mkdir()
    (base / "outside" / "keys.py").write_text(f"TOKEN = {SECRET!r}\n")
    (base / "allowed" / "link-out").symlink_to(base / "outside", target_is_directory=True)
    return base


@pytest.fixture(scope="module")
def team_server(tree: Path) -> Iterator[str]:
    runtime = Path(tempfile.mkdtemp(prefix="rlm-test-runtime-"))  # jail-traversable, as conftest's runtime_dir
    runtime.chmod(0o711)
    env = {"PATH": os.environ.get("PATH", ""), "RLM_HOME": str(tree / "home"), "RLM_RUNTIME_DIR": str(runtime),
           "RLM_ALLOWED_ROOTS": str(tree / "allowed"), "RLM_AUTH_TOKEN": TOKEN}
    process, url = start(env)
    yield url
    stop(process)
    shutil.rmtree(runtime, ignore_errors=True)


@asynccontextmanager
async def declaring(url: str, mode: str, *uris: str) -> AsyncIterator[Client]:
    """A bearer-token client over HTTP whose workspace roots are `uris`."""
    async def list_roots(context: object) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=uri, name="workspace") for uri in uris])

    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, list_roots_callback=list_roots) as client,
    ):
        yield client


def nothing_stored_anywhere(home: Path) -> bool:
    return not any(SECRET.encode() in path.read_bytes() for path in home.rglob("*") if path.is_file())


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("spelling", [
    "file://{base}/outside",
    "file://{base}/allowed/..%2Foutside",       # a percent-encoded separator before the dots
    "file://{base}/allowed/%2e%2e/outside",     # percent-encoded dots
    "file://{base}/allowed/link-out",           # a symlink out of the allowed root
    "file:///C:/Users/ana/repo",                # a Windows client's drive letter: no path inside the roots here
])
async def test_a_declared_root_outside_is_refused_and_nothing_is_read(
        team_server: str, tree: Path, mode: str, spelling: str) -> None:
    uri = spelling.format(base=tree)
    async with declaring(team_server, mode, uri) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("load_context", {"name": "probe"})
        assert "RLM_ALLOWED_ROOTS" in str(refused.value) and "declared the workspace root" in str(refused.value)
        assert str(tree / "allowed") in str(refused.value)
        status = await client.call_tool("session", {})
        assert "probe" not in status.structured_content["contexts"]
    assert nothing_stored_anywhere(tree / "home")


async def test_a_root_naming_another_host_is_refused(team_server: str, tree: Path) -> None:
    async with declaring(team_server, "auto", f"file://fileserver{tree}/allowed/repo") as client:
        with pytest.raises(MCPError, match="names the host 'fileserver'"):
            await client.call_tool("load_context", {})


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_declared_root_inside_an_allowed_root_is_loaded(team_server: str, tree: Path, mode: str) -> None:
    async with declaring(team_server, mode, (tree / "allowed" / "repo").as_uri()) as client:
        loaded = await client.call_tool("load_context", {})
        assert not loaded.is_error, loaded
        assert loaded.structured_content["roots"] == [str(tree / "allowed" / "repo")]
        listed = await client.call_tool("exec_code", {"code": "print(sorted(files))"})
        assert listed.structured_content["stdout"] == "['app.py']\n"


async def test_a_named_source_outside_is_refused_whatever_the_client_declares(team_server: str, tree: Path) -> None:
    async with declaring(team_server, "auto", (tree / "outside").as_uri()) as client:
        with pytest.raises(MCPError, match="outside the allowed roots"):
            await client.call_tool("load_context", {"source": [str(tree / "outside")]})
        with pytest.raises(MCPError, match="outside the allowed roots"):  # existence is not told either
            await client.call_tool("load_context", {"source": [str(tree / "outside" / "no-such-file.py")]})
    assert nothing_stored_anywhere(tree / "home")


async def test_over_stdio_the_editor_is_trusted_with_its_roots(server_env: dict[str, str], tree: Path) -> None:
    async def list_roots(context: object) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=(tree / "outside").as_uri(), name="workspace")])

    env = {**server_env, "RLM_ALLOWED_ROOTS": str(tree / "allowed")}
    async with stdio_client(env, list_roots=list_roots) as client:
        loaded = await client.call_tool("load_context", {})
        assert loaded.structured_content["roots"] == [str(tree / "outside")]
        listed = await client.call_tool("exec_code", {"code": "print(sorted(files))"})
        assert listed.structured_content["stdout"] == "['keys.py']\n"
