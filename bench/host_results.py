"""What the host's model reads: sizes of typical tool results as they reached the model inside Claude Code.

Runs the real Claude Code CLI (from .tools/, `./dev.sh test` installs it) against the scripted model endpoint
with rlm-mcp over --mcp-config, plays a typical session over this repository's own code twice -- with the
server of this checkout, and with rlm_mcp/ as it was at `--before` (default: the commit before the result
design of issue 23) -- and prints, per result, the characters and estimated tokens (characters / 4) the model
received.

    .venv/bin/python bench/host_results.py [--before REV]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.model_endpoint import ScriptedModel, ToolResult, Turn
from tests.hosts.claude_code import host_env, mcp_config, run_claude

REPO = Path(__file__).resolve().parents[1]
BEFORE = "54db748"  # main before issue 23
CASES = [  # (label, tool, arguments)
    ("load_context of rlm_mcp/", "load_context", {"source": [str(REPO / "rlm_mcp")]}),
    ("exec_code, a small print and one variable", "exec_code",
     {"code": "hits = grep('def fit')\nprint(len(hits), [h[0] for h in hits])"}),
    ("exec_code printing 5,000 lines", "exec_code", {"code": "for i in range(5000):\n    print('line', i)"}),
    ("exec_code raising an error (text block)", "exec_code", {"code": "1 / 0"}),
    ("find_symbol(name='Session')", "find_symbol", {"name": "Session"}),
    ("find_symbol(pattern='text', limit=1000)", "find_symbol", {"pattern": "text", "limit": 1000}),
    ("exec_code, FINAL() of 200,000 characters", "exec_code", {"code": "FINAL('x' * 200_000)"}),
    ("session status", "session", {}),
]


def session(work: Path, server_env: dict[str, str]) -> list[ToolResult]:
    """One scripted Claude Code session over CASES: the results as the model received them."""
    script = [Turn.call(tool, arguments) for _, tool, arguments in CASES] + [Turn("done")]
    with ScriptedModel(script) as model:
        env = host_env(server_env, work / "home", model.url)
        run_claude("measure", env=env, cwd=work, config=mcp_config(work / "mcp.json", server_env))
    return [r for r in model.final().results if "rlm" in r.tool]


def checkout(rev: str, into: Path) -> Path:
    """rlm_mcp/ as it was at `rev`, importable ahead of the installed one through PYTHONPATH."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "rlm_mcp"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def size(result: ToolResult) -> str:
    chars = len(result.body)
    saved = "<persisted-output>" in result.body or "exceeds maximum allowed tokens" in result.body
    persisted = " (Claude Code saved it to a file: the model got the path and a preview)" if saved else ""
    return f"{chars:,} / {chars // 4:,}{persisted}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="the revision to compare with")
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rlm-host-results-"))
    work.chmod(0o711)  # the jail's unprivileged uid reads the old guest code under it
    runtime = Path(tempfile.mkdtemp(prefix="rlm-host-runtime-"))
    runtime.chmod(0o711)
    try:
        server_env = {"PATH": os.environ.get("PATH", ""), "RLM_RUNTIME_DIR": str(runtime),
                      "RLM_ALLOWED_ROOTS": str(REPO)}
        old = checkout(arguments.before, work / "before")
        (work / "a").mkdir()
        (work / "b").mkdir()
        before = session(work / "a", {**server_env, "RLM_HOME": str(work / "h1"), "PYTHONPATH": str(old)})
        after = session(work / "b", {**server_env, "RLM_HOME": str(work / "h2")})
        print(f"| result | before ({arguments.before}): chars / ~tokens | after: chars / ~tokens |\n|---|---|---|")
        failed = [r.body[:300] for r in before + after if "the sandbox failed" in r.body]
        assert not failed, failed
        for (label, _, _), old_result, new_result in zip(CASES, before, after, strict=True):
            print(f"| {label} | {size(old_result)} | {size(new_result)} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()
