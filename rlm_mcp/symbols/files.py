"""Where the indexer reads a file: a loaded context's stored text, or a directory on disk.

A session indexes what its context holds (`StoredFiles`: byte spans of content.txt, see
rlm_mcp/contexts/store.py), so `context`, `files` and the index always describe the same text, even
while the working tree moves on. `DiskFiles` indexes a plain directory (the symbols benchmark, tests of
the extractors). Both are small and picklable: parser processes receive one per chunk, narrowed to the
chunk's files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol


class FileSource(Protocol):
    def key(self, path: str) -> tuple[int, int]:
        """(size, mtime_ns) of the file's version: the cache row is fresh while it is the same. OSError if gone."""
        ...

    def read(self, path: str, limit: int) -> bytes:
        """At most `limit` bytes of the file. OSError if it cannot be read."""
        ...

    def only(self, paths: Iterable[str]) -> FileSource:
        """The same source narrowed to `paths`, to ship to a parser process."""
        ...

    @property
    def identity(self) -> str:
        """What the cache of this source is keyed by: the directory the paths are relative to."""
        ...


class DiskFiles(NamedTuple):
    root: str

    def key(self, path: str) -> tuple[int, int]:
        stat = os.stat(os.path.join(self.root, path))
        return stat.st_size, stat.st_mtime_ns

    def read(self, path: str, limit: int) -> bytes:
        with open(os.path.join(self.root, path), "rb") as handle:
            return handle.read(limit)

    def only(self, paths: Iterable[str]) -> DiskFiles:
        return self

    @property
    def identity(self) -> str:
        return self.root


class StoredEntry(Protocol):
    """What the index reads of a stored file's manifest entry (rlm_mcp/contexts/models.py's ManifestEntry)."""

    @property
    def path(self) -> str: ...
    @property
    def byte_start(self) -> int: ...
    @property
    def byte_end(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def mtime_ns(self) -> int: ...


class StoredFiles(NamedTuple):
    """A stored context's files: content.txt and, per path, (byte_start, byte_end, size, mtime_ns)."""

    root: str
    content_path: str
    spans: Mapping[str, tuple[int, int, int, int]]

    @classmethod
    def of(cls, root: str, content_path: str, entries: Sequence[StoredEntry]) -> StoredFiles:
        return cls(root, content_path, {e.path: (e.byte_start, e.byte_end, e.size, e.mtime_ns) for e in entries})

    def key(self, path: str) -> tuple[int, int]:
        span = self._span(path)
        return span[2], span[3]

    def read(self, path: str, limit: int) -> bytes:
        start, end, _, _ = self._span(path)
        with open(self.content_path, "rb", buffering=0) as handle:  # (os.pread is not on Windows)
            handle.seek(start)
            return handle.read(min(end - start, limit))

    def only(self, paths: Iterable[str]) -> StoredFiles:
        return StoredFiles(self.root, self.content_path, {p: self.spans[p] for p in paths if p in self.spans})

    @property
    def identity(self) -> str:
        return self.root

    def _span(self, path: str) -> tuple[int, int, int, int]:
        span = self.spans.get(path)
        if span is None:
            raise FileNotFoundError(2, "not in the stored context", path)
        return span
