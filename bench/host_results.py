"""What the host's model reads: sizes of typical tool results as they reached the model inside Claude Code.

Runs the real Claude Code CLI (from .tools/, `./dev.sh test` installs it) against the scripted model endpoint
with rlm-mcp over --mcp-config, plays a typical session over this repository's own code, and prints, per
result, the characters and estimated tokens (characters / 4) the model received -- and what the same result
was before the result design (issue 23): every field dumped, defaults included. That "before" is rebuilt
from the arrived JSON by the same pydantic models (a left-out field is by definition at its default), so
it is exact up to rounding of elapsed_s; for a result the budget cut, the uncut part is a lower bound.

    .venv/bin/python bench/host_results.py
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlm_mcp.models import ContextSummary, ExecReport, SessionReport, SymbolReport
from rlm_mcp.shaping import json_chars
from tests.fakes.model_endpoint import ScriptedModel, Turn
from tests.hosts.claude_code import host_env, mcp_config, run_claude

REPO = Path(__file__).resolve().parents[1]
CASES = [  # (label, tool, arguments, result model)
    ("load_context of rlm_mcp/ (40 files)", "load_context", {"source": [str(REPO / "rlm_mcp")]}, ContextSummary),
    ("exec_code, a small print and one variable", "exec_code",
     {"code": "hits = grep('def fit')\nprint(len(hits), [h[0] for h in hits])"}, ExecReport),
    ("exec_code printing 5,000 lines", "exec_code", {"code": "for i in range(5000):\n    print('line', i)"},
     ExecReport),
    ("find_symbol(name='fit')", "find_symbol", {"name": "fit"}, SymbolReport),
    ("find_symbol(pattern='text', limit=1000)", "find_symbol", {"pattern": "text", "limit": 1000}, SymbolReport),
    ("session status", "session", {}, SessionReport),
]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="rlm-host-results-"))
    runtime = Path(tempfile.mkdtemp(prefix="rlm-host-runtime-"))
    runtime.chmod(0o711)
    try:
        server_env = {"PATH": os.environ.get("PATH", ""), "RLM_HOME": str(work / "rlm-home"),
                      "RLM_RUNTIME_DIR": str(runtime), "RLM_ALLOWED_ROOTS": str(REPO)}
        script = [Turn.call(tool, arguments) for _, tool, arguments, _ in CASES] + [Turn("done")]
        with ScriptedModel(script) as model:
            env = host_env(server_env, work / "home", model.url)
            run_claude("measure", env=env, cwd=work, config=mcp_config(work / "mcp.json", server_env))
        results = [r for r in model.final().results if "rlm" in r.tool]
        print("| result | before: chars / ~tokens | after: chars / ~tokens |\n|---|---|---|")
        for (label, _, _, report), result in zip(CASES, results, strict=True):
            arrived = result.json()
            before = json_chars(report.model_validate(arrived).model_dump(mode="json"))
            after = len(result.body)
            more = "more than " if "cut" in arrived else ""  # the cut part is not in what arrived
            cut = f" (cut: {arrived['cut']})" if "cut" in arrived else ""
            print(f"| {label} | {more}{before:,} / {before // 4:,} | {after:,} / {after // 4:,}{cut} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()
