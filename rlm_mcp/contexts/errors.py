"""Errors raised while turning text, files, directories and globs into a stored context.

Every message names the problem *and* the fix, because the caller usually forwards it verbatim to a
model or a user who has to decide what to do next.

Error tree (a subtree of rlm_mcp.errors)::

    ContextError                  base class: catch this to handle every loading failure
    ├── InvalidContextName        the name cannot be used as a directory / REPL key
    ├── SourceNotFound            a path does not exist or a glob matched nothing
    ├── OutsideAllowedRoots       a source resolves (symlinks and `..` included) outside every allowed root
    ├── DeclaredRootOutside       an HTTP client declared a workspace root outside RLM_ALLOWED_ROOTS
    ├── UnusableRootUri           a client declared a root whose URI names no local path
    └── ContextTooLarge           more files or bytes than LoadLimits allows
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import RlmMcpError

__all__ = [
    "ContextError",
    "ContextTooLarge",
    "DeclaredRootOutside",
    "InvalidContextName",
    "OutsideAllowedRoots",
    "SourceNotFound",
    "UnusableRootUri",
]


class ContextError(RlmMcpError):
    """Base class of every error of the contexts component."""


class InvalidContextName(ContextError):
    """The context name is not a safe identifier (it becomes a directory name and a REPL key)."""

    def __init__(self, name: str, pattern: str) -> None:
        self.name = name
        self.pattern = pattern
        super().__init__(
            f"{name!r} is not a valid context name. Use 1-64 characters: a letter or '_' first, then "
            f"letters, digits, '_' or '-' (regex {pattern}), e.g. 'main' or 'logs_2024'."
        )


class SourceNotFound(ContextError):
    """A source path does not exist, or a glob matched no loadable file."""

    def __init__(self, source: str, resolved: Path | None, *, is_glob: bool = False) -> None:
        self.source = source
        self.resolved = resolved
        where = f" (resolved to {resolved})" if resolved is not None and str(resolved) != source else ""
        if is_glob:
            msg = (
                f"The glob {source!r}{where} matched no loadable file (ignored, binary and oversized "
                "files do not count). Check the pattern, e.g. 'src/**/*.py', and the base directory."
            )
        else:
            msg = (
                f"{source!r}{where} does not exist. Pass an existing file, directory or glob; relative "
                "paths are resolved against the working directory."
            )
        super().__init__(msg)


class OutsideAllowedRoots(ContextError):
    """A source resolves outside every allowed root (after resolving symlinks and `..`)."""

    def __init__(self, source: str, resolved: Path, roots: Sequence[Path]) -> None:
        self.source = source
        self.resolved = resolved
        self.roots = tuple(roots)
        shown = ", ".join(str(r) for r in roots) or "none"
        via = f" (resolves to {resolved})" if str(resolved) != source else ""
        super().__init__(
            f"{source!r}{via} is outside the allowed roots ({shown}). Load a path inside a root, or ask the "
            "user to add the folder: RLM_ALLOWED_ROOTS, `rlm-mcp install <host> --root FOLDER`, or the folders "
            "in Claude Desktop's settings for the rlm extension."
        )


class DeclaredRootOutside(ContextError):
    """A client over HTTP declared a workspace root outside RLM_ALLOWED_ROOTS (contexts/boundary.py): its
    roots may choose among the allowed roots, never widen them, so nothing is read."""

    def __init__(self, uri: str, resolved: Path, roots: Sequence[Path]) -> None:
        super().__init__(
            f"your client declared the workspace root {uri!r} (resolves to {resolved}), which is outside this "
            f"server's RLM_ALLOWED_ROOTS ({', '.join(map(str, roots)) or 'none'}). Over HTTP a client's roots "
            "may only pick among the allowed roots: pass `source` with a path inside one of them, or ask "
            "whoever runs the server to add the directory to RLM_ALLOWED_ROOTS. Nothing was read.",
        )
        self.source, self.resolved, self.roots = uri, resolved, tuple(roots)


class UnusableRootUri(ContextError):
    """A client declared a root whose `file:` URI names no path of this machine."""

    def __init__(self, uri: str, why: str) -> None:
        super().__init__(f"your client declared the workspace root {uri!r}, but {why}: pass `source` with a "
                         "path on the server instead. Nothing was read.")
        self.uri = uri


class ContextTooLarge(ContextError):
    """The selection exceeds LoadLimits.max_files or LoadLimits.max_total_bytes.

    `suggestions` lists the biggest directories (path, bytes) so the caller can say what to narrow.
    """

    def __init__(
        self,
        what: str,
        amount: int,
        limit: int,
        suggestions: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.what = what
        self.amount = amount
        self.limit = limit
        self.suggestions = tuple(suggestions)
        biggest = ""
        if suggestions:
            shown = ", ".join(f"{p} ({_human(n)})" for p, n in suggestions)
            biggest = f" The biggest parts are: {shown}."
        amount_s = _human(amount) if what == "bytes" else f"{amount:,} files"
        limit_s = _human(limit) if what == "bytes" else f"{limit:,} files"
        super().__init__(
            f"The selection has more than {limit_s} (at least {amount_s} so far).{biggest} Narrow it: "
            "load a subdirectory or a glob such as 'src/**/*.py', add the bulky paths to .gitignore, "
            f"or raise the limit (max_total_bytes / max_files)."
        )


def _human(n: int) -> str:
    """Bytes for people: 1536 -> '1.5 KiB'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
