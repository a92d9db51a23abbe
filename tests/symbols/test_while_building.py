"""Symbol queries while the index builds: complete answers by name, identical to the finished index's.

The tree is the standard library of the interpreter running the tests (~1,700 Python files): its build
takes seconds, so queries sent right after the load meet an index that is still building.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import anyio
import pytest

from rlm_mcp.contexts import LoadLimits, read_entries, store_paths
from rlm_mcp.contexts.scan import files_containing
from rlm_mcp.sessions import SessionIndex
from rlm_mcp.sessions.service import repl_index

pytestmark = pytest.mark.anyio

STDLIB = Path(sysconfig.get_paths()["stdlib"])
NAMES = ["OrderedDict", "urlopen", "Thread.run", "__init__", "dumps", "TestCase.setUp", "no_such_name_anywhere"]
CALLEES = ["urlopen", "fsdecode"]


async def _queries(index: SessionIndex) -> dict[str, object]:
    answers: dict[str, object] = {}
    query = repl_index(index)
    for name in NAMES:
        answers[f"find {name}"] = (await query({"op": "find", "name": name, "limit": 1000}))["results"]
    answers["find kind+name"] = (await query({"op": "find", "name": "run", "kind": "method"}))["results"]
    answers["outline"] = (await query({"op": "outline", "path": "json/decoder.py"}))["results"]
    for callee in CALLEES:
        answers[f"refs {callee}"] = (await query({"op": "references", "name": callee, "limit": 1000}))["results"]
    return answers


async def test_answers_while_building_equal_the_finished_index(tmp_path: Path) -> None:
    stored = store_paths("main", [str(STDLIB / "**" / "*.py")], allowed_roots=[STDLIB], store_dir=tmp_path / "store",
                         limits=LoadLimits(max_files=100_000))
    early = SessionIndex(tmp_path / "cache-early")
    async with anyio.create_task_group() as group:
        entry = early.start(stored, group)
        partial = await repl_index(early)({"op": "find", "pattern": r"^Ordered", "limit": 1000})
        assert partial["note"].startswith("partial: the index is building")
        first = await repl_index(early)({"op": "find", "name": "OrderedDict"})
        assert entry.index is not None and not entry.index.complete, "the build finished before the first query"
        assert "collections/__init__.py" in [s["path"] for s in first["results"]], first
        while_building = await _queries(early)
        group.cancel_scope.cancel()
    assert len(while_building["find OrderedDict"]) >= 1 and while_building["find no_such_name_anywhere"] == []

    finished = SessionIndex(tmp_path / "cache-finished")
    async with anyio.create_task_group() as group:
        finished.start(stored, group)
    assert finished.indexes["main"].index.complete
    after = await _queries(finished)
    for query, answer in while_building.items():
        assert answer == after[query], query
    assert (await repl_index(finished)({"op": "find", "pattern": r"^Ordered"}))["note"] is None


def test_files_containing_finds_every_file_naming_a_literal(tmp_path: Path) -> None:
    """Byte scan of content.txt vs reading each file: the same set, across block boundaries and non-ASCII."""
    root = tmp_path / "src"
    root.mkdir()
    for i in range(40):
        body = ("é" * (i * 997)) + ("needle" if i % 3 == 0 else "needl") + "x" * 5000
        (root / f"f{i:02}.py").write_text(body, encoding="utf-8")
    (root / "needle_in_the_name.py").write_text("nothing here\n")
    stored = store_paths("main", [str(root)], allowed_roots=[tmp_path], store_dir=tmp_path / "store",
                         limits=LoadLimits())
    entries = read_entries(stored.manifest_path)
    found = files_containing(stored.content_path, entries, b"needle", block=4096)  # hits straddle blocks
    assert found == sorted(f"f{i:02}.py" for i in range(0, 40, 3))
    content = Path(stored.content_path).read_bytes()
    for entry in entries:
        body = content[entry.byte_start : entry.byte_end].decode("utf-8")
        assert body == (root / entry.path).read_text(encoding="utf-8")
        assert content.count(b"\n", 0, entry.byte_start) + 1 == entry.first_line


def test_both_lookup_representations_answer_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prebuilt dicts (small indexes) and row pointers (large ones) give the same lookups by name."""
    from rlm_mcp.symbols import CodeIndex, reader

    paths = [*sorted(str(p.relative_to(STDLIB)) for p in (STDLIB / "json").rglob("*.py")),
             "collections/__init__.py", "unittest/case.py", "threading.py"]
    names = [*NAMES, "JSONDecoder.decode", "decode", "Thread", "main"]

    def answers(built: CodeIndex) -> list[object]:
        return [(built.find_definitions(name), built.find_definitions(name, kind="method")) for name in names]

    small = CodeIndex.build(STDLIB, paths, tmp_path / "small.idx")
    from_dicts = answers(small)
    monkeypatch.setattr(reader, "PREBUILT_SYMBOLS", 0)
    large = CodeIndex.build(STDLIB, paths, tmp_path / "large.idx")
    assert answers(large) == from_dicts
    assert small._prebuilt is not None and large._prebuilt is None and large._by_key is not None
    assert from_dicts[0][0], "OrderedDict is defined in collections/__init__.py"


