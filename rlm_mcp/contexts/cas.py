"""The store under RLM_HOME that outlives a server: stored contexts shared by every server and session.

Every new conversation in an MCP host starts a new server; without this, each one re-read and re-wrote
an unchanged tree. Here a stored context is an *entry* named by its fingerprint (rlm_mcp/contexts/store.py
computes it: for text, a hash of the text; for files, a hash of the limits, the sources and the path,
size and mtime of every file -- everything the content is a function of), so the same tree under the same
settings has the same name in every server, and a server finds it by stat alone.

Layout of `RLM_HOME/store/`:

    entries/<fingerprint>/   content.txt, manifest.json, summary.json (rlm_mcp/contexts/store.py)
    index/<root hash>.idx    the code index caches (rlm_mcp/symbols/index.py), counted in the cap too
    latest/<sources hash>    the fingerprint stored last for those sources and the snapshot of the walk that
                             found it (store.py: last_stored): a new server's load proves the tree unchanged
                             by stat alone (rlm_mcp/contexts/snapshot.py), or copies the unchanged files of
                             that version rather than reading them
    tmp/<fingerprint>.<pid>.<random>/   an entry being written, invisible to readers
    .lock                    flock held while entries are published or evicted

Safety:
- An entry is written completely in `tmp/`, its files fsync'ed, then renamed into `entries/` in one
  atomic step: a reader sees a whole entry or none, and a server killed mid-write leaves only a `tmp/`
  directory, which the next eviction pass removes once its writer is gone.
- Two servers writing the same fingerprint at once both finish; the first rename wins and the second
  writer discards its copy and uses the winner's (same fingerprint, same content).
- Sessions never read an entry in place: they hard-link its files into their own data directory
  (the jail sees only that), so evicting an entry never pulls a file from under a running session.

Eviction: least recently used first (an entry's directory mtime is touched on every use), until the
store is under its cap; the entry just published is never evicted by its own publication.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .walk import CACHEDIR_SIGNATURE, CACHEDIR_TAG

__all__ = ["ContentStore"]

ENTRY_FILES = ("content.txt", "manifest.json", "summary.json")
STALE_TMP_S = 3600.0  # a tmp dir whose writer's pid is gone, or older than this, is debris


@dataclass(frozen=True)
class ContentStore:
    """`root` is RLM_HOME/store; `cap_bytes` bounds entries, index caches and notes of versions stored last."""

    root: Path
    cap_bytes: int

    @property
    def entries(self) -> Path:
        return self.root / "entries"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    def remember(self, sources: str, key: str, snapshot: bytes) -> None:
        """Note entry `key` as the version of `sources` (a hash of what was loaded, and how) stored last, with
        the snapshot of the walk that found it; replaced in one rename, so a reader sees one note whole."""
        latest = self.root / "latest"
        latest.mkdir(parents=True, exist_ok=True)
        temporary = latest / f".{sources}.{os.getpid()}.{secrets.token_hex(4)}"
        temporary.write_bytes(key.encode("ascii") + b"\n" + snapshot)
        os.replace(temporary, latest / sources)

    def recall(self, sources: str) -> tuple[Path, bytes] | None:
        """The entry stored last for `sources` and its walk's snapshot, if the store still has the entry
        (marked used: the last in line for eviction, so it stays for the load that asked)."""
        note = self.root / "latest" / sources
        try:
            key, _, snapshot = note.read_bytes().partition(b"\n")
        except OSError:
            return None
        entry = self.get(key.decode("ascii", "replace")) if key.isalnum() else None
        if entry is None:
            return None
        with contextlib.suppress(OSError):
            os.utime(note)  # a use, like its entry's
        return entry, snapshot

    def get(self, key: str) -> Path | None:
        """The entry's directory if it is in the store (and mark it used), else None."""
        entry = self.entries / key
        if not (entry / "summary.json").is_file():  # written last, so a complete entry has it
            return None
        with contextlib.suppress(OSError):
            os.utime(entry)
        return entry

    def begin(self, key: str) -> Path:
        """A fresh private directory to write entry `key` into; `publish` it or `discard` it."""
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        tag = self.root / CACHEDIR_TAG
        if not tag.exists():  # loads and live walks of a tree holding RLM_HOME skip the store
            tag.write_bytes(CACHEDIR_SIGNATURE + b"\n# rlm-mcp's store of contexts: a cache, safe to delete.\n")
        path = tmp / f"{key}.{os.getpid()}.{secrets.token_hex(4)}"
        path.mkdir()
        return path

    def publish(self, key: str, written: Path) -> Path:
        """Make `written` the entry `key` atomically (fsync'ed first); returns the entry's directory.

        When another server published the same key meanwhile, its entry is kept and ours discarded."""
        for name in ENTRY_FILES:
            _fsync(written / name)
        _fsync(written)
        self.entries.mkdir(parents=True, exist_ok=True)
        target = self.entries / key
        with self._locked():
            try:
                os.rename(written, target)
            except OSError:  # ENOTEMPTY/EEXIST: someone else's identical entry is there already
                if not (target / "summary.json").is_file():
                    raise
                discard(written)
            _fsync(self.entries)
            os.utime(target)
            self._evict(keep=key)
        return target

    def evict(self) -> None:
        """Bring the store under its cap (least recently used first) and clear debris of dead writers."""
        with self._locked():
            self._evict(keep=None)

    def usage(self) -> int:
        """Bytes held by entries and index caches."""
        return sum(size for _, _, size in self._items())

    def _evict(self, keep: str | None) -> None:
        self._clear_debris()
        items = sorted(self._items(), key=lambda item: item[1])  # oldest use first
        total = sum(size for _, _, size in items)
        for path, _, size in items:
            if total <= self.cap_bytes:
                break
            if path.name == keep:
                continue
            if path.is_dir():
                # Out of sight in one rename, then deleted: no reader ever sees half an entry.
                doomed = self.root / "tmp" / f"evicted-{path.name}.{secrets.token_hex(4)}"
                with contextlib.suppress(OSError):
                    os.rename(path, doomed)
                    discard(doomed)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
            total -= size

    def _items(self) -> Iterator[tuple[Path, float, int]]:
        """(path, last use, bytes) of every entry, index cache and note of a version stored last (its walk's
        snapshot is ~3 MB for a 24k-file tree)."""
        for folder, is_entry in ((self.entries, True), (self.index_dir, False), (self.root / "latest", False)):
            try:
                children = list(os.scandir(folder))
            except OSError:
                continue
            for child in children:
                try:
                    if is_entry:
                        used = child.stat().st_mtime
                        size = sum(os.stat(os.path.join(child.path, name)).st_size for name in ENTRY_FILES)
                    elif child.name.endswith(".idx") or (folder.name == "latest" and not child.name.startswith(".")):
                        stat = child.stat()
                        used, size = stat.st_mtime, stat.st_size
                    else:
                        continue
                except OSError:
                    continue
                yield Path(child.path), used, size

    def _clear_debris(self) -> None:
        """Remove tmp dirs of writers that died (killed mid-write) or stalled for over an hour."""
        try:
            children = list(os.scandir(self.root / "tmp"))
        except OSError:
            return
        now = time.time()
        for child in children:
            parts = child.name.split(".")
            pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
            try:
                old = now - child.stat(follow_symlinks=False).st_mtime > STALE_TMP_S
            except OSError:
                continue
            if old or child.name.startswith("evicted-") or (pid is not None and not _alive(pid)):
                discard(Path(child.path))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            if os.name == "nt":  # Windows: a byte-range lock, retried by the C runtime for up to 10 s
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def link_entry(entry: Path, into: Path) -> None:
    """Hard-link the entry's files into `into` (a session's generation directory); copy across devices.

    Raises FileNotFoundError when the entry was evicted meanwhile (the caller then writes it again)."""
    for name in ENTRY_FILES:
        try:
            os.link(entry / name, into / name)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            shutil.copyfile(entry / name, into / name)


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _fsync(path: Path) -> None:
    if os.name == "nt" and path.is_dir():
        return  # Windows opens no directory for fsync; NTFS journals the rename itself
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill(pid, 0) would send CTRL_C_EVENT there: such debris goes by age instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
