"""Cuts benchmark: what saying "50 of N" and answering `limit=None` cost (issue 31).

Run: `.venv/bin/python bench/cuts_bench.py` (`./dev.sh bench` runs it with the others). The standard library of
this interpreter is stored and indexed once; then, ROUNDS times, the REPL's `index` callback
(rlm_mcp/sessions/service.py's `repl_index`, as the guest calls it) answers:
- a `kind` query and a `pattern` query cut by the helpers' default limit of 50, counting what they left out
  in the packed rows (`count_definitions`), beside the same count made by reading every definition (what it
  costs without the packed count);
- the same `kind` query with `limit=None`, every page of 1,000;
- `references("len")` with `limit=None`, every page (after a first call that finds the call sites).
Medians, in seconds.
"""

from __future__ import annotations

import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table

from rlm_mcp.contexts import LoadLimits, store_paths
from rlm_mcp.sessions import SessionIndex
from rlm_mcp.sessions.service import repl_index

ROUNDS = 5
STDLIB = Path(sysconfig.get_paths()["stdlib"])


async def every_page(call: Callable[[Any], Awaitable[dict[str, Any]]], payload: dict[str, Any]) -> int:
    """Results of a limit=None query, a page at a time, as the guest reads them."""
    payload, total = {**payload, "limit": None, "cursor": None}, 0
    while True:
        reply = await call(payload)
        total += len(reply["results"])
        if reply["cursor"] is None:
            return total
        payload["cursor"] = reply["cursor"]


async def median(action: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    times, answer = [], None
    for _ in range(ROUNDS):
        started = time.perf_counter()
        answer = await action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


async def measure(work: Path) -> list[tuple[object, ...]]:
    stored = store_paths("main", [str(STDLIB / "**" / "*.py")], allowed_roots=[STDLIB], store_dir=work / "store",
                         limits=LoadLimits(max_files=100_000))
    index = SessionIndex(work / "cache")
    async with anyio.create_task_group() as group:
        index.start(stored, group)  # the build; the group waits for it
    call, code = repl_index(index), index.indexes["main"].index
    assert code is not None

    async def cut(payload: dict[str, Any]) -> int:
        return int((await call({**payload, "limit": 50}))["left_out"])

    async def by_reading(kind: str | None, pattern: str | None) -> int:
        return sum(1 for _ in code.definitions(kind=kind, pattern=pattern)) - 50

    await call({"op": "references", "name": "len"})  # finds and remembers the call sites
    rows = []
    for label, action in [
        ("find_symbol(kind='function'): 50 and the count of the rest", lambda: cut({"op": "find", "kind": "function"})),
        ("  the same count by reading every definition", lambda: by_reading("function", None)),
        ("find_symbol(pattern='^test_'): 50 and the count of the rest",
         lambda: cut({"op": "find", "pattern": "^test_"})),
        ("  the same count by reading every definition", lambda: by_reading(None, "^test_")),
        ("find_symbol(kind='function', limit=None): every page",
         lambda: every_page(call, {"op": "find", "kind": "function"})),
        ("references('len', limit=None): every page", lambda: every_page(call, {"op": "references", "name": "len"})),
    ]:
        seconds, answer = await median(action)
        rows.append((label, f"{answer:,}", f"{seconds:.3f}"))
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        rows = anyio.run(measure, Path(work))
    print_table(f"Cuts over the standard library ({STDLIB}), medians of {ROUNDS}",
                ("query", "results or left out", "seconds"), rows)


if __name__ == "__main__":
    main()
