"""Every language's queries compile, and the Python walk's node kinds exist in its grammar.

Queries are compiled on first use (a parse worker indexing Python never needs them), so a query a grammar
upgrade broke would otherwise surface only when some user's file of that language is first indexed; and the
walk looks node kinds up by id, so a kind renamed by an upgrade would silently drop every definition of it.
"""

from __future__ import annotations

import pytest

from rlm_mcp.symbols.languages import CONTAINER, IMPORT, SPECS, compiled, kind_ids


@pytest.mark.parametrize("name", sorted(SPECS))
def test_queries_compile(name: str) -> None:
    grammar = compiled(name)
    assert grammar.definitions.pattern_count > 0
    assert grammar.calls is None if not grammar.spec.calls else grammar.calls.pattern_count > 0


def test_python_walk_kinds_exist() -> None:
    grammar = compiled("python")
    walk = grammar.spec.walk
    assert walk is not None
    names = set(kind_ids(grammar.language).values())
    assert set(walk.definitions) | walk.imports | {"module", "block", "ERROR"} <= names
    roles = set(grammar.walk_roles.values())
    assert {CONTAINER, IMPORT, "function", "class"} <= roles
    assert {kind for i, kind in kind_ids(grammar.language).items() if i in grammar.class_scope_ids} == {
        "class_definition"}
