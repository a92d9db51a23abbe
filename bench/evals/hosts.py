"""Host in the loop: the code QA tasks through a real host CLI, with rlm-mcp and with the host's own tools only.

    ./dev.sh eval --host claude-code|codex|gemini-cli|opencode [--real] [--tasks N] [--model MODEL]

Each task runs twice in the host, in the generated codebase's directory (Gemini CLI: with it included), once
with rlm-mcp configured (Claude Code: `--mcp-config`, its tools allowed; Codex: an `mcp_servers.rlm` entry;
OpenCode: an `mcp` entry; Gemini CLI: a `mcpServers.rlm` entry in the workspace settings of a private working
directory, see gemini_cli) and once with nothing but the host's built-in tools (Claude Code: Read, Grep, Glob;
Gemini CLI: those it offers headless without --yolo; the others: their own).
One table compares score, tokens, cost and time per task and arm, from the host's own JSON report.

By default the host talks to the scripted model endpoint (tests/fakes/model_endpoint.py): the rlm-mcp arm
plays the task's reference program through the host (load_context, exec_code, answer from the result), the
other arm answers without looking. That checks the plumbing -- the real CLI, the real server, scoring,
the table -- not a model. With `--real` the host uses your own login (your HOME, no endpoint override) and
your model answers: the table then measures what rlm-mcp changes for you, at your cost.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.fakes, tests.hosts
from bench.common import print_table
from tests.fakes.model_endpoint import ScriptedModel, Seen, Turn, handle_in
from tests.helpers import NODE_BIN, server_command
from tests.hosts.claude_code import host_env, mcp_config, run_claude
from tests.hosts.codex import codex_home, run_codex, toml_string
from tests.hosts.gemini import MODEL as GEMINI_MODEL
from tests.hosts.gemini import gemini_home, mcp_server, run_gemini
from tests.hosts.opencode import mcp_entry, opencode_home, run_opencode

from . import codeqa
from .runner import server_env
from .tasks import Task, score

OWN_TOOLS = "Read,Grep,Glob"  # the host alone: read-only built-ins
PROMPT_RLM = ("{question}\n\nThe code is in {cwd}. Use the rlm tools: load_context on it, "
              "then exec_code. End with the answer alone on the last line (a list: one item per line, nothing after).")
PROMPT_OWN = ("{question}\n\nThe code is in {cwd}. End with the answer alone on the last line "
              "(a list: one item per line, nothing after).")


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
            Turn.call("exec_code", lambda seen: {"code": task.reference,
                                                 "session": handle_in(seen.last("load_context").body)}),
            Turn(final_answer)]


def final_answer(seen: Seen) -> str:
    """The answer the reference program marked with FINAL(), as the host handed it to the model: from the JSON of
    the structured content (Claude Code, Codex) or from our text block (OpenCode, Gemini CLI)."""
    result = seen.last("exec_code")
    text = result.json()["output"] if result.body.startswith('{"output": ') else result.body  # Gemini CLI's wrapper
    marked = re.search(r"^\[final answer set\] (.*?)\s*(?:</untrusted_context>)?\Z", text, re.MULTILINE | re.DOTALL)
    if marked:
        return marked.group(1).strip()
    return str(result.first_object().get("final_answer", ""))


@dataclass
class HostRun:
    answer: str
    tokens: int
    cost_usd: float | None  # None: the host does not price its calls (Codex reports tokens only)


def claude_code(prompt: str, cwd: Path, workdir: Path, env: dict[str, str] | None, base_url: str | None,
                arguments: argparse.Namespace) -> HostRun:
    """One `claude -p` run; env None: the host's own tools only. base_url None: the user's login."""
    config = mcp_config(workdir / "mcp.json", env) if env is not None else None
    tools = ("--allowedTools", OWN_TOOLS) if env is None else ()
    model = arguments.model or "claude-sonnet-4-5"
    if base_url is None:
        host = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    else:
        host = host_env(env or {}, workdir / "home", base_url)
    run = run_claude(prompt, env=host, cwd=cwd, config=config, model=model, extra=tools, timeout=arguments.timeout)
    usage = run.output.get("usage", {})
    tokens = sum(int(usage.get(key) or 0) for key in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                                        "cache_creation_input_tokens"))
    return HostRun(run.answer, tokens, run.output.get("total_cost_usd"))


def codex(prompt: str, cwd: Path, workdir: Path, env: dict[str, str] | None, base_url: str | None,
          arguments: argparse.Namespace) -> HostRun:
    """One `codex exec` run; rlm-mcp added with -c overrides when the user's own CODEX_HOME is used."""
    model = ("-m", arguments.model) if arguments.model else ()
    if base_url is None:
        servers = () if env is None else tuple(
            item for key, value in [("command", toml_string(server_command())), ("required", "true"),
                                    ("env", "{" + ", ".join(f"{k} = {toml_string(v)}" for k, v in env.items()) + "}")]
            for item in ("-c", f"mcp_servers.rlm.{key}={value}"))
        host = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        events = run_codex(prompt, home=None, cwd=cwd, extra=(*model, *servers), env=host, timeout=arguments.timeout)
    else:
        home = codex_home(workdir / f"codex-{time.monotonic_ns()}", base_url, env)
        events = run_codex(prompt, home=home, cwd=cwd, extra=model, timeout=arguments.timeout)
    answers = [e["item"]["text"] for e in events if e.get("item", {}).get("type") == "agent_message"]
    tokens = sum(int(e["usage"].get("input_tokens", 0)) + int(e["usage"].get("output_tokens", 0))
                 for e in events if e.get("type") == "turn.completed")
    return HostRun(answers[-1] if answers else "", tokens, None)


