"""Worker dispatch benchmark, the fake upstream in its own process.

(a) 1,000 prompts through llm_query_batched's dispatcher at 1 s upstream latency, concurrency 64:
    wall time against the ideal ceil(1000/64) x 1 s = 16 s (the issue's 15.6 s is 1000/64 without rounding).
(b) CPU per worker call at zero latency: our dispatcher (litellm underneath) beside a bare async httpx
    client posting the same request to the same server, in the same run.

Run: `.venv/bin/python bench/workers_bench.py`.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from common import print_table

from rlm_mcp.workers import (
    Budget,
    BudgetLimits,
    LiteLLMBackend,
    WorkerDispatcher,
    WorkerSettings,
    backend_for,
)

PROMPTS = 1000
CONCURRENCY = 64
CPU_CALLS = 300


def start_fake(latency: float) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Path(__file__).parents[1] / "tests" / "fakes" / "openai_server.py"
    process = subprocess.Popen([sys.executable, str(server), "--port", str(port), "--latency", str(latency)],
                               stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.readline()  # the server prints its address once it listens
    return process, f"http://127.0.0.1:{port}/v1"


def dispatcher(api_base: str, concurrency: int, backend: str = "fast") -> WorkerDispatcher:
    settings = WorkerSettings(model="openai/gpt-4o-mini", concurrency=concurrency, timeout_s=60, retries=0,
                              cache_size=0)
    if backend == "litellm":
        return WorkerDispatcher(settings, LiteLLMBackend(api_base=api_base, api_key="sk-bench"))
    return WorkerDispatcher(settings, backend_for(settings.model, api_base, "sk-bench"))


async def throughput(backend: str) -> float:
    process, api_base = start_fake(latency=1.0)
    try:
        limits = BudgetLimits(max_worker_calls=10**6, max_batch=10**6, max_tokens=10**12, max_cost_usd=10**6)
        started = time.perf_counter()
        results = await dispatcher(api_base, CONCURRENCY, backend).query_batched(
            [f"prompt {i}" for i in range(PROMPTS)], Budget.new(limits))
        elapsed = time.perf_counter() - started
        failed = sum(r.error is not None for r in results)
        if failed:
            print(f"warning: {failed} calls failed")
        return elapsed
    finally:
        process.terminate()
        process.wait()


async def cpu_per_call(backend: str) -> tuple[float, float]:
    process, api_base = start_fake(latency=0.0)
    try:
        ours = dispatcher(api_base, 1, backend)
        limits = BudgetLimits(max_worker_calls=10**6, max_tokens=10**12, max_cost_usd=10**6, max_repeats=10**6)
        budget = Budget.new(limits)
        for i in range(20):
            await ours.query(f"warm {i}", budget)
        started = time.process_time()
        for i in range(CPU_CALLS):
            await ours.query(f"question {i}", budget)
        dispatch_cpu = (time.process_time() - started) / CPU_CALLS
        async with httpx.AsyncClient(timeout=60) as client:
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "question"}]}
            headers = {"authorization": "Bearer sk-bench"}
            for _ in range(20):
                await client.post(f"{api_base}/chat/completions", json=body, headers=headers)
            started = time.process_time()
            for i in range(CPU_CALLS):
                body["messages"][0]["content"] = f"question {i}"
                response = await client.post(f"{api_base}/chat/completions", json=body, headers=headers)
                response.json()
            bare_cpu = (time.process_time() - started) / CPU_CALLS
        return dispatch_cpu, bare_cpu
    finally:
        process.terminate()
        process.wait()


async def main() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    ideal = math.ceil(PROMPTS / CONCURRENCY) * 1.0
    rows = []
    for backend, label in (("fast", "OpenAI-compatible path"), ("litellm", "litellm path")):
        wall = await throughput(backend)
        ours, bare = await cpu_per_call(backend)
        rows += [
            (f"{label}: {PROMPTS} prompts, 1 s latency, concurrency {CONCURRENCY}",
             f"{wall:.2f} s ({(wall / ideal - 1) * 100:+.1f}% vs ideal {ideal:.0f} s)", "within 10% of ideal"),
            (f"{label}: CPU per call (bare httpx client: {bare * 1000:.2f} ms)",
             f"{ours * 1000:.2f} ms = {ours / bare:.2f}x bare", "<= 1.5x bare"),
        ]
    title = "worker dispatch (fake upstream in its own process)"
    print_table(title, ("measure", "result", "target"), rows)


if __name__ == "__main__":
    anyio.run(main)
