"""The whole server as if on macOS: nsjail unavailable, the Linux-only helpers off, so `auto` runs wasm.

The real `rlm-mcp` subprocess starts with a sitecustomize that makes `platform.system()` say Darwin
(nsjail's launcher and the heap trim ask it) and removes the POSIX-only calls macOS or Windows may lack
(`os.killpg`, `os.getpgid`, `os.nice`). Everything else is real: the real client over stdio, the wasm
sandbox, the code index, and worker calls through litellm to the local fake over HTTP.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes import FakeOpenAI
from tests.helpers import link_wasm_cache, stdio_client

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


@pytest.fixture
def macos_env(server_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "as-if-macos"
    site.mkdir()
    (site / "sitecustomize.py").write_text(AS_IF_MACOS)
    link_wasm_cache(Path(server_env["RLM_HOME"]))
    return {**server_env, "PYTHONPATH": str(site)}


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "app.py").write_text("from pkg.util import helper\n\ndef top():\n    return helper()\n")
    (root / "pkg" / "util.py").write_text("def helper():\n    return 'NEEDLE-42'\n")
    return root


async def test_the_server_on_another_platform_runs_wasm(macos_env: dict[str, str], small_repo: Path) -> None:
    assert (WASM_HOME / "wasm").is_dir(), "Pyodide is not cached: run ./dev.sh setup (rlm-mcp doctor --fix)"
    with FakeOpenAI() as fake:
        env = {**macos_env, "RLM_WORKER_MODEL": "openai/gpt-4o-mini", "RLM_WORKER_API_BASE": fake.api_base,
               "OPENAI_API_KEY": "sk-test"}
        async with stdio_client(env) as client:
            loaded = await client.call_tool("load_context", {"source": [str(small_repo)]})
            assert not loaded.is_error, loaded
            assert loaded.structured_content["sandbox"].startswith("wasm (auto: nsjail cannot run here")
            assert "REPL: wasm (auto: nsjail cannot run here" in loaded.content[0].text
            status = (await client.call_tool("session", {})).structured_content
            assert status["sandbox"].startswith("wasm (auto: nsjail cannot run here (nsjail needs Linux"), status
            handle = status["handle"]

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
    assert os.environ.get("PYTHONPATH") != macos_env["PYTHONPATH"]  # only the server was made to feel foreign
