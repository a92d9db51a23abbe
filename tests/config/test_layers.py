"""The package's layers: a module imports only from layers below its own (function-level imports
included, so a cycle cannot hide inside a function). The README's "Layers" paragraph says the same."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "rlm_mcp"
LAYERS = {
    "errors": 0,  # the error base; imports nothing
    "config": 1, "sandbox": 1, "contexts": 1, "symbols": 1, "workers": 1, "trace": 1, "playbook": 1,
    "repl_helpers": 1,  # runs inside the jail, imported by nothing
    "memory": 1,  # hands freed heap back to the OS; imports nothing of ours
    "indexing": 2, "search": 2, "models": 2,
    "sessions": 3,
    "rlm": 4,
    "handles": 5, "mcp_errors": 5, "unknown_names": 5, "http": 5, "completions": 5, "doctor": 5,
    "server": 6,
    "cli": 7, "__init__": 7,
}
MCP_SDK_USERS = {"server", "mcp_errors", "unknown_names", "http", "completions", "handles", "cli"}


def unit_of(path: Path) -> str:
    """A top-level module or subpackage of rlm_mcp: the unit layers are drawn between."""
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def imports(path: Path) -> set[str]:
    """The rlm_mcp units `path` imports, relative or absolute, at any depth of the file."""
    package = list(path.relative_to(PACKAGE).parent.parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            target = package[: len(package) - node.level + 1] + [p for p in (node.module or "").split(".") if p]
            found.update([target[0]] if target else [alias.name for alias in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlm_mcp."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rlm_mcp."))
    return found - {"__version__"}


def sources() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "guest" not in p.relative_to(PACKAGE).parts]


def test_every_module_has_a_layer() -> None:
    missing = {unit_of(path) for path in sources()} - set(LAYERS)
    assert not missing, f"give {sorted(missing)} a layer in tests/config/test_layers.py (and the README's Layers)"


def test_imports_go_down_only() -> None:
    upward = []
    for path in sources():
        unit = unit_of(path)
        for target in imports(path) - {unit}:
            if LAYERS.get(target, -1) >= LAYERS.get(unit, -1):
                upward.append(f"{path.relative_to(REPO)} ({unit}, layer {LAYERS.get(unit)}) imports {target} "
                              f"(layer {LAYERS.get(target)})")
    assert not upward, "\n".join(upward)


def test_only_the_mcp_surface_knows_the_mcp_sdk() -> None:
    users = set()
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(name == "mcp" or name.startswith(("mcp.", "mcp_types")) for name in names):
                users.add(unit_of(path))
    assert users <= MCP_SDK_USERS, users - MCP_SDK_USERS