@pytest.mark.parametrize("prebuilt", [100_000, 0], ids=["dicts", "row-pointers"])
def test_a_live_change_patched_in_place_answers_like_a_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               prebuilt: int) -> None:
    """CodeIndex.replace (a few changed, added and removed files) gives the lookups a fresh build gives."""
    from rlm_mcp.symbols import CodeIndex, reader
    from rlm_mcp.symbols.files import DiskFiles
    from rlm_mcp.symbols.index import parse

    monkeypatch.setattr(reader, "PREBUILT_SYMBOLS", prebuilt)
    for i in range(6):
        (tmp_path / f"m{i}.py").write_text(f"class Shared:\n    def run(self): pass\n\ndef only{i}(): pass\n")
    paths = [f"m{i}.py" for i in range(6)]
    patched = CodeIndex.build(tmp_path, paths)
    patched.finish(prepare_lookups=True)
    (tmp_path / "m2.py").write_text("def renamed(): pass\n\nclass Shared:\n    def run(self): pass\n")
    (tmp_path / "m9.py").write_text("def run(): pass\n")
    (tmp_path / "m4.py").unlink()
    now = [p for p in paths if p != "m4.py"] + ["m9.py"]
    files = DiskFiles(str(tmp_path))
    patched.replace(files, now, parse(files, ["m2.py", "m9.py"]), ["m4.py"])
    fresh = CodeIndex.build(tmp_path, now)
    for name in ("Shared", "Shared.run", "run", "only2", "only4", "renamed", "only0"):
        assert patched.find_definitions(name) == fresh.find_definitions(name), name
    assert (patched._prebuilt is not None) == bool(prebuilt) and patched.find_definitions("only4") == []


def test_a_reload_after_a_few_changes_patches_the_saved_lookup_like_a_rebuild(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """CodeIndex.open on a cache that a few files moved away from keeps the saved name lookup, less what
    changed, and `add` links the files parsed again: the answers of a fresh build, without rebuilding it."""
    from rlm_mcp.symbols import CodeIndex, reader
    from rlm_mcp.symbols.files import DiskFiles
    from rlm_mcp.symbols.index import parse

    monkeypatch.setattr(reader, "PREBUILT_SYMBOLS", 0)  # large-index lookups: the ones a cache saves
    for i in range(6):
        (tmp_path / f"m{i}.py").write_text(f"class Shared:\n    def run(self): pass\n\ndef only{i}(): pass\n")
    cache = tmp_path / "index.idx"
    paths = [f"m{i}.py" for i in range(6)]
    built = CodeIndex.build(tmp_path, paths, cache)
    built.find_definitions("Shared")  # builds the lookup; the next save keeps it
    built.finish()
    (tmp_path / "m2.py").write_text("def renamed(): pass\n\nclass Shared:\n    def run(self): pass\n")
    (tmp_path / "m9.py").write_text("def run(): pass\n")
    (tmp_path / "m4.py").unlink()
    now = [p for p in paths if p != "m4.py"] + ["m9.py"]
    reopened = CodeIndex.open(tmp_path, now, cache)
    assert reopened.has_lookups and sorted(reopened.pending()) == ["m2.py", "m9.py"]
    reopened.add(parse(DiskFiles(str(tmp_path)), reopened.pending()))
    reopened.finish()
    fresh = CodeIndex.build(tmp_path, now)
    for name in ("Shared", "Shared.run", "run", "only2", "only4", "renamed", "only0"):
        assert reopened.find_definitions(name) == fresh.find_definitions(name), name
    assert reopened.find_definitions("only4") == [] and reopened.find_definitions("renamed")
