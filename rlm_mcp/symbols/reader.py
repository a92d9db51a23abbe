"""The reading side of the code index: its records as results, by name, by file, by pattern; call sites.

Each file's symbols are kept packed in one string (`pack`) and turned into dicts only for the results a
query returns. `IndexReader` answers from the records an index holds; CodeIndex (index.py) builds and
updates them, and keeps the cache.
"""

from __future__ import annotations

import bisect
import itertools
import re
import sys
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .cache import Counts, Indexed, Records
from .extract import Symbol, call_sites
from .files import FileSource
from .languages import spec_for
from .lookup import NameLookup

UNPACKED_FILES = 256
PREBUILT_SYMBOLS = 100_000  # see IndexReader._prebuilt_lookups
FIELD, ROW = "\x1f", "\x1e"  # separators of a packed symbol list (never in names; scrubbed from signatures)


def pack(symbols: Sequence[Symbol]) -> str:
    """Symbols as one string, a row each: name, qualname ('' when it is the name), kind, start, end, signature."""
    rows = []
    for name, qualname, kind, start, end, signature in symbols:
        signature = signature.replace(FIELD, " ").replace(ROW, " ")
        rows.append(FIELD.join((name, "" if qualname == name else qualname, kind, str(start), str(end), signature)))
    return ROW.join(rows)


