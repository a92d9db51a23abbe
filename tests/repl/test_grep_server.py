"""grep() through the real server (stdio, nsjail, the host's rg) over the guest interpreter's own stdlib: the
ripgrep path and the Python `re` path give the same hits, hundreds of thousands of them included."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from rlm_mcp.sandbox.interpreter import find_guest_interpreter
from tests.helpers import stdio_client

pytestmark = pytest.mark.anyio

PATTERNS = {  # pattern -> whether it goes to rg
    "OrderedDict": True, r"^[ \t]*def \w+\(self": True, r"^class \w+\(": True, r"\bimport (os|sys)\b": True,
    r"(?i)todo|fixme": True, r"(?i)straße|\bKELVIN\b": True, r"[^\x00-\x7f]": True, r"\d+\.\d+": True, r"\W$": True,
    r"^\s*#.*TODO\b": True, r"^": True, r"#.*\bTODO": False, r"(?<=def )__init__": False, r"(\w+) = \1\b": False,
}

CHECK = """import json, re
out = []
for pattern in json.loads({patterns!r}):
    fast = grep(pattern, max_hits=None)
    python, cut = _grep_re(re.compile(pattern, re.M), context, _manifests["main"]["files"], None, None,
                           _grep_plan(pattern, 0)[2])
    out.append([pattern, _grep_plan(pattern, 0)[0] is not None, len(fast), fast == python and not cut])
print(json.dumps(out))
"""


def guest_stdlib() -> Path:
    """The stdlib of the interpreter the server's jail runs (found the way the server finds it)."""
    python = find_guest_interpreter(os.environ.get("RLM_GUEST_PYTHON")).executable
    probe = "import sysconfig; print(sysconfig.get_paths()['stdlib'])"
    return Path(subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True, check=True).stdout.strip())


async def test_rg_and_python_paths_agree_on_the_guest_stdlib(server_env: dict[str, str]) -> None:
    stdlib = guest_stdlib()
    env = {**server_env, "RLM_ALLOWED_ROOTS": os.pathsep.join([server_env["RLM_ALLOWED_ROOTS"], str(stdlib)])}
    async with stdio_client(env) as client:
        loaded = await client.call_tool("load_context", {"source": [str(stdlib)]})
        assert not loaded.is_error, loaded
        result = await client.call_tool(
            "exec_code", {"code": CHECK.format(patterns=json.dumps(list(PATTERNS))), "timeout_s": 300})
        report = result.structured_content
        assert report["status"] == "ok", report
        rows = json.loads(report["stdout"])
        assert {pattern: on_rg for pattern, on_rg, _count, _same in rows} == PATTERNS
        assert [row for row in rows if not row[3]] == []
        counts = {pattern: count for pattern, _on_rg, count, _same in rows}
        assert counts["^"] > 100_000, counts  # every line: tens of reply pages through the callback channel
        assert counts[r"^[ \t]*def \w+\(self"] > 5_000, counts

        code = "print(len(grep(r'\\bdef\\b', path=r'^json/', max_hits=3)))"
        cut = await client.call_tool("exec_code", {"code": code})
        assert cut.structured_content["stdout"] == "3\n"
        assert "stopped at max_hits=3; there are more hits" in cut.structured_content["stderr"]
