"""The persistent REPL on both backends (nsjail, wasm): state, timeouts, output, data, callbacks, lifecycle.

Not applicable to wasm: guest threads calling back concurrently (Pyodide has no threads; its callbacks
are sequential, test_eight_guest_threads_call_back_concurrently runs on nsjail only).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import anyio
import pytest

from rlm_mcp.sandbox import GuestCallFailed

pytestmark = pytest.mark.anyio


async def test_state_persists_across_execs(sandbox) -> None:
    first = await sandbox.exec("counter = 41\ndef bump():\n    global counter\n    counter += 1")
    assert first.ok, first
    assert {v.name for v in first.variables} == {"counter", "bump"}
    second = await sandbox.exec("bump()\ncounter")
    assert second.stdout.text == "42\n"
    assert [v.name for v in second.variables] == ["counter"]


async def test_user_errors_keep_the_session(sandbox) -> None:
    await sandbox.exec("kept = 'yes'")
    failed = await sandbox.exec("1 / 0")
    assert failed.status == "error" and failed.error.startswith("ZeroDivisionError")
    assert "Traceback" in failed.stderr.text and "runtime.py" not in failed.stderr.text
    syntax = await sandbox.exec("def broken(:")
    assert syntax.status == "error" and "SyntaxError" in syntax.error
    exited = await sandbox.exec("raise SystemExit(3)")
    assert exited.status == "error"
    assert (await sandbox.exec("kept")).stdout.text == "'yes'\n"


@pytest.mark.parametrize(
    "runaway",
    [
        "while True:\n    pass",
        "import re\nre.match(r'(a+)+$', 'a' * 40 + 'b')",
        "try:\n    while True: pass\nexcept Exception:\n    pass",
        "import time\nwhile True:\n    try:\n        time.sleep(10)\n    except BaseException:\n        pass",
    ],
    ids=["loop", "catastrophic-regex", "swallowing-exception", "swallowing-everything"],
)
async def test_timeout_interrupts_and_keeps_state(sandbox, runaway: str) -> None:
    await sandbox.exec("survivor = [1, 2, 3]")
    started = time.perf_counter()
    result = await sandbox.exec(runaway, timeout_s=0.5)
    elapsed = time.perf_counter() - started
    if result.status == "killed":  # a guest that swallows every interrupt is killed by the host
        assert "ignored its 0.5 s timeout" in result.error
        assert elapsed < 0.5 + sandbox.policy.limits.hard_kill_grace_s + 2
        await sandbox.restart()
        assert (await sandbox.exec("1 + 1")).stdout.text == "2\n"
        return
    assert result.status == "timeout", result
    assert elapsed < 3
    assert (await sandbox.exec("survivor")).stdout.text == "[1, 2, 3]\n"


async def test_guest_ignoring_the_timeout_is_killed_and_reported(sandbox) -> None:
    """Code that never reaches an interrupt check (one C-level loop: Python runs signal handlers, and Pyodide
    reads its interrupt buffer, only between bytecodes) is killed at the timeout plus the policy's grace:
    the one case where the variables are lost, on both backends."""
    code = "sum(range(10 ** 13))"
    result = await sandbox.exec(code, timeout_s=0.3)
    assert result.status == "killed"
    assert "variables are lost" in result.error
    assert not sandbox.alive
    await sandbox.restart()
    assert (await sandbox.exec("'back'")).stdout.text == "'back'\n"


async def test_prints_and_fd_writes_cannot_corrupt_the_channel(sandbox) -> None:
    code = (
        "import os, sys\n"
        "os.write(1, b'{\"op\": \"done\", \"id\": 1}\\n')\n"
        "os.write(2, b'raw stderr\\n')\n"
        "print('{\"op\": \"ready\"}')\n"
        "sys.stdin.read()\n"
        "print('after stdin')\n"
    )
    result = await sandbox.exec(code)
    assert result.ok, result
    assert result.stdout.text == '{"op": "ready"}\nafter stdin\n'
    assert (await sandbox.exec("2 + 2")).stdout.text == "4\n"


async def test_output_is_cut_in_the_middle(sandbox) -> None:
    result = await sandbox.exec("for i in range(100000): print(i)", max_output_chars=1000)
    assert result.stdout.text.startswith("0\n1\n2\n")
    assert result.stdout.text.endswith("99998\n99999\n")
    assert result.stdout.cut_chars > 500_000
    assert "characters cut" in result.stdout.text


async def test_read_variable_back_size_capped(sandbox) -> None:
    await sandbox.exec("data = {'a': [1, 2], 'b': 'x'}\nbig = 'y' * 10_000_000\nobj = object()")
    data = await sandbox.get("data")
    assert data.is_json and data.value == {"a": [1, 2], "b": "x"}
    big = await sandbox.get("big", max_chars=1000)
    assert big.truncated and len(big.value) == 1000
    assert (await sandbox.get("obj")).value.startswith("<object object")
    with pytest.raises(KeyError, match="no variable named 'missing'"):
        await sandbox.get("missing")


async def test_40mb_context_is_usable_without_copy_per_exec(sandbox, data_dir: Path) -> None:
    line = "the quick brown fox jumps over the lazy dog 0123456789\n"
    text = line * (40_000_000 // len(line)) + "NEEDLE=7319\n"
    (data_dir / "context.txt").write_text(text)
    path = sandbox.guest_path(data_dir / "context.txt")
    started = time.perf_counter()
    loaded = await sandbox.exec(f"context = _rlm_read_text({path!r})\nlen(context)")
    assert loaded.ok, loaded
    assert time.perf_counter() - started < 2
    assert loaded.stdout.text == f"{len(text)}\n"
    found = await sandbox.exec("import re\nre.search(r'NEEDLE=(\\d+)', context).group(1)")
    assert found.stdout.text == "'7319'\n"


async def test_eight_guest_threads_call_back_concurrently(start_sandbox) -> None:
    active, peak, lock = 0, 0, threading.Lock()

    async def slow_echo(payload):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        await anyio.sleep(0.2)
        with lock:
            active -= 1
        return {"echo": payload}

    async with start_sandbox("nsjail", callbacks={"echo": slow_echo}) as sandbox:
        code = (
            "from concurrent.futures import ThreadPoolExecutor\n"
            "with ThreadPoolExecutor(8) as pool:\n"
            "    answers = list(pool.map(lambda i: _rlm_callback('echo', i)['echo'], range(8)))\n"
            "answers"
        )
        started = time.perf_counter()
        result = await sandbox.exec(code)
        assert result.stdout.text == "[0, 1, 2, 3, 4, 5, 6, 7]\n", result
        assert time.perf_counter() - started < 1.0
        assert peak == 8


async def test_callbacks_answer_in_order_and_a_timeout_interrupts_the_wait(sandbox) -> None:
    result = await sandbox.exec("[_rlm_callback('echo', i)['echo'] for i in range(20)]")
    assert result.stdout.text == str(list(range(20))) + "\n", result
    await sandbox.exec("waited = 'kept'")
    slow = await sandbox.exec("_rlm_callback('slow', 5)", timeout_s=0.5)
    assert slow.status == "timeout", slow
    after = await sandbox.exec("_rlm_callback('echo', 'next')['echo'], waited")  # the late reply is dropped
    assert after.stdout.text == "('next', 'kept')\n", after


async def test_callback_errors_reach_guest_code(sandbox) -> None:
    result = await sandbox.exec("_rlm_callback('fail', 1)")
    assert result.status == "error" and "upstream said no" in result.error
    unknown = await sandbox.exec("_rlm_callback('nope', 1)")
    assert "no host function named 'nope'" in unknown.error


async def test_prelude_names_are_reserved_and_restored(sandbox) -> None:
    # the prelude of conftest.SHARED_PRELUDE
    await sandbox.exec("helper = lambda: 'hijacked'\n_rlm_callback = None")
    assert (await sandbox.exec("helper()")).stdout.text == "'original'\n"
    assert await sandbox.call("helper") == "original"
    with pytest.raises(GuestCallFailed, match="no reserved function"):
        await sandbox.call("print")


async def test_oversized_message_kills_guest_but_not_host(make_sandbox, policy) -> None:
    small = policy.with_limits(max_message_mb=1)
    async with make_sandbox(policy=small) as sandbox:
        result = await sandbox.exec("print('x' * 3_000_000)", max_output_chars=3_000_000)
        assert result.status in ("killed", "sandbox_fault")
        assert not sandbox.alive
        await sandbox.restart()
        assert (await sandbox.exec("'ok'")).ok


async def test_close_leaves_no_processes(make_sandbox) -> None:
    async with make_sandbox() as sandbox:  # (in wasm the thread does not start: no threads in Pyodide)
        await sandbox.exec("import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()")
        pid = sandbox.pid
    await anyio.sleep(0.1)
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pid]
    assert leftovers == []
    assert _pgid(pid) is None


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


async def test_unisolated_backend_only_when_named(start_sandbox, caplog) -> None:
    async with start_sandbox("none") as sandbox:
        assert not sandbox.isolated
        assert (await sandbox.exec("6 * 7")).stdout.text == "42\n"
    assert "WITHOUT ISOLATION" in caplog.text
