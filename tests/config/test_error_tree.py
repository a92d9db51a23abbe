"""Every exception class of the package descends from RlmMcpError and is drawn in errors.py's tree.

The walk imports every host module of rlm_mcp (code that runs in the jail -- the prelude and
sandbox/guest/ -- cannot import the package, so its exceptions are the guest's own) and looks at every
class defined there, private ones included.
"""

from __future__ import annotations

import importlib
import inspect

import rlm_mcp.errors
from rlm_mcp.errors import RlmMcpError
from tests.helpers import REPO

PACKAGE = REPO / "rlm_mcp"
GUEST = {"repl_helpers.py", "repl_regex.py"}  # sent into the jail as the prelude, never imported


def host_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if "guest" in parts or path.name in GUEST:
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in host_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    return found


def test_the_walk_sees_the_whole_package() -> None:
    classes = exception_classes()
    assert "rlm_mcp.server.http.InsecureBind" in classes and "rlm_mcp.workers.errors.BudgetExceeded" in classes
    assert len(classes) >= 30


def test_every_exception_class_descends_from_rlm_mcp_error() -> None:
    outside = [name for name, cls in exception_classes().items() if not issubclass(cls, RlmMcpError)]
    assert not outside, f"derive these from RlmMcpError (or a subclass) and draw them in errors.py: {outside}"


def test_every_exception_class_is_drawn_in_the_tree() -> None:
    tree = rlm_mcp.errors.__doc__ or ""
    drawn = {line.split("── ", 1)[1].split()[0] for line in tree.splitlines() if "── " in line}
    drawn.add("RlmMcpError")
    missing = sorted({cls.__name__ for cls in exception_classes().values()} - drawn)
    assert not missing, f"draw these in the tree of rlm_mcp/errors.py's docstring: {missing}"


def test_the_drawing_matches_the_classes() -> None:
    """Each drawn class sits under the parent drawn above it (indentation is the hierarchy)."""
    classes = {cls.__name__: cls for cls in exception_classes().values()}
    stack: list[tuple[int, str]] = [(-1, "RlmMcpError")]
    for line in (rlm_mcp.errors.__doc__ or "").splitlines():
        if "── " not in line:
            continue
        depth = line.index("── ")
        name = line.split("── ", 1)[1].split()[0]
        while stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1]
        assert name in classes, f"errors.py draws {name}, which the package does not define"
        assert classes[name].__mro__[1:].__contains__(classes[parent]), f"{name} is drawn under {parent}"
        stack.append((depth, name))
