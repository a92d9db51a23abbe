"""MCP server benchmark: exec_code round trip over stdio, and load_context of the stdlib to REPL-ready.

Run: `.venv/bin/python bench/server_bench.py`. Drives the installed `rlm-mcp` with the real mcp client.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).parent))
from common import median_ms, print_table, time_async

EXECS = 300
LOADS = 5


async def main() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    # The corpus of the issue: the stdlib's .py files (~1,700, ~32 MB), without site-packages.
    sources = [str(stdlib / "*.py")] + [
        str(path / "**" / "*.py")
        for path in sorted(stdlib.iterdir())
        if path.is_dir() and path.name != "site-packages" and next(path.rglob("*.py"), None)
    ]
    command = str(Path(sys.executable).with_name("rlm-mcp"))
    env = {**os.environ, "RLM_ALLOWED_ROOTS": str(stdlib)}
    rows = []
    for mode in ("auto", "legacy"):
        async with Client(StdioServerParameters(command=command, args=[], env=env), mode=mode) as client:
            cold = []
            for name in [f"cold{i}" for i in range(LOADS)]:
                started = time.perf_counter()
                await client.call_tool("load_context", {"source": sources, "name": name})
                await client.call_tool("exec_code", {"code": f"len(contexts[{name!r}])"})
                cold.append(time.perf_counter() - started)
            reload = {"source": sources, "name": "cold0"}
            warm = await time_async(lambda: client.call_tool("load_context", reload), LOADS)  # noqa: B023 (awaited at once)
            index_started = time.perf_counter()
            while (await client.call_tool("find_symbol", {"name": "OrderedDict", "context": "cold0"})).is_error:
                await anyio.sleep(0.05)  # measure round trips in the steady state, once indexing is done
            index_wait = time.perf_counter() - index_started
            for _ in range(20):
                await client.call_tool("exec_code", {"code": "x = 1"})
            trips = await time_async(lambda: client.call_tool("exec_code", {"code": "x = 1"}), EXECS)
        protocol = "2026-07-28" if mode == "auto" else "2025-11-25"
        rows.append((f"exec_code round trip ({protocol})", f"{median_ms(trips):.2f} ms", "<= 5 ms"))
        rows.append((f"load stdlib to REPL-ready ({protocol})", f"{median_ms(cold):.0f} ms", "<= 500 ms"))
        rows.append((f"reload unchanged stdlib ({protocol})", f"{median_ms(warm):.0f} ms", "-"))
        rows.append((f"code index ready after the loads ({protocol})", f"{index_wait:.1f} s more", "-"))
    files = [p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts]
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    title = f"rlm-mcp over stdio (medians; corpus: {len(files)} stdlib .py files, {megabytes:.0f} MB)"
    print_table(title, ("measure", "median", "target"), rows)


if __name__ == "__main__":
    anyio.run(main)
