"""The code index of a session's contexts: built in the background after a load, queried by the REPL
(`find_symbol`, `outline`, `references`) and by the host's `find_symbol` tool.

Text search works the moment a context is loaded; the index follows a moment later and never blocks a
load. Queries that arrive while it builds wait a little, then say so instead of hanging.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from .contexts import StoredContext, files_of
from .symbols import CodeIndex

log = logging.getLogger(__name__)
WAIT_FOR_BUILD_S = 20.0
MAX_RESULTS = 1000


class IndexNotReady(RuntimeError):
    pass


@dataclass(eq=False)
class ContextIndex:
    name: str
    fingerprint: str = ""
    status: str = "building"
    index: CodeIndex | None = None
    error: str | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)

    def summary(self) -> str:
        if self.index is not None:
            stats = self.index.stats()
            problems = f", {stats['problem_count']} files with problems" if stats["problem_count"] else ""
            return f"ready: {stats['symbols']:,} symbols in {stats['files_indexed']:,} files{problems}"
        return self.status if self.error is None else f"failed: {self.error}"


class SessionIndex:
    """One index per loaded files-context; rebuilt (incrementally, from the on-disk cache) on reload."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.indexes: dict[str, ContextIndex] = {}
        self._one_build_at_a_time = anyio.Lock()  # later builds of the same tree then hit the cache

    def start(self, stored: StoredContext, task_group: Any) -> ContextIndex:
        """Begin indexing `stored` in the background; returns at once. An unchanged reload keeps its index."""
        current = self.indexes.get(stored.name)
        if current is not None and current.fingerprint == stored.fingerprint and current.error is None:
            return current
        entry = ContextIndex(stored.name, stored.fingerprint)
        self.indexes[stored.name] = entry
        if stored.kind != "files":
            entry.status = "none (plain text)"
            entry.ready.set()
            return entry
        task_group.start_soon(self._build, entry, stored)
        return entry

    async def _build(self, entry: ContextIndex, stored: StoredContext) -> None:
        rel_paths = [rel for _, rel in files_of(stored)]  # relative to the context's root, like the manifest
        root = Path(stored.root or "/")
        cache = self.cache_dir / f"{hashlib.sha256(str(root).encode()).hexdigest()[:16]}.idx"
        try:
            async with self._one_build_at_a_time:
                entry.index = await anyio.to_thread.run_sync(lambda: CodeIndex.build(root, rel_paths, cache))
            entry.status = "ready"
        except Exception as exc:  # a broken index must not break the session: text search still works
            log.warning("indexing %s failed: %s", stored.name, exc)
            entry.error = f"{type(exc).__name__}: {exc}"
        finally:
            entry.ready.set()

    def drop(self, name: str) -> None:
        """Forget the index of a dropped context: its entry and its on-disk cache."""
        entry = self.indexes.pop(name, None)
        if entry is not None and entry.index is not None and entry.index.cache_path is not None:
            entry.index.cache_path.unlink(missing_ok=True)

    async def get(self, name: str) -> CodeIndex:
        entry = self.indexes.get(name)
        if entry is None:
            raise IndexNotReady(f"no code index for context {name!r}: load a directory or files with load_context")
        with anyio.move_on_after(WAIT_FOR_BUILD_S):
            await entry.ready.wait()
        if entry.index is None:
            raise IndexNotReady(f"the code index of {name!r} is {entry.summary()}; use grep() meanwhile")
        return entry.index

    async def query(self, payload: Any) -> Any:
        """The REPL's `index` callback: validated, capped, plain data back."""
        if not isinstance(payload, dict):
            raise ValueError("index query must be an object")
        index = await self.get(str(payload.get("context") or "main"))
        op = payload.get("op")
        limit = min(int(payload.get("limit") or 200), MAX_RESULTS)
        if op == "find":
            return index.find_definitions(
                _opt(payload, "name"), pattern=_opt(payload, "pattern"), kind=_opt(payload, "kind"),
                path=_opt(payload, "path"), limit=limit,
            )
        if op == "outline":
            return index.outline(str(payload.get("path") or ""))
        if op == "references":
            return index.references(str(payload.get("name") or ""), limit=limit)
        raise ValueError(f"unknown index operation {op!r}: use find, outline or references")


def _opt(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return None if value is None else str(value)[:500]
