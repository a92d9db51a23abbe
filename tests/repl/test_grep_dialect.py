"""Property test of grep()'s dialect rule: for random patterns over text full of the characters where Python's
`re` and Rust's regex disagree (Unicode word and digit classes, case folding, odd whitespace, combining marks),
grep() -- on ripgrep when the pattern is sent there, on Python's re otherwise -- returns exactly the lines that
Python's re matches one by one."""

from __future__ import annotations

import random
import re
import tempfile
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.repl.test_grep import Prelude, expected_hits

# Characters Python and Rust classify differently (① ² are \w in Python, marks and U+203F are \w in Rust;
# İ ı ſ K fold to ASCII letters in Python's IGNORECASE; \x1c-\x1f are \s in Python) and plain ones.
ALPHABET = "abcdeiksxyzIKS_09 \t.-()\u0131\u0130\u017f\u212a\u00df\u1e9e\u2460\u00b2\u0301\u203f\u200d\x1c\x1f\u00a0" \
           "\u3000\u0663\u00e9\u00c9\u03a3\u03c3\u03c2"
ATOMS = [r"\w", r"\W", r"\d", r"\D", r"\s", r"\S", ".", "[a-eK]", "[^ab]", r"[\w.]", r"[^\W\d]", "[İı]", "i", "s",
         "k", "ß", "_", "①", "²", "é", "\u0301", r"\x1c", " ", r"\.", "x", "S", "[0-9]", "σ"]


@cache
def prelude() -> Prelude:
    rng = random.Random(1234)
    lines = ["".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 12))) for _ in range(400)]
    files = {f"f{n}.txt": "\n".join(lines[n * 100 : (n + 1) * 100]) + "\n" for n in range(4)}
    prelude = Prelude(Path(tempfile.mkdtemp(prefix="rlm-grep-dialect-")), files)
    prelude.files = files  # type: ignore[attr-defined]
    return prelude


def patterns() -> st.SearchStrategy[str]:
    atom = st.sampled_from(ATOMS)
    quantified = st.tuples(atom, st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}", "+?"])).map("".join)
    sequence = st.lists(quantified, min_size=1, max_size=4).map("".join)
    body = st.recursive(sequence, lambda inner: st.one_of(
        st.tuples(inner, inner).map("|".join),
        # no (?:x+)+: Python's backtracking takes exponential time on those, whoever runs them
        st.tuples(inner, st.sampled_from(["", "?"])).map(lambda t: f"(?:{t[0]}){t[1]}"),
        inner.map(lambda p: f"(?i:{p})"),
        st.tuples(inner, inner).map("".join),
    ), max_leaves=6)
    edge = st.sampled_from(["", "", r"\b", r"\B", "^"])
    return st.tuples(st.sampled_from(["", "", "(?i)", "(?a)"]), edge, body, st.sampled_from(["", "", r"\b", r"\B", "$"])
                     ).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns())
def test_random_patterns_match_the_lines_python_matches(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error:
        return
    tested = prelude()
    hits = tested.grep(pattern, max_hits=None)
    assert hits == expected_hits(tested.files, pattern), (pattern, tested.engine(pattern))


def test_most_random_patterns_go_to_ripgrep() -> None:
    """The property above is not won by always falling back: most patterns of the same kind go to rg."""
    rng = random.Random(7)
    tested = prelude()
    sample = [rng.choice(["", "(?i)"]) + rng.choice(["", r"\b", "^"])
              + "".join(rng.choice(ATOMS) + rng.choice(["", "+", "?", "{1,3}"]) for _ in range(rng.randrange(1, 5)))
              + rng.choice(["", r"\b", "$"]) for _ in range(300)]
    valid = [pattern for pattern in sample if _compiles(pattern)]
    on_python = [pattern for pattern in valid if tested.engine(pattern) is None]
    assert len(on_python) < 0.25 * len(valid), on_python[:20]
    for pattern in valid[:60]:
        assert tested.grep(pattern, max_hits=None) == expected_hits(tested.files, pattern), pattern


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True
