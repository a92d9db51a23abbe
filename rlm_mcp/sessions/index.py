"""The code index of a session's contexts: built in the background after a load, queried by the REPL
(`find_symbol`, `outline`, `references`) and by the host's `find_symbol` tool, both through service.py.

No query waits for the build or is refused because of it. A query by name, and an outline, first
parse the few files that can hold the answer -- found by a byte scan of the stored text for the name
(rlm_mcp/contexts/scan.py) -- so its answer is complete and the same as the finished index would
give. Only queries no name can narrow (`pattern` or `kind` alone) answer from what is indexed so far,
with a note saying so and how far the build has come.

All changes to an index happen on the event loop's thread: the build parses in worker processes and
hands each chunk back to the loop, so queries never see a half-updated index.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from ..contexts import ManifestEntry, StoredContext, read_entries
from ..contexts.scan import files_containing
from ..errors import BadRequest
from ..symbols import CodeIndex
from ..symbols.cache import load_cache
from ..symbols.files import StoredFiles
from ..symbols.index import PATCH_FILES, parse, parse_in_parallel
from ..symbols.languages import spec_for
from ..symbols.prefilter import can_define_here
from ..symbols.reader import lookup_key
from ..symbols.records import CallSite, Definition
from .memory import release_memory

log = logging.getLogger(__package__)  # rlm_mcp.sessions


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a paged symbol query goes on: after the first `given` results in the file `path` (results come
    in path order, so every earlier file is done)."""

    path: str
    given: int


@dataclass(frozen=True, slots=True)
class SymbolAnswer:
    """A symbol query's answer: definitions or call sites; a note when the results are partial (the index is
    still building); how many a limit left out; the cursor of the next page, when there is one."""

    results: list[Definition] | list[CallSite]
    note: str | None = None
    left_out: int = 0
    cursor: Cursor | None = None


class IndexNotReady(BadRequest):
    """No index can answer: the context is plain text, was never loaded, or its index failed."""


class StoredVersion:
    """The files of one stored version, for its index: the manifest is read at the first file read, so an
    index reopened from a cache of this very version never reads it (a large manifest is slow to parse). Its generation
    directory, not the context's link, which a live refresh points at the next version while this one
    may still be read."""

    def __init__(self, stored: StoredContext) -> None:
        self.generation = os.path.dirname(os.path.realpath(stored.manifest_path))
        self.root = stored.root or "/"
        self._files: StoredFiles | None = None
        self._entries: list[ManifestEntry] = []

    def files(self) -> StoredFiles:
        if self._files is None:
            self._entries = read_entries(os.path.join(self.generation, "manifest.json"))
            self._files = StoredFiles.of(self.root, os.path.join(self.generation, "content.txt"), self._entries)
        return self._files

    def entries(self) -> list[ManifestEntry]:
        """The manifest's file entries (with byte offsets)."""
        self.files()
        return self._entries

    # The index's FileSource (rlm_mcp/symbols/files.py):
    def key(self, path: str) -> tuple[int, int]:
        return self.files().key(path)

    def read(self, path: str, limit: int) -> bytes:
        return self.files().read(path, limit)

    def only(self, paths: Iterable[str]) -> StoredFiles:
        return self.files().only(paths)

    @property
    def identity(self) -> str:
        return self.root


@dataclass(eq=False)
class ContextIndex:
    stored: StoredContext
    status: str = "building"  # until the index opens, or for good when there is none
    index: CodeIndex | None = None
    error: str | None = None
    opened: anyio.Event = field(default_factory=anyio.Event)  # the cache is read: queries may start
    cancel: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    source: StoredVersion = field(init=False)

    def __post_init__(self) -> None:
        self.source = StoredVersion(self.stored)

    def summary(self) -> str:
        if self.error is not None:
            return f"failed: {self.error}"
        if self.index is None:
            return self.status
        if not self.index.complete:
            return f"building: {self.index.progress()} (symbol queries answer meanwhile)"
        stats = self.index.stats()
        problems = f", {stats['problem_count']} files with problems" if stats["problem_count"] else ""
        return f"ready: {stats['symbols']:,} symbols in {stats['files_indexed']:,} files{problems}"

    def open(self, cache_path: Path) -> CodeIndex:
        """The index as far as the cache goes; complete at once when the cache is of this very version."""
        cache = load_cache(cache_path, self.source.identity)
        if cache.version == self.stored.fingerprint:
            index = CodeIndex.reopen(self.source, cache, cache_path)
            index.prepare_lookups()
            return index
        files = self.source.files()
        index = CodeIndex.open(files, list(files.spans), cache_path, self.stored.fingerprint, cache)
        pending = index.pending()
        if index.has_lookups and len(pending) <= PATCH_FILES:  # a few files changed since: complete it now
            index.add(parse(files, pending))
            index.finish(prepare_lookups=True, save=False)
        return index


