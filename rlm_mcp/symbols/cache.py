"""An index on disk: one marshal file per tree, shared by every server and session of the user.

marshal of plain values: several times faster to load than pickle of objects, and it only ever holds
data (a cache from another Python version simply fails to load and is rebuilt). What makes a new
server's reload of a 24k-file tree cheap (rlm_mcp/indexing.py):

- each file's row stays marshal bytes until a query reads that file (`Records`): loading 24k rows as
  objects took ~90 ms, as bytes ~12 ms; a lookup by name decodes the few files it returns;
- the name lookup is saved frozen (rlm_mcp/symbols/lookup.py);
- the counts a status line shows are saved too (`Counts`), so showing them decodes nothing;
- the file names the `version` its rows describe (a stored context's fingerprint) when they describe
  one whole version: an index of that very version is then taken as saved, with no file checked.
"""

from __future__ import annotations

import marshal
import os
import time
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import BinaryIO, NamedTuple

from .lookup import NameLookup

__all__ = ["NO_CACHE", "Cache", "Counts", "Indexed", "Records", "load_cache", "save_cache"]

CACHE_VERSION = 9  # also bumped when extraction changes: rows made by older extractors lack kinds
ROWS_PER_PART = 2000  # the cache is written and read in parts: 24k rows encoded at once took ~90 MB more


class Indexed(NamedTuple):
    """One file's entry: what the cache stores and the queries read."""

    size: int
    mtime_ns: int
    language: str | None
    symbols: str  # packed: see rlm_mcp/symbols/index.py `pack`
    imports: tuple[str, ...]
    problem: str | None


class Counts(NamedTuple):
    """What `CodeIndex.stats` reports of the records, kept with them."""

    symbols: int
    files_indexed: int
    languages: dict[str, int]
    problems: list[tuple[str, str]]  # (path, problem), every one


class Records(MutableMapping[str, Indexed]):
    """path -> Indexed, each decoded from the cache's bytes the first time it is read."""

    def __init__(self, rows: dict[str, Indexed | bytes] | None = None) -> None:
        self._rows: dict[str, Indexed | bytes] = rows if rows is not None else {}

    def __getitem__(self, path: str) -> Indexed:
        row = self._rows[path]
        if isinstance(row, bytes):
            self._rows[path] = row = Indexed(*marshal.loads(row))
        return row

    def __setitem__(self, path: str, entry: Indexed) -> None:
        self._rows[path] = entry

    def __delitem__(self, path: str) -> None:
        del self._rows[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, path: object) -> bool:
        return path in self._rows

    def copy(self) -> Records:
        return Records(dict(self._rows))

    def encoded(self, paths: Iterable[str]) -> dict[str, bytes]:
        """Those rows as bytes, for the cache: rows never read are not decoded to be encoded again."""
        return {path: row if isinstance(row := self._rows[path], bytes) else marshal.dumps(tuple(row))
                for path in paths}


class Cache(NamedTuple):
    """What a cache file holds: the rows by path, their name lookup and counts (or None), and the version
    they are of (or None)."""

    records: Records
    lookups: NameLookup | None
    counts: Counts | None
    version: str | None


NO_CACHE = Cache(Records(), None, None, None)


def load_cache(cache_path: Path | None, root: str) -> Cache:
    """The cache of the tree at `root`, or NO_CACHE (none, another format, another root, or corrupt)."""
    if cache_path is None or not cache_path.exists():
        return NO_CACHE
    try:
        parts = _parts(cache_path.read_bytes())
        format_version, cached_root, version, lookups, counts = marshal.loads(next(parts))
        if format_version != CACHE_VERSION or cached_root != root:
            return NO_CACHE
        rows: dict[str, Indexed | bytes] = {}
        for part in parts:
            rows.update(marshal.loads(part))
        return Cache(Records(rows), NameLookup(lookups) if lookups else None, Counts(*counts) if counts else None,
                     version)
    except Exception:  # a corrupt or foreign cache is rebuilt, never trusted
        return NO_CACHE


def save_cache(cache_path: Path | None, root: str, records: Records, lookups: NameLookup | None,
               counts: Counts | None, version: str | None) -> None:
    if cache_path is None:
        return
    header = (CACHE_VERSION, root, version, lookups.frozen() if lookups is not None else None,
              tuple(counts) if counts is not None else None)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary name per writer: servers share the cache, and two must never write one file together.
    temporary = cache_path.with_name(f"{cache_path.name}.{os.getpid()}.{time.time_ns():x}.tmp")
    with open(temporary, "wb") as handle:
        _write_part(handle, marshal.dumps(header))
        paths = list(records)
        for start in range(0, len(paths), ROWS_PER_PART):  # a part at a time: the save's memory stays small
            _write_part(handle, marshal.dumps(records.encoded(paths[start : start + ROWS_PER_PART])))
    temporary.replace(cache_path)


def _write_part(handle: BinaryIO, data: bytes) -> None:
    handle.write(len(data).to_bytes(8, "little"))
    handle.write(data)


def _parts(data: bytes) -> Iterator[memoryview]:
    """The length-prefixed parts of a cache file (a header, then the rows in parts)."""
    view, at = memoryview(data), 0
    while at < len(view):
        size = int.from_bytes(view[at : at + 8], "little")
        yield view[at + 8 : at + 8 + size]
        at += 8 + size
