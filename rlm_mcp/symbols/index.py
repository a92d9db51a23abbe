"""The code index: built in parallel, usable while it builds, cached on disk, updated incrementally.

Memory is the constraint at monorepo scale (hundreds of thousands of definitions): each file's
symbols are kept packed in one string (reader.py's `pack`) and turned into dicts only for the results a
query returns; the name lookup maps a name to the files that define it, not to per-symbol objects. This
module builds and updates the records; reader.py answers from them.

An index is `open`ed from its cache first (fresh records kept, the rest pending), then filled with
`add` as parsed chunks arrive and sealed with `finish`. Until then it answers from what it has:
callers that need complete answers parse the files that can hold them first (`parse` + `add`; see
rlm_mcp/sessions/index.py), and `find_definitions(within=...)` then looks only at those files.

The cache (rlm_mcp/symbols/cache.py) holds each file's row keyed by (size, mtime_ns), so reloading an
unchanged repository reads one file and re-parses nothing; `reopen` takes a cache of the very version
being loaded as saved, so a new server has the index of an unchanged tree without reading its manifest
or checking one file (rlm_mcp/sessions/index.py).
"""

from __future__ import annotations

import bisect
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from .cache import Cache, Counts, Indexed, Records, load_cache, save_cache
from .extract import FileRecord, extract_file
from .files import DiskFiles, FileSource
from .lookup import NameLookup
from .reader import IndexReader, Unpacked, count_records, group_by_name, pack, result_order, row_keys, unpack

PARALLEL_MIN_FILES = 64
WORKER_WATCH_S = 0.5  # how often a parse worker checks that its server is still there
CHUNK = 48
# Up to this many files changed (a live edit, or edits made while no server ran), the saved name lookup is
# patched rather than rebuilt (a rebuild costs seconds at monorepo scale: docs/benchmarks.md); more (a branch
# switch) and it is rebuilt.
PATCH_FILES = 200



def _indexed(record: FileRecord) -> tuple[str, Indexed]:
    return record.path, Indexed(record.size, record.mtime_ns, record.language, pack(record.symbols),
                                tuple(record.imports), record.problem)


def parse(files: FileSource, paths: Sequence[str]) -> list[tuple[str, Indexed]]:
    """Parse `paths` in this process: a query's handful of files, or one chunk of a build."""
    return [_indexed(extract_file(files, path)) for path in paths]


