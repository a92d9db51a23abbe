"""The host's half of REPL checkpoints: opaque files kept on disk, never unpickled here.

The guest pickles the variables each exec created or changed (guest/checkpoint.py) and sends each file
as a raw frame on its channel before the exec's reply (channel.py reads it into `open_blob`). This store caps
what it accepts while it reads (RLM_CHECKPOINT_MAX_MB a session), writes each
file under a name it computes itself, and moves it into place only when the exec's reply confirms it.
To restore, it copies the files into the session's read-only data directory, where the guest loads them
inside the jail: the server trusts nothing a guest wrote, so a hostile file can fail only its own restore.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .guest.checkpoint import file_name

log = logging.getLogger(__name__)

RECORD = "record.json"
PENDING = "pending"
FILE_RE = re.compile(r"^v-[0-9a-f]{32}\.pkl$")
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class CheckpointNote:
    """What an exec's checkpoint kept out (name -> why) and whether saving failed as a whole."""

    unsaved: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RestoreNote:
    """Which variables a restarted REPL got back from its checkpoint, and which failed to load (and why)."""

    restored: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)
    repl_restarted: bool = False  # the checkpoint killed or hung its REPL: it was dropped, the REPL started clean


class CheckpointStore:
    """One session's saved variables under `directory` (in RLM_HOME), at most `max_bytes` in all."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.sizes: dict[str, int] = {}  # variable -> bytes of its file
        self.unsaved: dict[str, str] = {}  # variable -> why the last exec that changed it could not keep it
        self._pending_bytes = 0
        self._pending = False  # files in pending/ (an exec sent some)
        self._read_record()

    # --- what the guest is told ------------------------------------------------------------------
    def request(self) -> dict[str, Any]:
        """The `checkpoint` field of an exec request: the cap and what is saved already."""
        self._discard_pending()
        return {"cap_bytes": self.max_bytes, "sizes": dict(self.sizes)}

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())

    # --- receiving -------------------------------------------------------------------------------
    def open_blob(self, file: str, size: int) -> BinaryIO:
        """Where a file the guest sends goes until the exec's reply vouches for it (pending/, capped)."""
        if not FILE_RE.match(file):
            raise ValueError(f"a checkpoint file may not be named {file[:80]!r}")
        if self._pending_bytes + size > self.max_bytes:
            raise ValueError(f"checkpoint passes RLM_CHECKPOINT_MAX_MB ({self.max_bytes // 2**20} MB a session)")
        self._pending_bytes += size
        self._pending = True
        pending = self.directory / PENDING
        pending.mkdir(parents=True, exist_ok=True)
        return open(pending / file, "wb")

    def commit(self, reply: Any) -> CheckpointNote:
        """Keep what an exec's reply says it saved; drop what it deleted or could not keep. Anything that
        does not add up (a name whose file is not the one we compute, a file of another size than the reply
        says, a total over the cap) discards the whole save, and the variables saved before stay as they
        were. An exec that changed nothing costs no disk access."""
        try:
            if not isinstance(reply, dict):
                return CheckpointNote(error="the REPL sent no checkpoint")
            if reply.get("error"):
                return CheckpointNote(error=f"saving failed in the REPL: {str(reply['error'])[:300]}")
            saved, unsaved, deleted = self._validated(reply)
            if not (saved or unsaved or deleted):
                return CheckpointNote()
            for name, size in saved:
                staged = self.directory / PENDING / file_name(name)
                if staged.stat().st_size != size:
                    raise ValueError(f"the file of {name!r} is not the size the REPL reported")
                os.replace(staged, self.directory / file_name(name))
                self.sizes[name] = size
                self.unsaved.pop(name, None)
            for name in [*unsaved, *deleted]:
                (self.directory / file_name(name)).unlink(missing_ok=True)  # never leave a stale value behind
                self.sizes.pop(name, None)
                self.unsaved.pop(name, None)
            self.unsaved.update(unsaved)
            self._write_record()
            return CheckpointNote(unsaved=dict(unsaved))
        except (ValueError, OSError) as exc:
            log.warning("checkpoint of %s refused: %s", self.directory, exc)
            return CheckpointNote(error=f"this exec's variables were not saved: {exc}")
        finally:
            self._discard_pending()

    def _validated(self, reply: dict[str, Any]) -> tuple[list[tuple[str, int]], dict[str, str], list[str]]:
        entries, unsaved, deleted = reply.get("saved") or [], reply.get("unsaved") or {}, reply.get("deleted") or []
        if not (isinstance(entries, list) and isinstance(unsaved, dict) and isinstance(deleted, list)) or not all(
                isinstance(entry, dict) for entry in entries):  # the guest is hostile: any shape may come
            raise ValueError("malformed checkpoint reply")
        saved = []
        for entry in entries:
            name, size = _name(entry.get("name")), entry.get("bytes")
            if entry.get("file") != file_name(name) or not isinstance(size, int) or size < 0:
                raise ValueError(f"malformed checkpoint entry for {name!r}")
            saved.append((name, size))
        unsaved = {_name(name): str(why)[:300] for name, why in unsaved.items()}
        deleted = [_name(name) for name in deleted]
        kept = {name: size for name, size in self.sizes.items() if name not in unsaved and name not in deleted}
        kept.update(saved)
        if sum(kept.values()) > self.max_bytes:
            raise ValueError(f"it passes RLM_CHECKPOINT_MAX_MB ({self.max_bytes // 2**20} MB a session)")
        return saved, unsaved, deleted

    # --- restoring and clearing ---------------------------------------------------------------------
    def stage(self, target: Path) -> bool:
        """Copy the saved files into `target` (in the session's read-only data directory) for the guest to
        load; hard links where the filesystem allows. False when there is nothing to restore."""
        shutil.rmtree(target, ignore_errors=True)
        if not self.sizes:
            return False
        target.mkdir(parents=True)
        target.chmod(0o755)
        for name in self.sizes:
            source, copy = self.directory / file_name(name), target / file_name(name)
            try:
                os.link(source, copy)
            except OSError:
                shutil.copyfile(source, copy)
            copy.chmod(0o644)
        return True

    def forget(self, names: dict[str, str] | list[str]) -> None:
        """Drop variables whose files failed to load: keeping them would only fail every restore again."""
        for name in names:
            if name in self.sizes:
                (self.directory / file_name(name)).unlink(missing_ok=True)
                del self.sizes[name]
        if names:
            self._write_record()

    def clear(self) -> None:
        """Forget every saved variable (a session reset, or its end)."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self.sizes.clear()
        self.unsaved.clear()

    # --- the record: which variable is in which file, written by us ------------------------------------
    def _read_record(self) -> None:
        try:
            record = json.loads((self.directory / RECORD).read_text())
            self.sizes = {_name(k): int(v) for k, v in record.get("sizes", {}).items()}
            self.unsaved = {_name(k): str(v) for k, v in record.get("unsaved", {}).items()}
        except (OSError, ValueError, AttributeError, TypeError):
            self.sizes, self.unsaved = {}, {}

    def _write_record(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)  # an exec whose every variable was refused sent no file
        temporary = self.directory / (RECORD + ".tmp")
        temporary.write_text(json.dumps({"sizes": self.sizes, "unsaved": self.unsaved}))
        os.replace(temporary, self.directory / RECORD)

    def _discard_pending(self) -> None:
        if self._pending:
            shutil.rmtree(self.directory / PENDING, ignore_errors=True)
        self._pending_bytes, self._pending = 0, False


def _name(value: Any) -> str:
    name = str(value)[:MAX_NAME]
    if not name.isidentifier():
        raise ValueError(f"{name[:60]!r} is not a variable name")
    return name
