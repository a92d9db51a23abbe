"""Checkpoint benchmark: what saving REPL variables after each exec costs, on both backends, side by side.

Run: `.venv/bin/python bench/checkpoint_bench.py` (`./dev.sh bench` runs it with the others). Prints medians:
- a small exec (`x = 1`) round trip with checkpoints and without, interleaved in one run so load on a shared
  machine hits both; the target is an extra cost of at most 10 %;
- an exec that creates 100 MB of variables, with and without checkpoints (the difference is the save);
- restoring those 100 MB into a restarted REPL (restart + restore, against a bare restart).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table

from rlm_mcp.config import Settings
from rlm_mcp.sandbox import CheckpointStore, Sandbox, SandboxPolicy, create_launcher, new_data_dir

SMALL_EXECS = 400
ROUNDS = 5
BIG = "big = [('%08d' % i) * 125 for i in range(100_000)]"  # 100,000 strings of 1,000 chars: ~100 MB of text


async def timed(action) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def measure(kind: str) -> list[tuple[object, ...]]:
    policy = SandboxPolicy.load()
    launcher = create_launcher(kind, policy, home=Settings().home)  # type: ignore[arg-type]
    home = Path(tempfile.mkdtemp(prefix="rlm-ckpt-bench-"))
    data_dirs = [new_data_dir(), new_data_dir()]
    samples: dict[str, list[float]] = {name: [] for name in ("plain", "kept", "big plain", "big kept",
                                                               "restart", "restart+restore")}
    try:
        async with anyio.create_task_group() as group:
            plain = Sandbox(launcher, policy, data_dirs[0])
            kept = Sandbox(launcher, policy, data_dirs[1], checkpoints=CheckpointStore(home / "c", 2**31))
            for sandbox in (plain, kept):
                await sandbox.start(group)
                for _ in range(20):
                    await sandbox.exec("x = 1")
            for _ in range(SMALL_EXECS):  # interleaved: the same load on both
                samples["plain"].append(await timed(lambda: plain.exec("x = 1")))
                samples["kept"].append(await timed(lambda: kept.exec("x = 1")))
            for _ in range(ROUNDS):
                samples["big plain"].append(await timed(lambda: plain.exec(BIG + "\ndel big")))
                samples["big kept"].append(await timed(lambda: kept.exec(BIG, timeout_s=300)))
                samples["restart"].append(await timed(plain.restart))
                samples["restart+restore"].append(await timed(lambda: restart_and_restore(kept)))
                await kept.exec("del big")
            await plain.close()
            await kept.close()
            group.cancel_scope.cancel()
    finally:
        shutil.rmtree(home, ignore_errors=True)
        for path in data_dirs:
            shutil.rmtree(path, ignore_errors=True)
    med = {name: statistics.median(values) for name, values in samples.items()}
    overhead = (med["kept"] - med["plain"]) / med["plain"] * 100
    restore_ms = (med["restart+restore"] - med["restart"]) * 1000
    return [
        (kind, "x = 1 round trip", f"{med['plain'] * 1000:.2f} ms", f"{med['kept'] * 1000:.2f} ms",
         f"{overhead:+.1f} %"),
        (kind, "create 100 MB of variables", f"{med['big plain'] * 1000:.0f} ms", f"{med['big kept'] * 1000:.0f} ms",
         f"save {(med['big kept'] - med['big plain']) * 1000:+.0f} ms"),
        (kind, "restart (+ restore 100 MB)", f"{med['restart'] * 1000:.0f} ms",
         f"{med['restart+restore'] * 1000:.0f} ms", f"restore {restore_ms:+.0f} ms"),
    ]


async def restart_and_restore(sandbox: Sandbox) -> None:
    await sandbox.restart()
    note = await sandbox.restore()
    assert "big" in note.restored, note


async def main() -> None:
    rows = []
    for kind in ("nsjail", "wasm"):
        rows += await measure(kind)
    print_table(f"Checkpoints: medians ({SMALL_EXECS} small execs interleaved, {ROUNDS} rounds of 100 MB)",
                ("backend", "what", "without checkpoints", "with checkpoints", "difference"), rows)


if __name__ == "__main__":
    anyio.run(main)
