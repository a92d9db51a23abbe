"""The evaluation suites: generation is deterministic, gold answers are right, scoring follows the paper."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.evals import codeqa, needle, oolong
from bench.evals.tasks import Task, f1, parse_lines, parse_pairs, score, score_number


def _task(gold: str, scoring: str) -> Task:
    return Task("t", "t", 1, 1, "?", gold, scoring, (), "")  # type: ignore[arg-type]


def test_numbers_score_three_quarters_per_unit_of_error() -> None:
    assert score_number("There are 12 of them.", 12) == 1.0
    assert score_number("Answer: 1,002", 1000) == pytest.approx(0.75**2)
    assert score_number("no number here", 3) == 0.0
    assert score(_task("7", "number"), None) == 0.0


def test_exact_answers_are_normalised_lightly() -> None:
    assert score(_task("location", "exact"), "Answer: `Location`.") == 1.0
    assert score(_task("location", "exact"), "the location") == 0.0


def test_sets_score_by_f1() -> None:
    assert parse_pairs("(3, 1)\n(2,4) and 5, 6") == {(1, 3), (2, 4), (5, 6)}
    assert parse_lines("- a.py\n2. `b/c.py`\n\n") == {"a.py", "b/c.py"}
    assert f1({1, 2}, {2, 3}) == pytest.approx(0.5)
    assert f1(set(), set()) == 1.0
    assert score(_task("(1, 2)\n(3, 4)", "f1_pairs"), "(1, 2)") == pytest.approx(2 / 3)


def test_generation_is_deterministic_per_seed(tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        (tmp_path / name).mkdir()
        runs[name] = needle.generate(tmp_path / name, seed, (8_000,))[0]
    assert (tmp_path / "a/needle-8K.txt").read_bytes() == (tmp_path / "b/needle-8K.txt").read_bytes()
    assert (runs["a"].question, runs["a"].gold) == (runs["b"].question, runs["b"].gold)
    assert runs["a"].gold != runs["c"].gold
    assert 8_000 <= runs["a"].tokens < 8_400
    key = runs["a"].question.split("magic number for ")[1].split(".")[0]
    assert (tmp_path / "a/needle-8K.txt").read_text().count(f"numbers for {key} is: {runs['a'].gold}.") == 1


def test_the_deterministic_worker_recovers_every_label() -> None:
    rows = oolong.rows_for(random.Random(1), 200_000, users=50)
    assert {row.label for row in rows} == set(oolong.LABELS)
    assert all(oolong.label_of(row.instance) == row.label for row in rows)
    assert oolong.label_of("What is the airspeed of an unladen swallow?") is None


def test_oolong_gold_answers_match_the_written_data(tmp_path: Path) -> None:
    tasks = oolong.generate(tmp_path, 3, (8_000,)) + oolong.generate_pairs(tmp_path, 3, (8_000,))
    lines = (tmp_path / "oolong-8K.txt").read_text().splitlines()
    labels = [oolong.label_of(line.split("|| Instance: ")[1]) for line in lines]
    (count,) = [t for t in tasks if t.task_id.endswith("-count")]
    label = count.question.split("label '")[1].split("'")[0]
    assert int(count.gold) == labels.count(label)
    pairs = [t for t in tasks if t.suite == "oolong-pairs"]
    assert len(pairs) == 3 and all(parse_pairs(t.gold) for t in pairs)


def test_code_qa_gold_comes_from_ast_of_the_copied_bytes(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg/base.py").write_text("class Base:\n    def a(self): pass\n    if True:\n        def b(self): pass\n"
                                         "    class Inner:\n        def c(self): pass\n")
    (source / "pkg/use.py").write_text("import pkg.base as m\n\nclass One(m.Base):\n    pass\n\n"
                                        "class Two(Base, object):\n    def run(self):\n        helper_fn(1)\n")
    (source / "broken.py").write_bytes(b"def broken(:\n")
    corpus = codeqa.read_corpus(codeqa.copy_corpus(source, tmp_path / "copy"))
    assert corpus.bases["Base"] == 2 and corpus.callers["helper_fn"] == {"pkg/use.py"}
    assert corpus.class_defs[("pkg/base.py", "Base")] == 2  # a and b; Inner.c is not Base's
    assert ("pkg/use.py", "Two", 6) in corpus.classes and corpus.names["Inner"] == 1
