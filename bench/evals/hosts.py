"""Host in the loop: the code QA tasks through a real host CLI, with rlm-mcp and with the host's own tools only.

    ./dev.sh eval --host claude-code [--real] [--tasks N] [--model MODEL]

Each task runs twice in the host, in the generated codebase's directory: once with rlm-mcp configured
(`--mcp-config`, its tools allowed) and once with nothing but the host's built-in tools (Read, Grep, Glob).
One table compares score, tokens, cost and time per task and arm, from the host's own JSON report.

By default the host talks to the scripted model endpoint (tests/fakes/model_endpoint.py): the rlm-mcp arm
plays the task's reference program through the host (load_context, exec_code, answer from the result), the
other arm answers without looking. That checks the plumbing -- the real CLI, the real server, scoring,
the table -- not a model. With `--real` the host uses your own login (your HOME, no endpoint override) and
your model answers: the table then measures what rlm-mcp changes for you, at your cost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.fakes, tests.hosts
from bench.common import print_table
from tests.fakes.model_endpoint import ScriptedModel, Seen, Turn
from tests.helpers import NODE_BIN
from tests.hosts.claude_code import host_env, mcp_config, run_claude

from . import codeqa
from .runner import server_env
from .tasks import Task, score

HOSTS = ("claude-code",)
OWN_TOOLS = "Read,Grep,Glob"  # the host alone: read-only built-ins
PROMPT_RLM = ("{question}\n\nThe code is in the current directory ({cwd}). Use the rlm tools: load_context on it, "
              "then exec_code. End with the answer alone on the last line.")
PROMPT_OWN = "{question}\n\nThe code is in the current directory ({cwd}). End with the answer alone on the last line."


@dataclass
class Row:
    task: Task
    arm: str
    answer: str
    score: float
    tokens: int
    cost_usd: float | None
    seconds: float


def scripted_turns(task: Task, with_rlm: bool) -> list[Turn]:
    """What the stand-in model does: the reference program through our tools, or an answer without looking."""
    if not with_rlm:
        return [Turn("I cannot tell without reading the code.")]
    return [Turn.call("load_context", {"source": list(task.source)}),
            Turn.call("exec_code", lambda seen: {"code": task.reference, "session": seen.last("load_context").json()[
                "session"]}),
            Turn(final_answer)]


def final_answer(seen: Seen) -> str:
    """The answer the reference program marked with FINAL(), as the host handed it to the model."""
    return str(seen.last("exec_code").json().get("final_answer", ""))


def run_task(task: Task, with_rlm: bool, arguments: argparse.Namespace, workdir: Path, env: dict[str, str]) -> Row:
    cwd = Path(task.source[0])
    prompt = (PROMPT_RLM if with_rlm else PROMPT_OWN).format(question=task.question, cwd=cwd)
    config = mcp_config(workdir / "mcp.json", env) if with_rlm else None
    tools = ("--allowedTools", OWN_TOOLS) if not with_rlm else ()
    started = time.perf_counter()
    if arguments.real:
        host = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        run = run_claude(prompt, env=host, cwd=cwd, config=config, model=arguments.model, extra=tools,
                         timeout=arguments.timeout)
    else:
        with ScriptedModel(scripted_turns(task, with_rlm)) as model:
            host = host_env(env, workdir / "home", model.url)
            run = run_claude(prompt, env=host, cwd=cwd, config=config, model=arguments.model, extra=tools,
                             timeout=arguments.timeout)
        assert not model.errors, model.errors
    seconds = time.perf_counter() - started
    usage = run.output.get("usage", {})
    tokens = sum(int(usage.get(key) or 0) for key in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                                        "cache_creation_input_tokens"))
    answer = run.answer.strip().splitlines()[-1] if run.answer.strip() else ""
    return Row(task, "rlm-mcp" if with_rlm else "host only", answer, score(task, answer), tokens,
               run.output.get("total_cost_usd"), seconds)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.evals.hosts", description=__doc__.splitlines()[0])
    parser.add_argument("--host", choices=HOSTS, default="claude-code")
    parser.add_argument("--real", action="store_true", help="your login and your model (costs money), not the "
                        "scripted endpoint")
    parser.add_argument("--tasks", type=int, default=4, help="how many code QA tasks (of 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="claude-sonnet-4-5", help="the host's --model")
    parser.add_argument("--corpus", type=Path, help="code QA corpus (default: the sandbox interpreter's stdlib)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per host run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="rlm-host-eval-"))
    workdir.chmod(0o711)  # the jail's unprivileged uid must traverse to its session directory
    try:
        tasks = codeqa.generate(workdir, arguments.seed, arguments.corpus)[: arguments.tasks]
        env = {k: v for k, v in server_env(workdir, {}).items() if k.startswith("RLM_") or k == "PATH"}
        rows = [run_task(task, with_rlm, arguments, workdir, env) for task in tasks for with_rlm in (True, False)]
        where = "your login" if arguments.real else "the scripted endpoint (plumbing, not a model's score)"
        print_table(f"{arguments.host}, {arguments.model}, through {where}",
                    ("task", "arm", "score", "tokens", "cost", "seconds", "answer"),
                    [(r.task.task_id, r.arm, f"{r.score:.2f}", f"{r.tokens:,}",
                      "-" if r.cost_usd is None else f"${r.cost_usd:.4f}", f"{r.seconds:.1f}", r.answer[:40])
                     for r in rows])
        summary = []
        for arm in ("rlm-mcp", "host only"):
            mine = [r for r in rows if r.arm == arm]
            costs = [r.cost_usd for r in mine if r.cost_usd is not None]
            summary.append((arm, f"{100 * statistics.mean(r.score for r in mine):.1f}%",
                            f"{statistics.median(r.tokens for r in mine):,.0f}", f"${sum(costs):.4f}" if costs else "-",
                            f"{statistics.median(r.seconds for r in mine):.1f}"))
        print_table("summary", ("arm", "score", "median tokens", "total cost", "median seconds"), summary)
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
