"""WalkSnapshot: "unchanged" by stat alone exactly when a walk would find the same fingerprint."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from rlm_mcp.contexts import LoadLimits, WalkSnapshot, store_paths, walk_sources

LIMITS = LoadLimits()


def make(tmp_path: Path) -> tuple[Path, Path]:
    """An allowed root holding a git repository whose `src` is the source, with an ignored directory."""
    root = tmp_path / "root"
    repo = root / "repo"
    (repo / ".git" / "info").mkdir(parents=True)
    (repo / ".gitignore").write_text("ignored/\n*.log\n")
    for name in ("a.py", "b.py", "sub/c.py", "ignored/x.py", "notes.log", "data/blob.bin"):
        (repo / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "src" / name).write_text(f"# {name}\nx = 0\n")
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "e.py").write_text("E = 1\n")
    os.symlink(root / "elsewhere", repo / "src" / "link")
    return root, repo / "src"


def fingerprint(source: Path, root: Path, tmp_path: Path) -> str:
    store = tmp_path / f"s{len(os.listdir(tmp_path))}"
    return store_paths("main", [str(source)], allowed_roots=[root], store_dir=store, limits=LIMITS,
                       base_dir=tmp_path).fingerprint


def snapshot(source: Path, root: Path) -> WalkSnapshot:
    walked = walk_sources([str(source)], allowed_roots=[root], limits=LIMITS)
    return WalkSnapshot.of(walked, [root])


def test_an_unchanged_tree_is_proved_unchanged_and_every_directory_is_offered_to_a_watcher(tmp_path: Path) -> None:
    root, source = make(tmp_path)
    taken = snapshot(source, root)
    again = WalkSnapshot.from_bytes(taken.to_bytes())
    assert again == taken
    seen: list[str] = []
    assert again is not None and again.unchanged([root], seen.append)
    assert str(source / "sub") in seen and os.path.realpath(root / "elsewhere") in seen
    assert not any("ignored" in path for path in seen)  # never entered, so never watched


def _append(path: Path) -> None:
    with path.open("a") as handle:
        handle.write("y = 1\n")


def _same_size_edit(path: Path) -> None:
    path.write_text(path.read_text().replace("x = 0", "x = 9"))


CHANGES: dict[str, Callable[[Path, Path], object]] = {
    "a file edited in place, same size": lambda root, src: _same_size_edit(src / "sub" / "c.py"),
    "a file appended to": lambda root, src: _append(src / "a.py"),
    "a new file": lambda root, src: (src / "new.py").write_text("N = 1\n"),
    "a deleted file": lambda root, src: (src / "b.py").unlink(),
    "a renamed file": lambda root, src: (src / "b.py").rename(src / "b2.py"),
    "a file made unreadable": lambda root, src: (src / "a.py").chmod(0),
    "a directory made unreadable": lambda root, src: (src / "sub").chmod(0),
    ".gitignore edited in place": lambda root, src: _same_size_edit_gitignore(src.parent / ".gitignore"),
    "a .gitignore above the source removed": lambda root, src: (src.parent / ".gitignore").unlink(),
    "a .gitignore appearing in the source": lambda root, src: (src / ".gitignore").write_text("a.py\n"),
    ".git/info/exclude appearing": lambda root, src: (src.parent / ".git" / "info" / "exclude").write_text("a.py\n"),
    "a symlink pointed elsewhere": lambda root, src: _retarget(src / "link", root / "repo" / "src" / "sub"),
    "a file in a followed symlink's target": lambda root, src: (root / "elsewhere" / "f.py").write_text("F = 1\n"),
}


def _same_size_edit_gitignore(path: Path) -> None:
    path.write_text(path.read_text().replace("*.log", "*.py "))


def _retarget(link: Path, target: Path) -> None:
    link.unlink()
    os.symlink(target, link)


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_kind_of_change_is_seen(tmp_path: Path, change: str) -> None:
    root, source = make(tmp_path)
    taken, before = snapshot(source, root), fingerprint(source, root, tmp_path)
    CHANGES[change](root, source)
    try:
        assert not taken.unchanged([root])
        if os.geteuid() != 0 or "unreadable" not in change:  # root reads through chmod 0: same walk
            assert fingerprint(source, root, tmp_path) != before  # a walk sees it too: not a false alarm
    finally:
        for path in (source / "a.py", source / "sub"):
            path.chmod(0o755)


def test_changes_a_walk_would_not_see_leave_it_unchanged(tmp_path: Path) -> None:
    root, source = make(tmp_path)
    taken, before = snapshot(source, root), fingerprint(source, root, tmp_path)
    (source / "ignored" / "more.py").write_text("M = 1\n")  # in an ignored directory, which is never listed
    (source / "ignored" / "x.py").write_text("changed\n")
    assert taken.unchanged([root])
    assert fingerprint(source, root, tmp_path) == before


def test_other_allowed_roots_or_a_moved_source_are_a_change(tmp_path: Path) -> None:
    root, source = make(tmp_path)
    via = tmp_path / "via"
    os.symlink(source, via)
    taken = snapshot(via, root)
    assert taken.unchanged([root]) and not taken.unchanged([root / "repo"])
    via.unlink()
    os.symlink(source / "sub", via)  # the source as given now resolves elsewhere
    assert not taken.unchanged([root])
