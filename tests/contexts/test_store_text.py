"""store_text, context names, and the real CPython stdlib as a large tree."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from rlm_mcp.contexts import (
    InvalidContextName,
    LoadLimits,
    files_of,
    load_stored,
    read_manifest,
    store_paths,
    store_text,
)


def test_store_text_round_trip_and_reuse(tmp_path: Path) -> None:
    text = "line one\nünïcödé 𝄞\r\nlast"
    s = store_text("notes", text, tmp_path)
    with open(s.content_path, encoding="utf-8", newline="") as f:
        assert f.read() == text
    assert s.kind == "text" and s.chars == len(text) and s.bytes == len(text.encode())
    assert s.file_count == 0 and read_manifest(s)["files"] == [] and files_of(s) == []
    assert store_text("notes", text, tmp_path).reused
    changed = store_text("notes", text + "!", tmp_path)
    assert not changed.reused and changed.chars == len(text) + 1


def test_store_text_lone_surrogate_keeps_length(tmp_path: Path) -> None:
    s = store_text("t", "a\ud800b", tmp_path)
    assert s.chars == 3 and Path(s.content_path).read_text(encoding="utf-8") == "a?b"


def test_text_replaces_files_context_of_same_name(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.py").write_text("A = 1\n")
    store_paths("main", [str(tmp_path / "p")], allowed_roots=[tmp_path], store_dir=tmp_path / "s", limits=LoadLimits())
    s = store_text("main", "plain", tmp_path / "s")
    assert load_stored("main", tmp_path / "s") == s and s.kind == "text"


@pytest.mark.parametrize("name", ["", "1abc", "a b", "../x", "a/b", "x" * 65, "é", ".hidden"])
def test_invalid_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidContextName, match="not a valid context name"):
        store_text(name, "x", tmp_path)
    with pytest.raises(InvalidContextName):
        store_paths(name, ["."], allowed_roots=[tmp_path], store_dir=tmp_path, limits=LoadLimits())


@pytest.mark.parametrize("name", ["main", "_x", "logs-2024", "A" * 64])
def test_valid_names(tmp_path: Path, name: str) -> None:
    assert store_text(name, "x", tmp_path).name == name


def test_real_stdlib_tree(tmp_path: Path) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    s = store_paths("std", [str(stdlib)], allowed_roots=[stdlib], store_dir=tmp_path, limits=LoadLimits())
    assert s.file_count > 1000 and s.languages["python"] > 1000
    entries = {e["path"]: e for e in read_manifest(s)["files"]}
    assert not any("__pycache__" in p for p in entries)
    with open(s.content_path, encoding="utf-8", newline="") as f:
        content = f.read()
    for rel in ("os.py", "json/__init__.py", "collections/__init__.py"):
        e = entries[rel]
        assert e["language"] == "python"
        assert content[e["start"] : e["end"]] == (stdlib / rel).read_bytes().decode("utf-8", "replace")
    again = store_paths("std", [str(stdlib)], allowed_roots=[stdlib], store_dir=tmp_path, limits=LoadLimits())
    assert again.reused and again.elapsed_s < 1.0
