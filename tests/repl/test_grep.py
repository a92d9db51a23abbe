"""The REPL prelude's grep(), run as plain Python against the real host search (rlm_mcp/contexts/search.py, real rg)
over a context stored by the real contexts component: hits carry the right file, line number and line text,
one per matching line, and the ripgrep path and the Python `re` path agree."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from rlm_mcp.contexts import LoadLimits, read_manifest, store_paths, store_text
from rlm_mcp.contexts.search import ContextSearch
from rlm_mcp.errors import BadRequest
from rlm_mcp.sandbox.prelude import PRELUDE

FILES = {  # in the order the contexts component stores them (sorted paths)
    "a.py": "import os\nclass A:\n    def f(self):\n        os.path.join('x')\n    def g(self): pass\n",
    "b/c.py": "\n\ndef f(self):\n    return 1  # def f(self) again\n",
    "ctl.txt": "tab\there\x1cfs\x1fus\x0bvt\x0cff\u2028ls\u00a0nbsp\u3000ideo\n",
    "d.txt": "no newline at the end: def",
    "e.txt": "crlf line\r\nnext\r\n\n\nafter blanks",
    "empty.txt": "",
    "odd\nname.txt": "a file whose name holds a newline: def\n",
    "u.txt": "naïve café ① ² x\u0301y ſ K İ ı Straße\nend\n",
}


class Prelude:
    """The prelude's namespace over one stored context, its `_rlm_callback` wired to the host search.

    Payloads and replies go through JSON as they do over the sandbox's channel."""

    def __init__(self, tmp_path: Path, files: dict[str, str | bytes] | None = None, text: str | None = None) -> None:
        store = tmp_path / "store"
        if text is not None:
            stored = store_text("main", text, store)
        else:
            src = tmp_path / "src"
            for path, body in (files or {}).items():
                (src / path).parent.mkdir(parents=True, exist_ok=True)
                (src / path).write_bytes(body.encode() if isinstance(body, str) else body)
            stored = store_paths("main", [str(src)], allowed_roots=[tmp_path], store_dir=store, limits=LoadLimits())
        self.search = ContextSearch({"main": stored})
        self.calls: list[dict[str, Any]] = []
        self.ns: dict[str, Any] = {  # what the sandbox provides, minus the jail
            "_rlm_callback": self.callback, "_rlm_reserve_lazy": lambda name, factory: None,
            "_rlm_read_text": lambda path: str(Path(path).read_bytes(), "utf-8", "replace")}
        exec(compile(PRELUDE, "prelude", "exec"), self.ns)  # guest code: run as the jail runs it
        self.ns["contexts"]._attach("main", stored.content_path)
        self.ns["_manifests"]["main"] = read_manifest(stored)
        if files is not None:  # expected_hits() lists files in this order
            assert [entry["path"] for entry in self.ns["_manifests"]["main"]["files"]] == list(files)

    def callback(self, name: str, payload: Any) -> Any:
        assert name == "grep"
        payload = json.loads(json.dumps(payload))
        self.calls.append(payload)
        return json.loads(json.dumps(anyio.run(self.search.query, payload)))

    def grep(self, pattern: str, **kwargs: Any) -> list[tuple[str, int, str]]:
        return self.ns["grep"](pattern, **kwargs)

    def python(self, pattern: str, flags: int = 0, path: str | None = None, max_hits: int | None = None) -> Any:
        """The Python `re` path alone, on the same text."""
        entries = self.ns["_manifests"]["main"]["files"] or [
            {"path": "", "start": 0, "end": len(self.ns["contexts"]["main"])}]
        crosses = self.ns["_grep_plan"](pattern, flags)[2]
        return self.ns["_grep_re"](re.compile(pattern, flags | re.M), self.ns["contexts"]["main"], entries,
                                   re.compile(path) if path else None, max_hits, crosses)

    def engine(self, pattern: str, flags: int = 0) -> str | None:
        """The Rust pattern grep() sends to the host, or None for the Python path."""
        return self.ns["_grep_plan"](pattern, flags)[0]


def expected_hits(files: dict[str, str], pattern: str, flags: int = 0) -> list[tuple[str, int, str]]:
    """One hit per line (split on "\\n" only) where the pattern matches within the line's span of its file."""
    search = re.compile(pattern, flags | re.M).search
    hits = []
    for path, body in files.items():
        lines = body.split("\n")
        if body.endswith("\n"):
            lines.pop()
        start = 0
        for number, line in enumerate(lines, 1):
            if body and search(body, start, start + len(line)):
                hits.append((path, number, line))
            start += len(line) + 1
    return hits