def opencode(prompt: str, cwd: Path, workdir: Path, env: dict[str, str] | None, base_url: str | None,
             arguments: argparse.Namespace) -> HostRun:
    """One `opencode run`; rlm-mcp added through OPENCODE_CONFIG (merged with your own config) with your login."""
    model = ("--model", arguments.model) if arguments.model else ()
    if base_url is None:
        host = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        if env is not None:
            extra_config = workdir / "opencode-rlm.json"
            extra_config.write_text(json.dumps({"mcp": mcp_entry(env)}))
            host["OPENCODE_CONFIG"] = str(extra_config)
        events = run_opencode(prompt, home=None, cwd=cwd, extra=model, env=host, timeout=arguments.timeout)
    else:
        home = opencode_home(workdir / f"opencode-{time.monotonic_ns()}", base_url, env)
        events = run_opencode(prompt, home=home, cwd=cwd, extra=model, timeout=arguments.timeout)
    texts = [e["part"]["text"] for e in events if e.get("type") == "text"]
    steps = [e["part"] for e in events if e.get("type") == "step_finish"]
    tokens = sum(int(step.get("tokens", {}).get("input", 0)) + int(step.get("tokens", {}).get("output", 0))
                 for step in steps)
    costs = [step["cost"] for step in steps if step.get("cost") is not None]
    return HostRun(texts[-1] if texts else "", tokens, sum(costs) if costs else None)


def gemini_cli(prompt: str, cwd: Path, workdir: Path, env: dict[str, str] | None, base_url: str | None,
               arguments: argparse.Namespace) -> HostRun:
    """One `gemini -p` run. Gemini CLI reads MCP servers only from settings files, and an extra system settings
    file (GEMINI_CLI_SYSTEM_SETTINGS_PATH) is ignored unless it and every directory above it belong to root. So it
    runs in a private working directory whose workspace settings (.gemini/settings.json) name rlm-mcp, with the
    codebase added by --include-directories: your ~/.gemini and login are used as they are, nothing is written to
    them or to the codebase. The directory is trusted for the run (GEMINI_CLI_TRUST_WORKSPACE), as headless runs
    require; workspace settings apply only in a trusted folder. No --yolo: headless, Gemini CLI then offers only the
    tools that need no confirmation -- read_file, grep_search, glob, list_directory, google_web_search and a few
    more, no shell, no writes -- and ours, as the settings mark the server trusted."""
    run_dir = workdir / f"gemini-{time.monotonic_ns()}"
    workspace = run_dir / "cwd"
    (workspace / ".gemini").mkdir(parents=True)
    if env is not None:
        (workspace / ".gemini" / "settings.json").write_text(json.dumps({"mcpServers": {"rlm": mcp_server(env)}}))
    model = arguments.model or (None if base_url is None else GEMINI_MODEL)  # --real: your configured model
    extra = ("--include-directories", str(cwd), *(("-m", model) if model else ()))
    if base_url is None:
        host = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "GEMINI_CLI_TRUST_WORKSPACE": "true"}
        output = run_gemini(prompt, home=None, base_url=None, cwd=workspace, extra=extra, env=host,
                            timeout=arguments.timeout)
    else:
        output = run_gemini(prompt, home=gemini_home(run_dir / "home", None), base_url=base_url, cwd=workspace,
                            extra=extra, timeout=arguments.timeout)
    tokens = sum(int(stats.get("tokens", {}).get("total", 0))
                 for stats in output.get("stats", {}).get("models", {}).values())
    return HostRun(output.get("response", ""), tokens, None)


HOSTS = {"claude-code": claude_code, "codex": codex, "gemini-cli": gemini_cli, "opencode": opencode}


def run_task(task: Task, with_rlm: bool, arguments: argparse.Namespace, workdir: Path, env: dict[str, str]) -> Row:
    cwd = Path(task.source[0])
    prompt = (PROMPT_RLM if with_rlm else PROMPT_OWN).format(question=task.question, cwd=cwd)
    host = HOSTS[arguments.host]
    server = env if with_rlm else None
    started = time.perf_counter()
    if arguments.real:
        run = host(prompt, cwd, workdir, server, None, arguments)
    else:
        with ScriptedModel(scripted_turns(task, with_rlm)) as model:
            run = host(prompt, cwd, workdir, server, model.url, arguments)
        assert not model.errors, model.errors
    seconds = time.perf_counter() - started
    lines = run.answer.strip().splitlines() or [""]
    answer = "\n".join(lines) if task.scoring == "f1_lines" else lines[-1]  # a list: every line; else the last
    return Row(task, "rlm-mcp" if with_rlm else "host only", answer, score(task, answer), run.tokens, run.cost_usd,
               seconds)


def one_line(answer: str) -> str:
    lines = answer.splitlines() or [""]
    return lines[0][:40] + (f" (+{len(lines) - 1} lines)" if len(lines) > 1 else "")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.evals.hosts", description=__doc__.splitlines()[0])
    parser.add_argument("--host", choices=sorted(HOSTS), default="claude-code")
    parser.add_argument("--real", action="store_true", help="your login and your model (costs money), not the "
                        "scripted endpoint")
    parser.add_argument("--tasks", type=int, default=4, help="how many code QA tasks (of 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="the host's --model (default: claude-sonnet-4-5 for Claude Code; for the "
                        "others their configured model)")
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
        print_table(f"{arguments.host}, {arguments.model or 'its default model'}, through {where}",
                    ("task", "arm", "score", "tokens", "cost", "seconds", "answer"),
                    [(r.task.task_id, r.arm, f"{r.score:.2f}", f"{r.tokens:,}",
                      "-" if r.cost_usd is None else f"${r.cost_usd:.4f}", f"{r.seconds:.1f}", one_line(r.answer))
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
