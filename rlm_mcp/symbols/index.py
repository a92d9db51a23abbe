"""The code index: built in parallel, usable while it builds, cached on disk, updated incrementally.

Memory is the constraint at monorepo scale (hundreds of thousands of definitions): each file's
symbols are kept packed in one string (`pack`) and turned into dicts only for the results a query
returns; the name lookup maps a name to the files that define it, not to per-symbol objects.

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
import itertools
import os
import re
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, NamedTuple

from .cache import Cache, Counts, Indexed, Records, load_cache, save_cache
from .extract import FileRecord, Symbol, call_sites, extract_file
from .files import DiskFiles, FileSource
from .languages import spec_for
from .lookup import NameLookup

PARALLEL_MIN_FILES = 64
WORKER_WATCH_S = 0.5  # how often a parse worker checks that its server is still there
CHUNK = 48
UNPACKED_FILES = 256
PREBUILT_SYMBOLS = 100_000  # see CodeIndex._prebuilt_lookups
# Up to this many files changed (a live edit, or edits made while no server ran), the saved name lookup is
# patched rather than rebuilt (~1 s at 310k definitions); more (a branch switch) and it is rebuilt.
PATCH_FILES = 200
_FIELD, _ROW = "\x1f", "\x1e"  # separators of a packed symbol list (never in names; scrubbed from signatures)


def pack(symbols: Sequence[Symbol]) -> str:
    """Symbols as one string, a row each: name, qualname ('' when it is the name), kind, start, end, signature."""
    rows = []
    for name, qualname, kind, start, end, signature in symbols:
        signature = signature.replace(_FIELD, " ").replace(_ROW, " ")
        rows.append(_FIELD.join((name, "" if qualname == name else qualname, kind, str(start), str(end), signature)))
    return _ROW.join(rows)


def unpack(path: str, entry: Indexed, rows: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """A file's symbols (or just the packed `rows` given) as result dicts, in line order."""
    if rows is None:
        rows = entry.symbols.split(_ROW) if entry.symbols else ()
    found = []
    for row in rows:
        name, qualname, kind, start, end, signature = row.split(_FIELD)
        name = sys.intern(name)  # "__init__", "run", "get"...: one string each, not one per definition
        found.append({"name": name, "qualname": qualname or name, "kind": sys.intern(kind), "path": path,
                      "start_line": int(start), "end_line": int(end), "signature": signature,
                      "language": entry.language})
    found.sort(key=lambda s: (s["start_line"], s["qualname"]))
    return found


def group_by_name(symbols: Iterable[dict[str, Any]], into: dict[str, list[dict[str, Any]]]) -> None:
    """Add each symbol under its name and, when different, its qualified name."""
    for symbol in symbols:
        into.setdefault(symbol["name"], []).append(symbol)
        if symbol["qualname"] != symbol["name"]:
            into.setdefault(symbol["qualname"], []).append(symbol)


def _row_keys(packed: str) -> Iterator[tuple[str, int]]:
    """(lookup key, offset of its row) of every row of a packed symbol list."""
    at = 0
    while packed and at >= 0:
        yield sys.intern(lookup_key(packed[at : packed.find(_FIELD, at)])), at
        at = packed.find(_ROW, at)
        at = at + 1 if at >= 0 else -1


def _result_order(symbol: dict[str, Any]) -> tuple[str, int, str]:
    return symbol["path"], symbol["start_line"], symbol["qualname"]


def lookup_key(name: str) -> str:
    """Names and qualified names are looked up by their last dotted part, which both always share."""
    return name.rpartition(".")[2]


def _indexed(record: FileRecord) -> tuple[str, Indexed]:
    return record.path, Indexed(record.size, record.mtime_ns, record.language, pack(record.symbols),
                                tuple(record.imports), record.problem)


def parse(files: FileSource, paths: Sequence[str]) -> list[tuple[str, Indexed]]:
    """Parse `paths` in this process: a query's handful of files, or one chunk of a build."""
    return [_indexed(extract_file(files, path)) for path in paths]


