"""The worker prompts of a sub_query call: the named slice of a stored context, appended to each prompt.

A slice is read, never the whole context for it: a file of a codebase is cut out by the manifest's
byte offsets (one seek, one read of that file's bytes), and a character range is read up to its end
only, in chunks. Both come from one generation of the store (the content and the manifest beside it,
resolved once), so a reload in between cannot mix two versions. Knows nothing of MCP or sessions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import BadRequest
from .models import StoredContext

READ_CHARS = 1 << 20  # characters skipped per read on the way to a range's start


def worker_prompts(prompt: str | None, prompts: list[str] | None, stored: StoredContext | None, path: str | None,
                   start: int | None, end: int | None, chunk_chars: int | None) -> list[str]:
    """One prompt or several, each followed by the slice of `stored` (None: no context named); with
    `chunk_chars`, the one prompt once per chunk of the slice (a map step)."""
    if bool(prompt) == bool(prompts):
        raise BadRequest("give exactly one of `prompt` or `prompts`")
    questions = [prompt] if prompt else list(prompts or [])
    if stored is None:
        if path is not None or start is not None or end is not None or chunk_chars:
            raise BadRequest("`path`, `start`, `end` and `chunk_chars` need `context` (a loaded context's name)")
        return questions
    if chunk_chars and not prompt:
        raise BadRequest("`chunk_chars` maps one `prompt` over the chunks; do not combine it with `prompts`")
    text = context_slice(stored, path, start, end)
    if chunk_chars:
        pieces = [text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars)] or [""]
        return [f"{prompt}\n\n---\n{piece}" for piece in pieces]
    return [f"{question}\n\n---\n{text}" for question in questions]


def context_slice(stored: StoredContext, path: str | None, start: int | None, end: int | None) -> str:
    """`stored`'s text, or one file's (`path`), cut to characters [start:end] of it."""
    content = Path(os.path.realpath(stored.content_path))  # one generation: content and manifest agree
    if path is None:
        return _read_chars(content, start or 0, end)
    with open(content.with_name(Path(stored.manifest_path).name), encoding="utf-8") as handle:
        files = json.load(handle).get("files", [])
    entry = next((e for e in files if e.get("path") == path), None)
    if entry is None:
        raise BadRequest(f"{path!r} is not a file of context {stored.name!r}; list them with exec_code: list(files)")
    with open(content, "rb") as handle:
        handle.seek(entry["byte_start"])
        body = handle.read(entry["byte_end"] - entry["byte_start"])
    return body.decode("utf-8")[start or 0 : end]


def _read_chars(content: Path, start: int, end: int | None) -> str:
    """Characters [start:end] of a UTF-8 file, reading no further than `end`; offsets count "\\r\\n" as two."""
    if end is not None and end <= start:
        return ""
    with open(content, encoding="utf-8", newline="") as handle:
        skipped = 0
        while skipped < start and (chunk := handle.read(min(READ_CHARS, start - skipped))):
            skipped += len(chunk)
        return handle.read(-1 if end is None else end - start)
