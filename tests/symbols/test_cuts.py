"""Every cut says so: the REPL's symbol helpers and the find_symbol tool on a context big enough to cut.

The tree has 2,301 functions (60 files of 20, one file of 1,100, the callee) and 2,300 calls of `helper`:
more than a helper's default limit, the tool's largest, and a page of the REPL's index callback
(rlm_mcp/sessions/service.py's PAGE), so `limit=None` reads several pages, one of them inside one file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import anyio
import pytest

from rlm_mcp.sessions.index import Cursor, paged
from rlm_mcp.sessions.service import PAGE
from tests.helpers import stdio_client

pytestmark = pytest.mark.anyio

FILES, PER_FILE, BIG = 60, 20, 1100
FUNCTIONS = FILES * PER_FILE + BIG + 1  # and `helper` itself


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "many").mkdir(parents=True)
    (root / "calls.py").write_text("def helper(x):\n    return x\n")
    for i in range(FILES):
        (root / "many" / f"m{i:02}.py").write_text("".join(
            f"def f{i}_{j}():\n    return helper({j})\n" for j in range(PER_FILE)))
    (root / "big.py").write_text("".join(f"def g{j}():\n    return helper({j})\n" for j in range(BIG)))
    assert FILES * PER_FILE + BIG > PAGE
    return root


async def _complete(client, root: Path) -> None:
    """Load, then wait until a kind query no longer says the index is building."""
    await client.call_tool("load_context", {"source": [str(root)]})
    for _ in range(300):
        result = await client.call_tool("find_symbol", {"kind": "function"})
        if "partial" not in (result.structured_content.get("note") or ""):
            return
        await anyio.sleep(0.1)
    raise AssertionError("the index never finished")


async def _run(client, code: str) -> dict:
    result = await client.call_tool("exec_code", {"code": code})
    assert result.structured_content["status"] == "ok", result.structured_content
    return result.structured_content


async def test_the_helpers_say_when_a_limit_cuts_and_limit_none_returns_all(backend_env, tree: Path) -> None:
    async with stdio_client(backend_env) as client:  # guest code on both backends: nsjail's CPython, Pyodide
        await _complete(client, tree)
        cut = await _run(client, "d = find_symbol(kind='function'); r = references('helper'); o = outline("
                                 "'big.py', limit=10); print(len(d), len(r), len(o))")
        assert cut["stdout"] == "50 200 10\n"
        assert cut["stderr"].splitlines() == [
            f"find_symbol: 50 of {FUNCTIONS:,} results shown (limit=50); limit=None returns all",
            f"references: 200 of {FUNCTIONS - 1:,} results shown (limit=200); limit=None returns all",
            f"outline: 10 of {BIG:,} results shown (limit=10); limit=None returns all"]

        everything = await _run(client, (
            "import hashlib, json\n"
            "d = [x['path'] + ':' + x['name'] for x in find_symbol(kind='function', limit=None)]\n"
            "r = [x['path'] + ':' + str(x['line']) for x in references('helper', limit=None)]\n"
            "o = [x['name'] for x in outline('big.py')]\n"
            "digest = lambda items: hashlib.sha256('\\n'.join(sorted(items)).encode()).hexdigest()\n"
            "print(json.dumps([len(d), digest(d), [p.split(':')[0] for p in d] == sorted(p.split(':')[0] for p in d),"
            " len(r), len(set(r)), o == [f'g{j}' for j in range(1100)]]))"))
        assert "stderr" not in everything  # nothing was cut, so nothing is said
        expected = {f"many/m{i:02}.py:f{i}_{j}" for i in range(FILES) for j in range(PER_FILE)}
        expected |= {f"big.py:g{j}" for j in range(BIG)} | {"calls.py:helper"}
        digest = hashlib.sha256("\n".join(sorted(expected)).encode()).hexdigest()
        # Every page, none twice, in path order; every call; one file's outline across two pages, in order.
        assert json.loads(everything["stdout"]) == [FUNCTIONS, digest, True, FUNCTIONS - 1, FUNCTIONS - 1, True]


async def test_the_tool_says_how_many_a_limit_left_out(server_env, tree: Path) -> None:
    async with stdio_client(server_env) as client:
        await _complete(client, tree)
        found = (await client.call_tool("find_symbol", {"callers_of": "helper", "limit": 300})).structured_content
        assert len(found["results"]) == 300
        assert found["note"] == (f"300 of {FUNCTIONS - 1:,} shown (limit=300): raise limit (up to 1,000) or run "
                                 "references(..., limit=None) in exec_code for all of them")
        outline = (await client.call_tool("find_symbol", {"path": "big.py"})).structured_content
        assert len(outline["results"]) == 100 and outline["note"].startswith(f"100 of {BIG:,} shown")
        one = (await client.call_tool("find_symbol", {"name": "helper"})).structured_content
        assert "note" not in one and len(one["results"]) == 1


def test_a_page_goes_on_from_its_cursor_within_a_file_and_across_files() -> None:
    rows = [{"path": path, "n": n} for path in ("a", "b", "c") for n in range(5)]
    pages, after = [], None
    while True:
        answer = paged(rows, dict, None, after, 4)
        pages.append([(row["path"], row["n"]) for row in answer.results])
        if answer.cursor is None:
            break
        after = answer.cursor
    assert [row for page in pages for row in page] == [(row["path"], row["n"]) for row in rows] and len(pages) == 4
    assert paged(rows, dict, None, Cursor("b", 2), 100).results[0] == {"path": "b", "n": 2}
    assert paged(iter(rows), dict, None, Cursor("b", 2), 100).results[0] == {"path": "b", "n": 2}  # a stream too
    assert paged(rows, dict, None, Cursor("ab", 3), 100).results[0] == {"path": "b", "n": 0}  # its file gone
    cut = paged(rows, dict, 3, None, 100)
    assert len(cut.results) == 3 and cut.left_out == 12 and cut.cursor is None
    assert paged(rows, dict, 0, None, 100).left_out == 15


async def test_exec_says_when_it_lists_only_some_of_the_variables(server_env) -> None:
    """exec_code reports at most 60 changed variables and names at most 20 deleted ones: past that it says so."""
    async with stdio_client(server_env) as client:
        made = await _run(client, "for _i in range(70):\n    globals()[f'v{_i:02}'] = _i")
        listed = made["variables"]
        assert len(listed) == 61 and listed[-1]["name"] == "... and 10 more" and listed[-1]["type"] == "not listed"
        assert listed[-1]["preview"] == "SHOW_VARS() lists every variable"
        gone = await _run(client, "for _i in range(25):\n    del globals()[f'v{_i:02}']")
        (deleted,) = gone["variables"]
        assert deleted["type"] == "deleted" and deleted["preview"] == "(5 more not named)"
        assert deleted["name"].split(", ") == [f"v{i:02}" for i in range(20)]


def test_counting_a_kind_without_reading_agrees_with_reading(tmp_path: Path) -> None:
    """count_definitions (what a cut `kind` or `pattern` query reports as left out) against the definitions
    themselves, in every language of the fixtures, from every file on."""
    from rlm_mcp.symbols import CodeIndex
    from tests.symbols.test_languages import FIXTURES as SOURCES

    for rel, text in SOURCES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    index = CodeIndex.build(tmp_path, sorted(SOURCES))
    kinds = {symbol["kind"] for symbol in index.definitions()}
    assert len(kinds) >= 10
    for kind, pattern in [*((kind, None) for kind in kinds), (None, r"^Cache\."), ("method", "e"), (None, "^[a-z]")]:
        for start in (None, *sorted(SOURCES)):
            read = list(index.definitions(kind=kind, pattern=pattern, from_path=start))
            assert index.count_definitions(kind, pattern, start) == len(read), (kind, pattern, start)
