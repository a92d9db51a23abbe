"""`python -m bench.evals`: generate the suites from a seed, run them through the real server, print tables.

Offline by default: reference programs, with the deterministic worker served on 127.0.0.1. With
`--root MODEL --worker MODEL` the same tasks go to real models through litellm (rlm_complete).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.fakes, bench.common
from bench.common import print_table
from tests.fakes import FakeOpenAI

from . import codeqa, fixtures, needle, oolong
from .runner import GroupLoad, Outcome, run_all, server_env
from .tasks import Task, size_label

SUITES = ("needle", "oolong", "oolong-pairs", "codeqa")
QUICK = {"needle": (8_000, 128_000), "oolong": (8_000,), "oolong-pairs": (8_000,)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.evals", description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="every task is generated from this seed")
    parser.add_argument("--suites", default=",".join(SUITES), help=f"comma-separated subset of {', '.join(SUITES)}")
    parser.add_argument("--quick", action="store_true", help="small sizes only (a minute)")
    parser.add_argument("--root", help="litellm model string for the root model (runs rlm_complete)")
    parser.add_argument("--worker", help="litellm model string for worker calls (with --root)")
    parser.add_argument("--root-api-base", help="API base of the root model (a local server)")
    parser.add_argument("--worker-api-base", help="API base of the worker model")
    parser.add_argument("--corpus", type=Path, help="code QA corpus (default: the sandbox interpreter's stdlib)")
    parser.add_argument("--workdir", type=Path, help="where generated data goes (default: a temporary dir)")
    arguments = parser.parse_args(argv)
    unknown = set(arguments.suites.split(",")) - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(sorted(unknown))}: choose from {', '.join(SUITES)}")
    if bool(arguments.root) != bool(arguments.worker):
        parser.error("give --root and --worker together (the same model string for both is fine)")
    return arguments


def generate(workdir: Path, arguments: argparse.Namespace) -> list[Task]:
    chosen, seed = arguments.suites.split(","), arguments.seed
    sizes = QUICK if arguments.quick else {}
    tasks: list[Task] = []
    if "needle" in chosen:
        tasks += needle.generate(workdir, seed, sizes.get("needle", needle.DEFAULT_SIZES))
    if "oolong" in chosen:
        tasks += oolong.generate(workdir, seed, sizes.get("oolong", oolong.DEFAULT_SIZES))
    if "oolong-pairs" in chosen:
        tasks += oolong.generate_pairs(workdir, seed, sizes.get("oolong-pairs", oolong.DEFAULT_PAIR_SIZES))
    if "codeqa" in chosen:
        tasks += codeqa.generate(workdir, seed, arguments.corpus)
    return tasks


@contextmanager
def model_env(workdir: Path, arguments: argparse.Namespace, tasks: list[Task]) -> Iterator[dict[str, str]]:
    if arguments.root:
        extra = {"RLM_ROOT_MODEL": arguments.root, "RLM_WORKER_MODEL": arguments.worker}
        for key, value in (("RLM_ROOT_API_BASE", arguments.root_api_base),
                           ("RLM_WORKER_API_BASE", arguments.worker_api_base)):
            if value:
                extra[key] = value
        yield server_env(workdir, extra)
        return
    with FakeOpenAI(fixtures.worker) as worker:
        yield server_env(workdir, {"RLM_WORKER_MODEL": "openai/deterministic-labeller",
                                   "RLM_WORKER_API_BASE": worker.api_base, "OPENAI_API_KEY": "sk-local"})


def report(loads: list[GroupLoad], outcomes: list[Outcome], method: str, elapsed_s: float) -> None:
    print_table(
        "loads (load_context through the server, one per data set)", ("source", "files", "tokens", "seconds"),
        [(", ".join(Path(s).name for s in load.source), load.files, f"{load.tokens:,}", f"{load.seconds:.2f}")
         for load in loads],
    )
    print_table(
        f"tasks ({method})", ("task", "tokens", "score", "seconds", "worker calls (cached)", "host bytes", "error"),
        [(o.task.task_id, f"{o.task.tokens:,}", f"{o.score:.2f}", f"{o.seconds:.2f}",
          f"{o.worker_calls} ({o.cached_calls})", f"{o.host_bytes:,}", (o.error or "")[:60]) for o in outcomes],
    )
    rows = []
    for suite in SUITES:
        mine = [o for o in outcomes if o.task.suite == suite]
        if not mine:
            continue
        costs = [o.cost_usd for o in mine if o.cost_usd is not None]
        cost = f"${statistics.mean(costs):.4f} (+/- {statistics.pstdev(costs):.4f})" if costs else "-"
        sizes = ", ".join(size_label(size) for size in sorted({o.task.size for o in mine}))
        rows.append((suite, sizes, len(mine),
                     f"{100 * statistics.mean(o.score for o in mine):.1f}%", cost,
                     f"{statistics.median(o.seconds for o in mine):.2f} s"))
    print_table(f"summary: {method} (score as in the RLM paper; cost per task)",
                ("suite", "tokens", "tasks", "score", "cost", "median time"), rows)
    economy = [o for o in outcomes if o.task.evidence_bytes]
    if economy:
        print_table(
            "token economy, code QA: bytes the host received vs bytes of the files naming the subject",
            ("task", "host bytes", "files a host would read", "ratio"),
            [(o.task.task_id, f"{o.host_bytes:,}",
              f"{o.task.evidence_bytes:,} ({o.task.notes.get('evidence_files')} files)",
              f"{o.task.evidence_bytes / max(o.host_bytes, 1):.0f}x fewer") for o in economy],
        )
    total = sum(o.score for o in outcomes)
    print(f"\n{method}: {total:.2f}/{len(outcomes)} = {100 * total / max(len(outcomes), 1):.1f}% "
          f"in {elapsed_s:.0f} s on {os.cpu_count()} cores, Python {platform.python_version()}")


def progress_line(outcome: Outcome) -> None:
    print(f"  {outcome.task.task_id}: score {outcome.score:.2f} in {outcome.seconds:.2f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    workdir = arguments.workdir or Path(tempfile.mkdtemp(prefix="rlm-evals-"))
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o711)  # the jail's unprivileged uid must traverse to its session directory
    started = time.perf_counter()
    try:
        tasks = generate(workdir, arguments)
        print(f"generated {len(tasks)} tasks from seed {arguments.seed} in {time.perf_counter() - started:.1f} s")
        method = f"RLM(root={arguments.root}, worker={arguments.worker})" if arguments.root else \
            "reference programs + deterministic worker"
        with model_env(workdir, arguments, tasks) as env:
            loads, outcomes = anyio.run(run_all, tasks, env, "model" if arguments.root else "reference",
                                    progress_line)
        report(loads, outcomes, method, time.perf_counter() - started)
        return 0 if arguments.root or all(o.score == 1.0 for o in outcomes) else 1
    finally:
        if not arguments.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
