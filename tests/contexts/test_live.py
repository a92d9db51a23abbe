"""LiveContext in-process: the watch, the walk without one, incremental stores, and the notes' text."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import rlm_mcp.contexts.live as live_module
from rlm_mcp.contexts import (
    ContentStore,
    LiveContext,
    LoadLimits,
    WalkSnapshot,
    open_watch,
    read_manifest,
    store_paths,
    walk_sources,
)
from rlm_mcp.contexts.live import _why_removed
from rlm_mcp.contexts.walk import WalkResult

LIMITS = LoadLimits()


def follow(tmp_path: Path, *, watch: bool, during_walk: Callable[[Path, str], None] | None = None,
           ) -> tuple[Path, LiveContext]:
    """A live context over a 30-file tree; `during_walk(tree, directory)` runs as the load's walk enters each
    directory, right after the watcher was placed on it."""
    tree = tmp_path / "tree"
    for i in range(30):
        (tree / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 3}" / f"f{i}.py").write_text(f"def f{i}():\n    return {i}\n")
    cas = ContentStore(tmp_path / "store", 1 << 30)
    watcher = open_watch() if watch else None

    def entering(directory: str) -> None:
        if watcher is not None:
            watcher.add(directory)
        if during_walk is not None:
            during_walk(tree, directory)

    walked = walk_sources([str(tree)], allowed_roots=[tree], limits=LIMITS, base_dir=tmp_path, on_directory=entering)
    stored = store_paths("main", [str(tree)], allowed_roots=[tree], store_dir=tmp_path / "s", limits=LIMITS,
                         cas=cas, walked=walked, base_dir=tmp_path)
    live = LiveContext(stored, [str(tree)], allowed_roots=[tree], limits=LIMITS, base_dir=tmp_path,
                       store_dir=tmp_path / "s", cas=cas, watch=watcher, snapshot=WalkSnapshot.of(walked, [tree]),
                       walked=walked)
    assert live.watched == watch
    return tree, live


def test_an_edit_made_while_the_load_walks_is_seen_by_the_first_check(tmp_path: Path) -> None:
    def edit_a_listed_directory(tree: Path, directory: str) -> None:
        if directory.endswith("d2"):  # d0 is listed already: the load's walk misses this file
            (tree / "d0" / "late.py").write_text("LATE = 1\n")

    _, live = follow(tmp_path, watch=True, during_walk=edit_a_listed_directory)
    assert "d0/late.py" not in text_of(live)
    change = live.check()
    assert change is not None and change.changed == ["d0/late.py"] and text_of(live)["d0/late.py"] == "LATE = 1\n"


def text_of(live: LiveContext) -> dict[str, str]:
    content = Path(live.stored.content_path).read_bytes()
    return {e["path"]: content[e["byte_start"] : e["byte_end"]].decode() for e in read_manifest(live.stored)["files"]}


def check_edits(tree: Path, live: LiveContext) -> None:
    assert live.check() is None  # nothing changed yet
    (tree / "d1" / "f4.py").write_text("def renamed():\n    return 4\n")
    (tree / "d0" / "new.py").write_text("NEW = 1\n")
    (tree / "d2" / "f5.py").unlink()
    change = live.check()  # at once: no wait between the edit and the check
    assert change is not None and change.stored is live.stored
    assert sorted(change.changed) == ["d0/new.py", "d1/f4.py"] and change.removed == ["d2/f5.py"]
    texts = text_of(live)
    assert texts["d1/f4.py"] == "def renamed():\n    return 4\n" and texts["d0/new.py"] == "NEW = 1\n"
    assert "d2/f5.py" not in texts and texts["d0/f0.py"] == "def f0():\n    return 0\n"  # copied, unchanged
    # The offsets a fresh store would write: the incremental store is byte-for-byte the same context.
    fresh = store_paths("main", [str(tree)], allowed_roots=[tree], store_dir=tree.parent / "fresh", limits=LIMITS,
                        base_dir=tree.parent)
    assert Path(fresh.content_path).read_bytes() == Path(live.stored.content_path).read_bytes()
    assert read_manifest(fresh)["files"] == read_manifest(live.stored)["files"]
    assert live.check() is None
    (tree / "d5").mkdir()  # a new directory is watched from the next walk on
    (tree / "d5" / "deep.py").write_text("X = 1\n")
    assert live.check().changed == ["d5/deep.py"]  # type: ignore[union-attr]
    (tree / "d5" / "deep.py").write_text("X = 2\n")
    assert live.check().changed == ["d5/deep.py"]  # type: ignore[union-attr]


def test_watched_edits_are_seen_by_the_next_check(tmp_path: Path) -> None:
    tree, live = follow(tmp_path, watch=True)
    try:
        check_edits(tree, live)
    finally:
        live.close()


def same_as_a_fresh_store(tree: Path, live: LiveContext) -> bool:
    fresh = store_paths("main", [str(tree)], allowed_roots=[tree], store_dir=tree.parent / f"fresh{time.time_ns()}",
                        limits=LIMITS, base_dir=tree.parent)
    return (Path(fresh.content_path).read_bytes() == Path(live.stored.content_path).read_bytes()
            and read_manifest(fresh)["files"] == read_manifest(live.stored)["files"])


@pytest.mark.parametrize("watch", [True, False], ids=["inotify", "no watcher"])
def test_files_edited_in_place_are_restated_without_a_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           watch: bool) -> None:
    """Only files edited in place (nothing added, removed or renamed): the last walk with their new stats is
    what a walk would find (rlm_mcp/contexts/walk.py `restat`); the stored context is byte for byte a fresh
    store's. A file that crosses the size limit changes sides, so that one takes a walk."""
    tree, live = follow(tmp_path, watch=watch)
    walks: list[int] = []
    real_walk = live_module.walk_sources
    monkeypatch.setattr(live_module, "walk_sources", lambda *args, **kwargs: walks.append(1) or real_walk(*args,
                                                                                                         **kwargs))
    try:
        (tree / "d0" / "f0.py").write_text("def f0():\n    return 'edited in place'\n")
        (tree / "d1" / "f1.py").write_text("def f1():\n    return 1\n")  # the same text, a new mtime
        change = live.check()
        assert change is not None and sorted(change.changed) == ["d0/f0.py", "d1/f1.py"] and walks == []
        assert text_of(live)["d0/f0.py"] == "def f0():\n    return 'edited in place'\n"
        assert same_as_a_fresh_store(tree, live) and live.check() is None and walks == []
        (tree / "d2" / "f2.py").write_text("x" * (LIMITS.max_file_bytes + 1))
        change = live.check()
        assert change is not None and change.removed == ["d2/f2.py"] and "over the per-file limit" in change.notes[0]
        assert walks == [1] and same_as_a_fresh_store(tree, live)
    finally:
        live.close()


