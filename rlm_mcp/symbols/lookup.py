"""The name lookup of a large index: lookup key -> where its definitions' rows are, (path, row offset).

Why not a plain dict of lists, as it is while it is built: a cache holding one as marshal data takes
~130 ms to load at 310k definitions (87k keys, 310k tuples: every one an object to allocate), most of
a new server's reload of a 24k-file tree. Frozen, the same lookup is five flat values -- the paths,
every key in sorted order in one string, and three arrays of integers -- which marshal loads in a few
milliseconds; a lookup bisects the sorted keys (~20 us). A live context's edits change a handful of
keys: those go into an overlay dict that is consulted first, and the next save freezes the result.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator, Mapping

__all__ = ["NameLookup"]

Rows = list[tuple[str, int]]  # (path, offset of the definition's row in that file's packed symbols)
_SEPARATOR = "\n"  # never in a lookup key (identifiers); keeps the key string readable when debugging
_UNSIGNED = "I" if array("I").itemsize == 4 else "L"  # 32-bit unsigned offsets on every platform


class NameLookup:
    """A frozen mapping of keys to rows, plus the keys changed since it was frozen."""

    def __init__(self, frozen: tuple[list[str], str, bytes, bytes, bytes] | None = None) -> None:
        paths, keys, key_ends, row_ends, rows = frozen or ([], "", b"", b"", b"")
        self._paths = paths
        self._keys = keys
        self._key_ends = _ints(key_ends)  # key i is keys[key_ends[i-1] + 1 : key_ends[i]] (separator-led)
        self._row_ends = _ints(row_ends)  # rows of key i are pairs row_ends[i-1] .. row_ends[i] of `rows`
        self._rows = _ints(rows)  # (path number, offset) pairs
        self._changed: dict[str, Rows] = {}  # overlay; an empty list means the key is gone

    @classmethod
    def of(cls, by_key: Mapping[str, Rows]) -> NameLookup:
        lookup = cls()
        lookup._changed = {key: list(rows) for key, rows in by_key.items()}
        return lookup

    def copy(self) -> NameLookup:
        """An independent lookup (the frozen part is never changed, so it is shared)."""
        twin = NameLookup()
        twin._paths, twin._keys, twin._key_ends, twin._row_ends, twin._rows = (
            self._paths, self._keys, self._key_ends, self._row_ends, self._rows)
        twin._changed = {key: list(rows) for key, rows in self._changed.items()}
        return twin

    def get(self, key: str) -> Rows:
        changed = self._changed.get(key)
        if changed is not None:
            return changed
        at = self._find(key)
        return self._rows_at(at) if at >= 0 else []

    def put(self, key: str, rows: Rows) -> None:
        """Replace the rows of `key` (an empty list removes it)."""
        self._changed[key] = rows

    def frozen(self) -> tuple[list[str], str, bytes, bytes, bytes]:
        """The whole lookup as plain values for marshal: the overlay merged in, keys sorted. Rows are fetched
        a key at a time, so freezing does not hold every row as objects at once."""
        if not self._changed:
            return self._paths, self._keys, self._key_ends.tobytes(), self._row_ends.tobytes(), self._rows.tobytes()
        numbers: dict[str, int] = {}
        keys, key_ends, row_ends, rows = [], array(_UNSIGNED), array(_UNSIGNED), array(_UNSIGNED)
        length = 0
        for key, key_rows in self._merged():
            if not key_rows:
                continue
            keys.append(key)
            length += len(key) + 1
            key_ends.append(length)
            for path, offset in key_rows:
                rows.append(numbers.setdefault(path, len(numbers)))
                rows.append(offset)
            row_ends.append(len(rows) // 2)
        joined = "".join(_SEPARATOR + key for key in keys)
        return list(numbers), joined, key_ends.tobytes(), row_ends.tobytes(), rows.tobytes()

    def _merged(self) -> Iterator[tuple[str, Rows]]:
        """(key, rows) in key order, the overlay merged into the frozen keys (themselves in order)."""
        overlay, next_changed = sorted(self._changed), 0
        for at in range(len(self._key_ends)):
            key = self._key(at)
            while next_changed < len(overlay) and overlay[next_changed] < key:
                yield overlay[next_changed], self._changed[overlay[next_changed]]
                next_changed += 1
            if next_changed < len(overlay) and overlay[next_changed] == key:
                next_changed += 1
                yield key, self._changed[key]
            else:
                yield key, self._rows_at(at)
        for key in overlay[next_changed:]:
            yield key, self._changed[key]

    def _rows_at(self, at: int) -> Rows:
        paths, rows = self._paths, self._rows
        start, end = (self._row_ends[at - 1] if at else 0), self._row_ends[at]
        return [(paths[rows[2 * i]], rows[2 * i + 1]) for i in range(start, end)]

    def _key(self, at: int) -> str:
        return self._keys[(self._key_ends[at - 1] if at else 0) + 1 : self._key_ends[at]]

    def _find(self, key: str) -> int:
        count = len(self._key_ends)
        at = bisect.bisect_left(range(count), key, key=self._key)
        return at if at < count and self._key(at) == key else -1


def _ints(data: bytes) -> array[int]:
    numbers = array(_UNSIGNED)
    numbers.frombytes(data)
    return numbers
