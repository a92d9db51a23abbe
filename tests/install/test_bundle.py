"""The Claude Desktop bundle: built by bundle/build.py with the official `mcpb` CLI, its manifest agrees with
what the real server lists, and it starts as the host starts it.

The start test plays Claude Desktop (mcpb_host.py): it unpacks the bundle, substitutes the manifest's
variables with two picked folders, and runs its `mcp_config` command -- `uv run` in the unpacked folder --
with a fresh uv cache and environment, uv from the test extras pointed at this machine's Python (nothing
else may be fetched: UV_PYTHON_DOWNLOADS=never), and RLM_SANDBOX=wasm as on a Mac. The real `mcp` client
then loads a picked folder, execs, finds a symbol and is refused a folder that was not picked. It prints the
time from start to the first answer with an empty RLM_HOME (uv's install and Pyodide's fetch included) and
with a warm one (the second start). The mcpb CLI comes from `./dev.sh test` (.tools/); elsewhere these tests
are skipped without it, on CI they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from bundle.build import build
from rlm_mcp import __version__
from tests.helpers import needs_node_tool, stdio_client, tool_error

from .mcpb_host import launch, unpack

pytestmark = needs_node_tool("mcpb", "the MCP Bundle CLI (@anthropic-ai/mcpb)")
UV = Path(sys.executable).with_name("uv.exe" if os.name == "nt" else "uv")
START_TIMEOUT_S = 600  # a cold start installs every dependency with uv and fetches Pyodide


@pytest.fixture(scope="module")
def bundle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def manifest(bundle_file: Path) -> dict:
    with zipfile.ZipFile(bundle_file) as archive:
        return json.loads(archive.read("manifest.json"))


def test_the_bundle_is_named_and_shaped_as_the_issue_asks(bundle_file: Path, manifest: dict) -> None:
    assert bundle_file.name == f"rlm-mcp-{__version__}.mcpb"
    assert manifest["manifest_version"] == "0.4" and manifest["version"] == __version__
    assert manifest["server"]["type"] == "uv" and manifest["server"]["mcp_config"]["command"] == "uv"
    assert manifest["compatibility"]["platforms"] == ["darwin", "win32", "linux"]
    assert manifest["display_name"] and manifest["long_description"] and manifest["icon"] == "icon.png"
    folders = manifest["user_config"]["folders"]
    assert (folders["type"], folders["multiple"], folders["required"]) == ("directory", True, True)
    assert manifest["user_config"]["api_key"]["sensitive"] is True
    assert {"worker_model", "worker_cli"} <= set(manifest["user_config"])
    with zipfile.ZipFile(bundle_file) as archive:
        names = archive.namelist()
    assert {"manifest.json", "icon.png", "pyproject.toml", "README.md", "rlm_mcp/cli.py"} <= set(names)
    assert not [name for name in names if "__pycache__" in name or name.startswith((".venv", "server/lib"))]


@pytest.mark.anyio
async def test_the_manifest_lists_what_the_server_lists(manifest: dict, server_env: dict[str, str]) -> None:
    async with stdio_client(server_env) as client:
        tools = (await client.list_tools()).tools
        prompts = (await client.list_prompts()).prompts
        prompt = await client.get_prompt("rlm_playbook", {"task": "find every caller of save()"})
    assert [tool["name"] for tool in manifest["tools"]] == [tool.name for tool in tools]
    for listed, served in zip(manifest["tools"], tools, strict=True):
        assert (served.description or "").replace("\n", " ").startswith(listed["description"]), listed["name"]
    assert [(p["name"], p["description"]) for p in manifest["prompts"]] == [(p.name, p.description) for p in prompts]
    [declared] = manifest["prompts"]
    assert [argument.name for argument in prompts[0].arguments or []] == declared["arguments"]
    text = declared["text"].replace("${arguments.task}", "find every caller of save()")
    assert prompt.messages[0].content.text == text


def local_python() -> str:
    """This machine's Python 3.12+ (the venv's base interpreter), for uv: it may not download one."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


