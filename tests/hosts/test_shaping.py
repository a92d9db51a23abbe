"""The result budget as a plain function: what is cut, what is said about it, and nothing when it fits."""

from __future__ import annotations

from rlm_mcp.results import ExecReport, SymbolReport
from rlm_mcp.results.shaping import CUT_NOTE, json_chars


def test_a_small_result_leaves_out_its_defaults_and_is_not_cut() -> None:
    report = ExecReport(status="ok", stdout="3\n", elapsed_s=0.01)
    assert report.structured() == {"status": "ok", "stdout": "3\n", "elapsed_s": 0.01}
    assert ExecReport.model_validate(report.structured()) == report  # scripts get every field back


def test_a_long_list_loses_its_tail_and_says_how_many() -> None:
    rows = [{"name": f"fn{i}", "path": f"f{i}.py", "start_line": i, "end_line": i + 1, "kind": "function",
             "qualname": f"fn{i}", "signature": f"def fn{i}():"} for i in range(2000)]
    shaped = SymbolReport(op="find", results=rows).structured()
    kept = len(shaped["results"])
    assert 0 < kept < 2000 and shaped["results"] == rows[:kept] and shaped["cut"] == {"results": 2000 - kept}
    assert shaped["cut_note"] == CUT_NOTE and json_chars(shaped) <= 40_000


def test_a_long_text_keeps_head_and_tail() -> None:
    shaped = ExecReport(status="ok", stdout="", elapsed_s=0.1, final_answer="a" * 50_000 + "z" * 50_000).structured()
    answer = shaped["final_answer"]
    assert answer.startswith("aaa") and answer.endswith("zzz") and "characters cut" in answer
    assert json_chars(shaped) <= 40_000
