"""Live contexts through the real server: edits, new and deleted files reach the next call, with a note."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import stdio_client

pytestmark = pytest.mark.anyio


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def _exec(client, code: str) -> dict:  # type: ignore[no-untyped-def]
    result = await client.call_tool("exec_code", {"code": code})
    return result.structured_content


async def test_edits_reach_context_files_and_index_with_a_note(server_env, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    _write(proj / "a.py", "def alpha():\n    return 1\n")
    _write(proj / "c.py", "def gamma_not_yet():\n    pass\n")
    async with stdio_client(server_env, cwd=tmp_path) as client:
        loaded = await client.call_tool("load_context", {"source": [str(proj)]})
        assert loaded.structured_content["live"] is True
        found = await client.call_tool("find_symbol", {"name": "alpha"})
        assert [r["path"] for r in found.structured_content["results"]] == ["a.py"]
        first = await _exec(client, "print(sorted(files))")
        assert first["stdout"] == "['a.py', 'c.py']\n" and first.get("context_changed") is None

        _write(proj / "a.py", "def beta():\n    return 2\n")  # rename alpha -> beta
        _write(proj / "b.py", "def gamma():\n    return 3\n")  # a new file
        (proj / "c.py").unlink()  # a deleted one
        after = await _exec(client, "print(sorted(files)); print(files['a.py'].strip()); print('alpha' in context)")
        assert after["stdout"] == "['a.py', 'b.py']\ndef beta():\n    return 2\nFalse\n", after
        assert after["context_changed"].startswith("3 files changed since your last call: a.py, b.py, c.py")
        # The next call sees no change, so says nothing.
        assert (await _exec(client, "print(1)")).get("context_changed") is None

        for name, expected in (("beta", ["a.py"]), ("gamma", ["b.py"]), ("alpha", [])):
            found = await client.call_tool("find_symbol", {"name": name})
            assert [r["path"] for r in found.structured_content["results"]] == expected, name
        # The index and `context` agree: the same file, the same text.
        outline = await client.call_tool("find_symbol", {"path": "a.py"})
        assert [s["name"] for s in outline.structured_content["results"]] == ["beta"]

        _write(proj / "b.py", "def gamma():\n    return 4\n")
        found = await client.call_tool("find_symbol", {"name": "gamma"})
        assert found.structured_content["context_changed"].startswith("1 file changed since your last call: b.py")


async def test_snapshot_does_not_move(server_env, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    _write(proj / "a.py", "def A(): pass\n")
    async with stdio_client(server_env, cwd=tmp_path) as client:
        loaded = await client.call_tool("load_context", {"source": [str(proj)], "live": False})
        assert loaded.structured_content.get("live", False) is False  # a default: left out
        _write(proj / "a.py", "def Z(): pass\n")
        _write(proj / "b.py", "B = 1\n")
        out = await _exec(client, "print(sorted(files), files['a.py'].strip())")
        assert out["stdout"] == "['a.py'] def A(): pass\n" and out.get("context_changed") is None
        # The index reads the stored text, not the disk: it agrees with `files`, not with the edit.
        for name, expected in (("A", ["a.py"]), ("Z", [])):
            found = await client.call_tool("find_symbol", {"name": name})
            assert [r["path"] for r in found.structured_content["results"]] == expected, name


async def test_bad_input_is_a_note_and_the_rest_stays_usable(server_env, tmp_path: Path) -> None:
    proj, outside = tmp_path / "proj", tmp_path.parent / f"{tmp_path.name}-outside"
    server_env = {**server_env, "RLM_ALLOWED_ROOTS": str(proj), "RLM_MAX_FILE_BYTES": "1000"}
    _write(outside / "secret.py", "SECRET = 'outside the roots'\n")
    for name in ("bin.py", "big.py", "locked.py", "ok.py", "target.py"):
        _write(proj / name, f"{name[:-3].upper()} = 1\n")
    os.symlink(proj / "target.py", proj / "link.py")
    async with stdio_client(server_env, cwd=proj) as client:
        await client.call_tool("load_context", {"source": [str(proj)]})
        assert (await _exec(client, "print(sorted(files))"))["stdout"] == (
            "['big.py', 'bin.py', 'link.py', 'locked.py', 'ok.py', 'target.py']\n")

        (proj / "bin.py").write_bytes(b"BIN = 1\n\x00\x01\x02")
        _write(proj / "big.py", "BIG = 1\n" + "#" * 2000 + "\n")
        (proj / "locked.py").chmod(0)
        (proj / "link.py").unlink()
        os.symlink(outside / "secret.py", proj / "link.py")
        _write(proj / "ok.py", "OK = 2\n")
        out = await _exec(client, "print(sorted(files)); print(files['ok.py'].strip()); print('SECRET' in context)")
        note = out["context_changed"]
        assert out["stdout"].splitlines()[1:] == ["OK = 2", "False"], out
        assert "bin.py is binary now" in note
        assert "big.py is 2,009 bytes now, over the per-file limit" in note
        assert "link.py is a symlink pointing outside the allowed roots now" in note
        if os.geteuid() != 0:  # root reads a file whatever its mode (test_live.py covers the note's text)
            assert "locked.py cannot be read any more" in note
            assert out["stdout"].startswith("['ok.py', 'target.py']")

        # A vanished root: the context stays as last seen, and says so once.
        (proj / "locked.py").chmod(0o644)
        moved = tmp_path / "moved"
        proj.rename(moved)
        gone = await _exec(client, "print(sorted(files))")
        assert "keeps its files as last seen" in gone["context_changed"]
        assert "ok.py" in gone["stdout"]
        assert (await _exec(client, "print(1)")).get("context_changed") is None
        moved.rename(proj)
        back = await _exec(client, "print(files['ok.py'].strip())")
        assert back["stdout"] == "OK = 2\n" and "back" in back["context_changed"]


async def test_sub_query_slices_and_resources_read_the_current_files(server_env, tmp_path: Path) -> None:
    from tests.fakes import FakeOpenAI

    proj = tmp_path / "proj"
    _write(proj / "a.py", "A = 1\n")
    with FakeOpenAI() as upstream:  # echoes the prompt: what the worker was sent
        env = {**server_env, "RLM_WORKER_MODEL": "openai/gpt-4o-mini", "RLM_WORKER_API_BASE": upstream.api_base,
               "OPENAI_API_KEY": "sk-test"}
        async with stdio_client(env, cwd=tmp_path) as client:
            await client.call_tool("load_context", {"source": [str(proj)]})
            _write(proj / "a.py", "A = 2\n")
            asked = await client.call_tool("sub_query", {"prompt": "Read", "context": "main", "path": "a.py"})
            assert asked.structured_content["answers"][0]["text"] == "echo: Read\n\n---\nA = 2\n"
            assert asked.structured_content["context_changed"].startswith("1 file changed since your last call")
            _write(proj / "b.py", "B = 1\n")
            manifest = await client.read_resource("rlm://contexts/main/manifest")
            assert '"b.py"' in manifest.contents[0].text


async def test_a_new_server_sees_what_changed_while_no_server_ran(server_env, tmp_path: Path) -> None:
    """A new server proves an unchanged tree unchanged by stat alone (rlm_mcp/contexts/snapshot.py) and
    reuses it; an edit made in place between servers (same size, same directory listing) is still seen."""
    proj = tmp_path / "proj"
    _write(proj / "a.py", "def alpha():\n    return 1\n")
    _write(proj / "b.py", "B = 1\n")

    async def new_server() -> tuple[bool, list[str], str]:
        async with stdio_client(server_env, cwd=tmp_path) as client:
            loaded = await client.call_tool("load_context", {"source": [str(proj)]})
            found = await client.call_tool("find_symbol", {"name": "alpha"})
            text = await _exec(client, "print(files['a.py'], end='')")
            paths = [r["path"] for r in found.structured_content["results"]]
            return loaded.structured_content.get("reused", False), paths, text["stdout"]

    assert await new_server() == (False, ["a.py"], "def alpha():\n    return 1\n")
    assert await new_server() == (True, ["a.py"], "def alpha():\n    return 1\n")
    (proj / "a.py").write_text("def omega():\n    return 1\n")  # in place: the directory's mtime stays
    assert await new_server() == (False, [], "def omega():\n    return 1\n")


async def test_what_a_live_context_changed_to_is_kept_for_the_next_server(server_env, tmp_path: Path) -> None:
    """Live refreshes write to the session only; the version the session ends with (text and index) goes into
    the store under RLM_HOME, so the next server reuses it as it is, by stat alone."""
    proj = tmp_path / "proj"
    _write(proj / "a.py", "def alpha():\n    return 1\n")
    _write(proj / "b.py", "B = 1\n")
    async with stdio_client(server_env, cwd=tmp_path) as client:
        await client.call_tool("load_context", {"source": [str(proj)]})
        _write(proj / "a.py", "def omega():\n    return 1\n")
        _write(proj / "c.py", "def gamma():\n    return 3\n")
        seen = await _exec(client, "print(sorted(files))")
        assert seen["stdout"] == "['a.py', 'b.py', 'c.py']\n" and seen.get("context_changed")
    async with stdio_client(server_env, cwd=tmp_path) as client:
        loaded = await client.call_tool("load_context", {"source": [str(proj)]})
        assert loaded.structured_content.get("reused") is True, loaded.structured_content
        found = await client.call_tool("find_symbol", {"name": "gamma"})
        assert [r["path"] for r in found.structured_content["results"]] == ["c.py"]
        text = await _exec(client, "print(files['a.py'], end='')")
        assert text["stdout"] == "def omega():\n    return 1\n"


async def test_the_servers_own_files_are_never_loaded(server_env, tmp_path: Path, runtime_dir: Path) -> None:
    """A tree holding RLM_HOME (trajectories written on every call) and RLM_RUNTIME_DIR (the sessions' stored
    texts): neither is loaded, and the writes to them are no change to a live context."""
    tree = runtime_dir  # jail-traversable, unlike pytest's own temporary directories
    _write(tree / "code.py", "X = 1\n")
    home, runtime = tree / "home", tree / "runtime"
    runtime.mkdir()
    runtime.chmod(0o711)
    env = {**server_env, "RLM_HOME": str(home), "RLM_RUNTIME_DIR": str(runtime),
           "RLM_ALLOWED_ROOTS": str(tree)}
    async with stdio_client(env, cwd=tmp_path) as client:
        await _exec(client, "print(1)")  # the trajectory and the session's directory exist now
        await client.call_tool("load_context", {"source": [str(tree)]})
        listing = await _exec(client, "print(sorted(files))")
        assert listing["stdout"] == "['code.py']\n" and any(home.rglob("*.jsonl")), listing
        again = await _exec(client, "print(2)")
        assert again.get("context_changed") is None, again
