"""Codex CLI as the host, for real: `codex exec` drives our server while the scripted model plays load -> exec
with the session handle passed on, and the test asserts what reached the model. `./dev.sh test` installs the
CLI; elsewhere the test is skipped when it is missing, on CI (CI=1) it fails.
"""

from __future__ import annotations

from pathlib import Path

from tests.fakes.model_endpoint import ScriptedModel
from tests.helpers import needs_node_tool
from tests.hosts.codex import codex_home, run_codex
from tests.hosts.scenarios import load_then_count

pytestmark = needs_node_tool("codex", "Codex CLI")


def test_load_then_exec_through_codex(server_env, tmp_path: Path) -> None:
    with ScriptedModel(load_then_count()) as model:
        events = run_codex("Count the a's.", home=codex_home(tmp_path / "codex", model.url, server_env), cwd=tmp_path)
    assert model.errors == []
    assert [e["item"]["text"] for e in events if e.get("item", {}).get("type") == "agent_message"] == ["5"]
    seen = model.final()
    assert {"mcp__rlm__load_context", "mcp__rlm__exec_code"} <= set(seen.tools)  # Codex's namespace tool, flattened
    load, count = seen.results
    # Codex, too, hands its model the structured content as JSON, after a line of its own
    assert load.body.startswith("Wall time: ") and "\nOutput:\n{" in load.body
    summary = load.json_after("Output:\n")
    assert summary["chars"] == 17 and summary["kind"] == "text" and "languages" not in summary
    assert count.json_after("Output:\n") == {"status": "ok", "stdout": "5\n", "elapsed_s": count.json_after(
        "Output:\n")["elapsed_s"]}
    calls = [e["item"] for e in events if e.get("item", {}).get("type") == "mcp_tool_call"
             and e["type"] == "item.completed"]
    assert calls[1]["arguments"]["session"] == summary["session"]  # the handle was passed on
