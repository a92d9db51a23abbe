"""Benchmark: store the CPython stdlib as a context, then reload it unchanged.

Targets (DESIGN, contexts issue): store <= 0.3 s, unchanged reload <= 0.1 s on a 2-core machine.
Run: .venv/bin/python bench/contexts_bench.py [--runs N] [PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

from rlm_mcp.contexts import LoadLimits, store_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    tree = Path(args.path).resolve()
    limits = LoadLimits()
    fresh: list[float] = []
    reload: list[float] = []
    tmp = Path(tempfile.mkdtemp(prefix="rlm-ctx-bench-"))
    try:
        # Warm the page cache once so every run measures the same thing (a warm editor workspace).
        store_paths("warm", [str(tree)], allowed_roots=[tree], store_dir=tmp / "warm", limits=limits)
        for i in range(args.runs):
            store_dir = tmp / f"run{i}"
            t = time.perf_counter()
            s = store_paths("main", [str(tree)], allowed_roots=[tree], store_dir=store_dir, limits=limits)
            fresh.append(time.perf_counter() - t)
            t = time.perf_counter()
            r = store_paths("main", [str(tree)], allowed_roots=[tree], store_dir=store_dir, limits=limits)
            reload.append(time.perf_counter() - t)
            assert r.reused and not s.reused
            shutil.rmtree(store_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"tree: {tree}")
    print(f"files stored: {s.file_count:,}  chars: {s.chars:,}  bytes: {s.bytes:,}  skipped: {s.skipped}")
    print(f"store   median {statistics.median(fresh):.3f} s  (min {min(fresh):.3f}, max {max(fresh):.3f})")
    print(f"reload  median {statistics.median(reload):.3f} s  (min {min(reload):.3f}, max {max(reload):.3f})")


if __name__ == "__main__":
    main()
