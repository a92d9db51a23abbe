"""One error tree under RlmMcpError, translated at one boundary (rlm_mcp/server/errors.py): tool results with
isError for tools, JSON-RPC errors for resources, the prompt and completions."""

from __future__ import annotations

import logging
import re

import pytest
from mcp import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from rlm_mcp.config import ConfigError
from rlm_mcp.contexts import ContextError, SourceNotFound
from rlm_mcp.errors import BadRequest, RlmMcpError, SessionLimitReached, UnknownContext
from rlm_mcp.rlm.errors import RLMError, RootModelError
from rlm_mcp.sandbox import PolicyError, SandboxCrashed, SandboxError
from rlm_mcp.server.errors import to_mcp_error, to_tool_error
from rlm_mcp.workers import BudgetExceeded, WorkerError, WorkerNotConfigured
from tests.helpers import stdio_client


def test_every_component_error_is_under_one_base() -> None:
    for base in (BadRequest, ConfigError, ContextError, SandboxError, WorkerError, RLMError, SessionLimitReached):
        assert issubclass(base, RlmMcpError), base
    assert issubclass(UnknownContext, BadRequest) and issubclass(UnknownContext, KeyError)
    assert issubclass(PolicyError, SandboxError) and issubclass(PolicyError, ValueError)


@pytest.mark.parametrize(("error", "code"), [
    (BadRequest("give `prompt`"), INVALID_PARAMS),
    (UnknownContext("no context named 'x'"), INVALID_PARAMS),
    (SourceNotFound("/nope", "/nope"), INVALID_PARAMS),
    (BudgetExceeded("max_cost_usd", limit=1, used=1.2, hint="raise RLM_MAX_COST_USD"), INVALID_PARAMS),
    (re.error("missing )"), INVALID_PARAMS),
    (SandboxCrashed("killed by signal 9"), INTERNAL_ERROR),
    (WorkerNotConfigured(), INTERNAL_ERROR),
    (RootModelError("root model failed"), INTERNAL_ERROR),
])
def test_our_errors_keep_their_message(error: Exception, code: int) -> None:
    translated = to_mcp_error(error, "some_tool")
    assert translated.error.code == code
    assert str(error).split(":")[0] in translated.error.message


@pytest.mark.parametrize("error", [
    BadRequest("give `prompt`"), SessionLimitReached("you have 2 sessions open"), SourceNotFound("/nope", "/nope"),
    BudgetExceeded("max_cost_usd", limit=1, used=1.2, hint="raise RLM_MAX_COST_USD"), re.error("missing )"),
    SandboxCrashed("killed by signal 9"), WorkerNotConfigured(),
])
def test_a_tool_hands_the_model_the_same_message_as_an_error_result(error: Exception) -> None:
    """SEP-1303: what a model can act on is a tool result with isError, which the host's model reads."""
    result = to_tool_error(error, "some_tool")
    assert result.is_error and result.structured_content is None
    assert [block.text for block in result.content] == [to_mcp_error(error, "some_tool").error.message]


def test_a_sandbox_failure_says_what_happens_next() -> None:
    message = to_mcp_error(SandboxCrashed("killed by signal 9"), "exec_code").error.message
    assert "signal 9" in message and "fresh REPL" in message and "rlm-mcp doctor" in message


def test_an_unexpected_exception_is_logged_and_called_a_bug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="rlm_mcp.server"):
        translated = to_mcp_error(ZeroDivisionError("division by zero"), "find_symbol")
    message = translated.error.message
    assert translated.error.code == INTERNAL_ERROR
    assert message.startswith("internal error in find_symbol: ZeroDivisionError") and "bug in rlm-mcp" in message
    assert caplog.records[-1].exc_info is not None and "find_symbol" in caplog.records[-1].getMessage()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_unknown_prompt_or_resource_is_invalid_params_naming_what_exists(server_env, mode) -> None:
    async with stdio_client(server_env, mode) as client:
        with pytest.raises(MCPError) as prompt:
            await client.get_prompt("test_simple_prompt")
        assert prompt.value.error.code == INVALID_PARAMS
        assert prompt.value.error.message == "unknown prompt 'test_simple_prompt': this server has rlm_playbook"
        with pytest.raises(MCPError) as resource:
            await client.read_resource("test://static-text")
        assert resource.value.error.code == INVALID_PARAMS
        assert "Unknown resource" in resource.value.error.message
        assert "rlm://contexts/{name}" in resource.value.error.message
        assert "rlm://sessions/{session}/contexts/{name}" in resource.value.error.message
        assert (await client.get_prompt("rlm_playbook")).messages  # the known one still renders