def test_without_a_watch_every_check_looks_again(tmp_path: Path) -> None:
    tree, live = follow(tmp_path, watch=False)
    assert not live.watched
    check_edits(tree, live)


def test_notes_name_why_each_file_left() -> None:
    walked = WalkResult(binary_paths=["/r/b.py"], outside_paths=["/r/link.py"], unreadable_paths=["/r/locked",
                                                                                                    "/r/x.py"])
    walked.too_large.append(type("Big", (), {"path": "/r/big.py", "bytes": 3_000_000})())  # type: ignore[arg-type]
    notes = _why_removed(["b.py", "big.py", "link.py", "locked/a.py", "x.py", "gone.py"], walked, "/r")
    assert notes == [
        "b.py is binary now: dropped from the context; the rest is up to date.",
        "big.py is 3,000,000 bytes now, over the per-file limit (RLM_MAX_FILE_BYTES): dropped from the context; "
        "the rest is up to date.",
        "link.py is a symlink pointing outside the allowed roots now (not followed, not read): dropped from the "
        "context; the rest is up to date.",
        "locked/a.py cannot be read any more (permission denied?): dropped from the context; the rest is up to date.",
        "x.py cannot be read any more (permission denied?): dropped from the context; the rest is up to date.",
    ]  # gone.py was deleted: the change list says so, no note


def test_a_symlink_turned_outward_is_never_read(tmp_path: Path) -> None:
    tree, live = follow(tmp_path, watch=True)
    secret = tmp_path / "secret.py"
    secret.write_text("SECRET = 1\n")
    os.symlink(tree / "d0" / "f0.py", tree / "link.py")
    assert live.check().changed == ["link.py"]  # type: ignore[union-attr]
    (tree / "link.py").unlink()
    os.symlink(secret, tree / "link.py")
    change = live.check()
    assert change is not None and change.removed == ["link.py"] and "outside the allowed roots" in change.notes[0]
    assert b"SECRET" not in Path(live.stored.content_path).read_bytes()
    live.close()


def test_a_limit_crossed_keeps_the_last_version_and_is_tried_again(tmp_path: Path) -> None:
    from rlm_mcp.contexts import ContextTooLarge

    tree, live = follow(tmp_path, watch=True)
    live.limits = LoadLimits(max_files=31)
    before = live.stored
    for i in range(3):
        (tree / f"extra{i}.py").write_text("X = 1\n")
    for _ in range(2):  # the watch was drained by the first try: the second still walks
        try:
            live.check()
        except ContextTooLarge as exc:
            assert "31" in str(exc)
        else:
            raise AssertionError("the tree is over max_files")
        assert live.stored is before
    (tree / "extra0.py").unlink()
    (tree / "extra1.py").unlink()
    assert sorted(live.check().changed) == ["extra2.py"]  # type: ignore[union-attr]
    live.close()


def test_without_copy_file_range_unchanged_files_are_copied_by_reads(tmp_path: Path, monkeypatch) -> None:
    """macOS and Windows have no copy_file_range: the incremental store reads the runs instead, same bytes."""
    monkeypatch.delattr(os, "copy_file_range", raising=False)
    tree, live = follow(tmp_path, watch=False)
    check_edits(tree, live)
