"""A team server: every bearer token sealed off from the others (issue 19's probe table, plus resources,
completions and the per-token caps), over real HTTP against the installed server, two tokens each time.

Each probe is what token B can do with what token A named: a session name, a legacy Mcp-Session-Id, a
handle. B must get a session of its own, or a refusal identical to the one for a name that never existed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest
from mcp import MCPError
from mcp_types import ResourceTemplateReference

from tests.fakes import FakeOpenAI
from tests.helpers import tool_error
from tests.server.test_http import client_with_headers, start, stop

pytestmark = pytest.mark.anyio
ALICE, BOB = "Bearer token-alice-5d1f", "Bearer token-bob-93ce"
CONTEXT = ResourceTemplateReference(uri="rlm://contexts/{name}")
HANDLE_CONTEXT = ResourceTemplateReference(uri="rlm://sessions/{session}/contexts/{name}")


@pytest.fixture
def team_server(server_env) -> Iterator[str]:
    process, url = start({**server_env, "RLM_AUTH_TOKEN": "token-alice-5d1f,token-bob-93ce"})
    yield url
    stop(process)


async def stdout_of(client, code: str, **arguments: str) -> str:
    result = await client.call_tool("exec_code", {"code": code, **arguments})
    assert not result.is_error, result
    return result.structured_content["stdout"]


@pytest.mark.parametrize("name", ["team", "main", "default"])
async def test_a_session_name_is_per_token(team_server: str, name: str) -> None:
    async with (
        client_with_headers(team_server, authorization=ALICE, **{"x-rlm-session": name}) as alice,
        client_with_headers(team_server, authorization=BOB, **{"x-rlm-session": name}) as bob,
    ):
        await alice.call_tool("load_context", {"text": "alice's private notes"})
        await stdout_of(alice, "secret = 'alice-only'")
        assert await stdout_of(bob, "print(globals().get('secret'), repr(context))") == "None ''\n"
        await stdout_of(bob, "secret = 'bob-only'")
        assert await stdout_of(alice, "print(secret, '|', context)") == "alice-only | alice's private notes\n"
        # the same name is the same session for its own token, across connections
    async with client_with_headers(team_server, authorization=ALICE, **{"x-rlm-session": name}) as again:
        assert await stdout_of(again, "print(secret)") == "alice-only\n"


async def test_a_token_without_a_session_name_has_its_own_default_session(team_server: str) -> None:
    async with (
        client_with_headers(team_server, authorization=ALICE) as alice,
        client_with_headers(team_server, authorization=BOB) as bob,
    ):
        await alice.call_tool("load_context", {"text": "alice's default"})
        assert await stdout_of(bob, "print(repr(context))") == "''\n"
        assert await stdout_of(alice, "print(context)") == "alice's default\n"


async def legacy_session(http: httpx2.AsyncClient, url: str, token: str) -> str:
    """Open a legacy (2025) MCP session with raw JSON-RPC and return its Mcp-Session-Id."""
    opened = await http.post(url, headers=_legacy_headers(token), json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}})
    assert opened.status_code == 200, opened.text
    session_id = opened.headers["mcp-session-id"]
    await http.post(url, headers=_legacy_headers(token, session_id),
                    json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return session_id


def _legacy_headers(token: str, session_id: str | None = None) -> dict[str, str]:
    headers = {"authorization": token, "accept": "application/json, text/event-stream",
               "content-type": "application/json", "mcp-protocol-version": "2025-06-18"}
    return headers | ({"mcp-session-id": session_id} if session_id else {})


async def legacy_exec(http: httpx2.AsyncClient, url: str, token: str, session_id: str, code: str) -> httpx2.Response:
    return await http.post(url, headers=_legacy_headers(token, session_id), json={
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "exec_code", "arguments": {"code": code}}})


def _stdout(response: httpx2.Response) -> str:
    """The stdout of an exec_code answered as JSON or as one SSE event."""
    body = response.text
    payload = json.loads(body.split("data: ", 1)[1].splitlines()[0] if "data: " in body else body)
    return payload["result"]["structuredContent"]["stdout"]


async def test_a_legacy_session_id_replayed_with_another_token_is_not_found(team_server: str) -> None:
    async with httpx2.AsyncClient(timeout=60) as http:
        alices = await legacy_session(http, team_server, ALICE)
        assert _stdout(await legacy_exec(http, team_server, ALICE, alices, "x = 'alice'; print(x)")) == "alice\n"
        replayed = await legacy_exec(http, team_server, BOB, alices, "print(x)")
        made_up = await legacy_exec(http, team_server, BOB, "0" * len(alices), "print(x)")
        assert replayed.status_code == made_up.status_code == 404
        assert replayed.json() == made_up.json()  # the same answer as for an id that never existed
        assert "Session not found" in replayed.text and "alice" not in replayed.text
        assert _stdout(await legacy_exec(http, team_server, ALICE, alices, "print(x)")) == "alice\n"


async def test_a_handle_is_refused_for_another_token_like_a_made_up_one(team_server: str) -> None:
    async with (
        client_with_headers(team_server, authorization=ALICE) as alice,
        client_with_headers(team_server, authorization=BOB) as bob,
    ):
        handle = (await alice.call_tool("load_context", {"text": "alice's", "new_session": True})
                  ).structured_content["session"]
        messages = []
        for tried in (handle, "Q" * len(handle)):
            refused = await tool_error(bob, "exec_code", {"code": "print(context)", "session": tried})
            assert "no session has the handle" in refused
            messages.append(refused.replace(tried[:6], "<h>"))
        assert messages[0] == messages[1]
        assert await stdout_of(alice, "print(context)", session=handle) == "alice's\n"


async def test_resources_and_completions_see_only_the_callers_sessions(team_server: str) -> None:
    async with (
        client_with_headers(team_server, authorization=ALICE, **{"x-rlm-session": "team"}) as alice,
        client_with_headers(team_server, authorization=BOB, **{"x-rlm-session": "team"}) as bob,
    ):
        await alice.call_tool("load_context", {"text": "alice's notes", "name": "notes"})
        handle = (await alice.call_tool("load_context", {"text": "x", "name": "secret", "new_session": True})
                  ).structured_content["session"]
        summary = await alice.read_resource("rlm://contexts/notes")
        assert json.loads(summary.contents[0].text)["name"] == "notes"
        by_handle = await alice.read_resource(f"rlm://sessions/{handle}/contexts/secret")
        assert json.loads(by_handle.contents[0].text)["chars"] == 1
        with pytest.raises(MCPError, match=r"no context named 'notes' \(loaded: none yet\)"):
            await bob.read_resource("rlm://contexts/notes")
        with pytest.raises(MCPError, match="no session has the handle"):
            await bob.read_resource(f"rlm://sessions/{handle}/contexts/secret")

        async def completed(client, ref, argument: str, given: dict[str, str] | None = None) -> list[str]:
            return (await client.complete(ref, {"name": argument, "value": ""}, given)).completion.values

        assert await completed(alice, CONTEXT, "name") == ["notes"]
        assert await completed(bob, CONTEXT, "name") == []
        assert handle in await completed(alice, HANDLE_CONTEXT, "session")
        assert handle not in await completed(bob, HANDLE_CONTEXT, "session")
        assert await completed(alice, HANDLE_CONTEXT, "name", {"session": handle}) == ["secret"]
        assert await completed(bob, HANDLE_CONTEXT, "name", {"session": handle}) == []


async def test_one_token_cannot_take_every_session(server_env) -> None:
    env = {**server_env, "RLM_AUTH_TOKEN": "token-alice-5d1f,token-bob-93ce", "RLM_MAX_SESSIONS": "4"}
    process, url = start(env)  # two tokens: two sessions each by default
    try:
        async with (
            client_with_headers(url, authorization=ALICE) as alice,
            client_with_headers(url, authorization=BOB) as bob,
        ):
            await alice.call_tool("load_context", {"text": "one", "new_session": True})
            await alice.call_tool("load_context", {"text": "two", "new_session": True})
            refused = await tool_error(alice, "load_context", {"text": "three", "new_session": True})
            assert "limit per token is 2 (RLM_TOKEN_MAX_SESSIONS)" in refused
            await bob.call_tool("load_context", {"text": "bob's", "new_session": True})
            assert await stdout_of(bob, "print(6 * 7)") == "42\n"
    finally:
        stop(process)


async def test_model_spend_is_capped_per_token_across_its_sessions(server_env) -> None:
    with FakeOpenAI() as upstream:
        env = {**server_env, **upstream.worker_env(), "RLM_AUTH_TOKEN": "token-alice-5d1f,token-bob-93ce",
               "RLM_TOKEN_MAX_CALLS": "3"}
        process, url = start(env)
        try:
            async with (
                client_with_headers(url, authorization=ALICE) as alice,
                client_with_headers(url, authorization=BOB) as bob,
            ):
                first = await alice.call_tool("sub_query", {"prompts": ["a", "b"]})
                assert not first.is_error, first
                other = (await alice.call_tool("load_context", {"text": "t", "new_session": True})
                         ).structured_content["session"]
                assert not (await alice.call_tool("sub_query", {"prompt": "c", "session": other})).is_error
                refused = await alice.call_tool("sub_query", {"prompt": "d", "session": other})
                assert refused.is_error, refused  # a new session does not refill the token's window
                message = refused.structured_content["answers"][0]["error"]
                assert "token_max_calls" in message and "RLM_TOKEN_MAX_CALLS" in message and "24 h" in message
                answered = await bob.call_tool("sub_query", {"prompt": "bob asks"})
                assert not answered.is_error and answered.structured_content["answers"][0]["text"]
        finally:
            stop(process)
