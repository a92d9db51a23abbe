"""Worker calls through the user's assistant CLI (`claude-code/`, `codex/`, `gemini-cli/`), against stand-in
executables on PATH that speak each CLI's documented JSON (tests/workers/cli_standin.py): the backend
itself, the dispatcher's guarantees on top of it, and the real server over stdio."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from rlm_mcp.workers import (
    Budget,
    BudgetLimits,
    ModelRequest,
    TrajectoryLog,
    WorkerDispatcher,
    WorkerSettings,
    backend_for,
)
from rlm_mcp.workers.cli_backend import CliBackend
from rlm_mcp.workers.errors import ContextWindowExceeded, WorkerCallFailed, WorkerTimeout
from tests.helpers import server_command, stdio_client

pytestmark = pytest.mark.anyio
STANDIN = Path(__file__).with_name("cli_standin.py")
MODELS = {"claude": "claude-code/haiku", "codex": "codex/gpt-4o-mini", "gemini": "gemini-cli/gemini-2.5-flash"}


@dataclass
class StandIns:
    """A directory of stand-in `claude`, `codex` and `gemini` executables and what they logged."""

    bin: Path

    def environ(self, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.bin}{os.pathsep}/usr/bin:/bin", "HOME": str(self.bin.parent / "home"), **extra}

    def calls(self) -> list[dict]:
        log = self.bin / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def hang_pids(self) -> list[int]:
        return [int(pid) for pid in (self.bin / "hang.pids").read_text().split()]


@pytest.fixture
def standins(tmp_path: Path) -> Iterator[StandIns]:
    directory = tmp_path / "bin"
    directory.mkdir()
    (tmp_path / "home").mkdir()
    body = STANDIN.read_text()
    for name in MODELS:
        script = directory / name
        script.write_text(f"#!{sys.executable}\n{body}")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    yield StandIns(directory)
    pids = directory / "hang.pids"
    for pid in StandIns(directory).hang_pids() if pids.exists() else []:
        if alive(pid):  # never leave a stray process behind, even when an assertion failed
            os.kill(pid, 9)


def gone(*pids: int) -> bool:
    """All of `pids` have exited (a SIGKILLed process takes a moment to die)."""
    deadline = time.monotonic() + 3
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(pid) for pid in pids)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


async def ask(standins: StandIns, model: str, prompt: str, timeout_s: float = 20, **env: str):
    backend = CliBackend(standins.environ(**env))
    return await backend.complete(ModelRequest.of_prompt(model, prompt, timeout_s))


# --- the backend ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", MODELS)
async def test_answer_tokens_and_cost_from_each_clis_json(standins: StandIns, flavor: str) -> None:
    response = await ask(standins, MODELS[flavor], "hello there")
    assert response.text == "echo: hello there"
    assert response.model == MODELS[flavor]
    expected = {"claude": (14, 7), "codex": (14, 7), "gemini": (14, 7)}[flavor]  # gemini: candidates + thoughts
    assert (response.tokens_in, response.tokens_out) == expected
    if flavor == "claude":
        assert response.cost_usd == 0.00042  # total_cost_usd, as reported
    else:
        assert response.cost_usd is not None and response.cost_usd > 0  # priced from litellm's price map
    assert standins.calls()[0]["prompt"] == "hello there"  # on stdin, unchanged


async def test_an_unpriced_model_has_unknown_cost_not_zero(standins: StandIns) -> None:
    response = await ask(standins, "codex/house-model", "hi")
    assert response.cost_usd is None


@pytest.mark.parametrize("flavor", MODELS)
async def test_each_call_is_sealed_off(standins: StandIns, flavor: str) -> None:
    """Tools, MCP servers, hooks and saved sessions off; an empty private directory; an allow-listed env."""
    secrets = {"RLM_AUTH_TOKEN": "rlm-secret", "RLM_WORKER_MODEL": "x", "SOME_OTHER_TOKEN": "other",
               "CLAUDECODE": "1", "CLAUDE_CODE_SSE_PORT": "1234", "ANTHROPIC_API_KEY": "sk-ant",
               "OPENAI_API_KEY": "sk-openai", "GEMINI_API_KEY": "gm-key"}
    await ask(standins, MODELS[flavor], "hi", **secrets)
    call = standins.calls()[0]
    argv, env = call["argv"], call["env"]
    assert not [name for name in env if name.startswith("RLM_")]
    assert "SOME_OTHER_TOKEN" not in env and "CLAUDECODE" not in env and "CLAUDE_CODE_SSE_PORT" not in env
    assert env["HOME"] == standins.environ()["HOME"] and env["NO_COLOR"] == "1"
    own_key = {"claude": "ANTHROPIC_API_KEY", "codex": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY"}[flavor]
    assert [k for k in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY") if k in env] == [own_key]
    assert call["cwd_mode"] == "0o700" and call["cwd_entries"] == ([".gemini"] if flavor == "gemini" else [])
    assert not Path(call["cwd"]).exists()  # removed after the call
    assert call["pgid"] == call["pid"]  # its own process group, so a kill reaches its children
    if flavor == "claude":
        for flag in (["--tools", ""], ["--strict-mcp-config", "--mcp-config", '{"mcpServers": {}}'],
                     ["--setting-sources", ""], ["--model", "haiku"], ["--output-format", "json"]):
            assert _contains(argv, flag), flag
        assert "--no-session-persistence" in argv and "--system-prompt" in argv and "--print" in argv
    elif flavor == "codex":
        assert argv[:2] == ["exec", "--json"] and argv[-1] == "-"
        for flag in ("--ephemeral", "--ignore-user-config", "features.shell_tool=false", 'web_search="disabled"'):
            assert flag in argv, flag
    else:
        assert _contains(argv, ["--allowed-mcp-server-names", "rlm-worker-no-mcp-server"])
        assert _contains(argv, ["--extensions", "none"]) and _contains(argv, ["--prompt", ""])
        assert env["GEMINI_CLI_TRUST_WORKSPACE"] == "true" and env["GEMINI_SYSTEM_MD"].endswith("system.md")


def _contains(argv: list[str], run: list[str]) -> bool:
    return any(argv[i:i + len(run)] == run for i in range(len(argv)))


@pytest.mark.parametrize("flavor", MODELS)
async def test_the_clis_own_error_becomes_the_calls_error(standins: StandIns, flavor: str) -> None:
    with pytest.raises(WorkerCallFailed) as caught:
        await ask(standins, MODELS[flavor], "CLI:is_error")
    message = str(caught.value)
    assert "Not logged in · Please run /login" in message and "to fix:" in message
    assert not caught.value.retryable


@pytest.mark.parametrize("flavor", MODELS)
async def test_an_overload_is_transient(standins: StandIns, flavor: str) -> None:
    with pytest.raises(WorkerCallFailed) as caught:
        await ask(standins, MODELS[flavor], "CLI:overloaded")
    assert caught.value.retryable and "529" in str(caught.value)


@pytest.mark.parametrize("flavor", MODELS)
async def test_garbage_and_a_crash_are_clear_errors(standins: StandIns, flavor: str) -> None:
    with pytest.raises(WorkerCallFailed, match=r"no JSON this backend can read.*not json") as garbage:
        await ask(standins, MODELS[flavor], "CLI:garbage")
    with pytest.raises(WorkerCallFailed, match="exited with code 3: boom: the CLI crashed") as crash:
        await ask(standins, MODELS[flavor], "CLI:exit")
    assert not garbage.value.retryable and not crash.value.retryable


async def test_a_flood_is_stopped_and_a_full_window_is_named(standins: StandIns) -> None:
    """Output is capped while it is read (the error leaves the reading task group as ours), and a prompt too
    long for the model is the error the root loop answers by dropping older turns."""
    with pytest.raises(WorkerCallFailed, match=r"wrote more than 16 MiB on stdout: stopped"):
        await ask(standins, MODELS["claude"], "CLI:flood")
    with pytest.raises(ContextWindowExceeded, match="Prompt is too long"):
        await ask(standins, MODELS["claude"], "CLI:context-full")


@pytest.mark.parametrize("flavor", MODELS)
async def test_a_hang_times_out_and_the_whole_process_group_dies(standins: StandIns, flavor: str) -> None:
    started = time.monotonic()
    with pytest.raises(WorkerTimeout):
        await ask(standins, MODELS[flavor], "CLI:hang", timeout_s=1.5)
    assert time.monotonic() - started < 5
    assert gone(*standins.hang_pids())  # the CLI and the child it started


async def test_a_cancelled_call_kills_the_process_group_too(standins: StandIns) -> None:
    with anyio.move_on_after(1.5):
        await ask(standins, MODELS["claude"], "CLI:hang", timeout_s=60)
    assert gone(*standins.hang_pids())


@pytest.mark.parametrize("flavor", MODELS)
async def test_a_cli_not_on_path_names_the_package_to_install(standins: StandIns, flavor: str,
                                                              tmp_path: Path) -> None:
    backend = CliBackend({"PATH": str(tmp_path), "HOME": str(tmp_path)})
    with pytest.raises(WorkerCallFailed) as caught:
        await backend.complete(ModelRequest.of_prompt(MODELS[flavor], "hi", 5))
    package = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex", "gemini": "@google/gemini-cli"}
    message = str(caught.value)
    assert f"npm install -g {package[flavor]}" in message and f"`{flavor}` is not on PATH" in message


async def test_model_strings_choose_the_backend(standins: StandIns) -> None:
    assert backend_for("claude-code/haiku", None).name == "assistant-cli"
    assert backend_for("gemini-cli/gemini-2.5-pro", None).name == "assistant-cli"
    assert backend_for("openai/gpt-4o-mini", None).name == "litellm"
    with pytest.raises(WorkerCallFailed, match="names no model"):
        await ask(standins, "claude-code/", "hi")
    with pytest.raises(WorkerCallFailed, match="not an assistant-CLI model"):
        await ask(standins, "openai/gpt-4o-mini", "hi")


# --- the dispatcher's guarantees on top of it ----------------------------------------------------------------


def dispatcher(standins: StandIns, tmp_path: Path | None = None, **settings) -> WorkerDispatcher:
    options = {"model": MODELS["claude"], "timeout_s": 10.0, "retries": 2, "backoff_s": 0.01, "concurrency": 4,
               **settings}
    trajectory = TrajectoryLog(tmp_path / "trajectory.jsonl") if tmp_path else None
    return WorkerDispatcher(WorkerSettings(**options), CliBackend(standins.environ()), trajectory)


async def test_retries_only_transient_failures(standins: StandIns) -> None:
    workers = dispatcher(standins)
    recovered = await workers.query("CLI:overloaded-once")
    assert recovered.error is None and recovered.text.startswith("echo:")
    assert len(standins.calls()) == 2  # one retry
    refused = await workers.query("CLI:is_error")
    assert refused.error is not None and "Not logged in" in refused.error
    assert len(standins.calls()) == 3  # not retried


async def test_batch_keeps_per_item_errors_and_respects_concurrency(standins: StandIns) -> None:
    workers = dispatcher(standins, concurrency=2)
    prompts = [f"CLI:slow {i}" for i in range(6)]
    prompts[2] = "CLI:is_error"
    results = await workers.query_batched(prompts)
    assert [r.error is None for r in results] == [True, True, False, True, True, True]
    assert results[5].text == "echo: CLI:slow 5" and "Not logged in" in (results[2].error or "")
    assert max_overlap(standins.calls()) == 2


def max_overlap(calls: list[dict]) -> int:
    edges = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


async def test_cache_budget_and_trajectory(standins: StandIns, tmp_path: Path) -> None:
    workers = dispatcher(standins, tmp_path)
    budget = Budget.new(BudgetLimits(max_worker_calls=2))
    first = await workers.query("same", budget)
    again = await workers.query("same", budget)
    assert again.cached and again.text == first.text and len(standins.calls()) == 1
    await workers.query("other", budget)
    over = await workers.query("third", budget)
    assert over.error is not None and "max_worker_calls" in over.error and len(standins.calls()) == 2
    assert workers.trajectory is not None
    workers.trajectory.close()
    records = [json.loads(line) for line in (tmp_path / "trajectory.jsonl").read_text().splitlines()]
    calls = [r for r in records if r["type"] == "worker_call"]
    assert calls[0]["model"] == "claude-code/haiku" and calls[0]["cost_usd"] == 0.00042
    assert calls[0]["tokens_in"] == 14 and [c["cached"] for c in calls[:2]] == [False, True]


# --- the real server over stdio ------------------------------------------------------------------------------


def cli_env(server_env: dict[str, str], standins: StandIns, **extra: str) -> dict[str, str]:
    return {**server_env, "PATH": f"{standins.bin}{os.pathsep}{server_env['PATH']}", **extra}


@pytest.mark.parametrize("flavor", MODELS)
async def test_llm_query_batched_and_sub_query_through_the_server(server_env, standins: StandIns,
                                                                  flavor: str) -> None:
    env = cli_env(server_env, standins, RLM_WORKER_MODEL=MODELS[flavor])
    code = ("one = llm_query('ping')\n"
            "many = llm_query_batched(['a', 'CLI:is_error', 'b'])\n"
            "print(one); print(many[0], '|', many[2]); print(many[1][:80])")
    async with stdio_client(env) as client:
        result = await client.call_tool("exec_code", {"code": code})
        lines = result.structured_content["stdout"].splitlines()
        assert lines[0] == "echo: ping" and lines[1] == "echo: a | echo: b", result
        assert "Not logged in" in lines[2]
        usage = result.structured_content["worker_usage"]
        assert usage["calls"] == 4 and usage["failed_calls"] == 1 and usage["tokens_in"] == 3 * 14
        sub = await client.call_tool("sub_query", {"prompts": ["x", "CLI:exit"]})
        answers = sub.structured_content["answers"]
        assert answers[0]["text"] == "echo: x" and "boom: the CLI crashed" in answers[1]["error"]
        assert sub.structured_content["backend"] == "assistant-cli"
        failed = await client.call_tool("exec_code", {"code": "llm_query('CLI:is_error')"})
        assert failed.is_error and "Not logged in · Please run /login" in failed.structured_content["error"]


async def test_server_concurrency_cache_budget_timeout_and_trajectory(server_env, standins: StandIns) -> None:
    env = cli_env(server_env, standins, RLM_WORKER_MODEL=MODELS["claude"], RLM_CLI_CONCURRENCY="2",
                  RLM_MAX_WORKER_CALLS="8", RLM_WORKER_TIMEOUT_S="1.5", RLM_WORKER_RETRIES="0")
    async with stdio_client(env) as client:
        batch = await client.call_tool("exec_code", {"code": "len(llm_query_batched([f'CLI:slow {i}' for i in "
                                                              "range(6)] + ['CLI:slow 0']))"})
        assert batch.structured_content["stdout"] == "7\n", batch
        assert max_overlap(standins.calls()) == 2 and len(standins.calls()) == 6  # the repeat was a cache hit
        started = time.monotonic()
        hung = await client.call_tool("exec_code", {"code": "llm_query('CLI:hang')"})
        assert hung.is_error and "did not answer within 1.5 s" in hung.structured_content["error"]
        assert time.monotonic() - started < 10 and gone(*standins.hang_pids())
        await client.call_tool("exec_code", {"code": "llm_query('x1')"})
        over = await client.call_tool("exec_code", {"code": "llm_query('x2')"})
        assert over.is_error and "max_worker_calls" in over.structured_content["error"]
        trajectory = (await client.call_tool("session", {})).structured_content
    logs = list((Path(server_env["RLM_HOME"]) / "trajectories").glob("*.jsonl"))
    records = [json.loads(line) for log in logs for line in log.read_text().splitlines()]
    worker_calls = [r for r in records if r.get("type") == "worker_call"]
    assert {r["model"] for r in worker_calls} == {"claude-code/haiku"} and len(worker_calls) >= 9, trajectory
    assert any("did not answer" in (r["error"] or "") for r in worker_calls)


async def test_rlm_complete_with_a_cli_as_root_model(server_env, standins: StandIns) -> None:
    """The root model speaks the fenced-code protocol through the CLI; its code calls a CLI worker."""
    env = cli_env(server_env, standins, RLM_WORKER_MODEL=MODELS["codex"], RLM_ROOT_MODEL="claude-code/sonnet")
    async with stdio_client(env) as client:
        await client.call_tool("load_context", {"text": "x" * 1234})
        result = await client.call_tool("rlm_complete", {"query": "How long is it?"})
        report = result.structured_content
        assert report["status"] == "final", report
        assert report["answer"] == "root read 1234 chars; worker said echo: inner"
    root_turn = next(c for c in standins.calls() if c["flavor"] == "claude")
    assert "Question: How long is it?" in root_turn["prompt"]
    system = root_turn["argv"][root_turn["argv"].index("--system-prompt") + 1]
    assert "```python" in system  # the fenced-code protocol, not tool calls


def test_rlm_mcp_ask_with_a_cli_as_root_model(server_env, standins: StandIns) -> None:
    env = cli_env(server_env, standins)
    done = subprocess.run([server_command(), "ask", "How long is it?", "-", "--root-model", "claude-code/sonnet",
                           "--worker-model", "gemini-cli/gemini-2.5-flash"], input="some text to read",
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "root read 17 chars; worker said echo: inner"
