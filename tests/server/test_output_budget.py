"""What reaches the host is what the settings say (issue 31): RLM_MAX_OUTPUT_CHARS is honoured up to the result
budget, RLM_RESULT_BUDGET_CHARS, which is a setting too, and the session tool shows both and why. A larger
output cap than the budget is refused at start (tests/doctor/ and tests/config/ check the message)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import stdio_client

pytestmark = pytest.mark.anyio
PRINT = "print('x' * 45_000)"


async def test_a_raised_output_cap_and_budget_are_honoured(server_env) -> None:
    env = {**server_env, "RLM_MAX_OUTPUT_CHARS": "50000", "RLM_RESULT_BUDGET_CHARS": "120000"}
    async with stdio_client(env) as client:
        printed = (await client.call_tool("exec_code", {"code": PRINT})).structured_content
        assert printed["stdout"] == "x" * 45_000 + "\n" and "cut" not in printed and "stdout_cut_chars" not in printed
        assert len(json.dumps(printed)) > 45_000  # past the default budget of 40,000, as the setting asks
        limits = (await client.call_tool("session", {})).structured_content["limits"]
        assert (limits["max_output_chars"], limits["result_budget_chars"]) == (50_000, 120_000)
        assert "RLM_MAX_OUTPUT_CHARS" in limits["output_why"] and "RLM_RESULT_BUDGET_CHARS" in limits["output_why"]


async def test_by_default_the_output_is_cut_and_says_so(server_env) -> None:
    async with stdio_client(server_env) as client:
        printed = (await client.call_tool("exec_code", {"code": PRINT})).structured_content
        assert printed["stdout_cut_chars"] == 45_001 - 20_000 and "characters cut" in printed["stdout"]
        limits = (await client.call_tool("session", {})).structured_content["limits"]
        assert (limits["max_output_chars"], limits["result_budget_chars"]) == (20_000, 40_000)
        assert limits["output_why"].startswith("exec_code keeps 20,000 characters of stdout and of stderr")
