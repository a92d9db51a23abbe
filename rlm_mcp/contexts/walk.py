"""Resolve sources (files, directories, globs) inside the allowed roots and walk them fast.

The walk is `os.scandir`-based and prunes ignored directories before entering them, so a monorepo
with a huge ignored `node_modules/` or `build/` costs one directory entry, not its 100k files. It only
stats; reading the files is the store's job. The result carries what the reuse fingerprint needs
(path, size, mtime_ns of every selected file) so an unchanged tree can be recognised without reading.

Decisions (documented here because the summary reflects them):
- A file named explicitly is loaded even when .gitignore would ignore it (the user asked for it);
  directories and globs honour ignore rules and LoadLimits.skip_dirs.
- Glob syntax: `*` and `?` stay within one path segment, `**` spans any number of segments (zero
  included), `[...]` is a character class; `*` also matches dot-files.
- Symlinks: see LoadLimits.follow_symlinks. Entries are reported under the link's path.
- A directory tagged as a cache (a CACHEDIR.TAG file with its signature, as rlm-mcp's own store under
  RLM_HOME is) is skipped below a source, like an ignored one.
"""

from __future__ import annotations

import operator
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..progress import Progress
from .boundary import within
from .errors import ContextTooLarge, OutsideAllowedRoots, SourceNotFound
from .ignore import IgnoreRules, rule_inputs, rules_for
from .languages import BINARY_EXTENSIONS
from .models import FileSize, LoadLimits

__all__ = ["Candidate", "WalkResult", "glob_to_regex", "restat", "walk_sources"]

_MAGIC = re.compile(r"[*?\[]")
_NAME = operator.attrgetter("name")
_PROGRESS_EVERY = 200


@dataclass(slots=True)
class Candidate:
    """A selected file: where to read it and what the fingerprint hashes."""

    real: str  # path to open (through followed symlinks)
    logical: str  # absolute path as the user sees it (under the link's name)
    size: int
    mtime_ns: int
    ctime_ns: int  # changes on chmod too: a file that became unreadable is noticed


