"""Resume benchmark: the first call with an old handle on a new server (issue 27, item 5's third figure).

Run: `.venv/bin/python bench/resume_bench.py` (`./dev.sh bench` runs it with the others). A first server
loads the standard library as a live context and makes 10 MB of variables, then exits. Then, ROUNDS times,
a new server process starts on the same RLM_HOME and its first call is `exec_code` with the old handle:
the session is taken up (the stdlib found again by stat alone, the variables restored inside the jail)
before the code runs, which reads both back (the variables, and the context's file list). Its second call
then uses `context` for the first time, which decodes the stdlib's 42 MB of text in the REPL: a cost of
the first use of a context in any session, shown apart. Beside them, in the same rounds, a new server's
first `exec_code` in a fresh session (the REPL start alone). Medians; target <= 1 s for the first.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table

ROUNDS = 5
VARIABLES = "rows = [('%07d' % i) * 10 for i in range(140_000)]\nindex = {r[:7]: n for n, r in enumerate(rows)}"


def server(env: dict[str, str]) -> Client:
    command = str(Path(sys.executable).with_name("rlm-mcp"))
    return Client(StdioServerParameters(command=command, args=[], env=env))  # type: ignore[arg-type]


async def first_call(env: dict[str, str], arguments: dict[str, str],
                     then: str | None = None) -> tuple[float, dict, float]:
    """A new server; the time of its first call (the process start and the handshake are not counted), and of
    a second call running `then` if given."""
    async with server(env) as client:
        started = time.perf_counter()
        result = await client.call_tool("exec_code", arguments)
        elapsed = time.perf_counter() - started
        assert not result.is_error, result.structured_content
        if then is not None:
            second = await client.call_tool("exec_code", {"code": then, "session": arguments["session"]})
            assert not second.is_error, second.structured_content
        after = time.perf_counter() - started - elapsed
    return elapsed, result.structured_content, after


async def measure(kind: str, home: Path, runtime: Path) -> list[tuple[object, ...]]:
    env = {"PATH": os.environ["PATH"], "RLM_HOME": str(home), "RLM_RUNTIME_DIR": str(runtime), "RLM_SANDBOX": kind,
           "RLM_ALLOWED_ROOTS": sysconfig.get_paths()["stdlib"]}
    async with server(env) as client:
        loaded = await client.call_tool("load_context", {"source": [sysconfig.get_paths()["stdlib"]],
                                                         "new_session": True})
        handle, files = loaded.structured_content["session"], loaded.structured_content["files"]
        made = await client.call_tool("exec_code", {"code": VARIABLES + "\nprint(len(rows))", "session": handle})
        assert not made.is_error, made.structured_content
    kept_mb = sum(p.stat().st_size for p in (home / "sessions").rglob("*.pkl")) / 2**20
    taken_up, decoded, fresh = [], [], []
    for _ in range(ROUNDS):
        elapsed, result, decoding = await first_call(env, {"code": "print(len(rows), len(files))", "session": handle},
                                                     then="print(len(context))")
        assert result["stdout"] == f"140000 {files}\n" and "rows" in result["restored"], result
        taken_up.append(elapsed)
        decoded.append(decoding)
        fresh.append((await first_call(env, {"code": "print(1)"}))[0])
    return [(kind, f"old handle: stdlib ({files} files) + {kept_mb:.1f} MB of variables", _ms(taken_up), "<= 1000 ms"),
            (kind, "then the first use of `context` (decodes the stdlib's text)", _ms(decoded), "--"),
            (kind, "fresh session: first exec", _ms(fresh), "--")]


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms (min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f})"


async def main() -> None:
    rows = []
    for kind in ("nsjail", "wasm"):
        home, runtime = Path(tempfile.mkdtemp(prefix="rlm-resume-bench-")), Path(tempfile.mkdtemp(prefix="rlm-rt-"))
        runtime.chmod(0o711)
        shared_wasm = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rlm-mcp" / "wasm"
        if shared_wasm.exists():  # the Pyodide ./dev.sh setup fetched: no fetch inside the figure
            (home / "wasm").symlink_to(shared_wasm, target_is_directory=True)
        try:
            rows += await measure(kind, home, runtime)
        finally:
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(runtime, ignore_errors=True)
    print_table(f"Taking a session up on a new server: first call, medians of {ROUNDS} new servers",
                ("backend", "first call", "time", "target"), rows)


if __name__ == "__main__":
    anyio.run(main)