class Unpacked(NamedTuple):
    in_order: list[dict[str, Any]]
    by_name: dict[str, list[dict[str, Any]]]  # name and qualified name -> symbols, in line order


class CodeIndex:
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
            index._by_key = lookups  # as saved (~5x faster than built), less what changed; `add` links the rest
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
        records, and the name lookups patched rather than rebuilt (a rebuild takes ~1 s at 300k definitions)."""
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
            for key in {key for key, _ in _row_keys(entry.symbols)}:
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
            for key, at in _row_keys(entry.symbols):
                rows = list(self._by_key.get(key))
                bisect.insort(rows, (path, at))
                self._by_key.put(key, rows)
        if self._prebuilt is not None:
            grouped: dict[str, list[dict[str, Any]]] = {}
            group_by_name(unpack(path, entry), grouped)
            for name, symbols in grouped.items():
                for symbol in symbols:
                    bisect.insort(self._prebuilt.setdefault(name, []), symbol, key=_result_order)

    def cache_writer(self) -> Any:
        """A function that writes the cache from a worker thread; records and lookups are copied now (~40 ms
        at 300k definitions), on the thread that changes the index, so the writer never sees them move."""
        records, path, root, version = self.records.copy(), self.cache_path, self.files.identity, self.version
        lookups, counts = (self._by_key.copy() if self._by_key is not None else None), self._counts
        self._changed, self._lookups_saved = False, lookups is not None
        return lambda: save_cache(path, root, records, lookups, counts or _count(records), version)

    def _forget_lookups(self) -> None:
        self._by_key = self._prebuilt = self._small = None

    def symbols_of(self, path: str) -> Unpacked:
        """A file's symbols as dicts, in order and by name (shared: callers copy before changing them),
        kept for the files queried most recently, so repeated lookups do not unpack again."""
        cached = self._unpacked.get(path)
        if cached is not None:
            self._unpacked.move_to_end(path)
            return cached
        entry = self.records.get(path)
        symbols = unpack(path, entry) if entry is not None else []
        by_name: dict[str, list[dict[str, Any]]] = {}
        group_by_name(symbols, by_name)
        self._unpacked[path] = cached = Unpacked(symbols, by_name)
        if len(self._unpacked) > UNPACKED_FILES:
            self._unpacked.popitem(last=False)
        return cached

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

    def _lookups(self) -> NameLookup:
        """lookup_key -> where its rows are: (path, offset of the row in the packed string), in path order.

        A pointer per symbol, not a dict: a lookup by name turns only its matches into dicts."""
        if self._by_key is None:
            by_key: dict[str, list[tuple[str, int]]] = {}
            for path in sorted(self.records):
                for key, at in _row_keys(self.records[path].symbols):
                    by_key.setdefault(key, []).append((path, at))
            self._by_key = NameLookup.of(by_key)
        return self._by_key

    def _prebuilt_lookups(self) -> dict[str, list[dict[str, Any]]] | None:
        """For an index of up to PREBUILT_SYMBOLS definitions, name and qualified name -> result dicts.

        Two representations by size, on purpose: a dict per definition answers a lookup by name in a
        few microseconds but takes ~735 bytes (54 MB for the standard library's 73k definitions, 225 MB
        for a 300 MB monorepo's 308k); above the threshold the row pointers of `_lookups` (~210 bytes)
        keep the server near the size of the text it holds, at ~15 us a lookup."""
        if self._small is None:
            self._small = self.symbol_count() <= PREBUILT_SYMBOLS
        if self._small and self._prebuilt is None:
            prebuilt: dict[str, list[dict[str, Any]]] = {}
            for path in sorted(self.records):
                group_by_name(unpack(path, self.records[path]), prebuilt)
            self._prebuilt = prebuilt
        return self._prebuilt

    def _looked_up(self, name: str) -> list[dict[str, Any]]:
        """A complete index's definitions called `name` (or with that qualified name), in (path, line) order."""
        prebuilt = self._prebuilt_lookups()
        if prebuilt is not None:
            return prebuilt.get(name, [])
        found = []
        for path, at in self._lookups().get(lookup_key(name)):
            entry = self.records[path]
            end = entry.symbols.find(_ROW, at)
            row = entry.symbols[at : end if end >= 0 else len(entry.symbols)]
            found += [s for s in unpack(path, entry, [row]) if name in (s["name"], s["qualname"])]
        found.sort(key=_result_order)
        return found

    # --- queries ---------------------------------------------------------------------------------
    def find_definitions(self, name: str | None = None, *, pattern: str | None = None, kind: str | None = None,
                         path: str | None = None, limit: int = 200,
                         within: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """`name` matches a name or qualified name exactly; `pattern` is a regex searched in qualified names.

        Results come in (path, line) order. `within` restricts the search to those files (the ones a
        caller made sure are parsed); otherwise a name query uses the lookup of a complete index, and
        anything else reads every record there is."""
        if self._prebuilt is not None and name is not None and path is None and within is None and not (
                kind or pattern):  # the common case, kept short: a lookup by name in a small complete index
            return self._prebuilt.get(name, [])[:limit]
        regex = re.compile(pattern) if pattern else None
        if not kind and regex is None:
            return list(itertools.islice(self._matching(name, path, within), limit))
        found: list[dict[str, Any]] = []
        for symbol in self._matching(name, path, within):
            if (kind and symbol["kind"] != kind) or (regex and not regex.search(symbol["qualname"])):
                continue
            found.append(symbol)
            if len(found) >= limit:
                break
        return found

    def _matching(self, name: str | None, path: str | None, within: Iterable[str] | None) -> Iterator[dict[str, Any]]:
        if name is not None and path is None and within is None and self.complete:
            yield from self._looked_up(name)
            return
        for candidate in self._candidates(path, within):
            unpacked = self.symbols_of(candidate)
            yield from unpacked.in_order if name is None else unpacked.by_name.get(name, [])

    def _candidates(self, path: str | None, within: Iterable[str] | None) -> list[str]:
        if path is not None:
            return [path] if within is None or path in set(within) else []
        return sorted(within if within is not None else self.records)

    def outline(self, path: str) -> list[dict[str, Any]]:
        return list(self.symbols_of(path).in_order)

    def references(self, name: str, limit: int = 500, within: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Call sites of `name` (the called identifier, also as a method or attribute), in path order.

        Found on first request by parsing only the files whose text contains `name` (`within`, when the
        caller already knows which those are), then remembered."""
        if name not in self._references:
            candidates = self.paths if within is None else within
            self._references[name] = [
                {"path": path, "line": line, "text": text}
                for path in sorted(p for p in candidates if spec_for(p) is not None)
                for line, text in call_sites(self.files, path, name)
            ]
        return self._references[name][:limit]

    def remembers_references(self, name: str) -> bool:
        return name in self._references

    def imports(self, path: str | None = None) -> dict[str, list[str]]:
        if path is not None:
            entry = self.records.get(path)
            return {path: list(entry.imports)} if entry else {}
        return {p: list(e.imports) for p, e in self.records.items() if e.imports}

    def progress(self) -> str:
        return f"{len(self.records):,} of {len(self.paths):,} files indexed"

    def counts(self) -> Counts:
        if self._counts is None:
            self._counts = _count(self.records)
        return self._counts

    def symbol_count(self) -> int:
        return self.counts().symbols

    def stats(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "files": len(self.records), "files_indexed": counts.files_indexed, "symbols": counts.symbols,
            "languages": dict(counts.languages),
            "problems": [{"path": path, "problem": problem} for path, problem in counts.problems[:200]],
            "problem_count": len(counts.problems),
            "elapsed_s": round(self.elapsed_s, 4), "cache_hits": self.cache_hits,
        }


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


def _count(records: Records) -> Counts:
    entries = list(records.values())
    return Counts(symbols=sum(e.symbols.count(_ROW) + 1 for e in entries if e.symbols),
                  files_indexed=sum(1 for e in entries if e.language),
                  languages=dict(Counter(e.language for e in entries if e.language)),
                  problems=[(path, e.problem) for path, e in zip(records, entries, strict=True) if e.problem])
