"""`./dev.sh eval --host ...` end to end against the scripted endpoint: the real CLI runs a code QA task with rlm-mcp
and with its own tools only, and one table compares them (the plumbing, not a model's score)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from bench.evals import codeqa, hosts
from bench.evals.runner import server_env
from tests.fakes.model_endpoint import ScriptedModel
from tests.helpers import needs_node_tool
from tests.hosts.gemini import MODEL

HOST_TOOLS = {"claude-code": ("claude", "Claude Code CLI"), "codex": ("codex", "Codex CLI"),
              "gemini-cli": ("gemini", "Gemini CLI"), "opencode": ("opencode", "OpenCode CLI")}


@pytest.mark.parametrize("host", [pytest.param(host, marks=needs_node_tool(*tool))
                                  for host, tool in HOST_TOOLS.items()])
def test_one_task_through_the_host_with_and_without_rlm_mcp(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert hosts.main(["--host", host, "--tasks", "1"]) == 0
    table = capsys.readouterr().out
    rows = {line.split()[1] + (" only" if "host only" in line else ""): line.split()
            for line in table.splitlines() if line.startswith("codeqa-")}
    assert set(rows) == {"rlm-mcp", "host only"}, table
    assert rows["rlm-mcp"][2] == "1.00" and rows["host only"][3] == "0.00", table  # the reference ran in the host
    assert int(rows["rlm-mcp"][3].replace(",", "")) > int(rows["host only"][4].replace(",", "")) > 0, table  # tokens
    if host not in ("codex", "gemini-cli"):  # these report tokens, not cost
        assert rows["rlm-mcp"][4].startswith("$"), table


@needs_node_tool("gemini", "Gemini CLI")
def test_gemini_cli_with_your_login_gets_rlm_mcp_and_your_settings_stay_untouched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `--real` path: your HOME and login (here an API-key login whose endpoint is the scripted model), rlm-mcp
    added by the workspace settings of a private working directory; your ~/.gemini/settings.json is byte for byte as
    before and the codebase holds no settings of ours."""
    yours = tmp_path / "you" / ".gemini" / "settings.json"  # current keys only: Gemini CLI rewrites deprecated ones
    yours.parent.mkdir(parents=True)
    yours.write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}},
                                 "general": {"enableAutoUpdate": False}}))
    before = yours.read_bytes()
    workdir = Path(tempfile.mkdtemp(prefix="rlm-host-eval-"))
    workdir.chmod(0o711)  # as hosts.main: the jail's uid must traverse to its session directory
    try:
        task = codeqa.generate(workdir, 0, None)[0]
        env = {k: v for k, v in server_env(workdir, {}).items() if k.startswith("RLM_") or k == "PATH"}
        with ScriptedModel(hosts.scripted_turns(task, with_rlm=True)) as model:
            for name, value in {"HOME": str(yours.parent.parent), "GEMINI_API_KEY": "sk-yours",
                                "GOOGLE_GEMINI_BASE_URL": model.url}.items():
                monkeypatch.setenv(name, value)
            run = hosts.gemini_cli(task.question, Path(task.source[0]), workdir, env, None,
                                   hosts.parse_args(["--host", "gemini-cli", "--real", "--model", MODEL]))
        assert model.errors == [] and {"mcp_rlm_load_context", "mcp_rlm_exec_code"} <= set(model.final().tools)
        assert run.answer.strip() == task.gold and run.tokens > 0, run
        assert yours.read_bytes() == before and not (Path(task.source[0]) / ".gemini").exists()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