class SessionIndex:
    """One index per loaded files-context; rebuilt (incrementally, from the on-disk cache) on reload."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.indexes: dict[str, ContextIndex] = {}
        self._one_build_at_a_time = anyio.Lock()  # later builds of the same tree then hit the cache

    def cache_path(self, stored: StoredContext) -> Path:
        """Where the index of a tree is cached: one file per root, shared by every version of it."""
        return self.cache_dir / f"{hashlib.sha256(str(stored.root).encode()).hexdigest()[:16]}.idx"

    def start(self, stored: StoredContext, task_group: Any) -> ContextIndex:
        """Begin indexing `stored` in the background; returns at once. An unchanged reload keeps its index."""
        current = self.indexes.get(stored.name)
        if current is not None and current.stored.fingerprint == stored.fingerprint and current.error is None:
            return current
        if current is not None:
            current.cancel.cancel()
        entry = ContextIndex(stored)
        self.indexes[stored.name] = entry
        if stored.kind != "files":
            entry.status = "none (plain text)"
            entry.opened.set()
            return entry
        task_group.start_soon(self._build, entry)
        return entry

    async def refresh(self, stored: StoredContext, changed: list[str], removed: list[str], task_group: Any) -> None:
        """A live context changed: patch its complete index in place when few files did (parsed here, from
        the new stored text), else index the new version from the cache like a reload."""
        current = self.indexes.get(stored.name)
        index = current.index if current is not None else None
        if current is None or index is None or not index.complete or current.error is not None \
                or len(changed) > PATCH_FILES:
            self.start(stored, task_group)
            return
        entry = ContextIndex(stored, status="ready", index=index)
        files = await anyio.to_thread.run_sync(entry.source.files)
        parsed = await anyio.to_thread.run_sync(parse, files.only(changed), changed)
        index.replace(files, list(files.spans), parsed, removed, stored.fingerprint)
        entry.opened.set()
        self.indexes[stored.name] = entry  # its cache is written when the session ends (`save`), like its text

    async def save(self) -> None:
        """Write the cache of every complete index that changed since it was last written (a live context's
        patched ones), for the next server."""
        for entry in list(self.indexes.values()):
            if entry.index is not None and entry.index.complete and entry.index.unsaved:
                await anyio.to_thread.run_sync(entry.index.cache_writer())

    async def _build(self, entry: ContextIndex) -> None:
        stored = entry.stored
        with entry.cancel:
            try:
                entry.index = index = await anyio.to_thread.run_sync(entry.open, self.cache_path(stored))
                entry.opened.set()
                if index.complete:
                    if index.unsaved:
                        await anyio.to_thread.run_sync(index.cache_writer())
                    return
                async with self._one_build_at_a_time:
                    await anyio.to_thread.run_sync(lambda: self._fill(index, entry.cancel), abandon_on_cancel=True)
                    await anyio.to_thread.run_sync(lambda: index.finish(prepare_lookups=True))
                release_memory()  # the parsed chunks' transient objects
            except Exception as exc:  # a broken index must not break the session: text search still works
                log.warning("indexing %s failed: %s", stored.name, exc)
                entry.error = f"{type(exc).__name__}: {exc}"
            finally:
                entry.opened.set()

    @staticmethod
    def _fill(index: CodeIndex, cancel: anyio.CancelScope) -> None:
        """In a worker thread: parse what is pending, handing each chunk to the event loop's thread;
        stops early when the context is dropped or reloaded."""
        for chunk in parse_in_parallel(index.files, index.pending()):
            if cancel.cancel_called:
                return
            anyio.from_thread.run_sync(index.add, chunk)

    def summary(self, name: str) -> str:
        entry = self.indexes.get(name)
        return entry.summary() if entry is not None else "none"

    def drop(self, name: str) -> None:
        """Forget the index of a dropped context: stop its build, drop its entry and its on-disk cache."""
        entry = self.indexes.pop(name, None)
        if entry is None:
            return
        entry.cancel.cancel()
        if entry.index is not None and entry.index.cache_path is not None:
            entry.index.cache_path.unlink(missing_ok=True)

    async def _get(self, name: str) -> tuple[ContextIndex, CodeIndex]:
        entry = self.indexes.get(name)
        if entry is None:
            raise IndexNotReady(f"no code index for context {name!r}: load a directory or files with load_context")
        await entry.opened.wait()
        if entry.index is None:
            raise IndexNotReady(f"the code index of {name!r} is {entry.summary()}; use grep() instead")
        return entry, entry.index

    async def _ensure(self, index: CodeIndex, paths: list[str]) -> None:
        """Parse those of `paths` the index has not got yet (in a thread) and add them."""
        missing = [path for path in paths if path not in index.records and spec_for(path) is not None]
        if missing:
            index.add(await anyio.to_thread.run_sync(parse, index.files, missing))

    async def _files_naming(self, entry: ContextIndex, name: str, defining: bool = False) -> list[str]:
        """The files whose stored text contains `name`; with `defining`, only those that can define it."""
        key = lookup_key(name)
        files, entries = entry.source.files(), entry.source.entries()

        accept = can_define_here if defining else None
        return await anyio.to_thread.run_sync(
            lambda: files_containing(files.content_path, entries, key.encode("utf-8"), accept=accept))

    async def find(self, context: str, *, name: str | None = None, pattern: str | None = None,
                   kind: str | None = None, path: str | None = None, limit: int | None = None,
                   after: Cursor | None = None, page: int | None = None) -> SymbolAnswer:
        """Definitions by name, pattern, kind or file: complete at once for a name or a file (the few files that
        can hold it are parsed first), partial with a note for a pattern or kind alone while the index builds.
        At most `limit` (None: all), in pages of `page` when given (see `paged`)."""
        entry, index = await self._get(context)
        note, within = None, None
        if not index.complete and name is not None:
            within = await self._files_naming(entry, name, defining=True)
            await self._ensure(index, within)
        elif not index.complete and path is not None:
            await self._ensure(index, [path])
        elif not index.complete:
            note = f"partial: the index is building ({index.progress()}); these are the results so far"
        found = index.definitions(name, pattern=pattern, kind=kind, path=path, within=within,
                                  from_path=after.path if after is not None else None)
        count = None
        if name is None and path is None and (kind or pattern):  # every file read: count without reading
            count = lambda at: (index.count_definitions(kind, pattern, at.path if at else None)  # noqa: E731
                                - (at.given if at else 0))
        return paged(found, Definition.of, limit, after, page, note, count)

    async def outline(self, context: str, path: str, limit: int | None = None, after: Cursor | None = None,
                      page: int | None = None) -> SymbolAnswer:
        """The definitions of one file, in order (that file is parsed first if the build has not reached it)."""
        _, index = await self._get(context)
        await self._ensure(index, [path])
        return paged(index.outline(path), Definition.of, limit, after, page)

    async def references(self, context: str, name: str, limit: int | None = None, after: Cursor | None = None,
                         page: int | None = None) -> SymbolAnswer:
        """Call sites of `name`: the files that name it are parsed on demand, then remembered."""
        entry, index = await self._get(context)
        within = None if index.remembers_references(name) else await self._files_naming(entry, name)
        found = await anyio.to_thread.run_sync(lambda: index.references(name, limit=None, within=within))
        return paged(found, CallSite.of, limit, after, page)


def paged(found: Iterable[dict[str, Any]], record: Callable[[dict[str, Any]], Any], limit: int | None,
          after: Cursor | None, page: int | None, note: str | None = None,
          count: Callable[[Cursor | None], int] | None = None) -> SymbolAnswer:
    """At most `limit` of `found` (results in path order) that come after `after`, as records.

    With `page`, at most that many at once: an answer that stops at the page carries the cursor to go on
    from, so a caller reads every result (limit=None) holding one page at a time. An answer that `limit`
    cut short counts what it left out, so the caller can say so: by `count` (how many results there are from a
    cursor on) when the caller can count without reading them, else by reading the rest."""
    want = limit if page is None else page if limit is None else min(limit, page)
    items = _resume(found, after)
    taken = list(itertools.islice(items, want))
    if want is None or next(items, None) is None:
        return SymbolAnswer([record(item) for item in taken], note)
    if limit is not None and len(taken) >= limit:
        left_out = count(after) - len(taken) if count is not None else 1 + sum(1 for _ in items)
        return SymbolAnswer([record(item) for item in taken], note, left_out=left_out)
    last = taken[-1]["path"]
    given = sum(1 for item in taken if item["path"] == last) + (after.given if after and after.path == last else 0)
    return SymbolAnswer([record(item) for item in taken], note, cursor=Cursor(last, given))


def _resume(found: Iterable[dict[str, Any]], after: Cursor | None) -> Iterator[dict[str, Any]]:
    """The results after `after`: past its file, or past the first `given` results in it (a list is entered
    where the cursor points, found by bisection: call sites are a list, and a reader of every one of 100,000
    goes through it a page at a time)."""
    if after is None:
        yield from found
        return
    if isinstance(found, list):
        first = bisect.bisect_left(found, after.path, key=_path_of)
        past = bisect.bisect_right(found, after.path, key=_path_of)  # the cursor's file may have gone since
        yield from itertools.islice(found, min(first + after.given, past), None)
        return
    seen = 0
    for item in found:
        if item["path"] < after.path:
            continue
        if item["path"] == after.path and seen < after.given:
            seen += 1
            continue
        yield item


def _path_of(item: dict[str, Any]) -> str:
    path: str = item["path"]
    return path
