"""Value types of the contexts component: the limits a load obeys and the summary it returns.

Both are frozen dataclasses so they can be shared between threads and cached safely; the summary is
JSON-serialisable through `StoredContext.to_dict()` and never carries the content itself, because it is
what goes back to a model with a small context window.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

__all__ = [
    "CONTEXT_NAME_RE",
    "DEFAULT_SKIP_DIRS",
    "FILE_HEADER",
    "FORMAT_VERSION",
    "FileSize",
    "LoadLimits",
    "SkipCounts",
    "StoredContext",
]

#: Version of the on-disk layout (content.txt + manifest.json + summary.json); bump when it changes so
#: stale stores are rewritten instead of reused.
FORMAT_VERSION = 3

#: Header written before each file body in a "files" context. `{path}` is the manifest path (relative,
#: posix). The manifest's `start`/`end` point at the body only, never at the header, so
#: `context[start:end]` is exactly the file's decoded text.
FILE_HEADER = "\n===== {path} =====\n"

#: Context names become a directory name and a key in the REPL: keep them boring.
CONTEXT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")

#: Directory names never descended into, with or without a .gitignore saying so: VCS metadata and
#: dependency/cache trees that are never what the user means by "the code" and can hold 100k+ files.
#: `dist/` and `build/` are NOT here: they are skipped only when a .gitignore says so.
DEFAULT_SKIP_DIRS: frozenset[str] = frozenset(
    {
        ".git", ".hg", ".svn", ".jj",
        "node_modules", ".venv", "__pycache__",
        ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox",
    }
)  # fmt: skip

Kind = Literal["text", "files"]


@dataclass(frozen=True)
class LoadLimits:
    """What a single load may read. Defaults suit a 50k-file monorepo on a laptop.

    max_file_bytes: files a directory walk or glob finds that are larger than this (bytes on disk,
        default 2 MiB) are skipped and listed in the summary's `too_large_files` -- usually generated
        code, lock files, data dumps. A file named directly as a source is always loaded.
    max_total_bytes: total bytes of loaded files (default 512 MiB); exceeding it raises
        ContextTooLarge naming the biggest directories to narrow.
    max_files: files considered after ignore rules (default 100,000); exceeding it raises
        ContextTooLarge early, before the walk runs away on a huge tree.
    follow_symlinks: follow symlinks whose target (fully resolved) lies inside an allowed root; files
        are loaded under the link's path, directories are walked once (cycles and second visits of
        the same real directory are skipped). Targets outside the roots are never followed, whatever
        this says: they are counted as `outside_roots`. False skips every symlink (counted as
        `symlinks`).
    skip_dirs: directory names never descended into (see DEFAULT_SKIP_DIRS).
    skip_paths: directories (real paths) never descended into: the server's own RLM_HOME and
        RLM_RUNTIME_DIR, whose trajectories, caches and stored texts a load of a home directory (or of a
        tree holding them) must not take in, nor a live context chase as they are written.
    """

    max_file_bytes: int = 2 * 1024 * 1024
    max_total_bytes: int = 512 * 1024 * 1024
    max_files: int = 100_000
    follow_symlinks: bool = True
    skip_dirs: frozenset[str] = DEFAULT_SKIP_DIRS
    skip_paths: frozenset[str] = frozenset()

    def key(self) -> str:
        """Stable text for the reuse fingerprint: a store made under other limits is not reused."""
        dirs = ",".join(sorted(self.skip_dirs))
        paths = "\0".join(sorted(self.skip_paths))
        return f"{self.max_file_bytes}|{self.max_total_bytes}|{self.max_files}|{self.follow_symlinks}|{dirs}|{paths}"


@dataclass(frozen=True)
class SkipCounts:
    """Why things were left out. `ignored` counts entries (a pruned directory counts once)."""

    ignored: int = 0
    binary: int = 0
    too_large: int = 0
    outside_roots: int = 0
    symlinks: int = 0
    unreadable: int = 0


@dataclass(frozen=True)
class FileSize:
    """A (path, bytes) pair for the largest / too-large lists."""

    path: str
    bytes: int


@dataclass(frozen=True)
class StoredContext:
    """Summary of a stored context: everything a caller may show a model, never the content.

    chars/bytes: length of content.txt in characters (what `len(context)` gives) and UTF-8 bytes.
    estimated_tokens: ceil(chars / 4), an offline heuristic (no tokenizer download); code tends to run
        a little denser, prose a little lighter.
    root: absolute directory that manifest paths are relative to (None for text).
    roots: the resolved source roots (each directory source, the base of each glob or file).
    decode_replaced: files that were not valid UTF-8 and were decoded with U+FFFD replacements.
    reused: True when an identical earlier store (same sources, limits and file stats) was kept as is.
    """

    name: str
    kind: Kind
    chars: int
    bytes: int
    estimated_tokens: int
    file_count: int
    languages: dict[str, int]
    largest_files: tuple[FileSize, ...]
    too_large_files: tuple[FileSize, ...]
    skipped: SkipCounts
    decode_replaced: int
    root: str | None
    roots: tuple[str, ...]
    sources: tuple[str, ...]
    content_path: str
    manifest_path: str
    fingerprint: str
    elapsed_s: float
    reused: bool = False
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredContext:
        """Inverse of to_dict, for summaries read back from disk."""
        d = dict(data)
        d["largest_files"] = tuple(FileSize(**f) for f in d["largest_files"])
        d["too_large_files"] = tuple(FileSize(**f) for f in d["too_large_files"])
        d["skipped"] = SkipCounts(**d["skipped"])
        d["roots"] = tuple(d["roots"])
        d["sources"] = tuple(d["sources"])
        return cls(**d)


def estimate_tokens(chars: int) -> int:
    """ceil(chars / 4): the usual rule of thumb for English and code, offline and instant."""
    return (chars + 3) // 4


class ManifestEntry(NamedTuple):
    """One file of a stored codebase as its manifest.json records it (rlm_mcp/contexts/store.py draws the format):
    where its body is in content.txt, in characters (`start`, `end`) and bytes (`byte_start`, `byte_end`), the
    line of content.txt it starts on, its size, lines and language, and the stat it was stored from. What leaves
    this package for a reader of the stored text (the code index: rlm_mcp/sessions/index.py)."""

    path: str
    start: int
    end: int
    byte_start: int
    byte_end: int
    first_line: int = 1
    bytes: int = 0
    lines: int = 0
    newlines: int = 0
    language: str | None = None
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    replaced: bool = False


_ENTRY_FIELDS = frozenset(ManifestEntry._fields)


def read_entries(manifest_path: str) -> list[ManifestEntry]:
    """The file entries of a manifest.json (fields a later format adds are left out, so an older reader of a
    newer store still reads it)."""
    with open(manifest_path, encoding="utf-8") as f:
        files = json.load(f).get("files") or []
    return [ManifestEntry(**{key: value for key, value in entry.items() if key in _ENTRY_FIELDS}) for entry in files]


def read_manifest(stored: StoredContext) -> dict[str, Any]:
    """The parsed manifest.json of a stored context."""
    with open(stored.manifest_path, encoding="utf-8") as f:
        result: dict[str, Any] = json.load(f)
    return result
