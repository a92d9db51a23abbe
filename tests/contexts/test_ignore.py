"""The combined-regex ignore layer agrees with pathspec's GitIgnoreSpec on every path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pathspec import GitIgnoreSpec

from rlm_mcp.contexts.ignore import _Layer

PATTERNS = [
    "*.log", "!keep.log", "build/", "/top.txt", "docs/**/*.tmp", "docs/**", "!docs/keep.md",
    "a/*/c", "**/gen", "x?.py", "[ab].txt", "!b.txt", "dir/", "!dir/", "/root-only/", "*.min.*",
    "foo/**/bar", "\\#hash", "trailing\\ ", "**", "!*.py",
]  # fmt: skip
SEGMENTS = ["a", "b", "c", "docs", "build", "gen", "keep.log", "x.log", "top.txt", "keep.md", "x1.py",
            "a.txt", "b.txt", "dir", "root-only", "app.min.js", "foo", "bar", "#hash", "z.tmp"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    patterns=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=8),
    parts=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4),
    is_dir=st.booleans(),
)
def test_layer_matches_gitignorespec(patterns: list[str], parts: list[str], is_dir: bool) -> None:
    spec = GitIgnoreSpec.from_lines(patterns)
    path = "/".join(parts) + ("/" if is_dir else "")
    assert _Layer(spec).check(path) == spec.check_file(path).include, (patterns, path)
