"""The store under RLM_HOME: shared by servers, atomic under concurrency and crashes, capped with LRU eviction."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from rlm_mcp.contexts import ContentStore, LoadLimits, StoredContext, store_paths, store_text
from tests.helpers import stdio_client

LIMITS = LoadLimits()


def make_tree(root: Path, files: int = 40, body: str = "x = {i}\n") -> None:
    for i in range(files):
        path = root / f"pkg{i % 7}" / f"m{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body.format(i=i) * 20)


def store(tree: Path, session: Path, cas: ContentStore, name: str = "main") -> StoredContext:
    return store_paths(name, [str(tree)], allowed_roots=[tree], store_dir=session, limits=LIMITS, cas=cas)


def entries(cas: ContentStore) -> list[str]:
    return sorted(os.listdir(cas.entries)) if cas.entries.exists() else []


def test_a_second_session_links_the_entry_instead_of_storing_again(tmp_path: Path) -> None:
    tree, cas = tmp_path / "tree", ContentStore(tmp_path / "home" / "store", 1 << 30)
    make_tree(tree)
    first = store(tree, tmp_path / "s1", cas)
    second = store(tree, tmp_path / "s2", cas, name="other")
    assert not first.reused and second.reused and entries(cas) == [first.fingerprint]
    assert second.name == "other" and second.content_path == str(tmp_path / "s2" / "other" / "content.txt")
    assert Path(first.content_path).read_bytes() == Path(second.content_path).read_bytes()
    # Hard links, not copies: one inode for the entry and both sessions.
    inode = os.stat(cas.entries / first.fingerprint / "content.txt").st_ino
    assert os.stat(first.content_path).st_ino == os.stat(second.content_path).st_ino == inode


CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from rlm_mcp.contexts import ContentStore, LoadLimits, store_paths
    tree, home, session, die_at = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    def progress(done, total, message):
        if die_at and total and done >= die_at:  # killed mid-write: no cleanup, no finally
            os.kill(os.getpid(), signal.SIGKILL)
    stored = store_paths("main", [str(tree)], allowed_roots=[tree], store_dir=session, limits=LoadLimits(),
                         cas=ContentStore(home, 1 << 30), on_progress=progress)
    print(stored.fingerprint, stored.reused)
""")


