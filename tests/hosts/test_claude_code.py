"""Claude Code as the host, for real: the npm CLI drives our server (configured by --mcp-config, or installed as the
plugin) while a scripted model plays the turns, and each test asserts what reached that model.

One `claude -p` session per test keeps the suite fast (~3-6 s each): the first walks load -> exec (the session
handle passed on) -> find_symbol -> sub_query (a stand-in worker) -> an error -> a long output -> a timeout ->
session status -> two errors the model can act on (a bad regular expression, a path outside the roots); the
second installs the plugin, checks the playbook skill is offered and reads it. `./dev.sh test` installs the CLI;
elsewhere the tests are skipped when it is missing, on CI (CI=1) they fail.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlm_mcp.results.shaping import RESULT_BUDGET_CHARS
from tests.fakes.model_endpoint import ScriptedModel, Turn, handle_in
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import REPO, needs_node_tool
from tests.hosts.claude_code import CLAUDE, PLUGIN_SERVER, host_env, mcp_config, run_claude
from tests.hosts.scenarios import load_then_count

pytestmark = needs_node_tool("claude", "Claude Code CLI")
APP = '''"""A tiny app for the host scenarios."""


def greet(name):
    return f"hello {name}"


class Greeter:
    def loud(self, name):
        return greet(name).upper()
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text(APP)
    (root / "notes.md").write_text("# notes\nnothing to see\n")
    return root


@pytest.fixture
def worker() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def with_handle(arguments: dict[str, Any]):
    """Arguments that pass on the session handle from the load_context result the model read."""
    return lambda seen: {**arguments, "session": handle_in(seen.last("load_context").body)}


def no_boilerplate(value: Any) -> bool:
    """No null, false, zero or empty field anywhere (stdout excepted: scripts always find it)."""
    if isinstance(value, dict):
        return all((key == "stdout" or item not in (None, False, 0, "", [], {})) and no_boilerplate(item)
                   for key, item in value.items())
    if isinstance(value, list):
        return all(no_boilerplate(item) for item in value)
    return True


def test_a_whole_session_through_mcp_config(server_env, worker: FakeOpenAI, project: Path, tmp_path: Path) -> None:
    server = {**server_env, "RLM_WORKER_MODEL": "openai/gpt-4o-mini", "RLM_WORKER_API_BASE": worker.api_base,
              "OPENAI_API_KEY": "sk-test"}
    script = [
        Turn.call("load_context", {"source": [str(project)]}),
        Turn.call("exec_code", with_handle({"code": "hits = grep('greet')\nprint(len(hits))\nprint(hits[0][0])"})),
        Turn.call("find_symbol", with_handle({"name": "Greeter.loud"})),
        Turn.call("sub_query", with_handle({"prompt": "What does greet return?", "context": "main", "path": "app.py"})),
        Turn.call("exec_code", with_handle({"code": "1 / 0"})),
        Turn.call("exec_code", with_handle({"code": "for i in range(5000):\n    print('line', i)"})),
        Turn.call("exec_code", with_handle({"code": "while True:\n    pass", "timeout_s": 1})),
        Turn.call("exec_code", with_handle({"code": "FINAL('x' * 300_000)"})),
        Turn.call("session", with_handle({})),
        Turn.call("find_symbol", with_handle({"pattern": "greet("})),
        Turn.call("load_context", {"source": ["/etc"], "name": "etc"}),
        Turn("greet is called 2 times."),
    ]
    with ScriptedModel(script) as model:
        env = host_env(server_env, tmp_path / "home", model.url)
        run = run_claude("Where is greet used?", env=env, cwd=project, config=mcp_config(tmp_path / "mcp.json", server))
    assert model.errors == []
    assert run.answer == "greet is called 2 times."
    seen = model.final()
    assert {"mcp__rlm__load_context", "mcp__rlm__exec_code", "mcp__rlm__find_symbol"} <= set(seen.tools)
    assert "rlm-mcp turns you into a Recursive Language Model" in json.dumps(model.scripted()[0].body)  # instructions
    load, grep, symbol, answer, error, long, timeout, final, status, regex, outside = [
        r for r in seen.results if "rlm" in r.tool]

    summary = load.json()  # Claude Code hands its model the structured content, as JSON
    handle = summary["session"]
    assert summary["files"] == 2 and summary["languages"] == {"python": 1, "markdown": 1}
    assert no_boilerplate(summary), summary
    ran = grep.json()
    assert set(ran) == {"status", "stdout", "variables", "elapsed_s"}, ran  # nothing at its default
    assert (ran["status"], ran["stdout"]) == ("ok", "2\napp.py\n")
    assert [(v["name"], v["type"], v["size"]) for v in ran["variables"]] == [("hits", "list", 2)]
    assert all(call["input"].get("session") == handle for call in tool_calls(model) if "rlm" in call["name"]
               and "load_context" not in call["name"])  # the handle was passed on, every time

    [found] = symbol.json()["results"]
    assert (found["qualname"], found["path"], found["start_line"]) == ("Greeter.loud", "app.py", 9)
    assert answer.json()["answers"][0]["text"].startswith("echo: What does greet return?")
    assert "def greet(name)" in worker.prompts()[0]  # the worker read the file, the host model did not

    assert error.is_error and "ZeroDivisionError" in error.body and not error.body.startswith("{")  # errors: text
    cut = long.json()
    assert cut["stdout_cut_chars"] > 0 and cut["stdout"].startswith("line 0\n") and "line 4999" in cut["stdout"]
    assert len(long.body) < RESULT_BUDGET_CHARS
    assert timeout.is_error and "[timeout]" in timeout.body
    huge = final.json()  # whole, Claude Code would show a file path
    assert huge["cut"] == {"final_answer": 300_000 - len(huge["final_answer"]) + len(cut_marker(huge["final_answer"]))}
    assert "cut to fit the host's tool output limit" in huge["cut_note"] and len(final.body) <= RESULT_BUDGET_CHARS
    report = status.json()
    assert report["handle"] == handle and report["timeouts"] == 1 and report["worker_usage"]["calls"] == 1
    assert [c["name"] for c in report["contexts"]] == ["main"]

    # Errors the model can act on reach it as error results it reads (SEP-1303), not as the host's protocol error.
    assert outside.is_error and "outside the allowed roots" in outside.body and not outside.body.startswith("{")
    assert regex.is_error and regex.body.startswith("invalid regular expression: missing ), unterminated subpattern")
    assert "re.escape" in regex.body

    # Issue 31: the descriptions the model read say that helpers and the tool cut long lists, and how to get all.
    offered = words_of(model.scripted()[-1].body)
    assert ("grep(), find_symbol() and references() cut long lists and say so on stderr with the full count: pass "
            "max_hits=None (grep) or limit=None (the others) to get every result.") in offered  # exec_code's
    assert ("At most `limit` results: when there are more, `note` says how many and how to get all (limit=None in "
            "exec_code's find_symbol() or references()).") in offered  # find_symbol's


def words_of(body: dict[str, Any]) -> str:
    """A request body as JSON text with its line breaks and indents as single spaces: a description reads the
    same however the host wrapped or dedented it."""
    return " ".join(json.dumps(body).replace("\\n", " ").split())


def cut_marker(text: str) -> str:
    return text[text.index("\n... ["): text.index("] ...\n") + 6]


def tool_calls(model: ScriptedModel) -> list[dict[str, Any]]:
    """The tool_use blocks the (scripted) model sent, as the host recorded them in the conversation."""
    messages = model.scripted()[-1].body["messages"]
    return [block for message in messages if message["role"] == "assistant" and isinstance(message["content"], list)
            for block in message["content"] if block.get("type") == "tool_use"]


def test_the_plugin_offers_the_playbook_and_serves_the_tools(server_env, project: Path, tmp_path: Path) -> None:
    with ScriptedModel([Turn.call("Skill", {"skill": "rlm-mcp:rlm-playbook"}), *load_then_count()]) as model:
        env = host_env(server_env, tmp_path / "home", model.url)
        plugin_command(("plugin", "marketplace", "add", str(REPO)), env, project)
        plugin_command(("plugin", "install", "rlm-mcp@rlm-mcp"), env, project)
        run = run_claude("Count the a's.", env=env, cwd=project, server=PLUGIN_SERVER)
    assert model.errors == [] and run.answer == "5"
    seen = model.final()
    assert "mcp__plugin_rlm-mcp_rlm__exec_code" in seen.tools
    offered = json.dumps(model.scripted()[0].body)
    assert "rlm-mcp:rlm-playbook" in offered  # the skill, listed for the model to invoke
    load, count = [r for r in seen.results if "rlm" in r.tool]
    assert load.json()["chars"] == 17 and count.json()["stdout"] == "5\n"
    # The model invoked the skill and read the playbook, which says that helpers cut and how to get all (issue 31).
    assert ("These helpers cut long lists (grep at 200 hits, find_symbol at 50, references at 200) and say so on "
            "stderr with the full count: pass `max_hits=None` to grep and `limit=None` to the others before you count "
            'or loop over \\"all\\".') in words_of(model.scripted()[-1].body)


def plugin_command(args: tuple[str, ...], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run([str(CLAUDE), *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"claude {' '.join(args)}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
