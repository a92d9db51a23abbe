"""Monorepo-scale benchmark: a large tree through the real server (stdio, nsjail), against rg and ctags.

Run: `.venv/bin/python bench/scale_bench.py [--target-mb 287] [--tree DIR]`. The tree is built from
installed packages (this interpreter's site-packages and standard library, hard-linked copies, so nothing
is downloaded), until it holds about `--target-mb` of text. One run prints: load, the first
`find_symbol(name=...)` answer right after the load, index ready, `grep()` vs `rg` per pattern (with
their hit counts), peak memory of the server's whole process tree against the loaded text, a warm
reload, and universal-ctags on the same files. Then the live-context figures (`--live-only` runs just
these): the per-call cost of the freshness check on the unchanged tree, edit-to-visible latency, new
servers loading the tree with its index from RLM_HOME/store -- unchanged, and with one file changed while
no server ran -- timed to their first find_symbol answer, and the first find_symbol answers for a common
and a rare name right after a fresh load, checked against the finished index.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table

PATTERNS = [
    r"OrderedDict",
    r"(?i)todo|fixme",
    r"\bimport (os|sys)\b",
    r"(?m)^[ \t]*def \w+\(self",
    r"raise \w+Error\(",
]
SYMBOL = "validate_call"  # a name in pydantic, present in this project's environment
COMMON = "BaseModel"  # in thousands of files of the tree: the names people ask about
RARE = "validate_call"
CALLS = 15  # samples per side for the freshness check
SNIFF = 8192
MAX_FILE = 2 * 1024 * 1024  # the server's default RLM_MAX_FILE_BYTES: bigger files are skipped by a load


def text_bytes(path: Path) -> int:
    """Bytes a load would take from `path`: 0 for binaries and oversized files."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE:
            return 0
        with path.open("rb") as handle:
            return 0 if b"\0" in handle.read(SNIFF) else size
    except OSError:
        return 0


def build_tree(tree: Path, target_bytes: int) -> tuple[int, int]:
    """Hard-link copies of installed packages into `tree` until it holds `target_bytes` of text."""
    sources = [Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["stdlib"])]
    packages = [p for source in sources for p in sorted(source.iterdir()) if p.is_dir() and p.name != "site-packages"
                and not p.name.startswith((".", "__pycache__"))]
    total = files = copy = 0
    while total < target_bytes:
        copy += 1
        for package in packages:
            if total >= target_bytes:
                break
            for path in package.rglob("*"):
                if not path.is_file() or path.is_symlink() or "__pycache__" in path.parts:
                    continue
                size = text_bytes(path)
                if not size:
                    continue
                target = tree / f"copy{copy}" / package.parent.name / path.relative_to(package.parent)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copy2(path, target)
                total += size
                files += 1
    return files, total


