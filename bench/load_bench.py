"""Load test: 20 concurrent clients over streamable HTTP on loopback, each loading a context and
running 50 execs. Reports errors, p50/p99 latency, and the memory of the server and its jails before,
at peak and after the clients leave. Bounded: 20 x 51 calls, stops by itself.

Run: `.venv/bin/python bench/load_bench.py [--clients 20] [--execs 50]`.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table


def jail_count(pid: int) -> int:
    """nsjail processes under the server."""
    return sum(1 for entry in Path("/proc").iterdir() if entry.name.isdigit() and _is_jail_of(entry, pid))


def _is_jail_of(entry: Path, pid: int) -> bool:
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]) == pid and (entry / "comm").read_text().strip() == "nsjail"
    except (OSError, IndexError, ValueError):
        return False


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total / 1e6


async def one_client(url: str, index: int, execs: int, latencies: list[float], errors: list[str]) -> None:
    try:
        async with Client(url, mode="legacy") as client:
            text = "\n".join(f"client {index} line {i} value {i * index}" for i in range(20_000))
            loaded = await client.call_tool("load_context", {"text": text})
            if loaded.is_error:
                errors.append(loaded.content[0].text)
            for i in range(execs):
                started = time.perf_counter()
                result = await client.call_tool("exec_code", {"code": f"len(grep(r'line {i} value'))"})
                latencies.append(time.perf_counter() - started)
                if result.is_error or not result.structured_content["stdout"].strip().isdigit():
                    errors.append(result.content[0].text[:200])
    except Exception as exc:  # a load test counts failures instead of stopping at the first
        errors.append(f"client {index}: {type(exc).__name__}: {exc}")


async def main(clients: int, execs: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "RLM_MAX_SESSIONS": str(clients + 4)}
    server = subprocess.Popen([str(Path(sys.executable).with_name("rlm-mcp")), "serve", "--http", "--port", str(port)],
                              env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                await anyio.sleep(0.1)
        async with Client(url, mode="legacy") as warmup:
            await warmup.call_tool("exec_code", {"code": "1"})
        await anyio.sleep(1)
        baseline = tree_rss_mb(server.pid)
        latencies: list[float] = []
        errors: list[str] = []
        peak = [baseline]
        done = anyio.Event()

        async def sample_memory() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss_mb(server.pid))
                await anyio.sleep(0.2)

        started = time.perf_counter()
        with anyio.fail_after(600):
            async with anyio.create_task_group() as group:
                group.start_soon(sample_memory)
                async with anyio.create_task_group() as clients_group:
                    for index in range(clients):
                        clients_group.start_soon(one_client, url, index, execs, latencies, errors)
                done.set()
        wall = time.perf_counter() - started
        await anyio.sleep(2)
        after = tree_rss_mb(server.pid)
        quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        print_table(
            f"load: {clients} clients x {execs} execs over streamable HTTP (loopback)",
            ("measure", "value"),
            [
                ("calls completed", f"{len(latencies)} of {clients * execs}"),
                ("errors", str(len(errors))),
                ("wall time", f"{wall:.1f} s"),
                ("exec latency p50", f"{statistics.median(latencies) * 1000:.1f} ms"),
                ("exec latency p99", f"{quantiles[98] * 1000:.1f} ms"),
                ("server + jails RSS: baseline", f"{baseline:.0f} MB"),
                ("server + jails RSS: peak", f"{peak[0]:.0f} MB"),
                ("server + jails RSS: after clients left", f"{after:.0f} MB"),
                ("jails still running after clients left", str(jail_count(server.pid))),
            ],
        )
        for error in errors[:5]:
            print("error:", error)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--execs", type=int, default=50)
    arguments = parser.parse_args()
    anyio.run(main, arguments.clients, arguments.execs)
