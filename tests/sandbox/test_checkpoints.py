"""Checkpoints of REPL variables on both backends: saved by the guest after each exec, brought back into a
restarted REPL, what cannot be kept named, the cap honoured, and a bad checkpoint contained in the jail."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rlm_mcp.sandbox import CheckpointStore
from rlm_mcp.sandbox.guest.checkpoint import FORMAT, file_name

pytestmark = pytest.mark.anyio


@pytest.fixture
def store(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "checkpoint", max_bytes=64 * 2**20)


async def run(sandbox: Any, code: str) -> Any:
    result = await sandbox.exec(code)
    assert result.status == "ok", (result.error, result.stderr.text)
    return result


async def test_variables_functions_and_classes_come_back_after_a_restart(
        make_sandbox: Callable[..., Any], store: CheckpointStore) -> None:
    async with make_sandbox(checkpoints=store) as sandbox:
        await run(sandbox, "import re\ncounts = {'a': 1}\nbig = list(range(200_000))\n"
                           "def double(x):\n    return 2 * x * scale\n"
                           "class Point:\n    def __init__(self, x): self.x = x\n"
                           "    def norm(self): return abs(self.x)\n"
                           "origin = Point(-3)\nscale = 1\n"
                           "blob = bytes(range(256)) * 40_000")  # ~10 MB: it travels to the host in parts
        await run(sandbox, "counts['b'] = 2")  # changed in place, not rebound
        assert store.sizes["blob"] > 10_000_000
        await sandbox.restart()
        note = await sandbox.restore()
        assert set(note.restored) == {"re", "counts", "big", "double", "Point", "origin", "scale", "blob"}, note
        assert not note.failed
        # the function sees today's globals, not a copy of those it was saved with
        result = await run(sandbox, "scale = 10\nprint(counts, len(big), double(2), origin.norm(), "
                                    "isinstance(origin, Point), re.sub('a', 'b', 'aa'), len(blob), blob[:2])")
        assert result.stdout.text == "{'a': 1, 'b': 2} 200000 40 3 True bb 10240000 b'\\x00\\x01'\n"


async def test_what_is_not_kept_is_named(make_sandbox: Callable[..., Any], tmp_path: Path) -> None:
    """A generator cannot be pickled; a value past the cap is skipped; a deleted variable stays deleted; and a
    file guest code forges for a name it did not save is discarded with its exec."""
    store = CheckpointStore(tmp_path / "small", max_bytes=300_000)
    async with make_sandbox(checkpoints=store) as sandbox:
        result = await run(sandbox, "gen = (i for i in range(3))\nkept = 'x' * 1000\nlarge = 'y' * 1_000_000\n"
                                    "gone = 2")
        assert set(result.checkpoint.unsaved) == {"gen", "large"}
        assert "generator" in result.checkpoint.unsaved["gen"]
        assert "RLM_CHECKPOINT_MAX_MB" in result.checkpoint.unsaved["large"]
        await run(sandbox, "del gone")
        forged = file_name("victim")  # sent on the guest's own channel, for a variable it never saved
        await run(sandbox, f"_rlm_callback.__self__.channel.send_blob({forged!r}, b'evil')")
        assert not (store.directory / forged).exists()
        await sandbox.restart()
        note = await sandbox.restore()
        assert set(note.restored) == {"kept"}


async def test_a_first_exec_whose_every_variable_is_refused_names_them(
        make_sandbox: Callable[..., Any], tmp_path: Path) -> None:
    """RLM_CHECKPOINT_MAX_MB=0: nothing is saved, and each variable is named as past the cap (the store's
    directory, never made by a file, used to fail the whole save with 'No such file or directory')."""
    async with make_sandbox(checkpoints=CheckpointStore(tmp_path / "none", max_bytes=0)) as sandbox:
        result = await run(sandbox, "x = 1\nname = 'y'")
        assert result.checkpoint.error is None
        assert set(result.checkpoint.unsaved) == {"x", "name"}
        assert "RLM_CHECKPOINT_MAX_MB" in result.checkpoint.unsaved["x"]


def plant(store: CheckpointStore, name: str, payload: bytes) -> None:
    """Write a file into the store as a guest could have had it written (the server never reads it)."""
    store.directory.mkdir(parents=True, exist_ok=True)
    (store.directory / file_name(name)).write_bytes(payload)
    store.sizes[name] = len(payload)


class Hostile:
    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, ("touch /tmp/rlm-checkpoint-pwned",)


async def test_a_bad_checkpoint_fails_only_its_own_restore(
        make_sandbox: Callable[..., Any], store: CheckpointStore) -> None:
    marker = Path("/tmp/rlm-checkpoint-pwned")
    marker.unlink(missing_ok=True)
    good = FORMAT + b"fine\n" + pickle.dumps([1, 2, 3])
    plant(store, "fine", good)
    plant(store, "truncated", FORMAT + b"truncated\n" + pickle.dumps(list(range(1000)))[:40])
    plant(store, "garbage", b"\x00garbage" * 100)
    plant(store, "hostile", FORMAT + b"hostile\n" + pickle.dumps(Hostile()))
    async with make_sandbox(checkpoints=store) as sandbox:
        note = await sandbox.restore()
        assert {"truncated", file_name("garbage")} <= set(note.failed)
        assert "fine" in note.restored
        # What the hostile file ran, it ran in the jail, where starting a program fails: under nsjail the
        # seccomp filter denies exec (os.system returns a failure status), under wasm os.system raises.
        if "hostile" in note.restored:
            assert (await run(sandbox, "print(hostile != 0)")).stdout.text == "True\n"
        else:
            assert "hostile" in note.failed
        assert not marker.exists()
        assert (await run(sandbox, "print(fine)")).stdout.text == "[1, 2, 3]\n"
    assert "truncated" not in store.sizes  # failed files are dropped, so they cannot fail the next restore


async def test_a_checkpoint_that_kills_its_guest_starts_the_repl_clean(
        make_sandbox: Callable[..., Any], store: CheckpointStore) -> None:
    plant(store, "crash", FORMAT + b"crash\n" + b"cos\n_exit\n(I3\ntR.")  # os._exit(3) while loading
    async with make_sandbox(checkpoints=store) as sandbox:
        note = await sandbox.restore()
        assert "(all)" in note.failed and "dropped" in note.failed["(all)"]
        assert (await run(sandbox, "print(1 + 1)")).stdout.text == "2\n"
    assert not store.sizes
