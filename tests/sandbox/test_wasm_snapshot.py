"""The wasm backend's fast start: the Pyodide memory snapshot (snapshot.py, deno/snapshot.js) and its limits.

Sessions restored from one snapshot share nothing but the hash seed of their server run (that and the
spare are tested through the session manager in tests/server/test_sessions.py); another run's seed
makes another snapshot; and every failure falls back to a plain start that the log reports. Also the
first fetch of Pyodide: once for sessions that start together, with progress for each.
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from rlm_mcp.sandbox import PyodideCache, Sandbox, SandboxPolicy, WasmLauncher, create_launcher
from rlm_mcp.sandbox.snapshot import SEED_FILE, hash_seed, snapshot_key, snapshot_soon

from .conftest import WASM_HOME, running_sandbox

pytestmark = pytest.mark.anyio


def started(launcher: WasmLauncher, data_dir: Path) -> AbstractAsyncContextManager[Sandbox]:
    return running_sandbox(launcher.policy, data_dir, launcher=launcher)


async def stdout(sandbox: Sandbox, code: str) -> str:
    result = await sandbox.exec(code)
    assert result.ok, result
    return result.stdout.text


def test_one_rlm_home_keeps_one_hash_seed_for_every_server_run(tmp_path: Path, monkeypatch) -> None:
    """So every server run on an RLM_HOME restores the one snapshot (the seed is part of its key)."""
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    first, again, elsewhere = hash_seed(tmp_path / "a"), hash_seed(tmp_path / "a"), hash_seed(tmp_path / "b")
    assert first == again != elsewhere
    assert (tmp_path / "a" / SEED_FILE).stat().st_mode & 0o077 == 0  # as private as RLM_HOME
    monkeypatch.setenv("PYTHONHASHSEED", "4242")  # the server's environment fixes it, as CPython honours
    assert hash_seed(tmp_path / "a") == 4242


async def test_another_hash_seed_has_its_own_snapshot(tmp_path: Path, data_dir: Path) -> None:
    ours = create_launcher("wasm", SandboxPolicy.load(), home=WASM_HOME)
    assert isinstance(ours, WasmLauncher)
    other = WasmLauncher(ours.policy, ours.pyodide_dir, ours.deno_dir, tmp_path, seed=ours.hash_seed + 1)
    made, other_made = ours.wait_for_snapshot(), other.wait_for_snapshot()
    assert made is not None and other_made is not None and other_made.parent == tmp_path
    assert other_made.name != made.name
    hashes = []
    for launcher in (ours, other):
        async with started(launcher, data_dir) as sandbox:
            assert "warning" not in sandbox.guest_info  # restored, not loaded plain
            hashes.append(await stdout(sandbox, "import sys\nprint(hash('abc'), sys.flags.hash_randomization)"))
    assert hashes[0] != hashes[1] and all(line.endswith(" 1\n") for line in hashes)


async def test_a_snapshot_that_does_not_restore_falls_back_to_a_plain_start_and_says_so(
        tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    ours = create_launcher("wasm", SandboxPolicy.load(), home=WASM_HOME)
    assert isinstance(ours, WasmLauncher)
    damaged = tmp_path / f"{snapshot_key(ours.pyodide_dir, ours.snapshot_config())}.snap"  # where it is looked for
    damaged.write_bytes(b"\0" * 4096)
    launcher = WasmLauncher(ours.policy, ours.pyodide_dir, ours.deno_dir, tmp_path, seed=ours.hash_seed)
    assert launcher.snapshot == damaged
    with caplog.at_level(logging.WARNING, logger="rlm_mcp.sandbox.repl"):
        async with started(launcher, data_dir) as sandbox:
            assert await stdout(sandbox, "print(6 * 7)") == "42\n"
    assert "did not restore" in sandbox.guest_info["warning"] and "started plain" in caplog.text


def test_a_snapshot_that_cannot_be_made_leaves_none_and_says_so(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    launcher = create_launcher("wasm", SandboxPolicy.load(), home=WASM_HOME)
    assert isinstance(launcher, WasmLauncher)
    config = {**launcher.snapshot_config(), "pyodide_url": (tmp_path / "no-pyodide").as_uri() + "/"}
    with caplog.at_level(logging.WARNING, logger="rlm_mcp.sandbox.snapshot"):
        made = snapshot_soon(tmp_path, launcher.pyodide_dir, config, launcher.deno, launcher.environment())
        assert made.result(timeout=60) is None
    assert "start plain" in caplog.text and list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_two_sessions_starting_at_once_fetch_pyodide_once_and_both_hear_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A fresh RLM_HOME: the first fetch runs once through the npm registry, and a start that waits for it
    hears its progress (the session forwards that to the host as MCP progress)."""
    cache = PyodideCache(tmp_path / "wasm", SandboxPolicy.load().wasm.pyodide_version)
    together = threading.Barrier(2)
    heard: list[list[tuple[int, int | None, str]]] = [[], []]
    found: list[Path] = []

    def start(number: int) -> None:
        together.wait()
        found.append(cache.ensure(lambda *report: heard[number].append(report)))

    with caplog.at_level(logging.WARNING, logger="rlm_mcp.sandbox.wasm"):
        threads = [threading.Thread(target=start, args=(number,)) for number in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
    assert caplog.text.count("fetching Pyodide") == 1
    assert len(found) == 2 and found[0] == found[1] and (found[0] / "pyodide.asm.wasm").is_file()
    for reports in heard:
        done, total, message = reports[-1]
        assert done == total and message.startswith("fetched Pyodide"), reports
