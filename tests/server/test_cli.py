"""The `rlm-mcp` command line: help, doctor's verdicts and exit codes."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import server_command


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`rlm-mcp ARGS`; a fixed hash seed, as tests/doctor's runs and the test servers have, so every doctor run
    restores the one wasm snapshot instead of making its own (seconds of CPU each)."""
    return subprocess.run([server_command(), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONHASHSEED": "4242", **env})


def test_help_lists_commands() -> None:
    completed = run("--help")
    assert completed.returncode == 0
    for command in ("serve", "doctor"):
        assert command in completed.stdout


@pytest.mark.slow  # out of the quick loop (./dev.sh quick)
def test_doctor_passes_on_this_machine() -> None:
    completed = run("doctor")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "[ok  ] jail: started nsjail and ran code as uid 65534" in completed.stdout


@pytest.mark.slow  # out of the quick loop (./dev.sh quick)
def test_doctor_fails_with_a_fix() -> None:
    completed = run("doctor", RLM_GUEST_PYTHON="/nonexistent/python3", RLM_SANDBOX="nsjail")
    assert completed.returncode == 1
    assert "[FAIL] guest python" in completed.stdout and "fix: " in completed.stdout
    assert "problem(s): guest python, jail" in completed.stderr


def test_bad_configuration_is_a_clear_error() -> None:
    completed = run("serve", RLM_MAX_DEPTH="lots")
    assert completed.returncode != 0
    assert "RLM_MAX_DEPTH" in completed.stderr and "Traceback" not in completed.stderr


@pytest.mark.slow  # out of the quick loop (./dev.sh quick)
def test_doctor_checks_the_worker_only_when_asked() -> None:
    from tests.fakes import FakeOpenAI

    with FakeOpenAI(lambda request: "ok") as fake:
        env = {"RLM_WORKER_MODEL": "openai/gpt-4o-mini", "RLM_WORKER_API_BASE": fake.api_base, "OPENAI_API_KEY": "x"}
        quiet = run("doctor", **env)
        assert "not called" in quiet.stdout and fake.requests == []
        checked = run("doctor", "--check-worker", **env)
        assert "[ok  ] worker model: openai/gpt-4o-mini" in checked.stdout and "answered 'ok'" in checked.stdout
        assert len(fake.requests) == 1
    gone = run("doctor", "--check-worker", RLM_WORKER_MODEL="openai/gpt-4o-mini",
               RLM_WORKER_API_BASE="http://127.0.0.1:9/v1", OPENAI_API_KEY="x")
    assert gone.returncode == 1 and "[FAIL] worker model" in gone.stdout
