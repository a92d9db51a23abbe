"""Which files of a stored context contain a literal: one pass over content.txt's bytes.

The code index parses, on demand, only the files whose text can answer a query by name (while its
build runs, and for call sites at any time). Reading the one stored file in fixed-size blocks with
the manifest's byte offsets (see rlm_mcp/contexts/store.py) finds them in a fraction of a second on
hundreds of megabytes, without decoding the text, opening each source file, or mapping the whole
file into this process's memory.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from .models import ManifestEntry

BLOCK = 8 << 20
CONTEXT = 64  # bytes of a hit's surroundings an `accept` filter sees (see files_containing)

#: Decides whether one occurrence counts: (path, up to CONTEXT bytes before it in the file, the byte after).
Accept = Callable[[str, bytes, bytes], bool]


def files_containing(content_path: str, entries: Sequence[ManifestEntry], needle: bytes,
                     block: int = BLOCK, accept: Accept | None = None) -> list[str]:
    """Paths of the manifest `entries` whose body contains `needle`, in manifest order.

    With `accept`, only occurrences it accepts count (the code index's "can a definition be here?")."""
    if not needle or not entries:
        return []
    starts = [entry.byte_start for entry in entries]
    found: list[str] = []
    overlap = len(needle) - 1 + (CONTEXT + 1 if accept is not None else 0)
    buffer = bytearray(block + overlap)
    view = memoryview(buffer)
    base = 0  # offset in the file of buffer[0]
    kept = 0  # bytes carried over from the previous block
    with open(content_path, "rb", buffering=0) as handle:
        while True:
            read = handle.readinto(view[kept : kept + block])
            if not read:
                break
            filled = kept + read
            at = buffer.find(needle, 0, filled)
            while at >= 0:
                where = bisect.bisect_right(starts, base + at) - 1
                entry = entries[where] if where >= 0 else None
                end = base + at + len(needle)
                if entry is not None and end <= entry.byte_end and (accept is None or accept(
                        entry.path, bytes(buffer[max(at - CONTEXT, entry.byte_start - base, 0) : at]),
                        bytes(buffer[at + len(needle) : at + len(needle) + 1]) if end < entry.byte_end else b"")):
                    found.append(entry.path)
                    at = entry.byte_end - base  # one hit per file is enough: go on after it
                else:
                    at += 1  # a hit in a header line, or across a file boundary
                at = buffer.find(needle, at, filled) if at < filled else -1
            kept = min(overlap, filled)
            buffer[:kept] = buffer[filled - kept : filled]
            base += filled - kept
    return list(dict.fromkeys(found))
