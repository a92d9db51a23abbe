"""Write a context to disk once, atomically, and reuse it while its sources are unchanged.

With a ContentStore (rlm_mcp/contexts/cas.py) the entry is written once under RLM_HOME for every server
and session, and the generation directory below holds hard links to it; the bytes of content.txt are
written by rlm_mcp/contexts/write.py.

Layout: `store_dir/<name>` is a symlink to a generation directory `store_dir/.<name>.<gen>/` holding

- `content.txt`   the whole context, UTF-8. For codebases: FILE_HEADER + body for every file.
                  Line endings are kept as on disk, so readers must open it with `newline=""` (or
                  mmap and decode) for the manifest's character offsets to hold.
- `manifest.json` kind, root, header format and one entry per file:
                  {path, start, end, byte_start, byte_end, first_line, bytes, lines, language};
                  `start`/`end` are CHARACTER offsets of the body in the decoded content, so
                  `context[start:end]` is the file's text; `byte_start`/`byte_end` are the body's BYTE
                  offsets in content.txt and `first_line` the line of content.txt it starts on, so
                  byte-level searches of the file (ripgrep, the index's name prefilter) map back to
                  (path, line) without decoding anything.
- `summary.json`  the StoredContext, read back for cheap reuse.

A new generation is written completely, then the symlink is swapped with one atomic rename, so a
reader that resolved the link sees one consistent (content, manifest) pair and never half a
context; the previous generation is deleted afterwards (open file handles keep working).

Reuse: the fingerprint hashes the format version, limits, sources, and (path, size, mtime_ns) of
every selected or skipped file. Same fingerprint and the store exists -> nothing is read or written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..progress import Progress
from .cas import ContentStore, discard, link_entry
from .errors import ContextError, InvalidContextName
from .models import (
    CONTEXT_NAME_RE,
    FILE_HEADER,
    FORMAT_VERSION,
    FileSize,
    LoadLimits,
    SkipCounts,
    StoredContext,
    estimate_tokens,
    read_manifest,
)
from .snapshot import WalkSnapshot
from .walk import WalkResult, walk_sources
from .write import Previous, rel_path, write_files

__all__ = ["files_of", "keep_stored", "last_stored", "load_stored", "read_manifest", "relink_stored", "store_paths",
           "store_text"]


def validate_name(name: str) -> str:
    """Return `name` if it is a valid context name, else raise InvalidContextName."""
    if not isinstance(name, str) or CONTEXT_NAME_RE.match(name) is None:
        raise InvalidContextName(str(name), CONTEXT_NAME_RE.pattern)
    return name


def store_text(name: str, text: str, store_dir: Path, cas: ContentStore | None = None) -> StoredContext:
    """Store inline text as a "text" context (no manifest entries). Reused when the text is the same.

    With `cas`, the text is stored there once for every server and linked into `store_dir`."""
    t0 = time.perf_counter()
    validate_name(name)
    data = text.encode("utf-8", errors="replace")  # lone surrogates -> '?', one char each
    fingerprint = _hash(f"text|{FORMAT_VERSION}".encode(), data)
    reused = _try_reuse(store_dir, name, fingerprint, t0, cas)
    if reused is not None:
        return reused
    lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)

    def write(gen: Path) -> dict[str, Any]:
        (gen / "content.txt").write_bytes(data)
        return {"files": [], "lines": lines}

    return _commit(
        store_dir,
        name,
        write,
        summary=dict(
            kind="text",
            chars=len(text),
            bytes=len(data),
            file_count=0,
            languages={},
            largest_files=(),
            too_large_files=(),
            skipped=SkipCounts(),
            decode_replaced=0,
            root=None,
            roots=(),
            sources=(),
            fingerprint=fingerprint,
        ),
        t0=t0,
        cas=cas,
        key=fingerprint,
    )


def store_paths(
    name: str,
    sources: Sequence[str],
    *,
    allowed_roots: Sequence[Path],
    store_dir: Path,
    limits: LoadLimits,
    base_dir: Path | None = None,
    on_progress: Progress | None = None,
    cas: ContentStore | None = None,
    walked: WalkResult | None = None,
    previous: Previous | None = None,
    entries_out: list[dict[str, Any]] | None = None,
    snapshot: WalkSnapshot | None = None,
) -> StoredContext:
    """Store files, directories and globs as one "files" context.

    `allowed_roots` is the security boundary: every source must resolve (symlinks and `..` included)
    inside one of them (an empty list allows nothing). Relative sources resolve against `base_dir`
    (default: the current working directory).

    With `cas`, the context is stored there once for every server and linked into `store_dir`. Given
    the `walked` result and the `previous` version of the same sources (contexts/load.py), unchanged files
    are copied from its text, not read; `entries_out` receives the new manifest's entries. `snapshot` (of
    `walked`) is kept with the store's note of the version stored last for these sources. Raises
    InvalidContextName, SourceNotFound, OutsideAllowedRoots, ContextTooLarge."""
    t0 = time.perf_counter()
    validate_name(name)
    if not sources:
        raise ContextError("No source given. Pass at least one file, directory or glob, e.g. '.'.")
    if walked is None:
        walked = walk_sources(
            sources, allowed_roots=allowed_roots, limits=limits, base_dir=base_dir, on_progress=on_progress
        )
    root = _common_root(walked)
    fingerprint = _files_fingerprint(sources, walked, root, limits, base_dir)
    if cas is not None and snapshot is None:
        snapshot = WalkSnapshot.of(walked, allowed_roots)
    reused = _try_reuse(store_dir, name, fingerprint, t0, cas)
    if reused is not None:
        _remember(cas, sources, limits, base_dir, fingerprint, snapshot)
        return reused

    stats: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []

    def write(gen: Path) -> dict[str, Any]:
        old = previous if previous is not None and previous.stored.root == root else None
        entries.extend(write_files(gen / "content.txt", walked, root, limits, on_progress, stats, old))
        return {"files": entries}

    def summary_fields() -> dict[str, Any]:
        return _files_summary(entries, stats, walked, root, sources, fingerprint)

    stored = _commit(store_dir, name, write, summary=summary_fields, t0=t0, cas=cas, key=fingerprint)
    _remember(cas, sources, limits, base_dir, fingerprint, snapshot)
    if entries_out is not None:
        entries_out.extend(entries)
    return stored


def _files_fingerprint(sources: Sequence[str], walked: WalkResult, root: str, limits: LoadLimits,
                       base_dir: Path | None) -> str:
    """What a files-context's identity hangs on: format, limits, root, sources, and every file's stats."""
    return _hash(
        f"files|{FORMAT_VERSION}|{limits.key()}|{root}".encode(),
        "\0".join(sources).encode("utf-8", "surrogateescape"),
        os.fspath(base_dir or os.getcwd()).encode("utf-8", "surrogateescape"),
        "\n".join(walked.fingerprint_parts).encode("utf-8", "surrogateescape"),
    )


def _files_summary(entries: list[dict[str, Any]], stats: dict[str, Any], walked: WalkResult, root: str,
                   sources: Sequence[str], fingerprint: str) -> dict[str, Any]:
    """The StoredContext fields of a files-context just written: sizes, languages, largest and skipped files."""
    langs: dict[str, int] = {}
    for e in entries:
        lang = e["language"] or "other"
        langs[lang] = langs.get(lang, 0) + 1
    largest = sorted(entries, key=lambda e: -e["bytes"])[:10]
    root_prefix = root if root.endswith("/") else root + "/"
    return dict(
        kind="files",
        chars=stats["chars"],
        bytes=stats["bytes"],
        file_count=len(entries),
        languages=dict(sorted(langs.items(), key=lambda kv: (-kv[1], kv[0]))),
        largest_files=tuple(FileSize(e["path"], e["bytes"]) for e in largest),
        too_large_files=tuple(
            FileSize(rel_path(f.path, root_prefix), f.bytes) for f in sorted(walked.too_large, key=lambda f: -f.bytes)
        ),
        skipped=SkipCounts(
            ignored=walked.ignored,
            binary=walked.binary + stats["binary"],
            too_large=len(walked.too_large),
            outside_roots=walked.outside_roots,
            symlinks=walked.symlinks,
            unreadable=walked.unreadable + stats["unreadable"],
        ),
        decode_replaced=stats["replaced"],
        root=root,
        roots=tuple(walked.roots),
        sources=tuple(sources),
        fingerprint=fingerprint,
    )


def last_stored(name: str, sources: Sequence[str], limits: LoadLimits, base_dir: Path | None,
                cas: ContentStore) -> tuple[StoredContext, WalkSnapshot | None] | None:
    """The version of these sources (with these limits, from this directory) that any server stored last,
    as it is in the store, with the snapshot of the walk that found it -- what a load of them will most
    likely find again (`WalkSnapshot.unchanged` says whether it will). Nothing is walked."""
    recalled = cas.recall(_sources_key(sources, limits, base_dir))
    if recalled is None:
        return None
    stored = _read_summary(recalled[0], name)
    return (stored, WalkSnapshot.from_bytes(recalled[1])) if stored is not None else None


def relink_stored(name: str, fingerprint: str, store_dir: Path, cas: ContentStore) -> StoredContext | None:
    """The entry of `cas` with that fingerprint linked into `store_dir` as context `name` (a live context whose
    files did not change, a session taken up by a later server); None when it was evicted."""
    return _try_reuse(store_dir, validate_name(name), fingerprint, time.perf_counter(), cas)


def _remember(cas: ContentStore | None, sources: Sequence[str], limits: LoadLimits, base_dir: Path | None,
              fingerprint: str, snapshot: WalkSnapshot | None) -> None:
    if cas is not None and snapshot is not None:
        cas.remember(_sources_key(sources, limits, base_dir), fingerprint, snapshot.to_bytes())


def keep_stored(stored: StoredContext, sources: Sequence[str], *, limits: LoadLimits, base_dir: Path | None,
                cas: ContentStore, snapshot: WalkSnapshot) -> None:
    """Put a version stored in a session's directory only (a live refresh's: rlm_mcp/contexts/live.py) into
    `cas` for later servers -- its files hard-linked, fsync'ed and published like any entry -- and note it
    as the version stored last for its sources."""
    if cas.get(stored.fingerprint) is None:
        written = cas.begin(stored.fingerprint)
        try:
            link_entry(Path(os.path.realpath(stored.content_path)).parent, written)
        except BaseException:
            discard(written)
            raise
        cas.publish(stored.fingerprint, written)
    _remember(cas, sources, limits, base_dir, stored.fingerprint, snapshot)


def _sources_key(sources: Sequence[str], limits: LoadLimits, base_dir: Path | None) -> str:
    return _hash(f"sources|{FORMAT_VERSION}|{limits.key()}".encode(),
                 "\0".join(sources).encode("utf-8", "surrogateescape"),
                 os.fspath(base_dir or os.getcwd()).encode("utf-8", "surrogateescape"))


def _commit(
    store_dir: Path,
    name: str,
    write: Callable[[Path], dict[str, Any]],
    *,
    summary: dict[str, Any] | Callable[[], dict[str, Any]],
    t0: float,
    cas: ContentStore | None = None,
    key: str = "",
) -> StoredContext:
    """Write a new entry (`key`: its fingerprint) and atomically point `store_dir/<name>` at it.

    Without `cas` the entry is written straight into a generation directory of `store_dir`; with it,
    into the shared store (published whole, see rlm_mcp/contexts/cas.py) and then hard-linked into one."""
    store_dir = Path(store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    gen = store_dir / f".{name}.{time.time_ns():x}-{os.getpid()}"
    target = cas.begin(key) if cas is not None else gen
    if target == gen:
        gen.mkdir()
    try:
        manifest = write(target)
        fields = summary() if callable(summary) else summary
        link = store_dir / name
        stored = StoredContext(
            name=name,
            estimated_tokens=estimate_tokens(fields["chars"]),
            content_path=str(link / "content.txt"),
            manifest_path=str(link / "manifest.json"),
            elapsed_s=round(time.perf_counter() - t0, 4),
            **fields,
        )
        manifest_doc = {
            "format_version": FORMAT_VERSION,
            "kind": stored.kind,
            "encoding": "utf-8",
            "newlines": "as on disk: open content.txt with newline='' for offsets to hold",
            "header_format": FILE_HEADER,
            "root": stored.root,
            "roots": list(stored.roots),
            "sources": list(stored.sources),
            "chars": stored.chars,
            "bytes": stored.bytes,
            "fingerprint": stored.fingerprint,
            **manifest,
        }
        _write_json(target / "manifest.json", manifest_doc)
        _write_json(target / "summary.json", stored.to_dict())
        if cas is not None and target != gen:
            _link_into(gen, cas.publish(key, target))
        old = _swap_link(store_dir, name, gen.name)
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        if target != gen:
            shutil.rmtree(target, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(store_dir / old, ignore_errors=True)
    return stored


def _link_into(gen: Path, entry: Path) -> None:
    gen.mkdir()
    link_entry(entry, gen)


def _swap_link(store_dir: Path, name: str, gen_name: str) -> str | None:
    """Point store_dir/name at gen_name atomically; return the generation it pointed at before."""
    link = store_dir / name
    old: str | None = None
    if link.is_symlink():
        old = os.readlink(link)
        if os.sep in old or not old.startswith(f".{name}."):
            old = None  # not one of ours: never delete it
    elif link.exists():
        shutil.rmtree(link) if link.is_dir() else link.unlink()
    tmp = store_dir / f".{name}.link-{os.getpid()}-{time.time_ns():x}"
    os.symlink(gen_name, tmp)
    os.replace(tmp, link)
    return old


def delete_stored(name: str, store_dir: Path) -> None:
    """Remove a stored context from disk: its link and every generation directory of it."""
    link = store_dir / validate_name(name)
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    for path in store_dir.glob(f".{name}.*"):  # names have no dots: only this context's generations match
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _try_reuse(
    store_dir: Path, name: str, fingerprint: str, t0: float, cas: ContentStore | None = None
) -> StoredContext | None:
    """The stored context when `store_dir` already holds this fingerprint, or `cas` has it (then it is
    linked into `store_dir`, nothing read or written but three links)."""
    prev = load_stored(name, store_dir)
    if prev is not None and prev.fingerprint == fingerprint and os.path.exists(prev.content_path):
        if cas is not None:
            cas.get(fingerprint)  # a use: keeps it from eviction's front
        return replace(prev, reused=True, elapsed_s=round(time.perf_counter() - t0, 4))
    entry = cas.get(fingerprint) if cas is not None else None
    if entry is None:
        return None
    gen = Path(store_dir) / f".{name}.{time.time_ns():x}-{os.getpid()}"
    Path(store_dir).mkdir(parents=True, exist_ok=True)
    try:
        _link_into(gen, entry)
    except FileNotFoundError:  # evicted between the look and the link: store it again
        shutil.rmtree(gen, ignore_errors=True)
        return None
    old = _swap_link(Path(store_dir), name, gen.name)
    if old is not None:
        shutil.rmtree(Path(store_dir) / old, ignore_errors=True)
    stored = load_stored(name, store_dir)
    if stored is None:
        return None
    return replace(stored, reused=True, elapsed_s=round(time.perf_counter() - t0, 4))


def load_stored(name: str, store_dir: Path) -> StoredContext | None:
    """The summary of an existing stored context, or None (absent, unreadable or older format).

    Name and paths are the ones it has here: a summary shared through the store was written by
    whichever session stored it first."""
    return _read_summary(Path(store_dir) / validate_name(name), name)


def _read_summary(directory: Path, name: str) -> StoredContext | None:
    try:
        with open(directory / "summary.json", encoding="utf-8") as f:
            data = json.load(f)
        if data.get("format_version") != FORMAT_VERSION:
            return None
        data.update(name=name, content_path=str(directory / "content.txt"),
                    manifest_path=str(directory / "manifest.json"))
        return StoredContext.from_dict(data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def files_of(stored: StoredContext) -> list[tuple[Path, str]]:
    """(root, relative posix path) of every stored file, in content order.

    For the tree-sitter indexer, which reads files from disk itself: `root / rel` is the file (under
    the name it was loaded as; a followed symlink stays a symlink). Empty for text contexts.
    """
    if stored.kind != "files" or stored.root is None:
        return []
    root = Path(stored.root)
    return [(root, e["path"]) for e in read_manifest(stored)["files"]]


def _common_root(walked: WalkResult) -> str:
    """The directory manifest paths are relative to: the common ancestor of the sources' bases.

    A source's base is the working/base directory for relative sources inside it (so paths read as the
    user wrote them), else the directory itself, the file's parent, or the glob's fixed prefix.
    """
    return os.path.commonpath(walked.bases) if walked.bases else os.getcwd()


def _hash(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    # json.dumps (one C call) is ~5x faster than json.dump's chunked writes on a 50k-entry manifest.
    Path(path).write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