class CodeIndex(IndexReader):
    def __init__(self, files: FileSource, paths: Iterable[str], records: Records,
                 cache_path: Path | None, version: str | None = None) -> None:
        self.files = files
        self.paths = list(dict.fromkeys(paths))  # every file of the context, indexed or not
        self.records = records
        self.cache_path = cache_path
        self.version = version  # what the records describe once complete (a stored context's fingerprint)
        self.cache_hits = 0
        self.elapsed_s = 0.0
        self.complete = False
        self._changed = False  # records differ from the cache on disk
        self._lookups_saved = False  # the cache on disk holds the name lookup of these records
        self._by_key: NameLookup | None = None  # see _lookups
        self._counts: Counts | None = None  # of the records, until they change
        self._prebuilt: dict[str, list[dict[str, Any]]] | None = None  # see _prebuilt_lookups
        self._small: bool | None = None  # whether to prebuild them, decided on first use
        self._references: dict[str, list[dict[str, Any]]] = {}  # name -> call sites, until the next update
        self._unpacked: OrderedDict[str, Unpacked] = OrderedDict()  # recently read files, LRU

    # --- building --------------------------------------------------------------------------------
    @classmethod
    def open(cls, files: FileSource | Path, rel_paths: Sequence[str], cache_path: Path | None = None,
             version: str | None = None, cache: Cache | None = None) -> CodeIndex:
        """The index as far as the cache goes: fresh records kept, every other file pending.

        `files`: where files are read (a Path means that directory on disk); `version`: what the paths are
        a version of, saved with the cache once complete; `cache`: the cache file's contents, if read already."""
        files = DiskFiles(str(files)) if isinstance(files, Path) else files
        index = cls(files, rel_paths, Records(), cache_path, version)
        cached, lookups, counts, cached_version = cache if cache is not None else load_cache(cache_path,
                                                                                            files.identity)
        index.records = Records({path: entry for path in index.paths if (entry := cached.get(path)) is not None
                                 and index._fresh(entry, path)})
        index.cache_hits = len(index.records)
        dropped = [path for path in cached if path not in index.records]  # changed or gone since the cache
        unchanged = not dropped and len(index.records) == len(index.paths)
        index._changed = not unchanged or cached_version != version
        if lookups is not None and len(dropped) + len(index.paths) - len(index.records) <= PATCH_FILES:
            index._by_key = lookups  # as saved (faster than built), less what changed; `add` links the rest
            for path in dropped:
                index._unlink(path, cached[path])
            index._lookups_saved = unchanged
        if unchanged:
            index._counts = counts
        return index

    @classmethod
    def reopen(cls, files: FileSource, cache: Cache, cache_path: Path | None) -> CodeIndex:
        """The complete index of the version `cache` holds, as saved: no file is checked or read. Only for a
        cache whose version is the one `files` are (the caller compares them)."""
        index = cls(files, cache.records, cache.records, cache_path, cache.version)
        index.cache_hits = len(index.records)
        index._by_key, index._lookups_saved, index._counts = cache.lookups, cache.lookups is not None, cache.counts
        index.complete = True
        return index

    @classmethod
    def build(cls, files: FileSource | Path, rel_paths: Sequence[str], cache_path: Path | None = None,
              workers: int | None = None) -> CodeIndex:
        """Open, parse everything pending, finish: the whole build in the calling thread."""
        started = time.perf_counter()
        index = cls.open(files, rel_paths, cache_path)
        for chunk in parse_in_parallel(index.files, index.pending(), workers):
            index.add(chunk)
        index.finish()
        index.elapsed_s = time.perf_counter() - started
        return index

    def pending(self) -> list[str]:
        return [path for path in self.paths if path not in self.records]

    def add(self, parsed: Iterable[tuple[str, Indexed]]) -> None:
        """Parsed files in. Name lookups that exist (a reload that found few files changed) are patched; others
        are built when first needed."""
        for path, entry in parsed:
            old = self.records.get(path)
            if old is not None:
                self._unlink(path, old)
            self.records[path] = entry = entry._replace(language=sys.intern(entry.language) if entry.language else None)
            self._link(path, entry)
            self._unpacked.pop(path, None)
            self._changed = True
        self._counts = None

    def replace(self, files: FileSource, paths: Sequence[str], parsed: Sequence[tuple[str, Indexed]],
                removed: Iterable[str], version: str | None = None) -> None:
        """A live context's few changed files, applied in place to a complete index (now of `version`): the
        records, and the name lookups patched rather than rebuilt (see PATCH_FILES)."""
        self.files, self.paths, self.version = files, list(dict.fromkeys(paths)), version
        for path in removed:
            old = self.records.pop(path, None)
            self._unpacked.pop(path, None)
            if old is not None:
                self._unlink(path, old)
        self.add(parsed)
        self._references.clear()
        self._changed, self._lookups_saved, self._counts = True, False, None

    def _unlink(self, path: str, entry: Indexed) -> None:
        """Drop one file's definitions from the lookups that exist."""
        if self._by_key is not None:
            for key in {key for key, _ in row_keys(entry.symbols)}:
                self._by_key.put(key, [row for row in self._by_key.get(key) if row[0] != path])
        if self._prebuilt is not None:
            for name in {n for s in unpack(path, entry) for n in (s["name"], s["qualname"])}:
                symbols = [s for s in self._prebuilt.get(name, ()) if s["path"] != path]
                if symbols:
                    self._prebuilt[name] = symbols
                else:
                    self._prebuilt.pop(name, None)

    def _link(self, path: str, entry: Indexed) -> None:
        """Add one file's definitions to the lookups that exist, in their (path, line) order."""
        if self._by_key is not None:
            for key, at in row_keys(entry.symbols):
                rows = list(self._by_key.get(key))
                bisect.insort(rows, (path, at))
                self._by_key.put(key, rows)
        if self._prebuilt is not None:
            grouped: dict[str, list[dict[str, Any]]] = {}
            group_by_name(unpack(path, entry), grouped)
            for name, symbols in grouped.items():
                for symbol in symbols:
                    bisect.insort(self._prebuilt.setdefault(name, []), symbol, key=result_order)

    def cache_writer(self) -> Any:
        """A function that writes the cache from a worker thread; records and lookups are copied now, on the
        thread that changes the index, so the writer never sees them move."""
        records, path, root, version = self.records.copy(), self.cache_path, self.files.identity, self.version
        lookups, counts = (self._by_key.copy() if self._by_key is not None else None), self._counts
        self._changed, self._lookups_saved = False, lookups is not None
        return lambda: save_cache(path, root, records, lookups, counts or count_records(records), version)

    def _forget_lookups(self) -> None:
        self._by_key = self._prebuilt = self._small = None

    def finish(self, prepare_lookups: bool = False, save: bool = True) -> None:
        """All files are in: say so and write the cache (unless `save` is false: the caller writes it later,
        with `cache_writer`). The name lookup is built on the first query by name (an index reloaded but
        never queried should not pay), or here when asked: the session's build does it in its worker
        thread, so no query on the event loop waits for it."""
        if prepare_lookups:
            self.prepare_lookups()
        self.complete = True
        if save and self.unsaved:
            save_cache(self.cache_path, self.files.identity, self.records, self._by_key, self.counts(), self.version)
            self._changed = False
            self._lookups_saved = self._by_key is not None

    @property
    def has_lookups(self) -> bool:
        """Whether a name lookup is kept (a large index reopened from its cache has one)."""
        return self._by_key is not None

    @property
    def unsaved(self) -> bool:
        """Whether the cache on disk lags behind: records or their version changed, or a lookup was built."""
        return self._changed or (self._by_key is not None and not self._lookups_saved)

    def prepare_lookups(self) -> None:
        """Build the name lookup now (in a worker thread) rather than on the first query (on the event loop)."""
        if self._prebuilt_lookups() is None:
            self._lookups()

    def update(self, files: FileSource | Path, rel_paths: Sequence[str], workers: int | None = None) -> int:
        """Re-index new and changed files, drop removed ones; returns how many files were parsed."""
        started = time.perf_counter()
        self.paths = list(dict.fromkeys(rel_paths))
        self.files = files = DiskFiles(str(files)) if isinstance(files, Path) else files
        stale = [path for path in self.paths if path not in self.records or not self._fresh(self.records[path], path)]
        removed = set(self.records) - set(self.paths)
        for path in removed:
            del self.records[path]
            self._unpacked.pop(path, None)
        if removed:
            self._forget_lookups()
            self._counts = None
        for chunk in parse_in_parallel(files, stale, workers):
            self.add(chunk)
        self.cache_hits = len(self.paths) - len(stale)
        if stale or removed:
            self._changed = True
            self._references.clear()
        self.finish()
        self.elapsed_s = time.perf_counter() - started
        return len(stale)

    def _fresh(self, entry: Indexed, path: str) -> bool:
        try:
            return self.files.key(path) == (entry.size, entry.mtime_ns)
        except OSError:
            return False



