"""The three front doors over one engine: the rlm_complete tool, `rlm-mcp ask`, and the Python API (test_loop)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes import FakeOpenAI
from tests.helpers import server_command, stdio_client, tool_error

pytestmark = pytest.mark.anyio
CODE = "import re\nFINAL(re.search(r'port = (\\d+)', context).group(1))"


def root(request):
    if request["messages"][0]["role"] != "system":
        return f"echo: {request['messages'][-1]['content']}"
    call = {"id": "c1", "type": "function", "function": {"name": "exec_code", "arguments": json.dumps({"code": CODE})}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "service"
    path.mkdir()
    (path / "settings.toml").write_text("[server]\nhost = 'localhost'\nport = 8443\n")
    (path / "app.py").write_text("print('hello')\n")
    return path


async def test_rlm_complete_tool_reports_progress(server_env, project: Path) -> None:
    with FakeOpenAI(root) as fake:
        env = {**server_env, "RLM_ROOT_MODEL": "openai/scripted-root", "RLM_ROOT_API_BASE": fake.api_base,
               "OPENAI_API_KEY": "sk-test"}
        updates = []

        async def on_progress(progress, total, message):
            updates.append(message)

        async with stdio_client(env) as client:
            await client.call_tool("load_context", {"source": [str(project)]})
            result = await client.call_tool("rlm_complete", {"query": "Which port?"}, progress_callback=on_progress)
        report = result.structured_content
        assert (report["answer"], report["status"]) == ("8443", "final")
        assert report["iterations"] == 1 and report["trajectory"].endswith(".jsonl")
        assert any("iteration 1" in message for message in updates)


async def test_rlm_complete_without_root_model_says_how(server_env) -> None:
    async with stdio_client(server_env) as client:
        await client.call_tool("load_context", {"text": "x"})
        assert "RLM_ROOT_MODEL" in await tool_error(client, "rlm_complete", {"query": "?"})


async def test_rlm_complete_without_root_model_opens_no_session(server_env) -> None:
    """Refused before a session is opened for it: with room for one session, a new session still gets it."""
    async with stdio_client({**server_env, "RLM_MAX_SESSIONS": "1"}) as client:
        assert "RLM_ROOT_MODEL" in await tool_error(client, "rlm_complete", {"query": "?"})
        loaded = await client.call_tool("load_context", {"text": "x", "new_session": True})
        assert loaded.structured_content["session"], loaded


def test_ask_streams_to_stderr_and_answers_on_stdout(server_env, project: Path) -> None:
    with FakeOpenAI(root) as fake:
        env = {**server_env, "RLM_ROOT_API_BASE": fake.api_base, "OPENAI_API_KEY": "sk-test"}
        completed = subprocess.run(
            [server_command(), "ask", "Which port?", str(project), "--root-model", "openai/scripted-root"],
            capture_output=True, text=True, timeout=120, env=env,
        )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "8443\n"
    assert "iteration 1" in completed.stderr and "rlm-mcp trace" in completed.stderr


def test_ask_reads_stdin_and_prints_json(server_env) -> None:
    with FakeOpenAI(root) as fake:
        env = {**server_env, "RLM_ROOT_API_BASE": fake.api_base, "OPENAI_API_KEY": "sk-test",
               "RLM_ROOT_MODEL": "openai/scripted-root"}
        completed = subprocess.run([server_command(), "ask", "Which port?", "-", "--json", "-q"],
                                   input="config: port = 9000\n", capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert data["answer"] == "9000" and data["status"] == "final" and data["usage"]["iterations"] == 1


def test_ask_without_root_model_is_a_clear_error(server_env) -> None:
    completed = subprocess.run([server_command(), "ask", "?", "-"], input="x", capture_output=True, text=True,
                               timeout=60, env=server_env)
    assert completed.returncode == 1 and "RLM_ROOT_MODEL" in completed.stderr and "Traceback" not in completed.stderr


def test_python_api_example_runs(server_env, project: Path) -> None:
    import sys

    from tests.helpers import REPO

    with FakeOpenAI(root) as fake:
        env = {**server_env, "RLM_ROOT_MODEL": "openai/scripted-root", "RLM_ROOT_API_BASE": fake.api_base,
               "OPENAI_API_KEY": "sk-test"}
        completed = subprocess.run([sys.executable, str(REPO / "examples" / "drop_in_rlm.py"), "Which port?",
                                    str(project)], capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("8443\n") and "[final]" in completed.stderr


def test_ask_with_a_path_that_does_not_exist_is_one_line(server_env, tmp_path: Path) -> None:
    completed = subprocess.run([server_command(), "ask", "?", str(tmp_path / "missing"), "--root-model", "openai/x"],
                               capture_output=True, text=True, timeout=60, env=server_env)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: '{tmp_path / 'missing'}' does not exist. Pass an existing")