def run_child(tree: Path, home: Path, session: Path, die_at: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(tree), str(home), str(session), str(die_at)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_writers_leave_one_whole_entry(tmp_path: Path) -> None:
    tree, home = tmp_path / "tree", tmp_path / "store"
    make_tree(tree, files=300)
    children = [run_child(tree, home, tmp_path / f"s{i}") for i in range(4)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert all(child.returncode == 0 for child in children), outputs
    fingerprints = {out.split()[0] for out, _ in outputs}
    cas = ContentStore(home, 1 << 30)
    assert len(fingerprints) == 1 and entries(cas) == sorted(fingerprints)
    expected = (cas.entries / fingerprints.pop() / "content.txt").read_bytes()
    for i in range(4):
        assert (tmp_path / f"s{i}" / "main" / "content.txt").read_bytes() == expected
    assert os.listdir(home / "tmp") == []  # the losers discarded their copies


def test_a_crash_mid_write_leaves_no_entry_and_its_debris_is_cleared(tmp_path: Path) -> None:
    tree, home = tmp_path / "tree", tmp_path / "store"
    make_tree(tree, files=600)
    child = run_child(tree, home, tmp_path / "s0", die_at=400)
    child.communicate(timeout=120)
    assert child.returncode == -9
    cas = ContentStore(home, 1 << 30)
    assert entries(cas) == [] and len(os.listdir(home / "tmp")) == 1  # half an entry, out of sight
    again = store(tree, tmp_path / "s1", cas)
    assert not again.reused and entries(cas) == [again.fingerprint]
    assert os.listdir(home / "tmp") == []  # its writer is dead: cleared on the next publish
    assert Path(again.content_path).read_text().count("=====") == 2 * 600


def test_least_recently_used_entries_go_first_and_sessions_keep_theirs(tmp_path: Path) -> None:
    home = tmp_path / "store"
    probe = store_text("main", "t" * 10_000, tmp_path / "probe", ContentStore(home, 1 << 30))
    size = sum(os.stat(Path(probe.content_path).parent / f).st_size for f in ("content.txt", "manifest.json",
                                                                              "summary.json"))
    cas = ContentStore(home, int(size * 3.5))  # room for three entries of this size
    texts = [c * 10_000 for c in "abcd"]
    base = time.time() - 100
    os.utime(cas.entries / probe.fingerprint, (base, base))
    stored = []
    for i in range(3):
        stored.append(store_text("main", texts[i], tmp_path / f"s{i}", cas))
        os.utime(cas.entries / stored[-1].fingerprint, (base + 10 + i,) * 2)  # a clear order of use
    assert probe.fingerprint not in entries(cas)  # the least recently used of four: evicted by the third
    cas.get(stored[0].fingerprint)  # "a" used again: now "b" is the least recently used
    fourth = store_text("main", texts[3], tmp_path / "s3", cas)
    left = set(entries(cas))
    assert left == {stored[0].fingerprint, stored[2].fingerprint, fourth.fingerprint}
    assert cas.usage() <= cas.cap_bytes
    # The session that stored "b" still reads it: its links outlive the entry.
    assert Path(stored[1].content_path).read_text() == texts[1]
    # And a later load of "b" simply stores it again.
    again = store_text("main", texts[1], tmp_path / "s4", cas)
    assert not again.reused and again.fingerprint in entries(cas)



@pytest.mark.anyio
async def test_two_servers_share_the_store_and_a_new_server_reuses_it(server_env, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree, files=200)
    results: dict[int, dict] = {}

    async def load(i: int) -> None:
        async with stdio_client(server_env, cwd=tmp_path) as client:
            loaded = await client.call_tool("load_context", {"source": [str(tree)]})
            out = await client.call_tool("exec_code", {"code": "print(len(files), files['pkg0/m0.py'][:5])"})
            results[i] = {**loaded.structured_content, "stdout": out.structured_content["stdout"]}

    async with anyio.create_task_group() as group:  # two servers loading the same tree at once
        group.start_soon(load, 0)
        group.start_soon(load, 1)
    assert results[0]["stdout"] == results[1]["stdout"] == "200 x = 0\n"
    await load(2)  # a new server: the stored context is reused, nothing read again
    assert results[2]["reused"] is True and results[2]["stdout"] == "200 x = 0\n"
    cas = ContentStore(Path(server_env["RLM_HOME"]) / "store", 1 << 30)
    assert len(entries(cas)) == 1 and os.listdir(cas.root / "tmp") == []


def test_a_tree_holding_the_store_leaves_the_store_out(tmp_path: Path) -> None:
    """RLM_HOME inside the loaded tree (loading a home directory): the tagged store is skipped, so a load
    never stores the store, and storing does not change the tree that was loaded."""
    tree = tmp_path / "tree"
    make_tree(tree, files=5)
    cas = ContentStore(tree / ".cache" / "rlm-mcp" / "store", 1 << 30)
    first = store(tree, tmp_path / "s1", cas)
    assert (cas.root / "CACHEDIR.TAG").read_bytes().startswith(b"Signature: 8a477f597d28d172789f06886806bc55")
    second = store(tree, tmp_path / "s2", cas)
    assert second.reused and second.fingerprint == first.fingerprint and second.file_count == 5
    assert "store" not in Path(second.content_path).read_text()


def test_notes_of_the_version_stored_last_count_against_the_cap(tmp_path: Path) -> None:
    """Each note carries its walk's snapshot (~3 MB at 24k files): counted in RLM_STORE_MAX_BYTES, evicted too."""
    tree = tmp_path / "tree"
    make_tree(tree, files=5)
    cas = ContentStore(tmp_path / "store", 1 << 30)
    store_paths("main", [str(tree)], allowed_roots=[tree], store_dir=tmp_path / "s", limits=LoadLimits(), cas=cas)
    (note,) = [path for path in (cas.root / "latest").iterdir() if not path.name.startswith(".")]
    assert cas.usage() >= note.stat().st_size > 0
    ContentStore(cas.root, 1).evict()  # a cap everything is over
    assert not note.exists() and cas.usage() == 0
