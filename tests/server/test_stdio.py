"""The installed server over stdio, on both protocol versions, driven by the real mcp client."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from mcp import MCPError

from tests.helpers import REPO, stdio_client

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("mode", ["auto", "legacy"])]


@pytest.fixture
def messy_tree(tmp_path: Path) -> Path:
    """A repo with ignored files, binaries, a symlink out of the root and an oversized file."""
    root = tmp_path / "repo"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "build").mkdir()
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    (root / ".git" / "info" / "exclude").write_text("secret.txt\n")
    (root / "src" / "pkg" / "app.py").write_text("import os\n\ndef main():\n    return os.environ['DB_URL']\n")
    (root / "src" / "pkg" / "util.py").write_text("def helper():\n    return 'DB_URL'\n")
    (root / "build" / "out.py").write_text("IGNORED = True\n")
    (root / "debug.log").write_text("ignored log\n")
    (root / "keep.log").write_text("kept log\n")
    (root / "secret.txt").write_text("excluded\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (root / "huge.txt").write_text("x" * (3 * 1024 * 1024))
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("OUTSIDE SECRET\n")
    (root / "escape.txt").symlink_to(outside)
    return root


async def test_tools_are_described_and_typed(server_env, mode) -> None:
    async with stdio_client(server_env, mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"load_context", "exec_code", "session"} <= set(tools)
        for tool in tools.values():
            assert tool.description and len(tool.description) > 60
            assert tool.output_schema is not None
            assert tool.annotations is not None
        assert tools["load_context"].annotations.read_only_hint is True
        prompts = (await client.list_prompts()).prompts
        assert any(prompt.name == "rlm_playbook" for prompt in prompts)


async def test_load_own_source_and_answer_with_code(server_env, mode) -> None:
    expected = sorted(str(p.relative_to(REPO / "rlm_mcp")) for p in (REPO / "rlm_mcp").rglob("*.py")
                      if "__pycache__" not in p.parts)
    async with stdio_client(server_env, mode) as client:
        loaded = await client.call_tool("load_context", {"source": [str(REPO / "rlm_mcp")]})
        assert not loaded.is_error, loaded
        summary = loaded.structured_content
        assert summary["files"] >= len(expected) and summary["languages"]["python"] == len(expected)
        assert "context" in loaded.content[0].text
        assert summary["sandbox"].startswith("nsjail (auto: ") and "REPL: nsjail (auto: " in loaded.content[0].text
        result = await client.call_tool("exec_code", {"code": "sorted(p for p in files if p.endswith('.py'))"})
        assert not result.is_error
        assert result.structured_content["stdout"].strip() == repr(expected)
        hits = await client.call_tool("exec_code", {"code": "len(grep(r'^class Sandbox\\b'))"})
        assert hits.structured_content["stdout"] == "1\n"


async def test_messy_tree_is_filtered(server_env, mode, messy_tree: Path) -> None:
    async with stdio_client(server_env, mode) as client:
        loaded = await client.call_tool("load_context", {"source": [str(messy_tree)], "name": "repo"})
        summary = loaded.structured_content
        assert summary["skipped"]["binary"] == 1
        assert summary["skipped"]["too_large"] == 1
        assert summary["skipped"]["outside_roots"] == 1
        listing = await client.call_tool("exec_code", {"code": "import json\nprint(json.dumps(sorted(\n"
            "    e['path'] for e in _manifests['repo']['files'])))\n'OUTSIDE SECRET' in contexts['repo']"})
        text = listing.structured_content["stdout"]
        assert '[".gitignore", "keep.log", "src/pkg/app.py", "src/pkg/util.py"]' in text
        assert text.endswith("False\n")


async def test_output_is_cut_with_a_count(server_env, mode) -> None:
    async with stdio_client(server_env, mode) as client:
        result = await client.call_tool("exec_code", {"code": "for i in range(200000): print('line', i)"})
        report = result.structured_content
        assert report["stdout_cut_chars"] > 1_000_000
        assert report["stdout"].startswith("line 0\n") and report["stdout"].endswith("line 199999\n")
        assert "characters cut" in result.content[0].text


async def test_progress_is_reported_on_loads(server_env, mode, tmp_path: Path) -> None:
    tree = tmp_path / "many"
    for i in range(60):
        package = tree / f"pkg{i}"
        package.mkdir(parents=True)
        for j in range(50):
            (package / f"m{j}.py").write_text(f"def f{j}():\n    return {i * j}\n")
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    async with stdio_client(server_env, mode) as client:
        loaded = await client.call_tool("load_context", {"source": [str(tree)]}, progress_callback=on_progress)
        assert loaded.structured_content["files"] == 3000
    assert updates, "no progress notification arrived"


async def test_errors_name_the_problem_and_the_fix(server_env, mode, tmp_path: Path) -> None:
    async with stdio_client(server_env, mode) as client:
        with pytest.raises(MCPError, match="outside the allowed roots"):
            await client.call_tool("load_context", {"source": ["/etc"]})
        with pytest.raises(MCPError, match="RLM_ALLOWED_ROOTS"):
            await client.call_tool("load_context", {"source": [f"{tmp_path}{'/..' * 12}/etc"]})
        with pytest.raises(MCPError, match=r"does not exist|not found|No such"):
            await client.call_tool("load_context", {"source": [str(tmp_path / "missing")]})
        with pytest.raises(MCPError, match=r"either `text` or `source`"):
            await client.call_tool("load_context", {"source": [str(tmp_path)], "text": "x"})
        bad_name = await client.call_tool("load_context", {"text": "x", "name": "../evil"})
        assert bad_name.is_error and "name" in bad_name.content[0].text  # the SDK reports bad arguments as tool errors
        with pytest.raises(MCPError, match="no context named 'nope'"):
            await client.read_resource("rlm://contexts/nope")
        timeout = await client.call_tool("exec_code", {"code": "while True: pass", "timeout_s": 0.5})
        assert timeout.is_error and timeout.structured_content["status"] == "timeout"
        # the server and the session are still fine
        assert (await client.call_tool("exec_code", {"code": "'alive'"})).structured_content["stdout"] == "'alive'\n"


async def test_crash_restarts_reattaches_contexts_and_restores_variables(server_env, mode) -> None:
    async with stdio_client(server_env, mode) as client:
        await client.call_tool("load_context", {"text": "needle in a haystack " * 1000})
        await client.call_tool("exec_code", {"code": "kept = 1\ndef count(word):\n    return context.count(word)"})
        unsaved = await client.call_tool("exec_code", {"code": "pending = (n for n in range(3))"})
        assert "generator" in unsaved.structured_content["not_saved"]["pending"]
        assert "a restart would lose" in unsaved.content[0].text
        crash = await client.call_tool("exec_code", {"code": "import ctypes\nctypes.string_at(0)"})
        report = crash.structured_content
        assert crash.is_error and report["status"] == "killed" and report["restarted"]
        assert sorted(report["restored"]) == ["count", "kept"]
        assert "variables restored: count, kept" in crash.content[0].text
        after = await client.call_tool("exec_code", {"code": "print(len(context), kept, count('needle'))"})
        assert after.structured_content["stdout"] == f"{len('needle in a haystack ') * 1000} 1 1000\n"
        status = (await client.call_tool("session", {})).structured_content
        assert status["restarts"] == 1
        assert status["checkpoint"]["variables"] == 2 and "pending" in status["checkpoint"]["not_saved"]
        # another session restarts with its own checkpoint only
        other = (await client.call_tool("load_context", {"text": "x", "new_session": True})).structured_content
        await client.call_tool("exec_code", {"code": "mine = 2", "session": other["session"]})
        crash = await client.call_tool("exec_code", {"code": "import ctypes\nctypes.string_at(0)",
                                                     "session": other["session"]})
        assert crash.structured_content["restored"] == ["mine"]
        # a reset clears the checkpoint: the next restart brings nothing back
        reset = (await client.call_tool("session", {"action": "reset"})).structured_content
        assert reset["checkpoint"]["variables"] == 0
        crash = await client.call_tool("exec_code", {"code": "import ctypes\nctypes.string_at(0)"})
        assert crash.structured_content["restarted"] and "restored" not in crash.structured_content


async def test_session_reset_and_resources(server_env, mode) -> None:
    async with stdio_client(server_env, mode) as client:
        await client.call_tool("load_context", {"text": "hello world", "name": "notes"})
        await client.call_tool("exec_code", {"code": "x = 5"})
        reset = await client.call_tool("session", {"action": "reset"})
        assert [c["name"] for c in reset.structured_content["contexts"]] == ["notes"]
        after = await client.call_tool("exec_code", {"code": "print('x' in globals(), contexts['notes'])"})
        assert after.structured_content["stdout"] == "False hello world\n"
        resource = await client.read_resource("rlm://contexts/notes")
        assert '"chars": 11' in resource.contents[0].text


async def test_no_source_loads_the_working_directory(server_env, mode, tmp_path: Path) -> None:
    (tmp_path / "only.py").write_text("VALUE = 1\n")
    async with stdio_client(server_env, mode, cwd=tmp_path) as client:
        loaded = await client.call_tool("load_context", {})
        assert "only.py" in str(loaded.structured_content)
    assert os.path.exists(tmp_path / "only.py")


async def test_disconnect_cleans_up_jail_and_data(server_env, mode, runtime_dir: Path) -> None:
    async with stdio_client(server_env, mode) as client:
        await client.call_tool("load_context", {"text": "temporary"})
        assert [p.name for p in runtime_dir.iterdir() if p.name.startswith("s-")]
        jails = _jail_pids(runtime_dir)
        assert jails
    for _ in range(50):
        if not list(runtime_dir.iterdir()) and not _jail_pids(runtime_dir):
            break
        await anyio.sleep(0.1)
    assert list(runtime_dir.iterdir()) == []
    assert _jail_pids(runtime_dir) == []


def _jail_pids(runtime_dir: Path) -> list[int]:
    """nsjail processes whose guest has a session directory under `runtime_dir` mounted (their config file is
    gone once the jail is up)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if not (entry / "cmdline").read_bytes().split(b"\0")[0].endswith(b"nsjail"):
                    continue
                guests = (entry / "task" / entry.name / "children").read_text().split()
                if any(f" {runtime_dir}/" in Path(f"/proc/{guest}/mountinfo").read_text() for guest in guests):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids
