"""Every language's queries compile, and the Python walk's node kinds exist in its grammar.

Queries are compiled on first use (a parse worker indexing Python never needs them), so a query a grammar
upgrade broke would otherwise surface only when some user's file of that language is first indexed; and the
walk looks node kinds up by id, so a kind renamed by an upgrade would silently drop every definition of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_mcp.symbols.extract import extract_file
from rlm_mcp.symbols.files import DiskFiles
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
    assert grammar.body_field is not None


def test_walk_reads_a_broken_definition_whole(tmp_path: Path) -> None:
    """A definition that parsed with errors is descended whole, not only through its body: error recovery can
    leave what it contains outside the body field (here `test_paramflags` sits in an ERROR node beside
    `setUp`'s body; a mutated test file of the standard library, cut down)."""
    (tmp_path / "broken.py").write_text(
        "    def setUp(self):\n    def test_paramflags(self):\n            func.restype = c_longlong\n"
        "        else:\n        s\n")
    record = extract_file(DiskFiles(str(tmp_path)), "broken.py")
    assert record.problem is not None and record.problem.startswith("syntax errors")
    assert [symbol[1] for symbol in record.symbols] == ["setUp", "setUp.test_paramflags"]
