"""Keep a stored files-context in step with the working tree it was loaded from.

Before each call that reads a live context, `LiveContext.check()` answers "did anything change?".
A full stat walk with the ignore rules costs a noticeable part of a second on a large tree, an inotify
watch answers "nothing" at once (docs/scale.md has the figures). So a watch on the directories the walk
entered is the dirty bit (rlm_mcp/contexts/watch.py says why it is read directly) and the walk is the truth: after
any event the sources are walked again (rlm_mcp/contexts/walk.py, the same rules as the load) and stored
again incrementally -- unchanged files are copied from the previous content file, not read
(rlm_mcp/contexts/store.py). Without a watch (not Linux, watch limit reached) every check first
re-stats what the last walk listed (rlm_mcp/contexts/snapshot.py, cheaper than a walk) and walks only when
something moved.

Bad input never breaks the context: a file that turned binary, grew over the size limit, lost its
read permission or became a symlink out of the allowed roots leaves the context with a note saying
why; a loaded directory that disappears freezes the context as last seen, with a note, until it is
back. Nothing outside the allowed roots is read: the walk resolves every symlink before following it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..progress import Progress
from .cas import ContentStore
from .load import Loaded, LoadRequest, store_walked
from .models import LoadLimits, StoredContext
from .snapshot import WalkSnapshot
from .store import keep_stored, last_stored, read_manifest, relink_stored
from .walk import WalkResult, restat, walk_sources
from .watch import DirectoryWatch, open_watch
from .write import Previous

log = logging.getLogger(__name__)

__all__ = ["Change", "LiveContext", "open_context"]

NAMED_IN_NOTE = 10  # changed paths listed by name; the rest counted


@dataclass
class Change:
    """What a check found: the new stored context (None when only a note is new), paths and notes."""

    stored: StoredContext | None
    changed: list[str] = field(default_factory=list)  # added or modified, manifest paths
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self, name: str) -> str:
        """One line for the model: which files moved under its feet, and why any left."""
        parts = []
        paths = sorted(set(self.changed) | set(self.removed))
        if paths:
            shown = ", ".join(paths[:NAMED_IN_NOTE]) + (f" and {len(paths) - NAMED_IN_NOTE} more"
                                                        if len(paths) > NAMED_IN_NOTE else "")
            where = "" if name == "main" else f" in context {name!r}"
            parts.append(f"{len(paths)} file{'s' if len(paths) != 1 else ''} changed{where} since your last call: "
                         f"{shown}. Variables computed from the old text may be stale.")
        parts += self.notes
        return " ".join(parts)


class LiveContext:
    """One live context: its sources as loaded, its current stored version, and a watcher."""

    def __init__(self, stored: StoredContext, sources: Sequence[str], *, allowed_roots: Sequence[Path],
                 limits: LoadLimits, base_dir: Path, store_dir: Path, cas: ContentStore | None,
                 watch: DirectoryWatch | None, snapshot: WalkSnapshot, walked: WalkResult | None = None) -> None:
        """`watch` is the one the load's walk placed on every directory it entered (see
        rlm_mcp/contexts/watch.py: open_watch, and walk_sources' on_directory), or None. `snapshot` is of
        the walk that found `stored`, and `walked` that walk's result when there was one (a load that
        proved the tree unchanged walked nothing)."""
        self.stored = stored
        self.sources = list(sources)
        self.allowed_roots = list(allowed_roots)
        self.limits = limits
        self.base_dir = base_dir
        self.store_dir = store_dir
        self.cas = cas
        self._entries: list[dict[str, Any]] | None = None  # of the current version, read at the first change
        self.frozen_note: str | None = None  # set while a loaded directory is missing
        # Sources that were single files: one that disappears was deleted, not a vanished directory.
        self._file_sources = {s for s in sources if os.path.isfile(base_dir / os.path.expanduser(s))}
        self._watch = watch
        self._snapshot, self._walked = snapshot, walked
        self._kept = True  # whether the current version is in the store under RLM_HOME (see `keep`)
        self._watched(snapshot)
        self._dirty = self._watch is None  # without a watcher, every check looks

    def _watched(self, snapshot: WalkSnapshot) -> None:
        """Also watch the directories of files the walk took without entering them; give the watcher up if
        the kernel refused one of its watches (the per-user limit)."""
        if self._watch is None:
            return
        self._watch.add_all(snapshot.outside_dirs)
        if self._watch.failure is not None:
            log.info("watcher of context %s stopped (%s): walking instead", self.stored.name, self._watch.failure)
            self.close()

    def keep(self) -> None:
        """Put the current version into the store under RLM_HOME, if only the session has it: the next server
        that loads these sources then finds it (by stat alone when the tree is still as it is). Blocking."""
        if not self._kept and self.cas is not None and self.frozen_note is None:
            keep_stored(self.stored, self.sources, limits=self.limits, base_dir=self.base_dir, cas=self.cas,
                        snapshot=self._snapshot)
            self._kept = True

    def close(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()

    @property
    def watched(self) -> bool:
        return self._watch is not None

    def entries(self) -> list[dict[str, Any]]:
        if self._entries is None:
            self._entries = read_manifest(self.stored)["files"]
        return self._entries

    def check(self) -> Change | None:
        """Bring the stored context up to date with its sources; None when nothing changed. Blocking."""
        changed = self._watch.changed() if self._watch is not None else True
        if not (changed or self._dirty):
            return None
        # Re-stat what the last walk found before walking again (a fraction of a walk's cost: docs/scale.md).
        moved = self._snapshot.moved(self.allowed_roots) if self.frozen_note is None else None
        if moved == []:  # nothing a walk would see moved (an ignored file was written, say)
            self._dirty = self._watch is None
            return None
        self._dirty = True  # until this check succeeds: a failed one (a limit crossed) is tried again next call
        # Files edited in place and nothing else: the last walk with their new stats is what a walk would find.
        walked = restat(self._walked, moved, self.limits) if moved and self._walked is not None else None
        if walked is None:
            walked = walk_sources(self.sources, allowed_roots=self.allowed_roots, limits=self.limits,
                                  base_dir=self.base_dir, missing_ok=True,
                                  on_directory=self._watch.add if self._watch is not None else None)
        missing = [s for s in walked.missing_sources if s not in self._file_sources]
        if missing:
            self._watched(WalkSnapshot.of(walked, self.allowed_roots))
            note = (f"{', '.join(missing)} no longer exists or now resolves outside the allowed roots: context "
                    f"{self.stored.name!r} keeps its files as last seen until it is back (or load_context again).")
            if note == self.frozen_note:  # said already; keep looking (dirty) until it is back
                return None
            self.frozen_note = note
            return Change(None, notes=[note])
        entries: list[dict[str, Any]] = []
        # Into the session's directory only: most versions an editing session makes are superseded within
        # seconds, and one written to the store is fsync'ed (0.1 s to seconds for 292 MB, with the disk
        # throttling every later write). `keep` puts the last one into the store when the session ends.
        request = LoadRequest(self.stored.name, self.sources, self.allowed_roots, self.limits, self.base_dir)
        loaded = store_walked(request, walked, self.store_dir, previous=Previous(self.stored, self.entries()),
                              entries_out=entries)
        self._watched(loaded.snapshot)
        stored = loaded.stored
        self._dirty, self._snapshot, self._walked = self._watch is None, loaded.snapshot, walked
        self._kept = self._kept and stored.fingerprint == self.stored.fingerprint
        thawed, self.frozen_note = self.frozen_note is not None, None
        if stored.fingerprint == self.stored.fingerprint:
            return Change(None, notes=["Every loaded directory is back."]) if thawed else None
        if stored.reused:  # an earlier version of the tree came back (an undo): the store had it
            entries = read_manifest(stored)["files"]
        old_entries, new_entries = _keys(self.entries()), _keys(entries)
        self.stored, self._entries = stored, entries
        changed = [p for p, key in new_entries.items() if old_entries.get(p) != key]
        removed = [p for p in old_entries if p not in new_entries]
        notes = _why_removed(removed, walked, stored.root or "")
        if thawed:
            notes.append("Every loaded directory is back.")
        return Change(stored, changed, removed, notes)


def open_context(request: LoadRequest, store_dir: Path, cas: ContentStore, *, live: bool,
                 on_progress: Progress | None = None) -> tuple[StoredContext, LiveContext | None]:
    """Load `request`'s sources into `store_dir`; with `live`, also the LiveContext that then follows them.
    Blocking.

    The version any server stored last for these sources comes first: a tree whose stats show it unchanged
    since is reused without a walk; where it moved on, that version's unchanged files are copied, not read."""
    last, snapshot = last_stored(request.name, request.sources, request.limits, request.base_dir, cas) or (None, None)
    watch = open_watch() if live else None  # placed directory by directory, before each look
    on_directory = watch.add if watch is not None else None
    try:
        loaded = None
        if last is not None and snapshot is not None and snapshot.unchanged(request.allowed_roots, on_directory):
            reused = relink_stored(request.name, last.fingerprint, store_dir, cas)
            loaded = Loaded(reused, None, snapshot) if reused is not None else None
        if loaded is None:
            walked = walk_sources(request.sources, allowed_roots=request.allowed_roots, limits=request.limits,
                                  base_dir=request.base_dir, on_progress=on_progress, on_directory=on_directory)
            loaded = store_walked(request, walked, store_dir, cas=cas, on_progress=on_progress,
                                  previous=Previous(last) if last is not None else None)
    except BaseException:
        if watch is not None:
            watch.close()
        raise
    if not live:
        return loaded.stored, None
    return loaded.stored, LiveContext(loaded.stored, request.sources, allowed_roots=request.allowed_roots,
                                      limits=request.limits, base_dir=request.base_dir, store_dir=store_dir,
                                      cas=cas, watch=watch, snapshot=loaded.snapshot, walked=loaded.walked)


def _keys(entries: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    return {e["path"]: (e["size"], e["mtime_ns"], e["ctime_ns"]) for e in entries}


def _why_removed(removed: list[str], walked: WalkResult, root: str) -> list[str]:
    """A note per file that left the context for a reason other than being deleted."""
    prefix = root if root.endswith("/") else root + "/"

    def rel(logical: str) -> str:
        return logical[len(prefix):] if logical.startswith(prefix) else logical

    reasons: dict[str, str] = {}
    for path in walked.binary_paths:
        reasons[rel(path)] = "is binary now"
    for big in walked.too_large:
        reasons[rel(big.path)] = f"is {big.bytes:,} bytes now, over the per-file limit (RLM_MAX_FILE_BYTES)"
    for path in walked.outside_paths:
        reasons[rel(path)] = "is a symlink pointing outside the allowed roots now (not followed, not read)"
    unreadable = [rel(path) for path in walked.unreadable_paths]
    notes = []
    for path in removed:
        why = reasons.get(path)
        if why is None and any(path == u or path.startswith(u.rstrip("/") + "/") for u in unreadable):
            why = "cannot be read any more (permission denied?)"
        if why is not None:
            notes.append(f"{path} {why}: dropped from the context; the rest is up to date.")
    return notes
