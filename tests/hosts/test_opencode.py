"""OpenCode as the host, for real: `opencode run` drives our server while the scripted model (its `anthropic`
provider pointed at the endpoint) plays load -> exec with the session handle passed on. OpenCode hands its model
our text block, as Gemini CLI does. `./dev.sh test` installs the CLI; elsewhere the test is skipped when it is
missing, on CI (CI=1) it fails.
"""

from __future__ import annotations

from pathlib import Path

from tests.fakes.model_endpoint import ScriptedModel, handle_in
from tests.helpers import needs_node_tool
from tests.hosts.opencode import opencode_home, run_opencode
from tests.hosts.scenarios import load_then_count

pytestmark = needs_node_tool("opencode", "OpenCode CLI")


def test_load_then_exec_through_opencode(server_env, tmp_path: Path) -> None:
    with ScriptedModel(load_then_count()) as model:
        events = run_opencode("Count the a's.", home=opencode_home(tmp_path / "home", model.url, server_env),
                              cwd=tmp_path)
    assert model.errors == []
    assert [e["part"]["text"] for e in events if e.get("type") == "text"] == ["5"]
    seen = model.final()
    assert {"rlm_load_context", "rlm_exec_code"} <= set(seen.tools)
    load, count = seen.results
    assert load.body.startswith("Loaded context 'main' (text): 17 chars")
    assert f"session={handle_in(load.body)!r}" in load.body
    assert count.body == "5"  # our text block, nothing else
    assert not (tmp_path / "home" / ".npm").exists()  # nothing was installed at run time
