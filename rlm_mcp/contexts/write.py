"""Stream a context's files into content.txt: new bodies read from disk, unchanged ones copied.

The store (rlm_mcp/contexts/store.py) decides what to write and where; this module writes the one big
file and returns the manifest entries with their offsets. A live refresh passes the previous version
(`Previous`): a file whose size, mtime and ctime are unchanged is copied from that version's
content.txt -- runs of neighbours in one copy_file_range, inside the kernel -- with its entry's counts,
so only the changed files are read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..progress import Progress
from .errors import ContextError, ContextTooLarge
from .languages import language_of
from .models import FILE_HEADER, LoadLimits, StoredContext, read_manifest
from .walk import Candidate, WalkResult, _biggest_dirs

__all__ = ["Previous", "rel_path", "write_files"]

_PROGRESS_EVERY = 200
_SNIFF_BYTES = 8192
_IOV_BATCH = 512  # buffers per writev: fewer syscalls than a write per file (below IOV_MAX 1024)


class Previous:
    """The version a store starts from (a live refresh's last one, or the one a new server finds stored last
    for the same sources): its summary and its manifest's entries by path, read when first needed.

    `content_path` is its generation's own file (not the context's link, which the refresh moves on)."""

    def __init__(self, stored: StoredContext, entries: list[dict[str, Any]] | None = None) -> None:
        self.stored = stored
        self._entries = {e["path"]: e for e in entries} if entries is not None else None
        self.content_path = os.path.realpath(stored.content_path)

    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = {e["path"]: e for e in read_manifest(self.stored)["files"]}
        return self._entries

    def same(self, rel: str, cand: Any) -> dict[str, Any] | None:
        """The previous entry of `rel` when its file is unchanged (same size, mtime and ctime on disk)."""
        entry = self.entries.get(rel)
        if entry is not None and (entry["size"], entry["mtime_ns"], entry["ctime_ns"]) == (
            cand.size, cand.mtime_ns, cand.ctime_ns):
            return entry
        return None


@dataclass(slots=True)
class _Totals:
    """Running counts of one write: where the next entry starts (characters, bytes, lines of content.txt),
    how much source it has loaded (what max_total_bytes limits), and what the summary reports."""

    chars: int = 0
    bytes: int = 0
    loaded: int = 0
    newlines: int = 0
    binary: int = 0
    unreadable: int = 0
    replaced: int = 0


@dataclass(frozen=True, slots=True)
class _Body:
    """One file's body as written: its size on disk, characters and bytes in content.txt, newlines, whether
    undecodable bytes were replaced, its language and line count."""

    size: int
    chars: int
    length: int
    newlines: int
    replaced: bool
    language: str | None
    lines: int


def write_files(
    content_path: Path,
    walked: WalkResult,
    root: str,
    limits: LoadLimits,
    on_progress: Progress | None,
    stats: dict[str, Any],
    previous: Previous | None = None,
) -> list[dict[str, Any]]:
    """Read every candidate, skip binaries, and stream header + body into content_path.

    With `previous`, an unchanged file's header and body are copied from the previous content file
    (runs of them in one copy_file_range, inside the kernel) and its entry's counts are reused."""
    entries: list[dict[str, Any]] = []
    total, totals = len(walked.candidates), _Totals()
    root_prefix = root if root.endswith("/") else root + "/"
    out = _Output(os.open(content_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), previous)
    try:
        for i, cand in enumerate(walked.candidates, 1):
            rel = rel_path(cand.logical, root_prefix)
            if on_progress is not None and i % _PROGRESS_EVERY == 0:
                on_progress(i, total, f"reading {rel}")
            header = FILE_HEADER.format(path=rel)
            hbytes = header.encode("utf-8", errors="replace")
            old = previous.same(rel, cand) if previous is not None else None
            body = _copied(out, old, hbytes) if old is not None else _read_into(out, cand, rel, hbytes, limits,
                                                                                 walked, totals)
            if body is None:
                continue
            totals.replaced += body.replaced
            totals.loaded += body.size
            if totals.loaded > limits.max_total_bytes:
                raise ContextTooLarge("bytes", totals.loaded, limits.max_total_bytes, _biggest_dirs(walked.candidates))
            entries.append(_entry(rel, cand, header, hbytes, body, totals))
        out.flush()
    finally:
        out.close()
    if on_progress is not None:
        on_progress(total, total, f"stored {len(entries)} files")
    stats.update(chars=totals.chars, bytes=totals.bytes, binary=totals.binary, unreadable=totals.unreadable,
                 replaced=totals.replaced)
    return entries


def _copied(out: _Output, old: dict[str, Any], hbytes: bytes) -> _Body:
    """An unchanged file: header and body copied from the previous content file, its counts reused."""
    out.copy(old["byte_start"] - len(hbytes), old["byte_end"])
    return _Body(old["bytes"], old["end"] - old["start"], old["byte_end"] - old["byte_start"], old["newlines"],
                 bool(old.get("replaced")), old["language"], old["lines"])


