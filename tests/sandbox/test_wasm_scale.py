"""Scale on the wasm backend, through the real server: the guest interpreter's standard library loads and
answers (the whole text decoded inside WebAssembly included), and a context beyond the wasm memory
ceiling is refused at load with the limit and the fix, the session unharmed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import link_wasm_cache, stdio_client, tool_error
from tests.repl.test_grep_server import guest_stdlib

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # out of the quick loop (./dev.sh quick)


def wasm_env(server_env: dict[str, str], **extra: str) -> dict[str, str]:
    link_wasm_cache(Path(server_env["RLM_HOME"]))
    return {**server_env, "RLM_SANDBOX": "wasm", **extra}


async def test_the_stdlib_loads_and_answers_on_wasm(server_env: dict[str, str]) -> None:
    stdlib = guest_stdlib()
    roots = os.pathsep.join([server_env["RLM_ALLOWED_ROOTS"], str(stdlib)])
    async with stdio_client(wasm_env(server_env, RLM_ALLOWED_ROOTS=roots)) as client:
        loaded = await client.call_tool("load_context", {"source": [str(stdlib)]})
        assert not loaded.is_error, loaded
        found = (await client.call_tool("find_symbol", {"name": "OrderedDict", "kind": "class"})).structured_content
        assert "collections/__init__.py" in {symbol["path"] for symbol in found["results"]}, found
        code = ("import re\nprint(len(grep(r'^class \\w+\\(', max_hits=None)) > 1000, "
                "len(re.findall(r'(?m)^def ', context)) > 1000, len(context) > 10_000_000)")
        ran = (await client.call_tool("exec_code", {"code": code, "timeout_s": 300})).structured_content
        assert ran["status"] == "ok" and ran["stdout"] == "True True True\n", ran
        status = (await client.call_tool("session", {})).structured_content
        # restarts is left out at its default, 0
        assert status["sandbox"] == "wasm (RLM_SANDBOX=wasm)" and "restarts" not in status, status


async def test_a_context_beyond_the_wasm_ceiling_is_refused(server_env: dict[str, str], tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[wasm]\nmax_context_mb = 1\n")
    big = tmp_path / "big.txt"
    big.write_text("x" * 1_500_000 + "\n")
    async with stdio_client(wasm_env(server_env, RLM_SANDBOX_POLICY=str(policy))) as client:
        await client.call_tool("load_context", {"text": "small", "name": "notes"})
        message = await tool_error(client, "load_context", {"source": [str(big)]})
        assert "is 1.4 MB; the wasm sandbox holds at most 1.0 MB" in message and "max_context_mb" in message, message
        assert "Load a subdirectory" in message and "nsjail" in message
        after = (await client.call_tool("exec_code", {"code": "print(contexts['notes'], sorted(contexts))"}))
        assert after.structured_content["stdout"] == "small ['notes']\n", after
