"""The package's layers, read from the "Layers" paragraph of docs/development.md, so the paragraph stays true:
it names every module of the package, and a module imports only from layers below its own (function-level
imports included, so a cycle cannot hide inside a function)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "rlm_mcp"
DEVELOPMENT = REPO / "docs" / "development.md"
LAYER_LINE = re.compile(r"^(\d): (.*?)(?=^\d: |\Z)", re.MULTILINE | re.DOTALL)
NAME = re.compile(r"`([a-z_]+)/?`")


def readme_layers() -> dict[str, int]:
    """The Layers paragraph as {unit: layer}: every lowercase name in backticks after "N: "."""
    text = DEVELOPMENT.read_text()
    start = text.index("**Layers.**")
    end = text.find("\n\n", start)
    paragraph = text[start : end if end != -1 else None]
    layers: dict[str, int] = {}
    for number, body in LAYER_LINE.findall(paragraph):
        for name in NAME.findall(body):
            assert name not in layers, f"docs/development.md gives {name} two layers"
            layers[name] = int(number)
    return layers


LAYERS = readme_layers()
MCP_SURFACE = 5  # layers from here up may import the mcp SDK (docs/development.md says so)
MAX_LOOSE_MODULES = 8  # at the package root: the rest lives in the folders of the components
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 200


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
    return list(PACKAGE.rglob("*.py"))


def test_the_readme_names_every_module_and_no_other() -> None:
    units = {unit_of(path) for path in sources()}
    assert units - set(LAYERS) == set(), "give these a layer in the Layers paragraph of docs/development.md"
    assert set(LAYERS) - units == set(), "docs/development.md's Layers paragraph names modules the package lacks"
    assert LAYERS["errors"] == 0 and LAYERS["server"] == 5 and LAYERS["cli"] == 6  # the parse itself


def test_the_folders_name_the_components() -> None:
    """The package root holds few loose modules; every component of DESIGN.md is a folder."""
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(loose) <= MAX_LOOSE_MODULES, loose
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert {"sandbox", "contexts", "symbols", "workers", "sessions", "server", "rlm", "results"} <= folders


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
    below = {unit for unit in users if LAYERS.get(unit, -1) < MCP_SURFACE}
    assert not below, f"only layers {MCP_SURFACE}-6 may import the mcp SDK: {sorted(below)}"


def module_imports(path: Path) -> set[Path]:
    """The files of rlm_mcp that `path` imports (a package means its __init__), at any depth of the file."""
    here = path.parent
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = here
        for _ in range(node.level - 1):
            base = base.parent
        target = base.joinpath(*(node.module or "").split(".")) if node.module else base
        for candidate in [*(target / alias.name for alias in node.names), target]:
            for file in (candidate.with_suffix(".py"), candidate / "__init__.py"):
                if file.is_file() and file != path:
                    found.add(file)
                    break
    return found


def test_no_import_cycle_between_modules() -> None:
    """Within a layer too: two modules that import each other (even inside a function) are one module
    in two files. A package's __init__ re-exporting its own modules is not a cycle."""
    graph = {path: {t for t in module_imports(path) if t.name != "__init__.py" or t.parent != path.parent}
             for path in sources()}
    cycles = []
    state: dict[Path, int] = {}

    def visit(node: Path, trail: list[Path]) -> None:
        state[node] = 1
        for target in graph.get(node, ()):
            if state.get(target) == 1:
                cycles.append(" -> ".join(str(p.relative_to(REPO)) for p in [*trail[trail.index(target):], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_litellm_is_known_to_one_module() -> None:
    """Its exceptions and reply objects are translated at one boundary: only that module imports it."""
    importers = set()
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(name.split(".")[0] == "litellm" for name in names):
                importers.add(str(path.relative_to(REPO)))
    assert importers == {"rlm_mcp/workers/litellm_backend.py"}


def longer_than(kinds: type | tuple[type, ...], limit: int) -> list[str]:
    """Every definition of `kinds` (functions, classes) in rlm_mcp over `limit` lines, with where it starts."""
    return [f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in sources() for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, kinds) and node.end_lineno is not None and node.end_lineno - node.lineno + 1 > limit]


def test_no_function_over_sixty_lines() -> None:
    """A function that needs more is doing two jobs (issue 29: the load's algorithm once spanned 100 lines)."""
    long = longer_than((ast.FunctionDef, ast.AsyncFunctionDef), MAX_FUNCTION_LINES)
    assert not long, "\n".join(long)


def test_no_class_over_two_hundred_lines() -> None:
    """A class that needs more holds two components (issue 29: the Sandbox once was its guest's channel, its
    lifecycle and the shaping of its replies in 371 lines; Session once owned the load algorithm)."""
    long = longer_than(ast.ClassDef, MAX_CLASS_LINES)
    assert not long, "\n".join(long)
