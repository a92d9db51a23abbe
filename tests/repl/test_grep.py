"""The REPL prelude's grep(), run as plain Python: hits carry the right file, line number and line text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import rlm_mcp

PRELUDE = Path(rlm_mcp.__file__).with_name("repl_helpers.py")  # guest code: read, never imported

FILES = {
    "a.py": "import os\nclass A:\n    def f(self):\n        os.path.join('x')\n    def g(self): pass\n",
    "b/c.py": "\n\ndef f(self):\n    return 1  # def f(self) again\n",
    "empty.txt": "",
}


def prelude_with(files: dict[str, str]) -> dict[str, Any]:
    """The prelude's namespace with `files` attached the way the sandbox lays contexts out."""
    namespace: dict[str, Any] = {"_rlm_reserve_lazy": lambda name, factory: None}  # the sandbox's, stubbed
    exec(compile(PRELUDE.read_text(), "repl_helpers", "exec"), namespace)
    text, entries = "", []
    for path, body in files.items():
        text += f"\n===== {path} =====\n"
        entries.append({"path": path, "start": len(text), "end": len(text) + len(body)})
        text += body
    namespace["contexts"]._attach("main", "")
    namespace["contexts"]._texts["main"] = text  # as if decoded from the stored file
    namespace["_manifests"]["main"] = {"files": entries}
    return namespace


def expected_hits(files: dict[str, str], pattern: str) -> list[tuple[str, int, str]]:
    return [(path, number, line) for path, body in files.items() for number, line in enumerate(body.splitlines(), 1)
            for _ in re.finditer(pattern, line)]


def test_every_hit_has_its_own_file_line_and_text() -> None:
    grep = prelude_with(FILES)["grep"]
    for pattern in (r"def \w+\(self", r"os", r"^", r"f\(self\)"):
        assert grep(pattern) == expected_hits(FILES, pattern), pattern


def test_path_filter_and_max_hits(capsys) -> None:
    grep = prelude_with(FILES)["grep"]
    assert grep(r"def", path=r"^b/") == [
        ("b/c.py", 3, "def f(self):"), ("b/c.py", 4, "    return 1  # def f(self) again")]
    assert capsys.readouterr().err == ""
    assert grep(r"def", max_hits=2) == expected_hits(FILES, r"def")[:2]
    assert "stopped at max_hits=2; there are more hits" in capsys.readouterr().err
    assert len(grep(r"def", max_hits=4)) == 4 and capsys.readouterr().err == ""  # exactly all: no warning
    assert grep(r"def", max_hits=None) == expected_hits(FILES, r"def")