def _read_into(out: _Output, cand: Candidate, rel: str, hbytes: bytes, limits: LoadLimits, walked: WalkResult,
               totals: _Totals) -> _Body | None:
    """A file read from disk and written after its header; None (counted, and its path noted on `walked`) when
    it cannot be read or is binary. Undecodable bytes are replaced, so content.txt is always UTF-8."""
    try:
        data = _read_file(cand.real, cand.size, max(limits.max_file_bytes, cand.size))  # named
    except OSError:
        totals.unreadable += 1
        walked.unreadable_paths.append(cand.logical)
        return None
    if b"\0" in data[:_SNIFF_BYTES]:
        totals.binary += 1
        walked.binary_paths.append(cand.logical)
        return None
    replaced = False
    if data.isascii():
        body, chars = data, len(data)
    else:
        try:
            chars, body = len(data.decode("utf-8")), data
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            body, chars, replaced = text.encode("utf-8", errors="surrogatepass"), len(text), True
    out.write(hbytes, body)
    newlines = data.count(b"\n")
    ends_open = bool(data) and not data.endswith(b"\n")
    return _Body(len(data), chars, len(body), newlines, replaced, language_of(rel), newlines + ends_open)


def _entry(rel: str, cand: Candidate, header: str, hbytes: bytes, body: _Body, totals: _Totals) -> dict[str, Any]:
    """The manifest entry of a file just written, placed after everything written before it."""
    start = totals.chars + len(header)
    totals.chars = start + body.chars
    byte_start = totals.bytes + len(hbytes)
    totals.bytes = byte_start + body.length
    totals.newlines += hbytes.count(b"\n")
    first_line = totals.newlines + 1
    totals.newlines += body.newlines
    entry = {
        "path": rel, "start": start, "end": totals.chars, "byte_start": byte_start, "byte_end": totals.bytes,
        "first_line": first_line, "bytes": body.size, "lines": body.lines, "newlines": body.newlines,
        "language": body.language, "size": cand.size, "mtime_ns": cand.mtime_ns, "ctime_ns": cand.ctime_ns,
    }
    if body.replaced:
        entry["replaced"] = True
    return entry


class _Output:
    """content.txt being written: new buffers go out with one writev per _IOV_BATCH, runs copied from the
    previous content file with copy_file_range (kept in order with the buffers)."""

    def __init__(self, fd: int, previous: Previous | None) -> None:
        self.fd = fd
        self.pending: list[bytes] = []
        self.run: tuple[int, int] | None = None  # [start, end) of the previous file still to copy
        self.source = os.open(previous.content_path, os.O_RDONLY | os.O_CLOEXEC) if previous is not None else None

    def write(self, *buffers: bytes) -> None:
        self._copy_run()
        self.pending.extend(buffers)
        if len(self.pending) >= _IOV_BATCH:
            _writev_all(self.fd, self.pending)
            self.pending = []

    def copy(self, start: int, end: int) -> None:
        if self.run is not None and self.run[1] == start:
            self.run = (self.run[0], end)
            return
        self._copy_run()
        _writev_all(self.fd, self.pending)
        self.pending = []
        self.run = (start, end)

    def flush(self) -> None:
        self._copy_run()
        _writev_all(self.fd, self.pending)
        self.pending = []

    def _copy_run(self) -> None:
        if self.run is None:
            return
        assert self.source is not None
        start, end = self.run
        self.run = None
        while start < end:
            try:
                if not hasattr(os, "copy_file_range"):  # Linux-only: macOS and Windows copy through here
                    raise OSError("no copy_file_range")
                done = os.copy_file_range(self.source, self.fd, end - start, start)
            except OSError:  # a filesystem or system without it: plain reads
                os.lseek(self.source, start, os.SEEK_SET)
                done = len(chunk := os.read(self.source, min(end - start, 8 << 20)))
                _writev_all(self.fd, [chunk])
            if done <= 0:
                raise ContextError("the previous stored context is shorter than its manifest: load again")
            start += done

    def close(self) -> None:
        os.close(self.fd)
        if self.source is not None:
            os.close(self.source)


def _read_file(path: str, size: int, limit: int) -> bytes:
    """Read at most limit + 1 bytes with bare os calls (no BufferedReader: ~2x faster per file)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        want = min(size, limit) + 1
        chunks = [os.read(fd, want)]
        got = len(chunks[0])
        while chunks[-1] and got < want:  # the file grew since stat, or a short read
            chunks.append(os.read(fd, want - got))
            got += len(chunks[-1])
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def _writev_all(fd: int, bufs: list[bytes]) -> None:
    """os.writev until every byte is written (writev may write less than asked); where there is no writev
    (Windows), the buffers are joined into one write."""
    if not hasattr(os, "writev"):
        bufs = [b"".join(bufs)] if bufs else []
    while bufs:
        n = os.writev(fd, bufs) if hasattr(os, "writev") else os.write(fd, bufs[0])
        while bufs and n >= len(bufs[0]):
            n -= len(bufs[0])
            bufs = bufs[1:]
        if n:
            bufs = [bufs[0][n:], *bufs[1:]]


def rel_path(logical: str, root_prefix: str) -> str:
    """Manifest path: relative to root (given with a trailing '/'), valid UTF-8 (bad bytes -> U+FFFD).

    Plain slicing: every logical path starts with the root prefix, and os.path.relpath costs 25 us.
    """
    rel = logical[len(root_prefix) :]
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        rel = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return rel