class TreeMemory:
    """Samples the memory of a process and all its descendants, every 50 ms, in a thread.

    Memory is PSS: each page counted once, split between the processes that share it. Summing RSS
    instead counts a page shared by forks once per process: a child between fork and exec (every
    `rg` the server starts) would add the whole server again. Both peaks are kept."""

    def __init__(self) -> None:
        self.root: int | None = None
        self.peak = 0
        self.current = 0
        self.peak_rss = 0  # the same, as summed RSS
        self.at_peak: dict[str, int] = {}  # where the memory was at the peak: see `_breakdown`
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def reset_peak(self) -> None:
        self.peak, self.peak_rss, self.at_peak = 0, 0, {}

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            if self.root is None:
                self.root = _server_pid()
                continue
            parts = _breakdown(self.root, _pss)
            self.current = sum(parts.values())
            self.peak_rss = max(self.peak_rss, sum(_breakdown(self.root, _rss).values()))
            if self.current > self.peak:
                self.peak, self.at_peak = self.current, parts


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _descendants(root: int) -> list[int]:
    children, found, stack = _children_map(), [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _breakdown(root: int, measure: Callable[[int], int]) -> dict[str, int]:
    """Memory of the server's tree by part: the server, its other children (index workers, rg), the jail."""
    parts = {"server": measure(root), "index workers and rg": 0, "jail": 0}
    children = _children_map()
    for child in children.get(root, []):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        part = "jail" if b"nsjail" in command else "index workers and rg"  # workers are forks: same cmdline
        parts[part] += sum(measure(pid) for pid in _descendants(child))
    return parts


def describe(parts: dict[str, int]) -> str:
    return ", ".join(f"{name} {rss / 1e6:,.0f} MB" for name, rss in parts.items())


def _server_pid() -> int | None:
    for pid in _children_map().get(os.getpid(), []):
        try:
            if b"rlm-mcp" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def _kilobytes(pid: int, table: str, field: str) -> int:
    """One "Name:  N kB" line of /proc/PID/<table>, in bytes; 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{table}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _pss(pid: int) -> int:
    return _kilobytes(pid, "smaps_rollup", "Pss:")


def _rss(pid: int) -> int:
    return _kilobytes(pid, "status", "VmRSS:")


def structured(result: Any) -> dict[str, Any]:
    if result.is_error:
        raise RuntimeError(result.content[0].text if result.content else "tool error")
    return result.structured_content or {}


async def answer_or_none(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
    """A tool's structured answer, or None when the server refused (as older versions did while indexing)."""
    try:
        result = await client.call_tool(tool, arguments)
    except MCPError:
        return None
    return None if result.is_error else result.structured_content or {}


async def index_status(client: Client, session: str | None = None) -> str:
    report = structured(await client.call_tool("session", {"action": "status", "session": session}))
    return next((c.get("index", "") for c in report.get("contexts", []) if c["name"] == "main"), "")


async def wait_for_index(client: Client, session: str | None = None) -> float:
    started = time.perf_counter()
    while not (await index_status(client, session)).startswith(("ready", "failed")):
        await anyio.sleep(0.1)
    return time.perf_counter() - started


async def run_grep(client: Client, pattern: str) -> tuple[float, int]:
    code = f"_t = __import__('time').perf_counter(); _h = grep({pattern!r}, max_hits=None); " \
           f"print(len(_h), __import__('time').perf_counter() - _t)"
    report = structured(await client.call_tool("exec_code", {"code": code, "timeout_s": 600}))
    count, seconds = report["stdout"].split()
    return float(seconds), int(count)


def run_rg(rg: str, pattern: str, tree: Path) -> tuple[float, int]:
    """rg listing path:line:text through a pipe, as our hits come back; medians of 3."""
    samples, count = [], 0
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run([rg, "--no-config", "-n", "--no-ignore", "-e", pattern, str(tree)],
                              capture_output=True, text=True, errors="replace")
        samples.append(time.perf_counter() - started)
        count = len(done.stdout.splitlines())
    return sorted(samples)[1], count


def run_ctags(ctags: str, tree: Path, languages: str, out: Path) -> float:
    """ctags cannot write to /dev/null (it truncates its tag file): a scratch file it is."""
    started = time.perf_counter()
    subprocess.run([ctags, "-R", f"--languages={languages}", "-f", str(out), str(tree)], check=True,
                   capture_output=True)
    return time.perf_counter() - started


async def measure(tree: Path, home: Path, rows: list[tuple[str, str]], rg: str | None) -> None:
    env = {**os.environ, "RLM_ALLOWED_ROOTS": str(tree), "RLM_HOME": str(home)}
    params = StdioServerParameters(command=str(Path(sys.executable).with_name("rlm-mcp")), args=[], env=env)
    memory = TreeMemory()
    memory.start()
    async with Client(params) as client:
        started = time.perf_counter()
        summary = structured(await client.call_tool("load_context", {"source": [str(tree)]}))
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        refused = 0
        while (found := await answer_or_none(client, "find_symbol", {"name": SYMBOL})) is None:
            refused += 1  # what this server did before it answered while building
            await anyio.sleep(0.1)
        first_s = time.perf_counter() - started
        ready_s = load_s + first_s + await wait_for_index(client)
        text = summary["bytes"]
        peak_build, build_parts, build_rss = memory.peak, memory.at_peak, memory.peak_rss
        await anyio.sleep(1)
        memory.reset_peak()
        status = await index_status(client)
        rows += [
            ("tree", f"{summary['files']:,} files, {text / 1e6:,.0f} MB of text, "
                     f"~{summary['estimated_tokens'] / 1e6:.0f}M tokens"),
            ("load_context", f"{load_s:.2f} s"),
            (f"first find_symbol(name={SYMBOL!r}) after the load", f"{first_s:.2f} s, {len(found['results'])} results"
                                                                + (f" (refused {refused}x first)" if refused else "")),
            ("index ready after the load started", f"{ready_s:.1f} s ({status})"),
            ("peak memory (PSS) of the server's process tree, load + build",
             f"{peak_build / 1e6:,.0f} MB = {peak_build / text:.2f}x text ({describe(build_parts)}); "
             f"summed RSS {build_rss / 1e6:,.0f} MB = {build_rss / text:.2f}x"),
        ]
        for pattern in PATTERNS:
            ours_s, ours_n = await run_grep(client, pattern)
            if rg:
                rg_s, rg_n = run_rg(rg, pattern, tree)
                rows.append((f"grep {pattern!r}", f"{ours_s:.2f} s, {ours_n:,} hits; rg {rg_s:.2f} s, {rg_n:,} lines "
                                                  f"({ours_s / rg_s:.1f}x)"))
            else:
                rows.append((f"grep {pattern!r}", f"{ours_s:.2f} s, {ours_n:,} hits; rg not found"))
        started = time.perf_counter()
        refs = structured(await client.call_tool("find_symbol", {"callers_of": SYMBOL}))
        rows.append((f"references({SYMBOL!r})", f"{time.perf_counter() - started:.2f} s, {len(refs['results'])} sites"))
        rows.append(("peak memory (PSS) once built, the queries above included",
                     f"{memory.peak / 1e6:,.0f} MB = {memory.peak / text:.2f}x text ({describe(memory.at_peak)}); "
                     f"summed RSS {memory.peak_rss / 1e6:,.0f} MB = {memory.peak_rss / text:.2f}x"))
        started = time.perf_counter()
        await client.call_tool("load_context", {"source": [str(tree)]})
        rows.append(("reload of the unchanged tree in the same session, index included",
                     f"{time.perf_counter() - started:.2f} s ({await index_status(client)})"))
        started = time.perf_counter()
        await client.call_tool("exec_code", {"code": "len(context)"})
        elapsed = time.perf_counter() - started
        await anyio.sleep(0.3)  # a sample or more after it
        rows.append(("code that names `context`: the whole str decoded in the jail",
                     f"{elapsed:.2f} s, PSS then {memory.current / 1e6:,.0f} MB = "
                     f"{memory.current / text:.2f}x text"))
    memory.stop()


def _params(tree: Path, home: Path) -> StdioServerParameters:
    env = {**os.environ, "RLM_ALLOWED_ROOTS": str(tree), "RLM_HOME": str(home)}
    return StdioServerParameters(command=str(Path(sys.executable).with_name("rlm-mcp")), args=[], env=env)


def _median(samples: list[float]) -> float:
    return sorted(samples)[len(samples) // 2]


async def _timed(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    result = structured(await client.call_tool(tool, arguments))
    return time.perf_counter() - started, result


async def measure_live(tree: Path, home: Path, rows: list[tuple[str, str]]) -> None:
    """Live contexts and the store under RLM_HOME, each figure from the real server over stdio."""
    params = _params(tree, home)
    async with Client(params) as client:
        load_s, summary = await _timed(client, "load_context", {"source": [str(tree)]})
        rare_s, rare = await _timed(client, "find_symbol", {"name": RARE, "limit": 1000})
        common_s, common = await _timed(client, "find_symbol", {"name": COMMON, "limit": 1000})
        await wait_for_index(client)
        finished = [structured(await client.call_tool("find_symbol", {"name": n, "limit": 1000}))["results"]
                    for n in (RARE, COMMON)]
        same = "identical to the finished index" if [rare["results"], common["results"]] == finished else \
            "DIFFERENT from the finished index"
        rows += [
            ("live: fresh load of the tree (store written)", f"{load_s:.2f} s, {summary['files']:,} files"),
            (f"first find_symbol(name={RARE!r}) right after the load (rare)",
             f"{rare_s:.2f} s, {len(rare['results'])} results"),
            (f"then find_symbol(name={COMMON!r}) (common), before the index is ready",
             f"{common_s:.2f} s, {len(common['results'])} results, {same}"),
        ]
        # The freshness check: the same exec in a live session and in a snapshot session, interleaved.
        snapshot = structured(await client.call_tool("load_context", {"source": [str(tree)], "live": False,
                                                                      "new_session": True}))["session"]
        await wait_for_index(client, snapshot)  # its index (from the cache) must not compete with what follows
        live_s, still_s = [], []
        for _ in range(CALLS):
            live_s.append((await _timed(client, "exec_code", {"code": "pass"}))[0])
            still_s.append((await _timed(client, "exec_code", {"code": "pass", "session": snapshot}))[0])
        rows.append(("per-call cost of the freshness check, unchanged tree",
                     f"{(_median(live_s) - _median(still_s)) * 1000:+.1f} ms (exec_code 'pass': live "
                     f"{_median(live_s) * 1000:.1f} ms, snapshot {_median(still_s) * 1000:.1f} ms, "
                     f"medians of {CALLS})"))
        visible, found_s = [], []
        for i in range(5):
            name = f"edited_probe_{i}"
            (tree / f"{name}.py").write_text(f"def {name}():\n    return {i}\n")
            seconds, out = await _timed(client, "exec_code", {"code": f"print({name + '.py'!r} in files)"})
            assert out["stdout"] == "True\n" and out.get("context_changed"), out
            visible.append(seconds)
            seconds, found = await _timed(client, "find_symbol", {"name": name})
            assert [r["path"] for r in found["results"]] == [f"{name}.py"], found
            found_s.append(seconds)
        for i in range(5):
            (tree / f"edited_probe_{i}.py").unlink()
        await client.call_tool("exec_code", {"code": "pass"})  # the deletions, stored
        await wait_for_index(client)
        rows.append(("edit-to-visible: a new file, then exec_code sees it in `files`",
                     f"{_median(visible):.2f} s (median of 5); find_symbol on it then {_median(found_s):.2f} s"))
        edited = min(path for path in tree.iterdir() if path.is_dir()) / "edited_in_place.py"
        edited.write_text("def edited_in_place_0():\n    return 0\n")
        await client.call_tool("exec_code", {"code": "pass"})
        in_place = []
        for i in range(1, 6):  # the same file rewritten, as an assistant's edit tool does: nothing listed changes
            edited.write_text(f"def edited_in_place_{i}():\n    return {i}\n")
            seconds, out = await _timed(client, "exec_code",
                                        {"code": f"print(files[{str(edited.relative_to(tree))!r}])"})
            assert f"edited_in_place_{i}" in out["stdout"] and out.get("context_changed"), out
            in_place.append(seconds)
        edited.unlink()
        await client.call_tool("exec_code", {"code": "pass"})
        rows.append(("edit-to-visible: a file rewritten in place, then exec_code sees the new text",
                     f"{_median(in_place):.2f} s (median of 5)"))
    unchanged = [await _new_server_load(params, tree) for _ in range(NEW_SERVERS)]
    rows.append(("reload of the unchanged tree in a new server, index included",
                 _new_server_row(unchanged)))
    probe = min(path for path in tree.iterdir() if path.is_dir()) / "edited_while_no_server_ran.py"
    edited = []
    for i in range(NEW_SERVERS):  # one file changed between servers: the rest is copied, not read
        probe.write_text(f"def edited_{i}():\n    return {i}\n")
        edited.append(await _new_server_load(params, tree))
    probe.unlink()
    rows.append(("load in a new server after one file changed while no server ran, index included",
                 _new_server_row(edited)))


NEW_SERVERS = 3


async def _new_server_load(params: StdioServerParameters, tree: Path) -> tuple[float, float, bool]:
    """(seconds to load_context's answer, seconds to the first find_symbol's answer, reused) in a new server."""
    async with Client(params) as client:
        started = time.perf_counter()
        loaded = structured(await client.call_tool("load_context", {"source": [str(tree)]}))
        loaded_s = time.perf_counter() - started
        found = structured(await client.call_tool("find_symbol", {"name": COMMON, "limit": 1000}))
        assert found["results"], found
        return loaded_s, time.perf_counter() - started, bool(loaded.get("reused"))


def _new_server_row(runs: list[tuple[float, float, bool]]) -> str:
    loads, answers = [run[0] for run in runs], [run[1] for run in runs]
    return (f"{_median(answers):.2f} s to the first find_symbol({COMMON!r}) answer, load_context "
            f"{_median(loads):.2f} s (medians of {len(runs)} servers; reused: {', '.join(str(r[2]) for r in runs)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-mb", type=float, default=287.0, help="text to load (default: 287 MB)")
    parser.add_argument("--tree", type=Path, help="where to build the tree (default: a temporary directory)")
    parser.add_argument("--live-only", action="store_true", help="only the live-context and store figures")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="rlm-scale-"))
    tree = args.tree or workdir / "tree"
    started = time.perf_counter()
    files, total = build_tree(tree, int(args.target_mb * 1e6)) if not tree.exists() else (0, 0)
    print(f"tree {tree}: {files:,} files, {total / 1e6:,.0f} MB, built in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    rows: list[tuple[str, str]] = []
    rg = str(Path(sys.executable).with_name("rg")) if Path(sys.executable).with_name("rg").exists() \
        else shutil.which("rg")
    try:
        if not args.live_only:
            anyio.run(measure, tree, workdir / "home", rows, rg)
        anyio.run(measure_live, tree, workdir / "live-home", rows)
        ctags = shutil.which("ctags")
        if ctags and not args.live_only:
            rows.append(("universal-ctags -R on the tree, Python only, 1 process",
                         f"{run_ctags(ctags, tree, 'Python', workdir / 'tags'):.1f} s"))
            rows.append(("universal-ctags -R on the tree, all languages, 1 process",
                         f"{run_ctags(ctags, tree, 'all', workdir / 'tags'):.1f} s"))
        print_table(f"rlm-mcp at scale ({os.cpu_count()} cores)", ("measure", "result"), rows)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
