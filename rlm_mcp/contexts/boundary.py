"""The file boundary: the one place that decides which directories a caller may read.

Three kinds of caller reach the loader, and each gets the rule its trust earns (`read_scope`):

- `Reader.LOCAL_CLIENT` -- the MCP client over stdio: the user's own editor, started by the user, so the
  workspace roots it declares count as allowed roots beside `RLM_ALLOWED_ROOTS`.
- `Reader.REMOTE_CLIENT` -- an MCP client over HTTP, known only by its bearer token: only
  `RLM_ALLOWED_ROOTS` counts. Roots it declares may choose *among* the allowed roots (a declared root inside
  one is what a call without a source loads) but never widen them; a declared root outside is refused by
  name before anything is read (`DeclaredRootOutside`).
- `Reader.PYTHON_API` -- `RLM(...).complete(query, paths)` and `rlm-mcp ask`: the process's own user named
  the paths, so each named path (its directory, for a file) is allowed too.

The scope's roots then go to the walk (walk.py), which resolves every source, `..` and symlink and checks the
real path against them with `within` -- the same test used here, so "inside" means one thing everywhere.
"""

from __future__ import annotations

import nturl2path
import os
import re
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from .errors import DeclaredRootOutside, UnusableRootUri

_ESCAPED_DRIVE = re.compile(r"^/([A-Za-z])%3[Aa](?=/|$)")


class Reader(StrEnum):
    """Who asks to read, which decides whose roots count (see the module docstring)."""

    LOCAL_CLIENT = "stdio client"
    REMOTE_CLIENT = "HTTP client"
    PYTHON_API = "Python API"


@dataclass(frozen=True, slots=True)
class ReadScope:
    """What one load may read (`roots`, resolved) and what it loads when the call names no source."""

    roots: tuple[Path, ...]
    default_sources: tuple[str, ...]


def read_scope(reader: Reader, allowed: Sequence[Path], declared: Sequence[str] = ()) -> ReadScope:
    """The roots `reader` may read and its default sources.

    `allowed` is RLM_ALLOWED_ROOTS, resolved. `declared` is what the caller brings: the `file://` URIs of
    a client's workspace roots (other schemes are not directories and are passed over), or the paths a
    Python API caller named. Raises DeclaredRootOutside or UnusableRootUri for a remote client.
    """
    allowed = tuple(allowed)
    if reader is Reader.PYTHON_API:
        named = [Path(path).expanduser().resolve() for path in declared]
        return ReadScope(allowed + tuple(p if p.is_dir() else p.parent for p in named), tuple(map(str, named)))
    remote = reader is Reader.REMOTE_CLIENT
    workspace = [(uri, path) for uri in declared if (path := path_of_root(uri, strict=remote))]
    paths = tuple(path for _, path in workspace)
    if not remote:
        return ReadScope(allowed + tuple(map(Path, paths)), paths or (str(Path.cwd()),))
    for uri, path in workspace:
        real = os.path.realpath(path)
        if not any(within(real, os.path.realpath(root)) for root in allowed):
            raise DeclaredRootOutside(uri, Path(real), allowed)
    return ReadScope(allowed, paths or tuple(map(str, allowed)))


def path_of_root(uri: str, *, strict: bool, windows: bool = os.name == "nt") -> str | None:
    """The local path a client's root URI names, percent-escapes decoded (so `%2e%2e` is `..`, which the
    resolution that follows takes apart), or None for a URI that is not a `file:` one.

    A `file:` URI naming another host (`file://server/share`) is no path of this machine: with `strict`
    (a remote client) that is an error, else it is passed over. `windows` picks the drive-letter reading
    (`file:///C:/src` -> `C:\\src`), which is how Windows spells a local path in a URI."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc not in ("", "localhost") and not windows:
        if strict:
            raise UnusableRootUri(uri, f"it names the host {parts.netloc!r}, not this machine")
        return None
    to_path = nturl2path.url2pathname if windows else urllib.request.url2pathname
    raw = f"//{parts.netloc}{parts.path}" if windows and parts.netloc not in ("", "localhost") else parts.path
    if windows:  # VS Code escapes the drive's colon (file:///c%3A/src), which nturl2path does not expect
        raw = _ESCAPED_DRIVE.sub(r"/\1:", raw)
    path = to_path(raw)
    if "\x00" in path or not path:
        if strict:
            raise UnusableRootUri(uri, "its path is empty or holds a NUL character")
        return None
    return path


def within(path: str, root: str) -> bool:
    """True when resolved `path` is `root` or below it (a string test on resolved paths; case-folded where
    the filesystem folds case, as on Windows)."""
    path, root = os.path.normcase(path), os.path.normcase(root)
    return path == root or path.startswith(root if root.endswith(os.sep) else root + os.sep)
