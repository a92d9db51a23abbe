"""Runs tasks through the real rlm-mcp server over stdio: one server for the run, each group of tasks on the same
files in a session reset for it (contexts dropped, a fresh REPL), as a host keeps one server across its questions.
The server's start (and, with a model, litellm's import) is paid once, not once per group.

Reference mode sends each task's program with exec_code; model mode asks rlm_complete, where a root
model writes its own programs. Between tasks the REPL is reset (contexts kept), so no task reuses
another's variables. `host_bytes` counts the text of every tool result the host receives for a task.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mcp import Client, StdioServerParameters

from .tasks import Task, score

Mode = Literal["reference", "model"]
EXEC_TIMEOUT_S = 900


@dataclass
class Outcome:
    task: Task
    answer: str | None
    score: float
    seconds: float
    worker_calls: int = 0
    cached_calls: int = 0  # of worker_calls, answered from the session's cache (repeated prompts)
    host_bytes: int = 0
    cost_usd: float | None = None
    error: str | None = None


@dataclass
class GroupLoad:
    source: tuple[str, ...]
    seconds: float
    files: int
    tokens: int
    host_bytes: int


def server_command() -> str:
    script = Path(sys.executable).with_name("rlm-mcp")
    if not script.exists():
        raise SystemExit(f"rlm-mcp is not installed next to {sys.executable}: pip install -e .")
    return str(script)


def _text_bytes(result: Any) -> int:
    return sum(len(getattr(item, "text", "").encode()) for item in result.content)


async def run_group(client: Client, tasks: list[Task], mode: Mode) -> tuple[GroupLoad, list[Outcome]]:
    """Load the group's files into a session with no contexts and run its tasks there."""
    started = time.perf_counter()
    loaded = await client.call_tool("load_context", {"source": list(tasks[0].source)})
    summary = loaded.structured_content or {}
    load = GroupLoad(tasks[0].source, time.perf_counter() - started, int(summary.get("files") or 0),
                     int(summary.get("estimated_tokens") or 0), _text_bytes(loaded))
    outcomes = [await _run_task(client, task, mode) for task in tasks]
    return load, outcomes


async def _run_task(client: Client, task: Task, mode: Mode) -> Outcome:
    await client.call_tool("session", {"action": "reset", "keep_contexts": True})
    started = time.perf_counter()
    try:
        if mode == "reference":
            result = await client.call_tool("exec_code", {"code": task.reference, "timeout_s": EXEC_TIMEOUT_S})
        else:
            result = await client.call_tool("rlm_complete", {"query": task.question})
    except Exception as exc:  # a failed task scores 0 and says why; the run goes on
        return Outcome(task, None, 0.0, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    report = result.structured_content or {}
    usage = report.get("worker_usage") or {}
    answer = report.get("final_answer") if mode == "reference" else report.get("answer")
    cost = None
    if mode == "model":
        costs = [report.get("root_cost_usd"), usage.get("cost_usd")]
        cost = None if None in costs else sum(costs)
    error = None
    if result.is_error or answer is None:
        error = (report.get("error") or report.get("reason") or report.get("stderr") or "no answer")[-300:]
    return Outcome(task, answer, score(task, answer), seconds, int(usage.get("calls") or 0),
                   int(usage.get("cached_calls") or 0), _text_bytes(result), cost, error)


async def run_all(tasks: list[Task], env: dict[str, str], mode: Mode,
                  on_outcome: Any = None) -> tuple[list[GroupLoad], list[Outcome]]:
    loads, outcomes = [], []
    params = StdioServerParameters(command=server_command(), args=[], env=env)
    async with Client(params) as client:  # type: ignore[arg-type]
        for index, (_, group) in enumerate(itertools.groupby(tasks, key=lambda task: task.group)):
            if index:  # the group before's contexts (stored files, code index) and variables go
                await client.call_tool("session", {"action": "reset", "keep_contexts": False})
            load, results = await run_group(client, list(group), mode)
            loads.append(load)
            outcomes += results
            for outcome in results:
                if on_outcome:
                    on_outcome(outcome)
    return loads, outcomes


def server_env(workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    """A private home and jail runtime dir; budgets sized for the largest generated task."""
    runtime = workdir / "runtime"
    runtime.mkdir(exist_ok=True)
    runtime.chmod(0o711)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RLM_")}
    env.update({
        "RLM_HOME": str(workdir / "home"), "RLM_RUNTIME_DIR": str(runtime), "RLM_ALLOWED_ROOTS": str(workdir),
        "RLM_EXEC_TIMEOUT_S": str(EXEC_TIMEOUT_S), "RLM_MAX_WORKER_CALLS": "100000", "RLM_MAX_TOKENS": "1000000000",
        "RLM_WORKER_CONCURRENCY": "32",
    })
    for key in ("RLM_GUEST_PYTHON", "RLM_SANDBOX_POLICY", "RLM_MAX_COST_USD"):  # the user's, if set
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra)
    return env
