"""Sandbox benchmark: start to ready, warm exec round trip, 40 MB context, against yardsticks.

Run: `.venv/bin/python bench/sandbox_bench.py` (needs nsjail, like the server). Prints medians.
Yardsticks: the same REPL protocol with the unisolated launcher (a plain child process), and a bare
in-process `exec` of the same statement.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from common import median_ms, print_table, sandbox_starts_and_warm, time_async

from rlm_mcp.sandbox import new_data_dir

STARTS = 15
EXECS = 2000
CONTEXT_RUNS = 7
LINE = "2026-11-23T10:00:00 INFO worker-17 request handled in 12 ms path=/api/v1/items\n"


async def measure(kind: str, data_dir: Path) -> dict[str, float]:
    context = data_dir / "context.txt"
    async with anyio.create_task_group() as group:
        starts, sandbox = await sandbox_starts_and_warm(kind, data_dir, group, STARTS)
        round_trips = await time_async(lambda: sandbox.exec("x = 1"), EXECS)
        path = sandbox.guest_path(context)
        load = f"context = _rlm_read_text({path!r})\nn = len(context)"
        loads = await time_async(lambda: sandbox.exec(load), CONTEXT_RUNS)
        await sandbox.close()
        group.cancel_scope.cancel()
    return {"start": median_ms(starts), "exec": median_ms(round_trips), "context": median_ms(loads)}


def in_process_exec() -> float:
    namespace: dict[str, object] = {}
    code = compile("x = 1", "<bench>", "exec")
    samples = []
    for _ in range(EXECS):
        started = time.perf_counter()
        exec(code, namespace)
        samples.append(time.perf_counter() - started)
    return median_ms(samples)


async def main() -> None:
    data_dir = new_data_dir()
    (data_dir / "context.txt").write_text(LINE * (40_000_000 // len(LINE)))
    try:
        jailed = await measure("nsjail", data_dir)
        plain = await measure("none", data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    bare = in_process_exec()
    rows = [
        ("session start to ready", f"{jailed['start']:.1f} ms", f"{plain['start']:.1f} ms", "-", "<= 100 ms"),
        ("warm exec round trip", f"{jailed['exec']:.3f} ms", f"{plain['exec']:.3f} ms", f"{bare:.4f} ms",
         f"<= 1 ms; {jailed['exec'] / plain['exec']:.2f}x unisolated (<= 5x)"),
        ("40 MB context usable", f"{jailed['context']:.0f} ms", f"{plain['context']:.0f} ms", "-", "<= 300 ms"),
    ]
    print_table(
        "rlm-mcp sandbox (medians)",
        ("measure", "nsjail", "unisolated child", "in-process exec", "target"),
        rows,
    )


if __name__ == "__main__":
    anyio.run(main)
