"""The sandbox policy's `limits.exec_timeout_s` is the default per-exec timeout on the server path, unless
RLM_EXEC_TIMEOUT_S overrides it; a call's own `timeout_s` beats both. Through the real server over stdio."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import stdio_client

pytestmark = pytest.mark.anyio
SLEEP = "import time; time.sleep(30)"


@pytest.mark.slow  # out of the quick loop (./dev.sh quick)
async def test_the_policys_exec_timeout_applies_and_the_setting_overrides_it(server_env, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[limits]\nexec_timeout_s = 1\n")
    env = {key: value for key, value in server_env.items() if key != "RLM_EXEC_TIMEOUT_S"}
    async with stdio_client({**env, "RLM_SANDBOX_POLICY": str(policy)}) as client:
        by_policy = (await client.call_tool("exec_code", {"code": SLEEP})).structured_content
        assert by_policy["status"] == "timeout" and by_policy["elapsed_s"] < 10
        status = (await client.call_tool("session", {})).structured_content
        assert status["limits"]["exec_timeout_s"] == 1
        by_call = (await client.call_tool("exec_code", {"code": "time.sleep(2.5); 'done'", "timeout_s": 10}))
        assert by_call.structured_content["stdout"] == "'done'\n"
    async with stdio_client({**env, "RLM_SANDBOX_POLICY": str(policy), "RLM_EXEC_TIMEOUT_S": "4"}) as client:
        by_setting = (await client.call_tool("exec_code", {"code": "import time; time.sleep(2.5); 'done'"}))
        assert by_setting.structured_content["stdout"] == "'done'\n"
        assert (await client.call_tool("session", {})).structured_content["limits"]["exec_timeout_s"] == 4
