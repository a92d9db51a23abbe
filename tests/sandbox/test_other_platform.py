"""The whole server as if on macOS, and as if on Windows: nsjail unavailable, the Linux-only helpers off,
so `auto` runs wasm.

The real `rlm-mcp` subprocess starts with a sitecustomize that makes `platform.system()` say Darwin or
Windows (nsjail's launcher and the heap trim ask it) and removes the POSIX-only calls that platform lacks
(`os.killpg`, `os.getpgid`, `os.nice`, ...; on Windows also the uid calls and `os.setsid`), and for Windows
makes `os.pathsep` `;`, with RLM_ALLOWED_ROOTS and PATH written that way. Everything else is real: the real
client over stdio, the wasm sandbox, the code index, worker calls through litellm to the local fake over
HTTP (macOS) or through an assistant-CLI stand-in on PATH (Windows: its process tree is ended without
`os.killpg`). What cannot be had here: Windows' own paths (pathlib stays POSIX, so drive letters are
tested at the config layer, tests/config) and `taskkill` (the backend falls back to killing the leader).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from tests.fakes import FakeOpenAI
from tests.helpers import REPO, link_wasm_cache, stdio_client

from .conftest import WASM_HOME

pytestmark = pytest.mark.anyio

AS_IF_MACOS = """\
import os, platform
platform.system = lambda: "Darwin"
# and the calls Windows lacks as well (the store and the index must not need them)
for name in ("killpg", "getpgid", "nice", "writev", "copy_file_range", "pread", "pwrite"):
    if hasattr(os, name):
        delattr(os, name)
"""


AS_IF_WINDOWS = """\
import os, platform
platform.system = lambda: "Windows"
os.pathsep = ";"  # RLM_ALLOWED_ROOTS and PATH are written with it, as on Windows
for name in ("killpg", "getpgid", "getpgrp", "setsid", "nice", "getuid", "geteuid", "getgid", "getegid",
             "fork", "writev", "copy_file_range", "pread", "pwrite", "sendfile", "sync", "mkfifo", "chown"):
    if hasattr(os, name):
        delattr(os, name)
"""
STANDIN = Path(__file__).parents[1] / "workers" / "cli_standin.py"


@pytest.fixture(params=["macos", "windows"])
def platform_env(request: pytest.FixtureRequest, server_env: dict[str, str], tmp_path: Path,
                 small_repo: Path) -> Iterator[dict[str, str]]:
    """The server's environment on that platform, its worker model set up (see the module docstring)."""
    site = tmp_path / f"as-if-{request.param}"
    site.mkdir()
    link_wasm_cache(Path(server_env["RLM_HOME"]))
    if request.param == "macos":
        (site / "sitecustomize.py").write_text(AS_IF_MACOS)
        with FakeOpenAI() as fake:
            yield {**server_env, "PYTHONPATH": str(site), "RLM_WORKER_MODEL": "openai/gpt-4o-mini",
                   "RLM_WORKER_API_BASE": fake.api_base, "OPENAI_API_KEY": "sk-test"}
        return
    (site / "sitecustomize.py").write_text(AS_IF_WINDOWS)
    standins = tmp_path / "bin"
    standins.mkdir()
    claude = standins / "claude"
    claude.write_text(f"#!{sys.executable}\n{STANDIN.read_text()}")
    claude.chmod(claude.stat().st_mode | stat.S_IXUSR)
    yield {**server_env, "PYTHONPATH": str(site), "RLM_WORKER_MODEL": "claude-code/haiku",
           "PATH": ";".join([str(standins), *server_env["PATH"].split(":")]),
           "RLM_ALLOWED_ROOTS": ";".join([str(small_repo.parent), str(REPO)])}


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "app.py").write_text("from pkg.util import helper\n\ndef top():\n    return helper()\n")
    (root / "pkg" / "util.py").write_text("def helper():\n    return 'NEEDLE-42'\n")
    return root


async def test_the_server_on_another_platform_runs_wasm(platform_env: dict[str, str], small_repo: Path, tmp_path: Path,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    assert (WASM_HOME / "wasm").is_dir(), "Pyodide is not cached: run ./dev.sh setup (rlm-mcp doctor --fix)"
    system = "Windows" if "claude-code" in platform_env["RLM_WORKER_MODEL"] else "Darwin"
    async with stdio_client(platform_env) as client:
        loaded = await client.call_tool("load_context", {"source": [str(small_repo)]})
        assert not loaded.is_error, loaded
        assert loaded.structured_content["sandbox"].startswith("wasm (auto: nsjail cannot run here")
        assert "REPL: wasm (auto: nsjail cannot run here" in loaded.content[0].text
        status = (await client.call_tool("session", {})).structured_content
        assert status["sandbox"].startswith(f"wasm (auto: nsjail cannot run here (nsjail needs Linux namespaces; "
                                            f"this is {system}"), status
        handle = status["handle"]
        outside = tmp_path_factory.mktemp("not-a-root")
        with pytest.raises(MCPError, match=re.escape(f"is outside the allowed roots ({tmp_path}, {REPO})")):
            await client.call_tool("load_context", {"source": [str(outside)], "name": "outside"})

        code = ("hits = grep('NEEDLE')\nprint(len(context) > 0, [h[0] for h in hits])\n"
                "print(find_symbol('top')[0]['qualname'])\nprint(llm_query('ping'))")
        ran = (await client.call_tool("exec_code", {"code": code, "session": handle})).structured_content
        assert ran["status"] == "ok", ran
        lines = ran["stdout"].splitlines()
        assert lines[0] == "True ['pkg/util.py']" and lines[1] == "top" and "ping" in lines[2], lines

        found = (await client.call_tool("find_symbol", {"name": "helper"})).structured_content
        assert [(s["qualname"], s["path"]) for s in found["results"]] == [("helper", "pkg/util.py")]
        answer = (await client.call_tool("sub_query", {"prompt": "say hi"})).structured_content
        assert "say hi" in answer["answers"][0]["text"]

        # Code that never yields to an interrupt: the wasm guest is killed, restarted, the context and the
        # saved variables back.
        await client.call_tool("exec_code", {"code": "kept = 1"})
        killed = (await client.call_tool("exec_code", {"code": "sum(range(10 ** 13))", "timeout_s": 0.5}))
        assert killed.structured_content["status"] == "killed" and killed.structured_content["restarted"]
        assert "kept" in killed.structured_content["restored"]
        after = (await client.call_tool("exec_code", {"code": "print(kept, files['pkg/util.py'])"}))
        assert after.structured_content["stdout"] == "1 def helper():\n    return 'NEEDLE-42'\n\n"
    if system == "Windows":  # the worker calls went through the CLI stand-in, its process tree ended each time
        assert len((tmp_path / "bin" / "calls.jsonl").read_text().splitlines()) == 2
    assert os.environ.get("PYTHONPATH") != platform_env["PYTHONPATH"]  # only the server was made to feel foreign
