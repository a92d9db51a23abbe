"""The one load operation: the result of a walk over a context's sources becomes a stored context, with the
snapshot that lets the next look re-stat the files instead of walking them again.

A first load (live.py's `open_context`) and every check of a live context (`LiveContext.check`) end here, so
the two cannot drift apart: what they walk, how they fingerprint and store it, and what they remember for
the next server are the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..progress import Progress
from .cas import ContentStore
from .models import LoadLimits, StoredContext
from .snapshot import WalkSnapshot
from .store import store_paths
from .walk import WalkResult
from .write import Previous


@dataclass(frozen=True, slots=True)
class LoadRequest:
    """What a load names: the context's name and sources, the roots they must stay inside, the limits, and
    the directory relative sources resolve against."""

    name: str
    sources: Sequence[str]
    allowed_roots: Sequence[Path]
    limits: LoadLimits
    base_dir: Path


@dataclass(frozen=True, slots=True)
class Loaded:
    """A stored version of the sources, the walk that found it (None when the store proved the tree unchanged
    without one) and that walk's snapshot."""

    stored: StoredContext
    walked: WalkResult | None
    snapshot: WalkSnapshot


def store_walked(request: LoadRequest, walked: WalkResult, store_dir: Path, *, cas: ContentStore | None = None,
                 previous: Previous | None = None, on_progress: Progress | None = None,
                 entries_out: list[dict[str, Any]] | None = None) -> Loaded:
    """Store what `walked` found as context `request.name` in `store_dir` (and in `cas`, with its snapshot, for
    the next server); files unchanged since `previous` are copied from its text, not read again."""
    snapshot = WalkSnapshot.of(walked, request.allowed_roots)
    stored = store_paths(request.name, request.sources, allowed_roots=request.allowed_roots, store_dir=store_dir,
                         limits=request.limits, base_dir=request.base_dir, on_progress=on_progress, cas=cas,
                         walked=walked, previous=previous, entries_out=entries_out, snapshot=snapshot)
    return Loaded(stored, walked, snapshot)