PORTABLE = [
    r"def \w+\(self", r"os", r"^", r"$", r"f\(self\)", r"^\s*$", r"\bdef\b", r"\bf\(", r"\)\B", r"(?i)DEF|import",
    r"(?i)k", r"(?i)s", r"(?i)i", r"\d", r"\W\w", r"[^\w\s]", r"[^)]*\)", r"x{2,}?",
    r"\r$", r"(?a)\w+", r"(?i:NAÏVE)", r"é", r".", r"\S+$", r"(?x) d e f  # verbose", "", r"\u00e9|\U0001F600",
    r"=====", r"(?i)straße|STRASSE", r"\s\S", r"\x1c|\x0b", r"(?P<w>\w)(?:x|y)", r"\N{EM SPACE}|\u3000",
    # POSIX classes and set operations are plain characters to Python (which warns): so they are to rg here
    pytest.param(r"[[:alpha:]]", marks=pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")),
    pytest.param(r"[a-z&&b]+", marks=pytest.mark.filterwarnings("ignore:Possible set intersection:FutureWarning")),
]


@pytest.mark.parametrize("pattern", PORTABLE)
def test_rg_path_gives_one_hit_per_matching_line(tmp_path: Path, pattern: str) -> None:
    prelude = Prelude(tmp_path, FILES)
    assert prelude.engine(pattern) is not None, pattern
    assert prelude.grep(pattern, max_hits=None) == expected_hits(FILES, pattern), pattern
    assert prelude.calls, "grep() did not ask the host"
    assert prelude.python(pattern) == (expected_hits(FILES, pattern), False), pattern


def test_flags_argument_counts_like_inline_flags(tmp_path: Path) -> None:
    prelude = Prelude(tmp_path, FILES)
    for flags in (re.IGNORECASE, re.IGNORECASE | re.ASCII, re.VERBOSE):
        assert prelude.engine("DEF | K", flags) is not None
        assert prelude.grep("DEF | K", flags=flags, max_hits=None) == expected_hits(FILES, "DEF | K", flags)


PYTHON_ONLY = {
    r"(\w)\1": "a back-reference", r"def(?= f)": "a lookaround", r"(?<!s)elf": "a lookaround",
    r"\Aimport": r"\A", r"pass\n\Z": "it can match a newline", r"end\Z": r"\Z", r"(?s)f.s": "it can match a newline",
    r"\n\n": "it can match a newline", r"[\n]": "it can match a newline", r"d\bef": r"\b or \B inside the pattern",
    r"\b(?:def|\.)": r"\b or \B next to what may or may not be a word character",
    r"(?-m:^)import": "^ or $ under (?-m): the start or end of the whole context",
    r"(?>de)f": "an atomic group", r"de++f": "a possessive repeat", r"(a)?(?(1)b|def)": "a conditional group",
}


@pytest.mark.parametrize("pattern", PYTHON_ONLY)
def test_patterns_without_an_exact_twin_stay_on_python(tmp_path: Path, pattern: str) -> None:
    prelude = Prelude(tmp_path, FILES)
    rust, why, _crosses = prelude.ns["_grep_plan"](pattern, 0)
    assert rust is None and why == PYTHON_ONLY[pattern]
    hits = prelude.grep(pattern, max_hits=None)
    assert prelude.calls == []
    if why in (r"\A", r"\Z") or "whole context" in why:  # never inside a file here
        assert hits == []
    elif "newline" not in why:  # line-confined: the same as matching each line alone
        assert hits == expected_hits(FILES, pattern)


def test_patterns_that_name_a_newline_match_across_lines(tmp_path: Path) -> None:
    prelude = Prelude(tmp_path, {path: FILES[path] for path in ("a.py", "b/c.py", "e.txt")})
    # a file's last "\n" and the next header's first one make "\n\n" too: the text is searched whole, as before
    assert prelude.grep(r"\n\n", max_hits=None) == [
        ("a.py", 5, "    def g(self): pass"), ("b/c.py", 1, ""), ("b/c.py", 4, "    return 1  # def f(self) again"),
        ("e.txt", 2, "next\r"), ("e.txt", 3, "")]
    assert prelude.grep(r"pass\n", max_hits=None) == [("a.py", 5, "    def g(self): pass")]


def test_rg_rejects_what_python_accepts_falls_back(tmp_path: Path) -> None:
    prelude = Prelude(tmp_path, FILES)
    pattern = "(?:" * 300 + "def" + ")?" * 300  # nests deeper than Rust's regex parser allows (250)
    assert prelude.engine(pattern) is not None
    assert prelude.grep(pattern, max_hits=None) == expected_hits(FILES, "")  # it matches the empty string
    assert "nested parentheses" in anyio.run(prelude.search.query, prelude.calls[-1])["fallback"]


def test_path_filter_and_max_hits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prelude = Prelude(tmp_path, FILES)
    grep = prelude.grep
    assert grep(r"def", path=r"^b/") == [
        ("b/c.py", 3, "def f(self):"), ("b/c.py", 4, "    return 1  # def f(self) again")]
    assert capsys.readouterr().err == ""
    assert prelude.calls[-1]["files"] == [[1, 2]]
    assert grep(r"def", path=r"nothing") == [] and capsys.readouterr().err == ""
    every = expected_hits(FILES, "def")
    assert grep(r"def", max_hits=2) == every[:2]
    assert "stopped at max_hits=2; there are more hits" in capsys.readouterr().err
    assert grep(r"def", max_hits=len(every)) == every and capsys.readouterr().err == ""  # exactly all: no warning
    assert grep(r"def", max_hits=0) == [] and "max_hits=0" in capsys.readouterr().err
    assert grep(r"def", max_hits=None) == every
    assert prelude.python("def", max_hits=2) == (every[:2], True)
    for wrong in (-1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="max_hits must be None"):
            grep("def", max_hits=wrong)


def test_text_context_reports_empty_path(tmp_path: Path) -> None:
    prelude = Prelude(tmp_path, text="alpha\nbeta\n\ngamma alpha")
    assert prelude.grep("alpha") == [("", 1, "alpha"), ("", 4, "gamma alpha")]
    assert prelude.grep("^$") == [("", 3, "")] == prelude.python("^$")[0]
    assert prelude.grep("alpha", path="x") == []


def test_files_with_invalid_utf8_keep_later_files_on_their_lines(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"a.txt": b"caf\xe9 def\n\xff\xfe x def\n", "b.txt": b"\xff\xff\n",
                                     "c.txt": "é def\nx\ndef"}
    prelude = Prelude(tmp_path, files)
    hits = [("a.txt", 1, "caf\ufffd def"), ("a.txt", 2, "\ufffd\ufffd x def"), ("c.txt", 1, "é def"),
            ("c.txt", 3, "def")]
    assert prelude.grep("def") == hits == prelude.python("def")[0]
    assert prelude.grep("\ufffd") == [("a.txt", 1, "caf\ufffd def"), ("a.txt", 2, "\ufffd\ufffd x def"),
                                       ("b.txt", 1, "\ufffd\ufffd")]


def test_long_lines_are_cut_to_500_characters(tmp_path: Path) -> None:
    files = {"long.txt": "é" * 3000 + "needle" + "x" * 10_000 + "\nshort needle\n"}
    prelude = Prelude(tmp_path, files)
    assert prelude.grep("needle") == [("long.txt", 1, "é" * 500), ("long.txt", 2, "short needle")]
    assert prelude.python("needle")[0] == prelude.grep("needle")


def test_pages_carry_on_from_their_cursor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rlm_mcp.contexts.search

    monkeypatch.setattr(rlm_mcp.contexts.search, "PAGE_BYTES", 100)
    files = {f"f{i}.txt": "".join(f"hit {i} {n}\nmiss\n" for n in range(50)) for i in range(5)}
    prelude = Prelude(tmp_path, files)
    hits = prelude.grep("hit", max_hits=None)
    assert hits == expected_hits(files, "hit") and len(hits) == 250
    assert len(prelude.calls) > 10 and all(call["cursor"][0] > 0 for call in prelude.calls[1:])
    assert prelude.grep("hit", max_hits=120) == hits[:120]


@pytest.mark.parametrize("payload", [
    None, [], {"context": "main"}, {"context": "main", "fingerprint": "x", "pattern": "a\nb"},
    {"context": "main", "fingerprint": "x", "pattern": "a", "limit": -1},
    {"context": "main", "fingerprint": "x", "pattern": "a", "limit": True},
    {"context": "main", "fingerprint": "x", "pattern": "a", "cursor": [0, 0]},
    {"context": "main", "fingerprint": "x", "pattern": "a", "files": [[2, 1]]},
    {"context": "main", "fingerprint": "x", "pattern": "a" * 200_000},
])
def test_host_refuses_malformed_payloads(tmp_path: Path, payload: Any) -> None:
    prelude = Prelude(tmp_path, FILES)
    with pytest.raises(BadRequest, match="grep"):  # bad guest input: logged as one line, no traceback
        anyio.run(prelude.search.query, payload)


def test_host_declines_a_stale_fingerprint_and_out_of_range_files(tmp_path: Path) -> None:
    prelude = Prelude(tmp_path, FILES)
    base = {"context": "main", "pattern": "def", "fingerprint": prelude.ns["_manifests"]["main"]["fingerprint"]}
    assert "fallback" in anyio.run(prelude.search.query, {**base, "fingerprint": "other"})
    assert "fallback" in anyio.run(prelude.search.query, {**base, "context": "nope"})
    with pytest.raises(BadRequest, match="beyond"):
        anyio.run(prelude.search.query, {**base, "files": [[0, 99]]})
