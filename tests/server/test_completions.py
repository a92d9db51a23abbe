"""Completions: the installed server completes the names of the caller's loaded contexts for the context
resources, through the real client over stdio (both protocol versions) and over HTTP (per caller)."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp_types import PromptReference, ResourceTemplateReference

from rlm_mcp.server.completions import MAX_VALUES, matching
from tests.helpers import stdio_client
from tests.server.test_http import client_with_headers, http_server  # noqa: F401 (fixture)

CONTEXT = ResourceTemplateReference(uri="rlm://contexts/{name}")
MANIFEST = ResourceTemplateReference(uri="rlm://contexts/{name}/manifest")


async def values(client: Client, ref: ResourceTemplateReference | PromptReference, name: str, typed: str) -> list[str]:
    return (await client.complete(ref, {"name": name, "value": typed})).completion.values


def test_matching_is_prefix_sorted_and_capped() -> None:
    assert matching(["main", "logs", "manual"], "ma").values == ["main", "manual"]
    many = matching([f"c{i:03}" for i in range(150)], "c")
    assert len(many.values) == MAX_VALUES and many.total == 150 and many.has_more is True
    assert matching(["main"], "x").values == []


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_context_names_complete_over_stdio(server_env, mode) -> None:
    async with stdio_client(server_env, mode) as client:
        assert client.server_capabilities.completions is not None
        assert await values(client, CONTEXT, "name", "") == []  # nothing loaded yet
        for name in ("main", "manual", "logs"):
            loaded = await client.call_tool("load_context", {"text": f"text of {name}", "name": name})
            assert not loaded.is_error, loaded
        assert await values(client, CONTEXT, "name", "ma") == ["main", "manual"]
        assert await values(client, MANIFEST, "name", "") == ["logs", "main", "manual"]
        assert await values(client, ResourceTemplateReference(uri="rlm://other/{name}"), "name", "") == []
        # The playbook's one argument is free text: nothing to offer, and no error either.
        assert await values(client, PromptReference(name="rlm_playbook"), "task", "find") == []
        assert await values(client, PromptReference(name="no_such_prompt"), "arg1", "x") == []


@pytest.mark.anyio
async def test_completions_offer_only_the_callers_contexts_over_http(http_server: str) -> None:  # noqa: F811
    async with (
        client_with_headers(http_server, **{"x-rlm-session": "alice"}) as alice,
        client_with_headers(http_server, **{"x-rlm-session": "bob"}) as bob,
    ):
        await alice.call_tool("load_context", {"text": "alice's notes", "name": "alice_notes"})
        assert await values(alice, CONTEXT, "name", "a") == ["alice_notes"]
        assert await values(bob, CONTEXT, "name", "") == []
