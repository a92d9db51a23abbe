"""Git ignore rules with per-directory semantics, evaluated while walking.

Git reads `.git/info/exclude` at the top of the work tree and a `.gitignore` in every directory; the
patterns of a `.gitignore` are relative to the directory that holds it, and deeper files override
shallower ones (the last matching pattern wins, `!negation` included). `IgnoreRules` is an immutable
stack of such layers: the walker pushes a layer when it enters a directory that has a `.gitignore`,
and children share their parent's stack without copying it.

Not supported (documented limitation): the user's global excludes file (`core.excludesFile`) and
`.gitattributes`-based rules.
"""

from __future__ import annotations

import os
import re

from pathspec import GitIgnoreSpec

__all__ = ["IgnoreRules", "find_git_top", "rule_inputs", "rules_for"]


class IgnoreRules:
    """A stack of (base prefix, compiled .gitignore) layers, outermost first.

    Paths given to `ignored` are relative to the walk's ignore top (the git work tree, or the walked
    directory when there is no repository), posix-separated, without a leading slash.
    """

    __slots__ = ("_layers",)

    def __init__(self, layers: tuple[tuple[str, _Layer], ...] = ()) -> None:
        self._layers = layers

    def push_file(self, base: str, ignore_file: str) -> IgnoreRules:
        """A new stack with the patterns of `ignore_file` (relative to `base`, e.g. 'sub/dir/').

        An unreadable or empty file leaves the stack unchanged: git ignores such files too.
        """
        try:
            with open(ignore_file, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return self
        lines = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
        if not lines:
            return self
        return IgnoreRules((*self._layers, (base, _Layer(GitIgnoreSpec.from_lines(lines)))))

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """True when the last matching pattern of all layers ignores `rel`."""
        if not self._layers:
            return False
        result: bool | None = None
        probe = rel + "/" if is_dir else rel
        for base, layer in self._layers:
            include = layer.check(probe[len(base) :])
            if include is not None:
                result = include
        return bool(result)


class _Layer:
    """One .gitignore compiled to a single regex: one `re.match` per path instead of one per pattern.

    The patterns' regexes (from pathspec's gitwildmatch translation) are joined in *reverse* order, so
    the first alternative that matches is the last matching pattern -- git's "last match wins" -- and
    `lastgroup` names it. Falls back to `GitIgnoreSpec.check_file` if the regexes cannot be combined.
    A test cross-checks both on many paths.
    """

    __slots__ = ("_include", "_regex", "_spec")

    def __init__(self, spec: GitIgnoreSpec) -> None:
        self._spec = spec
        self._regex: re.Pattern[str] | None = None
        self._include: dict[str, bool] = {}
        alts: list[str] = []
        for i, pat in reversed(list(enumerate(spec.patterns))):
            regex = getattr(pat, "regex", None)
            if regex is None or pat.include is None:
                continue
            group = f"p{i}"
            self._include[group] = bool(pat.include)
            alts.append(f"(?P<{group}>{regex.pattern.replace('(?P<ps_d>', '(?:')})")
        try:
            self._regex = re.compile("|".join(alts), re.DOTALL) if alts else None
        except re.error:  # pragma: no cover - depends on pathspec internals
            self._regex = None
            self._include = {}

    def check(self, path: str) -> bool | None:
        """True: ignored, False: re-included by `!pattern`, None: no pattern matched."""
        if self._regex is None:
            return self._spec.check_file(path).include
        m = self._regex.match(path)
        return None if m is None or m.lastgroup is None else self._include[m.lastgroup]


def find_git_top(start: str, stop: str) -> str | None:
    """The nearest directory at or above `start` (but not above `stop`) holding a `.git` entry.

    The search stops at the allowed root so no ignore file outside the roots is ever read.
    """
    d = start
    while True:
        if os.path.lexists(os.path.join(d, ".git")):
            return d
        if d == stop or len(d) <= len(stop):
            return None
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def rule_inputs(walk_root: str, allowed_root: str) -> list[str]:
    """Every path whose change can change `rules_for(walk_root, allowed_root)`: each directory from `walk_root`
    up to the allowed root (a `.git` or `.gitignore` appearing in it changes its mtime), each one's
    `.gitignore` (edited in place) and the repository's `.git/info/exclude` (rlm_mcp/contexts/snapshot.py
    stats them to prove the rules unchanged without reading them)."""
    chain, d = [], walk_root
    while True:
        chain.append(d)
        parent = os.path.dirname(d)
        if d == allowed_root or len(d) <= len(allowed_root) or parent == d:
            break
        d = parent
    top = find_git_top(walk_root, allowed_root)
    exclude = [os.path.join(top, ".git", "info", "exclude")] if top is not None else []
    return chain + [os.path.join(d, ".gitignore") for d in chain] + exclude


def rules_for(walk_root: str, allowed_root: str) -> tuple[IgnoreRules, str]:
    """Rules in force *above* `walk_root` and the prefix of `walk_root` relative to the ignore top.

    Loads `.git/info/exclude` and the `.gitignore` of every directory from the git top down to the
    parent of `walk_root` (the walker itself reads `walk_root/.gitignore` and below).
    """
    top = find_git_top(walk_root, allowed_root)
    if top is None:
        return IgnoreRules(), ""
    rules = IgnoreRules().push_file("", os.path.join(top, ".git", "info", "exclude"))
    rel = os.path.relpath(walk_root, top)
    if rel == ".":
        return rules, ""
    parts = rel.split(os.sep)
    d = top
    base = ""
    for part in parts:
        rules = rules.push_file(base, os.path.join(d, ".gitignore"))
        d = os.path.join(d, part)
        base = f"{base}{part}/"
    return rules, base
