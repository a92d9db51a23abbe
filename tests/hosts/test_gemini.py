"""Gemini CLI as the host, for real: `gemini -p` drives our server while the scripted model plays load -> exec with
the session handle passed on. Unlike Claude Code and Codex, Gemini CLI hands its model our *text* block (wrapped
as untrusted context), not the structured content -- so both renderings are what some model reads.
`./dev.sh test` installs the CLI; elsewhere the test is skipped when it is missing, on CI (CI=1) it fails.
"""

from __future__ import annotations

from pathlib import Path

from tests.fakes.model_endpoint import ScriptedModel, handle_in
from tests.helpers import needs_node_tool
from tests.hosts.gemini import gemini_home, run_gemini
from tests.hosts.scenarios import load_then_count

pytestmark = needs_node_tool("gemini", "Gemini CLI")


def test_load_then_exec_through_gemini_cli(server_env, tmp_path: Path) -> None:
    with ScriptedModel(load_then_count()) as model:
        output = run_gemini("Count the a's.", home=gemini_home(tmp_path / "home", server_env), base_url=model.url,
                            cwd=tmp_path)
    assert model.errors == [] and output["response"] == "5"
    seen = model.final()
    assert {"mcp_rlm_load_context", "mcp_rlm_exec_code"} <= set(seen.tools)
    load, count = (result.json()["output"] for result in seen.results)
    assert load.startswith("<untrusted_context>\nLoaded context 'main' (text): 17 chars")
    handle = handle_in(load)
    assert f"session={handle!r}" in load
    assert count == "<untrusted_context>\n5\n</untrusted_context>"  # our text block, nothing else
