"""Random and hostile arguments to every tool: each call ends in a result or a clean error, never a dead server.

"Clean" is checked, not assumed: a protocol error carries our message and never the boundary's
"internal error" (an exception nobody translated), and an is_error result is either a tool's own
structured report (user code failed, a worker call failed) or the SDK's argument validation.
A blocking portal keeps one in-process server and client alive across Hypothesis examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client, MCPError

from rlm_mcp.config import load_settings
from rlm_mcp.server.app import create_server
from tests.helpers import link_wasm_cache, tool_error

HOSTILE_TEXT = [
    "", "\x00", "../../../../etc/shadow", "/etc/shadow", "/proc/self/environ", "~", "**/**/**/**/*",
    "a" * 5000, "💥" * 100, "\ud800", "C:\\Windows", "file:///etc/passwd", "${HOME}", "*", "/", ".",
    "import os; os.system('id')", "while True: pass", "raise SystemExit", "print('x' * 10**6)",
    "__import__('ctypes').string_at(0)", "globals().clear()", "del llm_query", "exec(input())",
]
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.sampled_from(HOSTILE_TEXT) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
TOOL_KEYS = {  # every argument of every tool; "session" is the optional session handle of each
    "load_context": ["source", "text", "name", "session", "new_session", "live"],
    "exec_code": ["code", "timeout_s", "session"],
    "session": ["action", "keep_contexts", "session"],
    "sub_query": ["prompt", "prompts", "context", "path", "start", "end", "chunk_chars", "model", "session"],
    "rlm_complete": ["query", "max_iterations", "session"],
    "find_symbol": ["name", "pattern", "kind", "path", "callers_of", "context", "limit", "session"],
}
calls = st.sampled_from(sorted(TOOL_KEYS)).flatmap(
    lambda tool: st.tuples(
        st.just(tool),
        st.dictionaries(st.sampled_from([*TOOL_KEYS[tool], "unexpected"]), values, max_size=4),
    )
)


@pytest.fixture(scope="module", params=["nsjail", "wasm"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[BlockingPortal, Client]]:
    """One server per isolation backend, each fuzzed the same way."""
    root = tmp_path_factory.mktemp("fuzz-root")
    (root / "known.txt").write_text("the canary line\n")
    link_wasm_cache(root / "home")
    server = create_server(load_settings(
        flags={"home": root / "home", "allowed_roots": str(root), "exec_timeout_s": 2, "max_output_chars": 2000,
               "sandbox": request.param},
        environ={},
    ))
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(Client(server)) as client:
        portal.call(client.call_tool, "load_context", {"source": [str(root / "known.txt")], "name": "canary"})
        yield portal, client


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=calls)
def test_every_call_ends_cleanly(live: tuple[BlockingPortal, Client], call: tuple[str, dict[str, Any]]) -> None:
    portal, client = live
    tool, arguments = call
    if tool == "exec_code" and "code" in arguments and isinstance(arguments.get("timeout_s"), int | float):
        arguments["timeout_s"] = min(abs(arguments["timeout_s"]), 2) or 1
    try:
        result = portal.call(client.call_tool, tool, arguments)
    except MCPError as error:
        message = error.error.message
        assert message and not message.startswith("internal error"), message  # translated, not a crash
    else:
        assert result.content, result
        if result.is_error and result.structured_content is None:  # the SDK's argument check, or our translation
            text = result.content[0].text
            assert text and not text.startswith("internal error"), text
    # The server still answers, and the canary context survives whatever happened: contexts are
    # re-attached after crashes and resets; only an explicit reset without keep_contexts drops them.
    if tool == "session" and arguments.get("action") == "reset" and arguments.get("keep_contexts") is False:
        portal.call(client.call_tool, "load_context", {"text": "the canary line", "name": "canary"})
    probe = portal.call(client.call_tool, "exec_code", {"code": "'the canary line' in contexts['canary']"})
    assert probe.structured_content["stdout"] == "True\n", probe.content[0].text


def test_every_tool_is_fuzzed(live: tuple[BlockingPortal, Client]) -> None:
    portal, client = live
    tools = portal.call(client.list_tools).tools
    assert {tool.name: set(tool.input_schema["properties"]) for tool in tools} == \
        {name: set(keys) for name, keys in TOOL_KEYS.items()}  # every tool, every argument


def test_the_sandbox_still_refuses_escape_after_fuzzing(live: tuple[BlockingPortal, Client]) -> None:
    portal, client = live
    probe = portal.call(client.call_tool, "exec_code", {"code": "import os\nos.path.exists('/etc/shadow')"})
    assert probe.structured_content["stdout"] == "False\n"


def test_roots_are_still_enforced(live: tuple[BlockingPortal, Client], tmp_path: Path) -> None:
    portal, client = live
    assert "outside the allowed roots" in portal.call(tool_error, client, "load_context", {"source": ["/etc"]})
