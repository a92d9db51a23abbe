"""Worker dispatch benchmark, the fake upstream in its own processes.

(a) 1,000 prompts through `WorkerDispatcher.query_batched` at 1 s upstream latency, concurrency 64:
    wall time against the ideal. 1000/64 = 15.6 s is the issue's figure; a semaphore runs whole rounds,
    so ceil(1000/64) x 1 s = 16 s is the true floor. Both are printed.
(b) CPU per worker call (process CPU time over N sequential calls) at zero upstream latency: our
    dispatcher through each backend, beside a bare async httpx client posting the same request to the
    same server, interleaved in rounds in the same run; medians of the rounds.

litellm is imported and each client warmed before timing: the server imports litellm at start-up, so
the one-off import (seconds) is not a per-call cost. Run: `.venv/bin/python bench/workers_bench.py`
(about 50 s; `--quick` for a smaller run).
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import anyio
import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from common import print_table

from rlm_mcp.workers import (
    Budget,
    BudgetLimits,
    LiteLLMBackend,
    ModelBackend,
    OpenAICompatibleBackend,
    WorkerDispatcher,
    WorkerSettings,
    load_litellm,
)

MODEL = "openai/gpt-4o-mini"
UNLIMITED = BudgetLimits(max_worker_calls=10**7, max_tokens=10**12, max_cost_usd=10**6, max_batch=10**6,
                         max_repeats=10**6, max_wall_s=10**6)


def start_fake(latency: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_server", "--port", "0",
                                "--latency", str(latency)], cwd=Path(__file__).parents[1],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()  # the server prints its address once it listens


def make_backend(kind: str, api_base: str) -> ModelBackend:
    if kind == "litellm":
        return LiteLLMBackend(api_base=api_base, api_key="sk-bench")
    return OpenAICompatibleBackend(api_base=api_base, api_key="sk-bench")


def dispatcher(kind: str, api_base: str, concurrency: int) -> WorkerDispatcher:
    settings = WorkerSettings(model=MODEL, concurrency=concurrency, timeout_s=60, retries=0, cache=False)
    return WorkerDispatcher(settings, make_backend(kind, api_base), budget=Budget.new(UNLIMITED))


async def throughput(kind: str, api_base: str, prompts: int, concurrency: int) -> tuple[float, int]:
    ours = dispatcher(kind, api_base, concurrency)
    try:
        await ours.query_batched([f"warm {i}" for i in range(concurrency)])  # connections open, imports done
        started = time.perf_counter()
        results = await ours.query_batched([f"prompt {i}" for i in range(prompts)])
        return time.perf_counter() - started, sum(r.error is not None for r in results)
    finally:
        await ours.aclose()


async def cpu_rounds(api_base: str, calls: int, rounds: int) -> dict[str, list[float]]:
    """CPU seconds per call for each client, `rounds` interleaved rounds of `calls` sequential calls."""
    clients = {kind: dispatcher(kind, api_base, 1) for kind in ("openai-compatible", "litellm")}
    samples: dict[str, list[float]] = {"bare httpx": [], "bare aiohttp": [], **{kind: [] for kind in clients}}
    headers = {"authorization": "Bearer sk-bench"}
    url = f"{api_base}/chat/completions"

    def body(i: int) -> dict[str, object]:
        return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}]}

    async with httpx.AsyncClient(timeout=60) as bare_httpx, aiohttp.ClientSession() as bare_aiohttp:

        async def httpx_call(i: int) -> None:
            (await bare_httpx.post(url, json=body(i), headers=headers)).json()

        async def aiohttp_call(i: int) -> None:
            async with bare_aiohttp.post(url, json=body(i), headers=headers) as response:
                await response.json()

        bares = {"bare httpx": httpx_call, "bare aiohttp": aiohttp_call}
        for i in range(20):  # warm-up
            for call in bares.values():
                await call(i)
            for ours in clients.values():
                await ours.query(f"warm {i}")
        for _ in range(rounds):
            for name, call in bares.items():
                started = time.process_time()
                for i in range(calls):
                    await call(i)
                samples[name].append((time.process_time() - started) / calls)
            for kind, ours in clients.items():
                started = time.process_time()
                for i in range(calls):
                    await ours.query(f"question {i}")
                samples[kind].append((time.process_time() - started) / calls)
    for ours in clients.values():
        await ours.aclose()
    return samples


async def main(quick: bool) -> None:
    prompts, concurrency, calls, rounds = (256, 64, 100, 3) if quick else (1000, 64, 200, 3)
    load_litellm()
    slow, slow_base = start_fake(latency=1.0)
    fast, fast_base = start_fake(latency=0.0)
    try:
        cpu = await cpu_rounds(fast_base, calls, rounds)
        walls = {kind: await throughput(kind, slow_base, prompts, concurrency)
                 for kind in ("openai-compatible", "litellm")}
    finally:
        for process in (slow, fast):
            process.terminate()
            process.wait()

    floor, issue_ideal = math.ceil(prompts / concurrency) * 1.0, prompts / concurrency
    bare = statistics.median(cpu["bare httpx"])
    rows: list[tuple[object, ...]] = []
    for kind, (wall, failed) in walls.items():
        rows.append((f"(a) {kind}: {prompts} prompts, 1 s latency, concurrency {concurrency}",
                     f"{wall:.2f} s: {(wall / issue_ideal - 1) * 100:+.1f}% vs {issue_ideal:.1f} s, "
                     f"{(wall / floor - 1) * 100:+.1f}% vs {floor:.0f} s" + (f" ({failed} failed)" if failed else ""),
                     "within 10%"))
    bare_aiohttp = statistics.median(cpu["bare aiohttp"])
    rows.append((f"(b) bare httpx client: CPU per call (median of {rounds}x{calls})", f"{bare * 1000:.2f} ms", "-"))
    rows.append(("(b) bare aiohttp client: CPU per call", f"{bare_aiohttp * 1000:.2f} ms", "-"))
    for kind in ("openai-compatible", "litellm"):
        ours = statistics.median(cpu[kind])
        rows.append((f"(b) dispatcher via {kind}: CPU per call",
                     f"{ours * 1000:.2f} ms = {ours / bare:.2f}x bare httpx, {ours / bare_aiohttp:.2f}x bare aiohttp",
                     "<= 1.5x bare"))
    print_table("worker dispatch (fake upstream in its own processes)", ("measure", "result", "target"), rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 prompts and fewer CPU samples")
    anyio.run(main, parser.parse_args().quick)
