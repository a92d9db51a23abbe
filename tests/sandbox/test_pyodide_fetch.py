"""Pyodide is fetched once per RLM_HOME: two servers starting together on an empty one (a cold Claude Desktop
start opens more than one) run one fetch between them, and both get the same files. Real processes, the real
fetch through the npm registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rlm_mcp.sandbox import SandboxPolicy

ENSURE = """\
import logging, sys
from pathlib import Path
from rlm_mcp.sandbox.wasm import PyodideCache
logging.basicConfig(level=logging.WARNING)
print(PyodideCache(Path(sys.argv[1]), sys.argv[2]).ensure())
"""


def test_two_servers_starting_together_fetch_pyodide_once(tmp_path: Path) -> None:
    version = SandboxPolicy.load(None).wasm.pyodide_version
    root = tmp_path / "home" / "wasm"
    starts = [subprocess.Popen([sys.executable, "-c", ENSURE, str(root), version], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ)) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in starts]
    assert all(process.returncode == 0 for process in starts), outputs
    fetches = sum(stderr.count("fetching Pyodide") for _, stderr in outputs)
    assert fetches == 1, outputs
    [found] = {stdout.strip() for stdout, _ in outputs}
    assert (Path(found) / "pyodide.asm.wasm").is_file()