def unpack(path: str, entry: Indexed, rows: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """A file's symbols (or just the packed `rows` given) as result dicts, in line order."""
    if rows is None:
        rows = entry.symbols.split(ROW) if entry.symbols else ()
    found = []
    for row in rows:
        name, qualname, kind, start, end, signature = row.split(FIELD)
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


def row_keys(packed: str) -> Iterator[tuple[str, int]]:
    """(lookup key, offset of its row) of every row of a packed symbol list."""
    at = 0
    while packed and at >= 0:
        yield sys.intern(lookup_key(packed[at : packed.find(FIELD, at)])), at
        at = packed.find(ROW, at)
        at = at + 1 if at >= 0 else -1


def result_order(symbol: dict[str, Any]) -> tuple[str, int, str]:
    return symbol["path"], symbol["start_line"], symbol["qualname"]


def lookup_key(name: str) -> str:
    """Names and qualified names are looked up by their last dotted part, which both always share."""
    return name.rpartition(".")[2]


def count_records(records: Records) -> Counts:
    entries = list(records.values())
    return Counts(symbols=sum(e.symbols.count(ROW) + 1 for e in entries if e.symbols),
                  files_indexed=sum(1 for e in entries if e.language),
                  languages=dict(Counter(e.language for e in entries if e.language)),
                  problems=[(path, e.problem) for path, e in zip(records, entries, strict=True) if e.problem])


class Unpacked(NamedTuple):
    in_order: list[dict[str, Any]]
    by_name: dict[str, list[dict[str, Any]]]  # name and qualified name -> symbols, in line order


class IndexReader:
    """What an index answers from the records it holds (the attributes below, which CodeIndex keeps)."""

    files: FileSource
    paths: list[str]
    records: Records
    cache_path: Path | None
    complete: bool
    elapsed_s: float
    cache_hits: int
    _by_key: NameLookup | None
    _counts: Counts | None
    _prebuilt: dict[str, list[dict[str, Any]]] | None
    _small: bool | None
    _references: dict[str, list[dict[str, Any]]]
    _unpacked: OrderedDict[str, Unpacked]

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

    def _lookups(self) -> NameLookup:
        """lookup_key -> where its rows are: (path, offset of the row in the packed string), in path order.

        A pointer per symbol, not a dict: a lookup by name turns only its matches into dicts."""
        if self._by_key is None:
            by_key: dict[str, list[tuple[str, int]]] = {}
            for path in sorted(self.records):
                for key, at in row_keys(self.records[path].symbols):
                    by_key.setdefault(key, []).append((path, at))
            self._by_key = NameLookup.of(by_key)
        return self._by_key

    def _prebuilt_lookups(self) -> dict[str, list[dict[str, Any]]] | None:
        """For an index of up to PREBUILT_SYMBOLS definitions, name and qualified name -> result dicts.

        Two representations by size, on purpose: a dict per definition answers a lookup by name in a
        few microseconds but costs several times the memory of a row pointer; above the threshold the row
        pointers of `_lookups` keep the server near the size of the text it holds (figures: docs/benchmarks.md,
        "Standard library and components")."""
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
            end = entry.symbols.find(ROW, at)
            row = entry.symbols[at : end if end >= 0 else len(entry.symbols)]
            found += [s for s in unpack(path, entry, [row]) if name in (s["name"], s["qualname"])]
        found.sort(key=result_order)
        return found

    # --- queries ---------------------------------------------------------------------------------
    def find_definitions(self, name: str | None = None, *, pattern: str | None = None, kind: str | None = None,
                         path: str | None = None, limit: int | None = 200,
                         within: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """`name` matches a name or qualified name exactly; `pattern` is a regex searched in qualified names.

        Results come in (path, line) order, at most `limit` of them (None: all). `within` restricts the
        search to those files (the ones a caller made sure are parsed); otherwise a name query uses the
        lookup of a complete index, and anything else reads every record there is."""
        if self._prebuilt is not None and name is not None and path is None and within is None and not (
                kind or pattern):  # the common case, kept short: a lookup by name in a small complete index
            return self._prebuilt.get(name, [])[:limit]
        return list(itertools.islice(self.definitions(name, pattern=pattern, kind=kind, path=path, within=within),
                                     limit))

    def definitions(self, name: str | None = None, *, pattern: str | None = None, kind: str | None = None,
                    path: str | None = None, within: Iterable[str] | None = None,
                    from_path: str | None = None) -> Iterator[dict[str, Any]]:
        """find_definitions' results one at a time, in (path, line) order, from the file `from_path` on: a
        caller pages through every result without holding them all (rlm_mcp/sessions/index.py)."""
        regex = re.compile(pattern) if pattern else None
        for symbol in self._matching(name, path, within, from_path):
            if (kind and symbol["kind"] != kind) or (regex and not regex.search(symbol["qualname"])):
                continue
            yield symbol

    def count_definitions(self, kind: str | None = None, pattern: str | None = None,
                          from_path: str | None = None) -> int:
        """How many definitions of `kind` and/or whose qualified name `pattern` finds the files from `from_path`
        on hold -- what `definitions(kind=..., pattern=..., from_path=...)` yields -- counted in the packed rows
        without unpacking them: a kind alone is one substring count per file (a kind is a row's third field,
        between separators no name or signature holds), a pattern reads each row's first three fields."""
        paths = sorted(self.records)
        paths = paths[bisect.bisect_left(paths, from_path) if from_path else 0:]
        if pattern is None:
            needle = FIELD + (kind or "") + FIELD
            return sum(self.records[path].symbols.count(needle) for path in paths)
        search, found = re.compile(pattern).search, 0
        for path in paths:
            packed = self.records[path].symbols
            for row in packed.split(ROW) if packed else ():
                name, qualname, row_kind, _ = row.split(FIELD, 3)
                found += (not kind or row_kind == kind) and search(qualname or name) is not None
        return found

    def _matching(self, name: str | None, path: str | None, within: Iterable[str] | None,
                  from_path: str | None = None) -> Iterator[dict[str, Any]]:
        if name is not None and path is None and within is None and self.complete:
            yield from (s for s in self._looked_up(name) if from_path is None or s["path"] >= from_path)
            return
        candidates = self._candidates(path, within)
        for candidate in candidates[bisect.bisect_left(candidates, from_path) if from_path else 0:]:
            unpacked = self.symbols_of(candidate)
            yield from unpacked.in_order if name is None else unpacked.by_name.get(name, [])

    def _candidates(self, path: str | None, within: Iterable[str] | None) -> list[str]:
        if path is not None:
            return [path] if within is None or path in set(within) else []
        return sorted(within if within is not None else self.records)

    def outline(self, path: str) -> list[dict[str, Any]]:
        return list(self.symbols_of(path).in_order)

    def references(self, name: str, limit: int | None = 500,
                   within: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Call sites of `name` (the called identifier, also as a method or attribute, a macro invocation, a
        call without parentheses where the language has them), in path order; at most `limit` (None: all).

        Found on first request by parsing only the files whose text contains `name` (`within`, when the
        caller already knows which those are), then remembered."""
        if name not in self._references:
            candidates = self.paths if within is None else within
            self._references[name] = [
                {"path": path, "line": line, "text": text}
                for path in sorted(p for p in candidates if spec_for(p) is not None)
                for line, text in call_sites(self.files, path, name)
            ]
        found = self._references[name]
        return found if limit is None else found[:limit]  # all: the remembered list itself (callers only read it)

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
            self._counts = count_records(self.records)
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
