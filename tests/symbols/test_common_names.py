"""A name mentioned in thousands of files: answered at once after a load, identical to the finished index."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from rlm_mcp.symbols.prefilter import can_define_here
from tests.helpers import stdio_client

NAME = "CommonModel"
MENTIONS = 3000


def make_tree(root: Path) -> None:
    """3,000 files that use the name and a few that define it, in every way the prefilter must not miss."""
    for i in range(MENTIONS):
        path = root / f"pkg{i % 30}" / f"use{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"from models import {NAME}\n\n\ndef use{i}(x: {NAME}) -> {NAME}:\n"
                        f"    # class {NAME}Like is not it\n    return {NAME}(x)\n")
    definitions = {
        "defs/plain.py": f"class {NAME}:\n    pass\n",
        "defs/base.py": f"class   {NAME}(Base, metaclass=Meta):\n    x = 1\n",
        "defs/continued.py": f"def \\\n        {NAME}():\n    return 1\n",
        "defs/far.py": "class" + " " * 200 + f"{NAME}:\n    pass\n",  # the keyword beyond the window
        "defs/method.py": f"class Holder:\n    async def {NAME}(self):\n        return None\n",
        "defs/nested.py": f"def outer():\n    def {NAME}():\n        pass\n    return {NAME}\n",
        "defs/other.js": f"function {NAME}() {{ return 1; }}\n",  # no prefilter for JavaScript: parsed
        "defs/longer.py": f"class {NAME}Plus:\n    pass\n",  # a longer name: not a definition of NAME
        "defs/notes.md": f"class {NAME}: documented, not code\n",
    }
    for rel, text in definitions.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_the_occurrence_filter_keeps_every_definition_position() -> None:
    assert can_define_here("a.py", b"class ", b":")
    assert can_define_here("a.py", b"    async def ", b"(")
    assert can_define_here("a.py", b"def \\\n    ", b"(")
    assert can_define_here("a.py", b" " * 64, b":")  # only blanks seen: the keyword may be further back
    assert not can_define_here("a.py", b"x = ", b"(")
    assert not can_define_here("a.py", b"class ", b"P")  # part of a longer identifier
    assert not can_define_here("a.py", b"subclass ", b":")
    assert can_define_here("a.js", b"x = new ", b"(")  # no prefilter for the language: parse it
    assert not can_define_here("a.md", b"class ", b":")  # not indexed at all


@pytest.mark.anyio
@pytest.mark.slow  # out of the quick loop (./dev.sh quick)
async def test_a_common_name_right_after_the_load_matches_the_finished_index(server_env, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    async with stdio_client(server_env, cwd=tmp_path) as client:
        await client.call_tool("load_context", {"source": [str(tree)]})
        started = time.perf_counter()
        first = await client.call_tool("find_symbol", {"name": NAME})
        first_s = time.perf_counter() - started
        status = ""
        while not status.startswith("ready"):
            report = await client.call_tool("session", {"action": "status"})
            status = report.structured_content["contexts"][0]["index"]
            await anyio.sleep(0.2)
        finished = await client.call_tool("find_symbol", {"name": NAME})
    got = first.structured_content["results"]
    assert got == finished.structured_content["results"]
    assert sorted(r["path"] for r in got) == ["defs/base.py", "defs/continued.py", "defs/far.py", "defs/method.py",
                                              "defs/nested.py", "defs/other.js", "defs/plain.py"]
    assert first.structured_content.get("note") is None  # complete, not "partial"
    # 3,009 files name it; 7 are parsed. Parsing all of them took seconds: allow for a loaded CI machine.
    assert first_s < 5, first_s
