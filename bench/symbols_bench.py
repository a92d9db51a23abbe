"""Code index benchmark over the CPython standard library's .py files, beside universal-ctags.

Prints medians: cold build (parallel), warm reload from the cache, one changed file, a lookup by name,
and the peak RSS of a cold build (in a fresh subprocess). Run: `.venv/bin/python bench/symbols_bench.py`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table

from rlm_mcp.symbols import CodeIndex

RUNS = 5
STDLIB = Path(sysconfig.get_paths()["stdlib"])
PEAK_SCRIPT = """
import resource, sys
from pathlib import Path
from rlm_mcp.symbols import CodeIndex
root = Path(sys.argv[1]); paths = sys.argv[2].split("\\n")
index = CodeIndex.build(root, paths, None)
index.find_definitions("OrderedDict")
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(max(own, children) / 1024)
"""


def median_of(action, runs: int = RUNS) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    paths = sorted(str(p.relative_to(STDLIB)) for p in STDLIB.rglob("*.py") if "site-packages" not in p.parts)
    megabytes = sum((STDLIB / p).stat().st_size for p in paths) / 1e6
    workdir = Path(tempfile.mkdtemp(prefix="rlm-symbols-bench-"))
    copy = workdir / "stdlib"  # a private copy, so touching a file for the incremental case is harmless
    for rel in paths:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(STDLIB / rel, copy / rel)
    cache = workdir / "stdlib.idx"

    def cold() -> None:
        cache.unlink(missing_ok=True)
        CodeIndex.build(copy, paths, cache)

    cold_s = median_of(cold)
    warm_s = median_of(lambda: CodeIndex.build(copy, paths, cache))
    index = CodeIndex.build(copy, paths, cache)
    target = copy / paths[len(paths) // 2]

    def one_changed() -> None:
        stat = target.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
        assert index.update(copy, paths) == 1

    changed_s = median_of(one_changed)
    index.find_definitions("OrderedDict")  # builds the lookup tables once
    lookups = []
    for name in ("OrderedDict", "Path", "urlopen", "TestCase", "main"):
        started = time.perf_counter()
        index.find_definitions(name)
        lookups.append(time.perf_counter() - started)
    peak = float(subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(copy), "\n".join(paths)],
                                capture_output=True, text=True, check=True).stdout)
    ctags = shutil.which("ctags")
    if ctags:
        ctags_s = median_of(lambda: subprocess.run([ctags, "-R", "--languages=Python", "-f", str(workdir / "tags"),
                                                    str(copy)], check=True))
        ctags_cell = f"{ctags_s:.2f} s (ours {cold_s / ctags_s:.1f}x)"
    else:
        ctags_cell = "not installed: apt-get install universal-ctags"
    shutil.rmtree(workdir, ignore_errors=True)
    print_table(
        f"code index: {len(paths)} stdlib .py files, {megabytes:.0f} MB, {os.cpu_count()} cores (medians)",
        ("measure", "ours", "target"),
        [
            ("cold build", f"{cold_s:.2f} s", "<= 3 s"),
            ("  universal-ctags -R, same tree", ctags_cell, "-"),
            ("warm reload (nothing changed)", f"{warm_s:.3f} s", "<= 0.3 s"),
            ("one changed file", f"{changed_s:.3f} s", "<= 0.1 s"),
            ("lookup by name", f"{statistics.median(lookups) * 1e3:.3f} ms", "<= 1 ms"),
            ("peak RSS of a cold build (largest process)", f"{peak:.0f} MB", "<= 300 MB"),
        ],
    )


if __name__ == "__main__":
    main()
