"""Helpers shared by the benchmark scripts: timing medians and printing tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def time_async(action: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return samples


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join("-" * width for width in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(str(cell).ljust(width) for cell, width in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(line)


async def sandbox_starts_and_warm(kind: str, data_dir: Path, group: Any, starts: int) -> tuple[list[float], Any]:
    """Time `starts` sandboxes from spawn to their first exec, then return one more, started and warmed
    (50 execs), for round trips. `kind` is a launcher: nsjail, or none for the unisolated yardstick."""
    from rlm_mcp.sandbox import Sandbox, SandboxPolicy, create_launcher

    policy = SandboxPolicy.load()
    launcher = create_launcher(kind, policy)  # type: ignore[arg-type]
    samples = []
    for _ in range(starts):
        sandbox = Sandbox(launcher, policy, data_dir)
        started = time.perf_counter()
        await sandbox.start(group)
        await sandbox.exec("pass")
        samples.append(time.perf_counter() - started)
        await sandbox.close()
    sandbox = Sandbox(launcher, policy, data_dir)
    await sandbox.start(group)
    for _ in range(50):
        await sandbox.exec("pass")
    return samples, sandbox
