"""Times the official RLM package's local REPL (`rlms` on PyPI, imported as `rlm`); prints one JSON line.

Run by bench/compare_bench.py with .bench/venv's interpreter, so the competitor never enters the project's
environment. argv: the parent's time.monotonic() just before it spawned us (CLOCK_MONOTONIC is system-wide, so
"spawn to first exec" is measured across the two processes), then "cold" (stop after the first exec) or
"full" (also time repeated creations and warm execs in this process).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

CREATES = 50
EXECS = 2000


def main() -> None:
    spawned, mode = float(sys.argv[1]), sys.argv[2]
    begun = time.monotonic()
    from rlm.environments.local_repl import LocalREPL  # the competitor, in-process

    imported = time.monotonic()
    repl = LocalREPL()
    first = repl.execute_code("print(6 * 7)")
    ready = time.monotonic()
    if first.stdout != "42\n":
        raise SystemExit(f"LocalREPL printed {first.stdout!r} {first.stderr!r}, not '42'")
    report: dict[str, float] = {
        "cold_s": ready - spawned, "interpreter_s": begun - spawned, "import_s": imported - begun,
        "first_s": ready - imported,
    }
    if mode == "full":
        creates = []
        for _ in range(CREATES):
            started = time.perf_counter()
            fresh = LocalREPL()
            fresh.execute_code("pass")
            creates.append(time.perf_counter() - started)
            fresh.cleanup()
        for _ in range(50):
            repl.execute_code("x = 1")
        execs = []
        for _ in range(EXECS):
            started = time.perf_counter()
            repl.execute_code("x = 1")
            execs.append(time.perf_counter() - started)
        report |= {"start_s": statistics.median(creates), "exec_s": statistics.median(execs)}
    repl.cleanup()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
