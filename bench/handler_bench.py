"""exec_code round trip over stdio, side by side with the smallest in-process server on the same SDK.

Both servers run as stdio subprocesses driven by the same `mcp` client; their calls are interleaved one
by one, so load on a shared machine hits both alike. rlm-mcp's trip includes the jail hop (nsjail, the
guest REPL); the yardstick (bench/minimal/exec_server.py) runs `exec` in its own process. Both have the
stdlib loaded as a context where they can: ours as `load_context`, the yardstick has nothing to load.

Run: `.venv/bin/python bench/handler_bench.py [CALLS] [--baseline RLM_MCP_COMMAND]`; a baseline (say, the
`rlm-mcp` of another checkout's venv) joins the interleaving as a third column, for before/after figures.
"""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).parent))
from common import median_ms, print_table

ARGS = sys.argv[1:]
BASELINE = ARGS[ARGS.index("--baseline") + 1] if "--baseline" in ARGS else None
CALLS = int(ARGS[0]) if ARGS and ARGS[0].isdigit() else 400
WARMUP = 50
TARGET_RATIO = 1.5


async def main() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    ours = StdioServerParameters(command=str(Path(sys.executable).with_name("rlm-mcp")), args=[],
                                 env={**os.environ, "RLM_ALLOWED_ROOTS": str(stdlib)})
    minimal = StdioServerParameters(command=sys.executable, args=[str(Path(__file__).parent / "minimal" /
                                                                      "exec_server.py")], env=dict(os.environ))
    servers = {"rlm-mcp": ours, "minimal": minimal}
    if BASELINE:
        servers["baseline"] = StdioServerParameters(command=BASELINE, args=[], env=ours.env)
    rows = []
    for mode in ("auto", "legacy"):
        async with contextlib.AsyncExitStack() as stack:
            clients = {name: await stack.enter_async_context(Client(server, mode=mode))
                       for name, server in servers.items()}
            for name in ("rlm-mcp", "baseline"):
                if name in clients:
                    await clients[name].call_tool("load_context", {"source": [str(stdlib / "*.py")]})
            samples: dict[str, list[float]] = {name: [] for name in clients}
            for index in range(WARMUP + CALLS):
                for name, client in clients.items():
                    started = time.perf_counter()
                    await client.call_tool("exec_code", {"code": "x = 1"})
                    if index >= WARMUP:
                        samples[name].append(time.perf_counter() - started)
        protocol = "2026-07-28" if mode == "auto" else "2025-11-25"
        medians = {name: median_ms(times) for name, times in samples.items()}
        row = [f"exec_code round trip ({protocol})", f"{medians['rlm-mcp']:.2f} ms", f"{medians['minimal']:.2f} ms",
               f"{medians['rlm-mcp'] / medians['minimal']:.2f}x", f"<= {TARGET_RATIO}x"]
        if BASELINE:
            row += [f"{medians['baseline']:.2f} ms", f"{medians['baseline'] / medians['minimal']:.2f}x"]
        rows.append(tuple(row))
    header = ["measure", "rlm-mcp", "minimal in-process server", "ratio", "target"]
    if BASELINE:
        header += ["baseline", "baseline ratio"]
    print_table(f"exec_code over stdio, interleaved, {CALLS} calls each (medians; machine load hits all alike)",
                tuple(header), rows)


if __name__ == "__main__":
    anyio.run(main)
