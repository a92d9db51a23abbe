"""`./dev.sh eval --host claude-code` end to end against the scripted endpoint: the real CLI runs a code QA task
with rlm-mcp and with its own tools only, and one table compares them (the plumbing, not a model's score)."""

from __future__ import annotations

import pytest

from bench.evals import hosts
from tests.helpers import needs_node_tool

pytestmark = needs_node_tool("claude", "Claude Code CLI")


def test_one_task_through_claude_code_with_and_without_rlm_mcp(capsys: pytest.CaptureFixture[str]) -> None:
    assert hosts.main(["--host", "claude-code", "--tasks", "1"]) == 0
    table = capsys.readouterr().out
    rows = {line.split()[1] + (" only" if "host only" in line else ""): line.split()
            for line in table.splitlines() if line.startswith("codeqa-")}
    assert set(rows) == {"rlm-mcp", "host only"}, table
    assert rows["rlm-mcp"][2] == "1.00" and rows["host only"][3] == "0.00", table  # the reference ran in the host
    assert "$" in rows["rlm-mcp"][4] and int(rows["rlm-mcp"][3].replace(",", "")) > 0, table  # tokens, cost