@dataclass
class WalkResult:
    """Output of `walk_sources`: files to read in order, and everything that was left out."""

    candidates: list[Candidate] = field(default_factory=list)
    too_large: list[FileSize] = field(default_factory=list)  # logical absolute paths
    roots: list[str] = field(default_factory=list)  # resolved source roots, in source order
    bases: list[str] = field(default_factory=list)  # dirs manifest paths may be relative to
    ignored: int = 0
    binary: int = 0
    outside_roots: int = 0
    symlinks: int = 0
    unreadable: int = 0
    fingerprint_parts: list[str] = field(default_factory=list)
    # Which files were left out and why, for a live context's notes about files it had before.
    binary_paths: list[str] = field(default_factory=list)
    outside_paths: list[str] = field(default_factory=list)
    unreadable_paths: list[str] = field(default_factory=list)
    missing_sources: list[str] = field(default_factory=list)  # only with walk_sources(missing_ok=True)
    # Directories holding selected files the walk did not enter (named files, symlinked files): a watcher
    # gets the entered ones from walk_sources(on_directory=...) and these after the walk.
    outside_dirs: list[str] = field(default_factory=list)
    # What rlm_mcp/contexts/snapshot.py needs to prove a later walk would find the same: each directory
    # entered, stat'ed before it was listed (real path, mtime_ns, ctime_ns; -1s when it could not be),
    # the stat of every file the ignore rules were read from or could be (Stat.MISSING when absent),
    # each source as given (absolute) with what it resolved to, and the too-large files' stats.
    dir_stats: list[tuple[str, int, int]] = field(default_factory=list)
    rule_stats: list[tuple[str, int, int, int]] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)
    too_large_stats: list[tuple[str, int, int, int]] = field(default_factory=list)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a posix glob (relative, '/'-separated) to a regex matched against relative paths."""
    parts = pattern.split("/")
    out: list[str] = []
    for i, seg in enumerate(parts):
        last = i == len(parts) - 1
        if seg == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
            continue
        out.append(_segment_regex(seg))
        if not last:
            out.append("/")
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _segment_regex(seg: str) -> str:
    res: list[str] = []
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        i += 1
        if c == "*":
            res.append("[^/]*")
        elif c == "?":
            res.append("[^/]")
        elif c == "[":
            j = i
            if j < n and seg[j] in "!^":
                j += 1
            if j < n and seg[j] == "]":
                j += 1
            while j < n and seg[j] != "]":
                j += 1
            if j >= n:
                res.append(re.escape(c))
                continue
            body = seg[i:j].replace("\\", "\\\\")
            i = j + 1
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            res.append(f"(?!/)[{body}]")
        else:
            res.append(re.escape(c))
    return "".join(res)


class _Walker:
    """One load's walk state: limits, allowed roots, counters and the de-duplication sets."""

    def __init__(
        self,
        roots: Sequence[str],
        limits: LoadLimits,
        on_progress: Progress | None,
        on_directory: Callable[[str], None] | None = None,
    ) -> None:
        self.roots = list(roots)
        self.limits = limits
        self.on_progress = on_progress
        self.on_directory = on_directory
        self.res = WalkResult()
        self.seen_files: set[str] = set()
        self.seen_dirs: set[str] = set()
        self.named: set[str] = set()  # files given as sources themselves
        self.source_root = ""  # real path of the source being walked

    # -- roots ---------------------------------------------------------------------------------
    def root_of(self, real: str) -> str | None:
        """The allowed root containing `real` (already resolved), or None."""
        for r in self.roots:
            if within(real, r):
                return r
        return None

    def walk_source(self, real: str, root: str, relative_base: str | None) -> None:
        """Walk one source that exists inside `root`: a directory with its ignore rules, or a named file."""
        res = self.res
        if os.path.isdir(real):
            res.roots.append(real)
            res.bases.append(_base_for(real, relative_base))
            self.source_root = real
            res.rule_stats += [stat_of_file(path) for path in rule_inputs(real, root)]
            rules, prefix = rules_for(real, root)
            self.walk(real, real, rules, prefix, "", None, None)
            return
        res.roots.append(os.path.dirname(real))
        res.bases.append(_base_for(os.path.dirname(real), relative_base))
        try:
            st = os.stat(real)
        except OSError:
            res.unreadable += 1
            return
        self.add_file(real, real, st, named=True)
        self.named.add(real)

    # -- selection -----------------------------------------------------------------------------
    def add_file(self, real: str, logical: str, st: os.stat_result, *, named: bool = False) -> None:
        """`named`: the user gave this very file, so max_file_bytes (meant for what a walk stumbles on, such
        as lock files and generated code) does not apply; max_total_bytes still does. (The hot loop of a
        walk: ~24k calls on a 292 MB tree, so no os.path.splitext here.)"""
        if logical in self.seen_files:
            return
        self.seen_files.add(logical)
        res = self.res
        dot = logical.rfind(".")
        if dot > max(logical.rfind("/"), logical.rfind(os.sep)) + 1 and logical[dot:].lower() in BINARY_EXTENSIONS:
            res.binary += 1
            res.binary_paths.append(logical)
            res.fingerprint_parts.append(f"b\0{logical}")
            return
        if st.st_size > self.limits.max_file_bytes and not named:
            res.too_large.append(FileSize(logical, st.st_size))
            res.too_large_stats.append((real, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
            res.fingerprint_parts.append(f"L\0{logical}\0{st.st_size}\0{st.st_mtime_ns}")
            return
        candidate = Candidate(real, logical, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        res.candidates.append(candidate)
        res.fingerprint_parts.append(_part(candidate))
        n = len(res.candidates)
        if n > self.limits.max_files:
            raise ContextTooLarge("files", n, self.limits.max_files, _biggest_dirs(res.candidates))
        if self.on_progress is not None and n % _PROGRESS_EVERY == 0:
            self.on_progress(n, None, f"scanning: {n} files selected")

    def listing(self, real_dir: str, logical_dir: str, rules: IgnoreRules,
                ign_prefix: str) -> tuple[list[os.DirEntry[str]], IgnoreRules] | None:
        """A directory's entries in name order and the ignore rules inside it; None when it cannot be read or
        is a cache directory (CACHEDIR.TAG). The watcher and the snapshot note it before it is listed."""
        self.seen_dirs.add(real_dir)
        if self.on_directory is not None:
            self.on_directory(real_dir)  # before the listing: whatever changes after it is an event
        self.res.dir_stats.append(stat_of_dir(real_dir))  # before the listing too (rlm_mcp/contexts/snapshot.py)
        try:
            with os.scandir(real_dir) as it:
                entries = sorted(it, key=_NAME)
        except OSError:
            self.res.unreadable += 1
            self.res.unreadable_paths.append(logical_dir)
            return None
        names = {e.name: e for e in entries}
        if ".gitignore" in names:
            self.res.rule_stats.append(stat_of_file(names[".gitignore"].path))
            rules = rules.push_file(ign_prefix, names[".gitignore"].path)
        if CACHEDIR_TAG in names:
            self.res.rule_stats.append(stat_of_file(names[CACHEDIR_TAG].path))
        if CACHEDIR_TAG in names and real_dir != self.source_root and _is_cache_dir(names[CACHEDIR_TAG].path):
            self.res.ignored += 1  # e.g. rlm-mcp's own store: a live context must not swallow itself
            return None
        return entries, rules

    def kind_of(self, e: os.DirEntry[str], logical: str) -> tuple[str, bool, bool, os.stat_result] | None:
        """(real path, is a directory, is a regular file, its stat) of one entry, symlinks resolved; None when
        it is skipped (a symlink not followed or pointing outside the roots) or cannot be read -- counted."""
        res = self.res
        try:
            if not e.is_symlink():
                is_dir = e.is_dir(follow_symlinks=False)
                is_file = not is_dir and e.is_file(follow_symlinks=False)
                st = e.stat(follow_symlinks=False) if is_file else None
                return e.path, is_dir, is_file, st  # type: ignore[return-value]
            if not self.limits.follow_symlinks:
                res.symlinks += 1
                return None
            real = os.path.realpath(e.path)
            if self.root_of(real) is None:
                res.outside_roots += 1
                res.outside_paths.append(logical)
                return None
            st = os.stat(real)
            return real, stat.S_ISDIR(st.st_mode), stat.S_ISREG(st.st_mode), st
        except OSError:
            res.unreadable += 1
            res.unreadable_paths.append(logical)
            return None

    def walk(
        self,
        real_dir: str,
        logical_dir: str,
        rules: IgnoreRules,
        ign_prefix: str,
        src_prefix: str,
        match: re.Pattern[str] | None,
        max_depth: int | None,
    ) -> None:
        """Depth-first walk of one directory, entries in name order."""
        listed = self.listing(real_dir, logical_dir, rules, ign_prefix)
        if listed is None:
            return
        entries, rules = listed
        res = self.res
        limits = self.limits
        prefix = logical_dir if logical_dir.endswith("/") else logical_dir + "/"
        skip_dirs, skip_paths, ignored, add_file = limits.skip_dirs, limits.skip_paths, rules.ignored, self.add_file
        for e in entries:
            name = e.name
            logical = prefix + name
            kind = self.kind_of(e, logical)
            if kind is None:
                continue
            real, is_dir, is_file, st = kind
            if is_dir:
                if name in skip_dirs or ignored(ign_prefix + name, True) or real in skip_paths:
                    res.ignored += 1
                    continue
                if max_depth is not None and max_depth <= 1:
                    continue
                if real != e.path and (within(real, self.source_root) or real in self.seen_dirs):
                    # A link back into the tree being walked (its files come through their real
                    # path), a cycle, or a second way into a directory already walked.
                    res.symlinks += 1
                    continue
                self.walk(
                    real,
                    logical,
                    rules,
                    f"{ign_prefix}{name}/",
                    f"{src_prefix}{name}/",
                    match,
                    None if max_depth is None else max_depth - 1,
                )
            elif is_file:
                if ignored(ign_prefix + name, False):
                    res.ignored += 1
                    continue
                if match is not None and match.match(src_prefix + name) is None:
                    continue
                add_file(real, logical, st)


def walk_sources(
    sources: Sequence[str],
    *,
    allowed_roots: Sequence[Path],
    limits: LoadLimits,
    base_dir: Path | None = None,
    on_progress: Progress | None = None,
    missing_ok: bool = False,
    on_directory: Callable[[str], None] | None = None,
) -> WalkResult:
    """Resolve every source, check it against the allowed roots, and walk it.

    Raises SourceNotFound, OutsideAllowedRoots or ContextTooLarge (max_files). With `missing_ok` (a
    live context re-walking what it loaded), a source that no longer exists or now resolves outside
    the roots is listed in `missing_sources` instead, and the others are walked. `on_directory` is
    called with each directory's real path before the walk lists it (a live context's watcher).
    """
    base = os.path.abspath(base_dir if base_dir is not None else os.getcwd())
    base_real = os.path.realpath(base)
    roots = [os.path.realpath(r) for r in allowed_roots]
    w = _Walker(roots, limits, on_progress, on_directory)
    for source in sources:
        expanded = os.path.expanduser(source)
        absolute = os.path.normpath(os.path.join(base, expanded))
        w.res.resolved.append((absolute, os.path.realpath(absolute)))
        # Relative sources keep the user's naming: 'src/**/*.py' stores 'src/a.py', not 'a.py'.
        relative_base = base_real if not os.path.isabs(expanded) else None
        try:
            if _MAGIC.search(expanded):
                _walk_glob(w, source, absolute, relative_base)
                continue
            real = os.path.realpath(absolute)
            root = w.root_of(real)  # before any existence test: outside a root, nothing is told, not even that
            if root is None:
                raise OutsideAllowedRoots(source, Path(real), [Path(r) for r in roots])
            if not os.path.exists(real):
                raise SourceNotFound(source, Path(absolute))
        except (SourceNotFound, OutsideAllowedRoots):
            if not missing_ok:
                raise
            w.res.missing_sources.append(source)
            continue
        w.walk_source(real, root, relative_base)
    # Named files and symlinked files live in directories the walk did not enter: watch those too.
    outside_walk = {os.path.dirname(c.real) for c in w.res.candidates if c.real != c.logical or c.real in w.named}
    w.res.outside_dirs = sorted(outside_walk - w.seen_dirs)
    return w.res


def _base_for(real: str, relative_base: str | None) -> str:
    return relative_base if relative_base is not None and within(real, relative_base) else real


def _walk_glob(w: _Walker, source: str, absolute: str, relative_base: str | None) -> None:
    parts = absolute.split(os.sep)
    first_magic = next(i for i, p in enumerate(parts) if _MAGIC.search(p))
    prefix = os.sep.join(parts[:first_magic]) or os.sep
    rest = parts[first_magic:]
    real = os.path.realpath(prefix)
    root = w.root_of(real)
    if root is None:
        raise OutsideAllowedRoots(source, Path(real), [Path(r) for r in w.roots])
    if not os.path.isdir(real):
        raise SourceNotFound(source, Path(prefix), is_glob=True)
    w.res.roots.append(real)
    w.res.bases.append(_base_for(real, relative_base))
    w.source_root = real
    before = len(w.res.candidates) + len(w.res.too_large) + w.res.binary
    w.res.rule_stats += [stat_of_file(path) for path in rule_inputs(real, root)]
    rules, ign_prefix = rules_for(real, root)
    max_depth = None if "**" in rest else len(rest)
    w.walk(real, real, rules, ign_prefix, "", glob_to_regex("/".join(rest)), max_depth)
    if len(w.res.candidates) + len(w.res.too_large) + w.res.binary == before:
        raise SourceNotFound(source, Path(absolute), is_glob=True)


CACHEDIR_TAG = "CACHEDIR.TAG"
CACHEDIR_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"  # https://bford.info/cachedir/


def restat(walked: WalkResult, moved: Sequence[tuple[int, os.stat_result]], limits: LoadLimits) -> WalkResult | None:
    """What a walk would find now that the files at these positions of `walked`'s snapshot (its candidates,
    then its too-large files: rlm_mcp/contexts/snapshot.py) were edited in place and nothing else moved;
    None when one of them crossed the size limit either way (it changes sides: a walk must file it)."""
    candidates, parts = list(walked.candidates), list(walked.fingerprint_parts)
    where: dict[str, int] = {}
    for at, st in moved:
        if at >= len(candidates) or st.st_size > limits.max_file_bytes:
            return None
        old = candidates[at]
        candidates[at] = new = Candidate(old.real, old.logical, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        where = where or {part: index for index, part in enumerate(parts)}
        parts[where[_part(old)]] = _part(new)
    return replace(walked, candidates=candidates, fingerprint_parts=parts, binary_paths=list(walked.binary_paths),
                   unreadable_paths=list(walked.unreadable_paths))


def _part(candidate: Candidate) -> str:
    """A selected file's part of the fingerprint (rlm_mcp/contexts/store.py hashes them all)."""
    return f"f\0{candidate.logical}\0{candidate.size}\0{candidate.mtime_ns}\0{candidate.ctime_ns}"


def stat_of_dir(path: str) -> tuple[str, int, int]:
    """(path, mtime_ns, ctime_ns): a directory's mtime moves when an entry is added, removed or renamed in
    it, its ctime when its permissions change too; (path, -1, -1) when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return path, -1, -1
    return path, st.st_mtime_ns, st.st_ctime_ns


def stat_of_file(path: str) -> tuple[str, int, int, int]:
    """(path, size, mtime_ns, ctime_ns), or (path, -1, -1, -1) when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return path, -1, -1, -1
    return path, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _is_cache_dir(tag: str) -> bool:
    """A directory tagged as a cache (the Cache Directory Tagging convention tar and backup tools honour)."""
    try:
        with open(tag, "rb") as handle:
            return handle.read(len(CACHEDIR_SIGNATURE)) == CACHEDIR_SIGNATURE
    except OSError:
        return False


def _biggest_dirs(cands: Sequence[Candidate], top: int = 5) -> list[tuple[str, int]]:
    """Top directories by bytes (two levels below the common root) for ContextTooLarge messages."""
    if not cands:
        return []
    common = os.path.commonpath([os.path.dirname(c.logical) for c in cands])
    sizes: dict[str, int] = {}
    for c in cands:
        rel = os.path.relpath(c.logical, common).split(os.sep)
        key = "/".join(rel[:2]) if len(rel) > 2 else (rel[0] if len(rel) > 1 else ".")
        sizes[key] = sizes.get(key, 0) + c.size
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:top]
