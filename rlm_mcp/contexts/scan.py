"""Which files of a stored context contain a literal: one pass over content.txt's bytes.

The code index parses, on demand, only the files whose text can answer a query by name (while its
build runs, and for call sites at any time). Reading the one stored file in fixed-size blocks with
the manifest's byte offsets (see rlm_mcp/contexts/store.py) finds them in a fraction of a second on
hundreds of megabytes, without decoding the text, opening each source file, or mapping the whole
file into this process's memory.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

BLOCK = 8 << 20


def files_containing(content_path: str, entries: Sequence[Mapping[str, Any]], needle: bytes,
                     block: int = BLOCK) -> list[str]:
    """Paths of the manifest `entries` whose body contains `needle`, in manifest order."""
    if not needle or not entries:
        return []
    starts = [entry["byte_start"] for entry in entries]
    found: list[str] = []
    overlap = len(needle) - 1
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
                if entry is not None and base + at + len(needle) <= entry["byte_end"]:
                    found.append(entry["path"])
                    at = entry["byte_end"] - base  # one hit per file is enough: go on after it
                else:
                    at += 1  # a hit in a header line, or across a file boundary
                at = buffer.find(needle, at, filled) if at < filled else -1
            kept = min(overlap, filled)
            buffer[:kept] = buffer[filled - kept : filled]
            base += filled - kept
    return list(dict.fromkeys(found))