def parse_in_parallel(files: FileSource, paths: list[str], workers: int | None = None
                      ) -> Iterator[list[tuple[str, Indexed]]]:
    """Parsed chunks as they complete: in-process for a handful of files, one process per core otherwise.

    Chunks are submitted a few at a time, so a consumer that stops early (a dropped context) leaves
    little work queued."""
    if len(paths) < PARALLEL_MIN_FILES:
        if paths:
            yield parse(files, paths)
        return
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    processes = workers or os.cpu_count() or 2
    with ProcessPoolExecutor(max_workers=processes, initializer=_start_worker, initargs=(os.getpid(),)) as pool:
        queued = iter(chunks)
        running = {pool.submit(parse, files.only(chunk), chunk) for chunk in _take(queued, 2 * processes)}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            running |= {pool.submit(parse, files.only(chunk), chunk) for chunk in _take(queued, len(done))}
            for future in done:
                yield future.result()


def _start_worker(server_pid: int) -> None:
    """A pool worker runs niced (indexing a big tree in the background must not slow the REPL the user is
    driving; POSIX only) and ends when its server does: a server stopped mid-build (a host closing its
    conversation) would otherwise leave its workers blocked on the pool's queue for good."""
    if hasattr(os, "nice"):
        os.nice(10)

    def exit_with_the_server() -> None:
        while os.getppid() == server_pid:
            time.sleep(WORKER_WATCH_S)
        os._exit(0)

    threading.Thread(target=exit_with_the_server, name="rlm-exit-with-server", daemon=True).start()


def _take(items: Iterator[list[str]], count: int) -> list[list[str]]:
    return [chunk for _, chunk in zip(range(count), items, strict=False)]