@pytest.fixture
def picked(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    """Two folders the user picks in the form, and one beside them that was not picked."""
    app, notes, private = tmp_path / "app", tmp_path / "notes", tmp_path / "private"
    (app / "shop").mkdir(parents=True)
    (app / "shop" / "orders.py").write_text("def save_order(order):\n    return order\n\n"
                                            "def checkout(cart):\n    return save_order(cart)\n")
    notes.mkdir()
    (notes / "todo.md").write_text("- call save_order from the refund path\n")
    private.mkdir()
    (private / "keys.txt").write_text("SECRET\n")
    yield app, notes, private


def host_environment(tmp_path: Path, home: Path, rlm_home: Path) -> dict[str, str]:
    """Claude Desktop's child environment, reduced to what this test controls: its own uv on PATH, a fresh uv
    cache, this machine's Python, a private HOME and RLM_HOME, and the wasm sandbox as on a Mac."""
    shim = tmp_path / "host-bin"
    shim.mkdir(exist_ok=True)
    if not (shim / "uv").exists():
        (shim / "uv").symlink_to(UV)
    env = {"PATH": f"{shim}{os.pathsep}/usr/bin:/bin", "HOME": str(home), "RLM_HOME": str(rlm_home),
           "RLM_SANDBOX": "wasm", "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_PYTHON": local_python(),
           "UV_PYTHON_DOWNLOADS": "never", "UV_NATIVE_TLS": "1",
           "SSL_CERT_FILE": os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile or ""}
    # The machine's own network settings: proxies, registries, and the CA bundle Deno (Pyodide's fetch) trusts.
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy",
                 "NPM_CONFIG_REGISTRY", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "NODE_EXTRA_CA_CERTS", "DENO_CERT",
                 "DENO_TLS_CA_STORE"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


async def first_answers(params: StdioServerParameters, picked: tuple[Path, Path, Path], *,
                        everything: bool) -> tuple[float, list[str]]:
    """Start the bundle's server, time it to the first exec answer, and (with `everything`) check what a user
    does with it. Returns the seconds from start to the first answer, and the progress the first load told
    (on a cold start, the Pyodide fetch's end at least, when the load waited for it)."""
    app, notes, private = picked
    told: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        told.append(message or "")

    started = time.monotonic()
    async with Client(params) as client:
        loaded = await client.call_tool("load_context", {"source": [str(app)]}, progress_callback=on_progress)
        assert not loaded.is_error, loaded.content
        ran = await client.call_tool("exec_code", {"code": "print(len(files), 'shop/orders.py' in files)"})
        elapsed = time.monotonic() - started
        assert ran.structured_content["stdout"] == "1 True\n", ran.structured_content
        assert loaded.structured_content["sandbox"].startswith("wasm"), loaded.structured_content
        if not everything:
            return elapsed, told
        found = (await client.call_tool("find_symbol", {"name": "save_order"})).structured_content
        assert [(s["qualname"], s["path"]) for s in found["results"]] == [("save_order", "shop/orders.py")]
        second = await client.call_tool("load_context", {"source": [str(notes)], "name": "notes"})
        assert not second.is_error, second.content
        refused = await tool_error(client, "load_context", {"source": [str(private)], "name": "private"})
        assert "outside the allowed roots" in refused
        leaked = await client.call_tool("exec_code", {"code": "print('private' in contexts, 'SECRET' in context)"})
        assert leaked.structured_content["stdout"] == "False False\n"
    return elapsed, told


@pytest.mark.anyio
@pytest.mark.timeout(START_TIMEOUT_S + 120)
async def test_started_as_claude_desktop_starts_it(bundle_file: Path, picked: tuple[Path, Path, Path],
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert UV.exists(), "uv is missing: pip install -e '.[test]' (./dev.sh setup)"
    folder = tmp_path / "Claude Extensions" / "rlm-mcp"
    home, rlm_home = tmp_path / "home", tmp_path / "home" / ".cache" / "rlm-mcp"
    home.mkdir()
    manifest = unpack(bundle_file, folder)
    app, notes, _ = picked
    started = launch(manifest, folder, home, {"folders": [str(app), str(notes)]})
    assert started.args[-3:] == ["--", str(app), str(notes)]  # the multiple selection, one argument each
    env = {**host_environment(tmp_path, home, rlm_home), **started.env}
    params = StdioServerParameters(command=shutil.which(started.command, path=env["PATH"]) or started.command,
                                   args=started.args, env=env, cwd=str(home))
    try:
        cold, told = await first_answers(params, picked, everything=True)
        warm, _ = await first_answers(params, picked, everything=False)
    finally:
        shutil.rmtree(tmp_path / "uv-cache", ignore_errors=True)  # hundreds of MB of wheels
    with capsys.disabled():
        print(f"\n[bundle] start to first answer: {cold:.1f} s with an empty RLM_HOME and uv cache "
              f"(uv install + Pyodide fetch), {warm:.1f} s warm; the first load's progress: {told}")
