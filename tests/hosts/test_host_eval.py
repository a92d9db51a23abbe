"""`./dev.sh eval --host ...` end to end against the scripted endpoint: the real CLI runs a code QA task with rlm-mcp
and with its own tools only, and one table compares them (the plumbing, not a model's score)."""

from __future__ import annotations

import pytest

from bench.evals import hosts
from tests.helpers import needs_node_tool

HOST_TOOLS = {"claude-code": ("claude", "Claude Code CLI"), "codex": ("codex", "Codex CLI"),
              "gemini-cli": ("gemini", "Gemini CLI"), "opencode": ("opencode", "OpenCode CLI")}


@pytest.mark.parametrize("host", [pytest.param(host, marks=needs_node_tool(*tool))
                                  for host, tool in HOST_TOOLS.items()])
def test_one_task_through_the_host_with_and_without_rlm_mcp(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert hosts.main(["--host", host, "--tasks", "1"]) == 0
    table = capsys.readouterr().out
    rows = {line.split()[1] + (" only" if "host only" in line else ""): line.split()
            for line in table.splitlines() if line.startswith("codeqa-")}
    assert set(rows) == {"rlm-mcp", "host only"}, table
    assert rows["rlm-mcp"][2] == "1.00" and rows["host only"][3] == "0.00", table  # the reference ran in the host
    assert int(rows["rlm-mcp"][3].replace(",", "")) > int(rows["host only"][4].replace(",", "")) > 0, table  # tokens
    if host not in ("codex", "gemini-cli"):  # these report tokens, not cost
        assert rows["rlm-mcp"][4].startswith("$"), table
