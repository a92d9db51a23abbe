"""Sandbox benchmark: start to ready, warm exec round trip, 40 MB context, against yardsticks; then the
two isolation backends side by side: wasm (Pyodide under Deno) against nsjail, each through one running
server's session manager (wasm: restored from the run's Pyodide snapshot, its spare adopted).

Run: `.venv/bin/python bench/sandbox_bench.py` (needs nsjail, like the server, and the Pyodide that
`./dev.sh setup` fetches). Prints medians. Yardsticks: the same REPL protocol with the unisolated
launcher (a plain child process), and a bare in-process `exec` of the same statement. The side-by-side
table interleaves the backends (nsjail, wasm, nsjail, ...) so that load on a shared machine hits both.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

sys.path.insert(0, str(Path(__file__).parent))
from common import median_ms, print_table, sandbox_starts_and_warm, time_async

from rlm_mcp.config import Settings, load_settings
from rlm_mcp.sandbox import Sandbox, WasmLauncher, new_data_dir
from rlm_mcp.sandbox.process import group_members
from rlm_mcp.sessions import SessionRegistry
from rlm_mcp.sessions.guest import launcher_for

STARTS = 15
SIDE_BY_SIDE_RUNS = 5
SIDE_EXECS = 200
STDLIB = Path(sysconfig.get_paths()["stdlib"])
CPU_SNIPPET = ("import re\ntext = '\\n'.join(f'line {i} value={i * 7}' for i in range(300_000))\n"
               "total = sum(int(v) for v in re.findall(r'value=(\\d+)', text)) + sum(range(5_000_000))")
GREP = "hits = len(grep(r'^class \\w+\\(', max_hits=None))"
DECODE = "import re\nn = len(re.findall(r'(?m)^def ', context))"
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


def peak_rss_mb(pgid: int) -> float:
    """Sum of the peak resident sizes (VmHWM) of the sandbox's processes: nsjail and its guest, or Deno."""
    total = 0
    for pid in group_members(pgid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


async def running_server(kind: str, home: Path, runtime_dir: Path, group: TaskGroup) -> SessionRegistry:
    """A server's session manager after its start-up: the sandbox chosen (wasm: this run's Pyodide snapshot
    made) and, where the backend keeps one, the spare guest ready."""
    settings = load_settings(flags={"home": home, "sandbox": kind, "allowed_roots": str(STDLIB),
                                    "runtime_dir": runtime_dir}, environ={})
    manager = SessionRegistry(settings, group)
    await manager.sandbox.make()
    launcher = await anyio.to_thread.run_sync(launcher_for, settings, manager.policy)
    if isinstance(launcher, WasmLauncher):  # made in the background at start-up; then one spare from it
        await anyio.to_thread.run_sync(launcher.wait_for_snapshot)
        await spare_ready(manager)
        await manager.close_connection(await one_claim(manager))
    await spare_ready(manager)
    return manager


async def one_claim(manager: SessionRegistry) -> str:
    """A session that takes the spare started before the snapshot was ready (a plain load) and goes."""
    session = (await manager.default("warm-up", "stdio")).session
    await session.exec("pass")
    return session.key


async def spare_ready(manager: SessionRegistry) -> None:
    """Wait until the server's spare is up: a new conversation rarely follows the last within a second."""
    if manager.sandbox.spares is not None and manager.sandbox.spares._spare is not None:
        await manager.sandbox.spares._spare.ready.wait()


async def own_start(manager: SessionRegistry) -> float:
    """A sandbox started on its own, as when no spare is ready (or after a crash): spawn to first exec."""
    launcher = await anyio.to_thread.run_sync(launcher_for, manager.settings, manager.policy)
    data_dir = new_data_dir(manager.settings.runtime_dir)
    async with anyio.create_task_group() as group:
        sandbox = Sandbox(launcher, manager.policy, data_dir)
        started = time.perf_counter()
        await sandbox.start(group)
        await sandbox.exec("pass")
        elapsed = time.perf_counter() - started
        await sandbox.close()
    shutil.rmtree(data_dir, ignore_errors=True)
    return elapsed


async def one_session(manager: SessionRegistry, number: int) -> dict[str, float]:
    """One new session on a running server: first exec, warm exec round trips, stdlib load, grep, decode +
    regex, CPU, peak RSS; then a sandbox started without the spare."""
    session = (await manager.default(f"bench-{number}", "stdio")).session
    figures: dict[str, float] = {}
    started = time.perf_counter()
    await session.exec("pass")
    figures["start"] = time.perf_counter() - started
    await spare_ready(manager)  # the next spare starts now: steady state is without it
    figures["exec"] = statistics.median(await time_async(lambda: session.exec("x = 1"), SIDE_EXECS))
    started = time.perf_counter()
    await session.load_paths("main", [str(STDLIB)], [STDLIB])
    figures["load"] = time.perf_counter() - started
    for name, code in (("grep", GREP), ("decode", DECODE), ("cpu", CPU_SNIPPET)):
        outcome = await session.exec(code, timeout_s=600)
        assert outcome.result.ok, outcome.result
        figures[name] = outcome.result.elapsed_s
    assert session.sandbox is not None and session.sandbox.pid is not None
    figures["rss"] = peak_rss_mb(session.sandbox.pid)
    await manager.close_connection(session.key)
    await spare_ready(manager)
    figures["own_start"] = await own_start(manager)
    return figures


async def side_by_side() -> None:
    home = Path(tempfile.mkdtemp(prefix="rlm-bench-home-"))
    (home / "wasm").symlink_to(Settings().home / "wasm", target_is_directory=True)  # Pyodide, fetched once
    runtime_dir = Path(tempfile.mkdtemp(prefix="rlm-bench-runtime-"))
    runtime_dir.chmod(0o711)
    runs: dict[str, list[dict[str, float]]] = {"nsjail": [], "wasm": []}
    try:
        async with anyio.create_task_group() as group:
            servers = {kind: await running_server(kind, home, runtime_dir, group) for kind in runs}
            for number in range(SIDE_BY_SIDE_RUNS):
                for kind in runs:
                    runs[kind].append(await one_session(servers[kind], number))
            for manager in servers.values():
                await manager.close_all()
            group.cancel_scope.cancel()
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(runtime_dir, ignore_errors=True)

    def med(kind: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[kind])

    def row(label: str, key: str, unit: str, scale: float, digits: int) -> tuple[str, str, str, str]:
        nsjail, wasm = med("nsjail", key) * scale, med("wasm", key) * scale
        return (label, f"{nsjail:.{digits}f} {unit}", f"{wasm:.{digits}f} {unit}", f"{wasm / nsjail:.1f}x")

    size_mb = sum(p.stat().st_size for p in STDLIB.rglob("*") if p.is_file()) / 2**20
    print_table(
        f"wasm against nsjail (medians of {SIDE_BY_SIDE_RUNS} interleaved sessions each; stdlib: {STDLIB}, "
        f"{size_mb:.0f} MB on disk)",
        ("measure", "nsjail", "wasm", "wasm / nsjail"),
        [
            row("new session's first exec, running server", "start", "ms", 1000, 0),
            row("a sandbox's own start to first exec (no spare)", "own_start", "ms", 1000, 0),
            row("warm exec round trip", "exec", "ms", 1000, 3),
            row("load_context of the stdlib", "load", "s", 1, 2),
            row("grep r'^class \\w+\\(' over it (rg on the host)", "grep", "ms", 1000, 0),
            row("decode `context` + re.findall in the guest", "decode", "s", 1, 2),
            row("CPU-bound snippet (300k-line regex, sum of 5M)", "cpu", "s", 1, 2),
            row("peak RSS of the sandbox's processes", "rss", "MB", 1, 0),
        ],
    )


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
    await side_by_side()


if __name__ == "__main__":
    anyio.run(main)
