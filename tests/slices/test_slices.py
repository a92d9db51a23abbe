"""sub_query's slices of a stored context (rlm_mcp/contexts/slices.py), over contexts stored by the real store:
each slice equals the same cut of the whole decoded text, and a file is cut out by its byte offsets
without reading the rest of the context (the kernel's own count of bytes read says so)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_mcp.contexts import LoadLimits, StoredContext, read_manifest, store_paths, store_text
from rlm_mcp.contexts.slices import context_slice, worker_prompts
from rlm_mcp.errors import BadRequest

FILES = {
    "a.py": "A = 1\r\nB = 'é'\r\n",  # CRLF and a two-byte character: offsets count both as they are
    "b/c.txt": "naïve — 日本語 ✓\n" * 50,
    "d.txt": "no newline at the end",
}


@pytest.fixture
def stored(tmp_path: Path) -> StoredContext:
    root = tmp_path / "tree"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(text.encode())
    return store_paths("main", [str(root)], allowed_roots=[root], store_dir=tmp_path / "store", limits=LoadLimits())


def whole(stored: StoredContext) -> str:
    with open(stored.content_path, encoding="utf-8", newline="") as handle:
        return handle.read()


def test_a_file_and_a_range_equal_the_same_cut_of_the_whole_text(stored: StoredContext) -> None:
    text = whole(stored)
    for entry in read_manifest(stored)["files"]:
        body = text[entry["start"] : entry["end"]]
        assert body == FILES[entry["path"]]
        assert context_slice(stored, entry["path"], None, None) == body
        assert context_slice(stored, entry["path"], 3, 17) == body[3:17]
    for start, end in [(0, None), (5, 40), (100, 10_000), (len(text) - 3, None), (40, 5), (0, 0)]:
        assert context_slice(stored, None, start, end) == text[start:end]


def test_a_text_context_slices_by_characters(tmp_path: Path) -> None:
    text = "line one\r\nzwei — drei\n" * 1000
    stored = store_text("notes", text, tmp_path)
    assert context_slice(stored, None, 12, 30) == text[12:30]
    assert context_slice(stored, None, len(text) - 5, None) == text[-5:]


def test_one_file_of_a_large_context_is_read_alone(tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    for i in range(40):  # 40 MB of context around one small file
        (root / f"filler{i:02}.txt").write_text(("x" * 1023 + "\n") * 1024)
    (root / "needle.py").write_text("NEEDLE = 42\n")
    stored = store_paths("main", [str(root)], allowed_roots=[root], store_dir=tmp_path / "store",
                         limits=LoadLimits(max_total_bytes=1 << 30))
    before = read_bytes()
    assert context_slice(stored, "needle.py", None, None) == "NEEDLE = 42\n"
    assert read_bytes() - before < 4 << 20  # the manifest and one file, not 40 MB


def read_bytes() -> int:
    """Bytes this process has read through read(2) and friends, by the kernel's count."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_prompts_carry_the_slice_and_chunks_map_one_prompt(stored: StoredContext) -> None:
    body = FILES["b/c.txt"]
    assert worker_prompts("Sum?", None, stored, "a.py", None, None, None) == [f"Sum?\n\n---\n{FILES['a.py']}"]
    chunks = worker_prompts("Count", None, stored, "b/c.txt", None, None, 200)
    assert [c.split("\n\n---\n", 1)[1] for c in chunks] == [body[i : i + 200] for i in range(0, len(body), 200)]
    assert worker_prompts(None, ["x", "y"], None, None, None, None, None) == ["x", "y"]


@pytest.mark.parametrize(("args", "message"), [
    (("q", ["r"], None, None, None, None, None), "exactly one of `prompt` or `prompts`"),
    ((None, None, None, None, None, None, None), "exactly one of `prompt` or `prompts`"),
    (("q", None, None, "a.py", None, None, None), "need `context`"),
    ((None, ["q"], "STORED", None, None, None, 500), "maps one `prompt`"),
    (("q", None, "STORED", "missing.py", None, None, None), "'missing.py' is not a file of context 'main'"),
])
def test_bad_arguments_name_the_fix(stored: StoredContext, args: tuple, message: str) -> None:
    args = tuple(stored if a == "STORED" else a for a in args)
    with pytest.raises(BadRequest, match=message):
        worker_prompts(*args)
