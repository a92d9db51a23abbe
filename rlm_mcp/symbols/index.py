"""The code index facade: build in parallel, cache on disk, update incrementally, answer queries.

The cache is one marshal file per index holding each file's record keyed by (size, mtime_ns), so reloading
an unchanged repository reads one file and re-parses nothing. Lookups go through dicts built once.
"""

from __future__ import annotations

import collections
import marshal
import os
import re
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from .extract import FileRecord, call_sites, extract_file

CACHE_VERSION = 3
PARALLEL_MIN_FILES = 64
CHUNK = 48


def _extract_chunk(root: str, paths: list[str]) -> list[FileRecord]:
    return [extract_file(root, path) for path in paths]


class CodeIndex:
    def __init__(self, root: Path, records: dict[str, FileRecord], cache_path: Path | None) -> None:
        self.root = root
        self.records = records
        self.cache_path = cache_path
        self.cache_hits = 0
        self.elapsed_s = 0.0
        self._lookups_ready = False
        self._references: dict[str, list[dict[str, Any]]] = {}  # name -> call sites, until the next update

    # --- building --------------------------------------------------------------------------------
    @classmethod
    def build(cls, root: Path, rel_paths: Sequence[str], cache_path: Path | None = None,
              workers: int | None = None) -> CodeIndex:
        index = cls(root, _load_cache(cache_path, root), cache_path)
        index.update(root, rel_paths, workers=workers)
        return index

    def update(self, root: Path, rel_paths: Sequence[str], workers: int | None = None) -> int:
        """Re-index new and changed files, drop removed ones; returns how many files were parsed."""
        started = time.perf_counter()
        wanted = list(dict.fromkeys(rel_paths))
        stale = [path for path in wanted if not self._fresh(root, path)]
        self.cache_hits = len(wanted) - len(stale)
        for record in _extract_all(str(root), stale, workers):
            self.records[record.path] = record
        removed = set(self.records) - set(wanted)
        for path in removed:
            del self.records[path]
        self.root = root
        if stale or removed:
            self._lookups_ready = False
            self._references.clear()
            _save_cache(self.cache_path, root, self.records)
        self.elapsed_s = time.perf_counter() - started
        return len(stale)

    def _fresh(self, root: Path, path: str) -> bool:
        record = self.records.get(path)
        if record is None:
            return False
        try:
            stat = os.stat(root / path)
        except OSError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == (record.size, record.mtime_ns)

    def _lookups(self) -> None:
        """Build the query dicts on first use: a warm reload that is never queried should not pay."""
        if self._lookups_ready:
            return
        self._lookups_ready = True
        self._by_name: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self._by_path: dict[str, list[dict[str, Any]]] = {}
        for path, record in self.records.items():
            symbols = [_symbol(path, record.language, s) for s in record.symbols]
            symbols.sort(key=lambda s: (s["start_line"], s["qualname"]))
            self._by_path[path] = symbols
            for symbol in symbols:
                self._by_name[symbol["name"]].append(symbol)
                if symbol["qualname"] != symbol["name"]:
                    self._by_name[symbol["qualname"]].append(symbol)

    # --- queries ---------------------------------------------------------------------------------
    def find_definitions(self, name: str | None = None, *, pattern: str | None = None, kind: str | None = None,
                         path: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """`name` matches a name or qualified name exactly; `pattern` is a regex searched in qualified names."""
        self._lookups()
        if name is not None:
            candidates = self._by_name.get(name, [])
        elif path is not None:
            candidates = self._by_path.get(path, [])
        else:
            candidates = (s for symbols in self._by_path.values() for s in symbols)
        regex = re.compile(pattern) if pattern else None
        found = []
        for symbol in candidates:
            if (kind and symbol["kind"] != kind) or (path and symbol["path"] != path):
                continue
            if regex and not regex.search(symbol["qualname"]):
                continue
            found.append(symbol)
            if len(found) >= limit:
                break
        return found

    def outline(self, path: str) -> list[dict[str, Any]]:
        self._lookups()
        return list(self._by_path.get(path, []))

    def references(self, name: str, limit: int = 500) -> list[dict[str, Any]]:
        """Call sites of `name` (the called identifier, also as a method or attribute), in path order.

        Found on first request by parsing only the files whose text contains `name`, then remembered."""
        if name not in self._references:
            root = str(self.root)
            self._references[name] = [
                {"path": path, "line": line, "text": text}
                for path in sorted(p for p, r in self.records.items() if r.language)
                for line, text in call_sites(root, path, name)
            ]
        return self._references[name][:limit]

    def imports(self, path: str | None = None) -> dict[str, list[str]]:
        if path is not None:
            record = self.records.get(path)
            return {path: list(record.imports)} if record else {}
        return {p: list(r.imports) for p, r in self.records.items() if r.imports}

    def stats(self) -> dict[str, Any]:
        languages = collections.Counter(r.language for r in self.records.values() if r.language)
        problems = [{"path": p, "problem": r.problem} for p, r in self.records.items() if r.problem]
        return {
            "files": len(self.records), "files_indexed": sum(1 for r in self.records.values() if r.language),
            "symbols": sum(len(r.symbols) for r in self.records.values()), "languages": dict(languages),
            "problems": problems[:200], "problem_count": len(problems), "elapsed_s": round(self.elapsed_s, 4),
            "cache_hits": self.cache_hits,
        }


def _symbol(path: str, language: str | None, symbol: tuple[str, str, str, int, int, str]) -> dict[str, Any]:
    name, qualname, kind, start, end, signature = symbol
    return {"name": name, "qualname": qualname, "kind": kind, "path": path, "start_line": start,
            "end_line": end, "signature": signature, "language": language}


def _extract_all(root: str, paths: list[str], workers: int | None) -> list[FileRecord]:
    """In-process for a handful of files; across processes (one per core) for a repository."""
    if len(paths) < PARALLEL_MIN_FILES:
        return [extract_file(root, path) for path in paths]
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    # Niced workers: indexing a big tree in the background must not slow the REPL the user is driving.
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 2, initializer=os.nice, initargs=(10,)) as pool:
        return [record for chunk in pool.map(_extract_chunk, [root] * len(chunks), chunks) for record in chunk]


def _load_cache(cache_path: Path | None, root: Path) -> dict[str, FileRecord]:
    """marshal of plain tuples: several times faster to load than pickle of objects, and it only
    ever holds data (a cache from another Python version simply fails to load and is rebuilt)."""
    if cache_path is None or not cache_path.exists():
        return {}
    try:
        version, cached_root, rows = marshal.loads(cache_path.read_bytes())
        if version != CACHE_VERSION or cached_root != str(root):
            return {}
        return {row[0]: FileRecord(*row) for row in rows}
    except Exception:  # a corrupt or foreign cache is rebuilt, never trusted
        return {}


def _save_cache(cache_path: Path | None, root: Path, records: dict[str, FileRecord]) -> None:
    if cache_path is None:
        return
    rows = [(r.path, r.size, r.mtime_ns, r.language, r.symbols, r.imports, r.problem)
            for r in records.values()]
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache_path.with_suffix(".tmp")
    temporary.write_bytes(marshal.dumps((CACHE_VERSION, str(root), rows)))
    temporary.replace(cache_path)
