"""store_paths over a generated tree: selection rules, offsets, limits, roots, reuse."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rlm_mcp.contexts import (
    FILE_HEADER,
    ContextError,
    ContextTooLarge,
    LoadLimits,
    OutsideAllowedRoots,
    SourceNotFound,
    StoredContext,
    files_of,
    load_stored,
    read_manifest,
    store_paths,
)

from .conftest import Tree

LIMITS = LoadLimits(max_file_bytes=1000)


def load(tree: Tree, sources: list[str] | None = None, **kw: object) -> StoredContext:
    kw.setdefault("limits", LIMITS)
    return store_paths(
        "main",
        sources if sources is not None else [str(tree.root)],
        allowed_roots=[tree.root],
        store_dir=tree.store,
        **kw,  # type: ignore[arg-type]
    )


def content_of(stored: StoredContext) -> str:
    with open(stored.content_path, encoding="utf-8", newline="") as f:
        return f.read()


def paths_of(stored: StoredContext) -> list[str]:
    return [e["path"] for e in read_manifest(stored)["files"]]


def test_selection_honours_gitignore_exclude_defaults_and_binaries(tree: Tree) -> None:
    s = load(tree)
    assert paths_of(s) == [
        ".gitignore",
        "README.md",
        "données/ファイル.md",
        "keep.log",
        "link_a.py",
        "src/a.py",
        "src/b.js",
        "src/crlf.txt",
        "src/latin1.txt",
        "src/sub/.gitignore",
        "src/sub/notes.log",
        "src/sub/y.py",
        "src/ünï.py",
    ]
    assert s.kind == "files" and s.file_count == 13 and s.root == str(tree.root.resolve())
    # .git, node_modules, __pycache__ (defaults) + build/ + debug.log + excluded.txt + src/sub/x.txt
    assert s.skipped.ignored == 7
    assert s.skipped.binary == 2  # img.png by extension, blob.dat by its NUL byte
    assert s.skipped.outside_roots == 2  # link_out.txt, link_out_dir
    assert s.skipped.symlinks == 1  # link_src points back into the tree
    assert s.skipped.too_large == 1
    assert [(f.path, f.bytes) for f in s.too_large_files] == [("big.txt", 5000)]
    assert s.decode_replaced == 1  # latin1.txt
    assert s.languages["python"] == 4 and s.languages["markdown"] == 2
    assert s.estimated_tokens == (s.chars + 3) // 4
    assert not s.reused


def test_offsets_slice_exact_file_text_and_headers(tree: Tree) -> None:
    s = load(tree)
    content = content_of(s)
    assert len(content) == s.chars
    assert len(content.encode("utf-8")) == s.bytes == os.path.getsize(s.content_path)
    for e in read_manifest(s)["files"]:
        on_disk = (tree.root / e["path"]).read_bytes()
        assert content[e["start"] : e["end"]] == on_disk.decode("utf-8", errors="replace"), e["path"]
        header = FILE_HEADER.format(path=e["path"])
        assert content[e["start"] - len(header) : e["start"]] == header
        assert e["bytes"] == len(on_disk)
    by_path = {e["path"]: e for e in read_manifest(s)["files"]}
    assert by_path["src/ünï.py"]["language"] == "python"
    assert by_path["src/a.py"]["lines"] == 2 and by_path["src/b.js"]["lines"] == 1
    assert content[by_path["src/crlf.txt"]["start"] : by_path["src/crlf.txt"]["end"]] == "one\r\ntwo\r\n"
    assert "\ufffd" in content[by_path["src/latin1.txt"]["start"] : by_path["src/latin1.txt"]["end"]]


def test_summary_is_json_and_round_trips(tree: Tree) -> None:
    s = load(tree)
    data = json.loads(json.dumps(s.to_dict()))
    assert "content" not in data
    assert StoredContext.from_dict(data) == s
    assert load_stored("main", tree.store) == s


def test_files_of_lists_real_files(tree: Tree) -> None:
    s = load(tree)
    pairs = files_of(s)
    assert len(pairs) == s.file_count
    assert all((root / rel).is_file() for root, rel in pairs)


def test_globs_relative_to_base_dir(tree: Tree) -> None:
    s = load(tree, ["src/**/*.py", "*.log"], base_dir=tree.root)
    assert paths_of(s) == ["src/a.py", "src/sub/y.py", "src/ünï.py", "keep.log"]
    s = load(tree, ["src/*.py"], base_dir=tree.root)
    assert paths_of(s) == ["src/a.py", "src/ünï.py"]


def test_dotdot_inside_root_is_fine(tree: Tree) -> None:
    s = load(tree, ["../README.md"], base_dir=tree.root / "src")
    assert paths_of(s) == ["README.md"]


def test_explicit_file_and_relative_dir(tree: Tree) -> None:
    s = load(tree, ["debug.log", "src/sub"], base_dir=tree.root)  # explicit file beats .gitignore
    assert paths_of(s) == ["debug.log", "src/sub/.gitignore", "src/sub/notes.log", "src/sub/y.py"]


def test_nested_dir_source_still_sees_parent_gitignore(tree: Tree) -> None:
    (tree.root / "src" / "sub" / "trace.log").write_text("ignored by the root .gitignore\n")
    s = load(tree, [str(tree.root / "src" / "sub")])
    assert paths_of(s) == [".gitignore", "notes.log", "y.py"]


def test_symlinks_off_skips_every_link(tree: Tree) -> None:
    s = load(tree, limits=LoadLimits(max_file_bytes=1000, follow_symlinks=False))
    assert "link_a.py" not in paths_of(s)
    assert s.skipped.symlinks == 4 and s.skipped.outside_roots == 0


@pytest.mark.parametrize("source", ["../outside", "../outside/secret.txt", "/etc", "link_out_dir", "src/../../outside"])
def test_outside_allowed_roots(tree: Tree, source: str) -> None:
    with pytest.raises(OutsideAllowedRoots) as info:
        load(tree, [source], base_dir=tree.root)
    assert "RLM_ALLOWED_ROOTS" in str(info.value) and str(tree.root) in str(info.value)


def test_glob_outside_roots(tree: Tree) -> None:
    with pytest.raises(OutsideAllowedRoots):
        load(tree, ["../outside/**/*.py"], base_dir=tree.root)


def test_no_roots_allows_nothing(tree: Tree) -> None:
    with pytest.raises(OutsideAllowedRoots, match=r"allowed roots \(none\)"):
        store_paths("main", [str(tree.root)], allowed_roots=[], store_dir=tree.store, limits=LIMITS)


def test_missing_sources(tree: Tree) -> None:
    with pytest.raises(SourceNotFound, match="does not exist"):
        load(tree, ["nope"], base_dir=tree.root)
    with pytest.raises(SourceNotFound, match="matched no loadable file"):
        load(tree, ["src/**/*.rs"], base_dir=tree.root)
    with pytest.raises(ContextError, match="No source"):
        load(tree, [])


def test_a_file_named_directly_is_loaded_whatever_its_size(tree: Tree) -> None:
    big = next(tree.root.rglob("big.txt"))
    s = load(tree, [str(big)])
    assert s.file_count == 1 and s.skipped.too_large == 0
    assert content_of(s).endswith(big.read_text())
    with pytest.raises(ContextTooLarge):  # the total still applies
        load(tree, [str(big)], limits=LoadLimits(max_file_bytes=1000, max_total_bytes=60))


def test_too_large(tree: Tree) -> None:
    with pytest.raises(ContextTooLarge, match="max_total_bytes") as info:
        load(tree, limits=LoadLimits(max_file_bytes=1000, max_total_bytes=60))
    assert info.value.limit == 60 and info.value.suggestions
    with pytest.raises(ContextTooLarge, match="3 files"):
        load(tree, limits=LoadLimits(max_files=3))
    assert load_stored("main", tree.store) is None  # nothing half-written is visible
    assert not any(p.name.startswith(".main.") for p in tree.store.iterdir())


def test_reload_reuses_then_detects_changes(tree: Tree) -> None:
    first = load(tree)
    gen = os.readlink(tree.store / "main")
    again = load(tree)
    assert again.reused and again.fingerprint == first.fingerprint
    assert os.readlink(tree.store / "main") == gen

    target = tree.root / "src" / "a.py"
    target.write_text("def a():\n    return 2  # changed\n")
    changed = load(tree)
    assert not changed.reused and changed.fingerprint != first.fingerprint
    assert "return 2  # changed" in content_of(changed)
    assert not (tree.store / gen).exists()  # the old generation is cleaned up

    (tree.root / "new.py").write_text("NEW = 1\n")
    assert not load(tree).reused
    assert not load(tree, limits=LoadLimits(max_file_bytes=10_000)).reused  # other limits
    assert "big.txt" in paths_of(load_stored("main", tree.store))  # type: ignore[arg-type]
    assert load(tree, limits=LoadLimits(max_file_bytes=10_000)).reused


def test_progress_reports_totals(tree: Tree) -> None:
    for i in range(450):
        (tree.root / "many" / f"f{i:03}.txt").parent.mkdir(exist_ok=True)
        (tree.root / "many" / f"f{i:03}.txt").write_text(f"{i}\n")
    calls: list[tuple[int, int | None, str]] = []
    s = load(tree, on_progress=lambda d, t, m: calls.append((d, t, m)))
    assert any(t is None for _, t, _ in calls)  # scanning: total unknown yet
    assert any(t is not None and d < t for d, t, _ in calls)  # reading: done of total
    done, total, _ = calls[-1]
    assert done == total and total >= s.file_count


def test_store_dir_layout_is_a_swapped_generation(tree: Tree) -> None:
    s = load(tree)
    link = tree.store / "main"
    assert link.is_symlink() and Path(s.content_path) == link / "content.txt"
    manifest = json.loads((link / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "files" and manifest["header_format"] == FILE_HEADER
    assert manifest["root"] == s.root
