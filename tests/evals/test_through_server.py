"""Both ways to run the suites, end to end: reference programs with the deterministic worker, and the
real-model path (litellm, the RLM loop, rlm_complete) against local OpenAI-compatible fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.evals import codeqa, fixtures, oolong
from bench.evals.__main__ import main
from tests.fakes import FakeOpenAI


@pytest.fixture(scope="module")
def small_corpus() -> Path:
    """A real package of the sandbox interpreter's stdlib: all four code-QA kinds, in seconds."""
    return codeqa.guest_stdlib() / "email"


def test_reference_programs_score_everything(small_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--corpus", str(small_corpus)]) == 0
    printed = capsys.readouterr().out
    assert "reference programs + deterministic worker: 22.00/22 = 100.0%" in printed  # 2+5+3 generated, 12 QA
    for suite in ("needle", "oolong", "oolong-pairs", "codeqa"):
        assert f"{suite}  " in printed.split("summary:")[1]
    assert "token economy" in printed and "fewer" in printed


@pytest.mark.slow  # out of the quick loop (./dev.sh quick)
def test_real_model_path_is_scored_and_printed(small_corpus: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    # The scripted root recognises each task by its question: generate the same tasks (same seed) for it.
    (tmp_path / "script").mkdir()
    tasks = oolong.generate_pairs(tmp_path / "script", 0, (8_000,)) + codeqa.generate(tmp_path / "script", 0,
                                                                                     small_corpus)
    with FakeOpenAI(fixtures.scripted_root(tasks)) as root, FakeOpenAI(fixtures.worker) as worker:
        status = main(["--suites", "oolong-pairs,codeqa", "--quick", "--corpus", str(small_corpus),
                       "--root", "openai/scripted-root", "--root-api-base", root.api_base,
                       "--worker", "openai/deterministic-labeller", "--worker-api-base", worker.api_base])
        assert root.prompts and worker.prompts  # both models were really called over HTTP
    printed = capsys.readouterr().out
    assert status == 0
    assert "summary: RLM(root=openai/scripted-root, worker=openai/deterministic-labeller)" in printed
    assert f"{len(tasks)}.00/{len(tasks)} = 100.0%" in printed
