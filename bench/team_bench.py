"""A team server scaled out: exec_code throughput and latency for one replica reached directly and for
three replicas behind HAProxy (the checked-in examples/deploy/haproxy.cfg), the same clients on the same
machine in one run, and the memory of a session's jail.

Twenty clients, each with a bearer token of its own (a team of twenty), load a 20,000-line context into
a session of their own and call exec_code with its handle: `n += 1` (the server, the jail round trip and
the proxy, nothing else) and a regex search over the context (`grep`, work in the jail). The two set-ups
take turns, round after round, so that other load on the machine falls on both alike. One replica is
rlm-0 of the three, reached on its own port; each client keeps one session per set-up for the whole run.

Run: `.venv/bin/python bench/team_bench.py [--clients 20] [--calls 30] [--rounds 5]` (HAProxy installed:
./dev.sh test installs it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from common import print_table
from scale_bench import _breakdown, _children_map, _pss, _rss

from tests.deploy.team import Team, running_team

WORKLOADS = {"n += 1": "n += 1", "grep over 20k lines": "len(grep(r'line {i}7 value'))"}
SETUPS = ("1 replica, direct", "3 replicas, HAProxy")


class Seat:
    """One client of the team and its session in each set-up."""

    def __init__(self, index: int, token: str) -> None:
        self.index, self.token = index, token
        self.clients: dict[str, Client] = {}
        self.handles: dict[str, str] = {}

    async def join(self, urls: dict[str, str], joined: anyio.Event, leave: anyio.Event) -> None:
        """Connect to each set-up and start a session there; stay connected until `leave` (the clients'
        task groups are entered and left in this one task)."""
        async with AsyncExitStack() as stack:
            for setup, url in urls.items():
                headers = {"authorization": f"Bearer {self.token}", "x-rlm-session": f"bench-{self.index}"}
                http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=120))
                client = await stack.enter_async_context(Client(streamable_http_client(url, http_client=http)))
                await client.list_tools()  # so that the client sends `session` as Mcp-Param-Session
                text = "\n".join(f"client {self.index} line {i} value {i * self.index}" for i in range(20_000))
                loaded = await client.call_tool("load_context", {"text": text, "new_session": True})
                if loaded.is_error:
                    raise RuntimeError(loaded.content[0].text)
                self.handles[setup] = loaded.structured_content["session"]
                self.clients[setup] = client
                await self.exec(setup, "n = 0")
            joined.set()
            await leave.wait()

    async def exec(self, setup: str, code: str) -> None:
        result = await self.clients[setup].call_tool("exec_code", {"code": code, "session": self.handles[setup]})
        if result.is_error:
            raise RuntimeError(result.content[0].text[:300])


async def phase(seats: list[Seat], setup: str, code: str, calls: int) -> tuple[float, list[float], list[str]]:
    """Every seat makes `calls` exec_code calls at once; the wall time, each call's latency, the errors."""
    latencies: list[float] = []
    errors: list[str] = []

    async def drive(seat: Seat) -> None:
        for i in range(calls):
            started = time.perf_counter()
            try:
                await seat.exec(setup, code.format(i=i))
            except Exception as exc:  # a load test counts failures instead of stopping at the first
                errors.append(f"client {seat.index}: {exc}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for seat in seats:
            group.start_soon(drive, seat)
    return time.perf_counter() - started, latencies, errors


def session_memory(team: Team) -> tuple[int, float, float, float]:
    """The jails of every replica: how many, and per jail the mean PSS and RSS in MB; the replicas' own PSS."""
    jails = sum(1 for replica in team.replicas.values()
                for child in _children_map().get(replica.process.pid, [])
                if b"nsjail" in Path(f"/proc/{child}/cmdline").read_bytes())
    pss = sum(_breakdown(replica.process.pid, _pss)["jail"] for replica in team.replicas.values())
    rss = sum(_breakdown(replica.process.pid, _rss)["jail"] for replica in team.replicas.values())
    servers = sum(_pss(replica.process.pid) for replica in team.replicas.values())
    return jails, pss / max(1, jails) / 1e6, rss / max(1, jails) / 1e6, servers / len(team.replicas) / 1e6


async def run(team: Team, clients: int, calls: int, rounds: int, tokens: list[str]) -> None:
    seats = [Seat(index, tokens[index]) for index in range(clients)]
    urls = {SETUPS[0]: team.replicas["rlm-0"].url, SETUPS[1]: team.url}
    joined, leave = [anyio.Event() for _ in seats], anyio.Event()
    async with anyio.create_task_group() as group:
        for seat, event in zip(seats, joined, strict=True):
            group.start_soon(seat.join, urls, event, leave)
        for event in joined:
            await event.wait()
        spread = {name: sum(seat.handles[SETUPS[1]].startswith(name + ".") for seat in seats) for name in team.replicas}
        results: dict[tuple[str, str], tuple[list[float], list[float], list[str]]] = {}
        for _ in range(rounds):
            for workload, code in WORKLOADS.items():
                for setup in SETUPS:
                    wall, latencies, errors = await phase(seats, setup, code, calls)
                    throughputs, all_latencies, all_errors = results.setdefault((workload, setup), ([], [], []))
                    throughputs.append(len(latencies) / wall)
                    all_latencies += latencies
                    all_errors += errors
        jails, pss, rss, server_pss = session_memory(team)
        leave.set()
    rows = []
    for (workload, setup), (throughputs, latencies, errors) in results.items():
        p50, p99 = statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
        span = f"{min(throughputs):,.0f}-{max(throughputs):,.0f}/s"
        rows.append((workload, setup, f"{statistics.median(throughputs):,.0f}/s", span, f"{p50 * 1000:.1f} ms",
                     f"{p99 * 1000:.1f} ms", str(len(errors))))
    print_table(f"team: {clients} clients (a token each) x {calls} exec_code x {rounds} rounds per set-up, "
                f"taking turns; {os.cpu_count()} cores; sessions behind the proxy: "
                + ", ".join(f"{name} {count}" for name, count in spread.items()),
                ("workload", "set-up", "calls/s, median round", "range", "p50", "p99", "errors"), rows)
    print_table("memory per session (idle, after the run; a 0.6 MB context loaded, touched by grep)",
                ("measure", "value"),
                [("sessions (jails) measured", str(jails)), ("jail PSS per session", f"{pss:.1f} MB"),
                 ("jail RSS per session", f"{rss:.1f} MB"),
                 ("replica process PSS (server, without jails), mean of 3", f"{server_pss:.0f} MB"),
                 ("HAProxy RSS", f"{_rss(team.proxy.process.pid) / 1e6:.0f} MB")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    tokens = [f"bench-member-{index:02d}" for index in range(arguments.clients)]
    runtime = Path(tempfile.mkdtemp(prefix="rlm-team-bench-"))
    runtime.chmod(0o711)  # the jails' uid traverses it
    env = {**os.environ, "RLM_AUTH_TOKEN": ",".join(tokens), "RLM_RUNTIME_DIR": str(runtime),
           "RLM_MAX_SESSIONS": str(2 * arguments.clients + 4), "RLM_TOKEN_MAX_SESSIONS": "4"}
    try:
        with tempfile.TemporaryDirectory(prefix="rlm-team-bench-logs-") as logs, running_team(env, Path(logs)) as team:
            anyio.run(run, team, arguments.clients, arguments.calls, arguments.rounds, tokens)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()
