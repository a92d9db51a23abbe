"""Helpers every REPL session gets: the RLM toolbox.

This file is not imported by the server: its source is sent into the jail as the sandbox's prelude,
after repl_regex.py (grep's translator to ripgrep's dialect), as one text (rlm_mcp/sandbox/prelude.py), and
runs on the guest interpreter (standard library only, Python >= 3.10; ruff lints it for 3.10). Every public name here
is reserved: the sandbox restores it after each exec, so model code cannot replace `llm_query` or
`context`. Host functions are reached through `_rlm_callback`, which the sandbox provides.
"""

import bisect
import json
import math
import re
import sys


class _Manifests(dict):
    """name -> that context's parsed manifest.json, read at first use: attaching a 24k-file context then
    costs the load nothing (its manifest takes ~70 ms to parse), and a session that never asks for
    `files` or grep never parses it."""

    def __init__(self):
        super().__init__()
        self._unread = {}

    def attach(self, name, path):
        self.pop(name, None)
        self._unread[name] = path

    def _read(self, name):
        path = self._unread.pop(name, None)
        if path is not None:
            with open(path, encoding="utf-8") as handle:
                self[name] = json.load(handle)

    def __getitem__(self, name):
        self._read(name)
        return super().__getitem__(name)

    def __contains__(self, name):
        return name in self._unread or super().__contains__(name)

    def get(self, name, default=None):
        self._read(name)
        return super().get(name, default)


_manifests = _Manifests()


class ContextMap:
    """`contexts[name]` -> that context's whole text as one str, decoded on first use and kept.

    Until then a context is only a read-only file mapped into the jail: helpers that search or slice it
    (`files`, `grep`, the code index) read the file, so a session that never needs the whole str never
    pays for it (up to four bytes per character)."""

    def __init__(self):
        self._paths = {}
        self._texts = {}

    def __getitem__(self, name):
        if name not in self._texts:
            if name not in self._paths:
                raise KeyError(f"no context named {name!r}; loaded: {sorted(self._paths)} (see load_context)")
            self._texts[name] = _rlm_read_text(self._paths[name])  # noqa: F821 (provided by the sandbox)
        return self._texts[name]

    def __contains__(self, name):
        return name in self._paths

    def __iter__(self):
        return iter(list(self._paths))

    def __len__(self):
        return len(self._paths)

    def keys(self):
        return list(self._paths)

    def items(self):
        return ((name, self[name]) for name in self._paths)

    def values(self):
        return (self[name] for name in self._paths)

    def get(self, name, default=None):
        return self[name] if name in self else default  # noqa: SIM401 (this is get itself)

    def loaded(self, name):
        """The text if it is already decoded, else None (never decodes)."""
        return self._texts.get(name)

    def _attach(self, name, content_path):
        self._paths[name] = content_path
        self._texts.pop(name, None)

    def _path(self, name):
        return self._paths[name]

    def __repr__(self):
        return f"<contexts: {', '.join(self._paths) or 'none loaded'}>"


contexts = ContextMap()


class LLMQueryError(RuntimeError):
    """A worker call failed or a budget stopped it; the message says which and what to do."""


class FileView:
    """`files[path]` -> that file's text, read from its context's mapped file (or sliced from the
    decoded text when that exists): one file costs one file, never the whole context."""

    def __init__(self, name):
        self._name = name
        self._indexed = (None, {})  # (manifest, path -> entry), rebuilt only when the manifest changes

    def _entries(self):
        return _manifests.get(self._name, {}).get("files", [])

    def _index(self):
        manifest = _manifests.get(self._name)
        if self._indexed[0] is not manifest:
            self._indexed = (manifest, {entry["path"]: entry for entry in self._entries()})
        return self._indexed[1]

    def __getitem__(self, path):
        entry = self._index().get(path)
        if entry is None:
            raise KeyError(f"{path!r} is not in context {self._name!r}; see list(files) or grep()")
        text = contexts.loaded(self._name)
        if text is not None:
            return text[entry["start"] : entry["end"]]
        with open(contexts._path(self._name), "rb") as handle:
            handle.seek(entry["byte_start"])
            return handle.read(entry["byte_end"] - entry["byte_start"]).decode("utf-8", "replace")

    def __contains__(self, path):
        return path in self._index()

    def __iter__(self):
        return (entry["path"] for entry in self._entries())

    def __len__(self):
        return len(self._entries())

    def keys(self):
        return list(self)

    def items(self):
        return ((path, self[path]) for path in self)

    def get(self, path, default=None):
        return self[path] if path in self else default  # noqa: SIM401 (this is get itself)

    def info(self, path):
        """Manifest entry of a file: bytes, lines, language, offsets."""
        return dict(self._index()[path])

    def __repr__(self):
        return f"<files of context {self._name!r}: {len(self)} files>"


files = FileView("main")


def _rlm_attach(name, content_path, manifest_path):
    """Called by the host after load_context: note where the stored text and its manifest are; the
    text is decoded only when code first uses it (see ContextMap)."""
    global files
    contexts._attach(name, content_path)
    _manifests.attach(name, manifest_path)
    if name == "main":
        files = FileView(name)
        _rlm_reserve_lazy("context", lambda: contexts["main"])  # noqa: F821 (provided by the sandbox)
        _rlm_reserve("files", files)  # noqa: F821
    return {"name": name}


def llm_query(prompt, model=None):
    """Ask a worker model one question; returns its answer text. Raises LLMQueryError on failure."""
    reply = _rlm_callback("llm_query", {"prompt": str(prompt), "model": model})  # noqa: F821
    if reply.get("error"):
        raise LLMQueryError(reply["error"])
    return reply["text"]


def llm_query_batched(prompts, model=None):
    """Ask many questions concurrently; answers in order. A failed slot holds an '[llm_query error: ...]'
    string instead of failing the batch."""
    prompts = [str(prompt) for prompt in prompts]
    replies = _rlm_callback("llm_query_batched", {"prompts": prompts, "model": model})  # noqa: F821
    return [reply["text"] if not reply.get("error") else f"[llm_query error: {reply['error']}]" for reply in replies]


def rlm_query(prompt, context=None):
    """Run a child RLM over `context` (a str; default: none) with its own REPL; returns its answer.
    Depth-limited: at the depth limit it degrades to a plain llm_query."""
    reply = _rlm_callback("rlm_query", {"prompt": str(prompt), "context": context})  # noqa: F821
    if reply.get("error"):
        raise LLMQueryError(reply["error"])
    return reply["text"]


def FINAL(answer):
    """Mark `answer` as the final answer of this session's task. Returns None, so a trailing FINAL(...)
    is not echoed: the report already carries the answer once."""
    _rlm_callback("final", {"answer": str(answer)})  # noqa: F821


def FINAL_VAR(name):
    """Mark the variable called `name` as the final answer."""
    if name not in globals():
        raise NameError(f"no variable named {name!r}; FINAL_VAR takes the variable's name as a string")
    return FINAL(globals()[name])


def chunk(text, size=50_000, overlap=0):
    """Split text into pieces of `size` characters, each starting `size - overlap` after the last."""
    if size <= 0 or overlap < 0 or overlap >= size:
        raise ValueError("need size > 0 and 0 <= overlap < size")
    step = size - overlap
    return [text[start : start + size] for start in range(0, max(len(text) - overlap, 1), step)]


def count_tokens(text):
    """Estimated tokens: about 4 characters each for English and code (offline, no tokenizer)."""
    return math.ceil(len(text) / 4)


def grep(pattern, name="main", path=None, flags=0, max_hits=200):
    r"""Regex search over a context's files: [(path, line_number, line)], one hit per matching line, in
    file order, at most `max_hits` (None: all). Lines are cut to 500 characters.

    `path` is an optional regex the file path must match. Plain-text contexts report path "". When
    `max_hits` cuts the list short, a line on stderr says so: a question about "every place" must
    not get a silent 200.

    A match never crosses a line end unless the pattern names a newline (`\n`, a class listing it,
    or `.` under re.DOTALL): then the whole text is searched and a hit is the line where a match
    starts. `\s`, `\W`, `[^...]` stop at the end of the line, as in grep and ripgrep.

    Speed: the pattern is Python `re` syntax and keeps its meaning. When it has an exact twin in
    ripgrep's (Rust) regex syntax, the server runs ripgrep over the stored text (on a 320 MB tree
    4-40x faster than Python's re here); otherwise Python's `re` searches here, with the same
    results. Python-only: lookarounds, back-references, conditionals, atomic groups and possessive
    repeats, `\A` and `\Z`, `\b`/`\B` other than at the very start or end of the pattern (or of a
    top-level alternative), patterns that can match a newline, re.LOCALE. Everything else is
    translated from Python's own parse, with character classes (`\w`, `\d`, `\s`, case-insensitive
    letters) computed by Python's `re` itself, so ripgrep's differing Unicode tables, POSIX classes
    and class set operations never apply.
    """
    if max_hits is not None and (not isinstance(max_hits, int) or isinstance(max_hits, bool) or max_hits < 0):
        raise ValueError(f"max_hits must be None (all hits) or an integer >= 0, not {max_hits!r}")
    if name not in contexts:
        contexts[name]  # raises KeyError naming the loaded contexts
    compiled = re.compile(pattern, flags | re.MULTILINE)
    path_re = re.compile(path) if path else None
    rust, _why, crosses = _grep_plan(pattern, flags)  # noqa: F821 (repl_regex.py, shipped ahead of this file)
    found = _grep_rg(rust, name, path_re, max_hits) if rust is not None else None
    if found is None:  # only the Python path needs the decoded text (see ContextMap)
        text = contexts[name]
        entries = _manifests.get(name, {}).get("files") or [{"path": "", "start": 0, "end": len(text)}]
        found = _grep_re(compiled, text, entries, path_re, max_hits, crosses)
    hits, more = found
    if more:
        print(f"grep: stopped at max_hits={max_hits}; there are more hits (max_hits=None returns all)",
              file=sys.stderr)
    return hits


def _grep_re(compiled, text, entries, path_re, max_hits, crosses):
    """grep() with Python's re over the text here: (hits, whether max_hits cut them short)."""
    starts = [entry["start"] for entry in entries]
    search = compiled.search
    hits = []
    counted_entry, counted_to, line_number = -1, 0, 1  # newlines are counted on from the previous hit
    pos = 0
    while (match := search(text, pos)) is not None:
        at = match.start()
        where = bisect.bisect_right(starts, at) - 1
        if where < 0:  # before the first file's body
            pos = starts[0]
            continue
        entry = entries[where]
        start, end = entry["start"], entry["end"]
        # A zero-width match at the very end of a file is on its last line only if that line has no "\n".
        outside = at > end or (at == end and (end == start or text[end - 1] == "\n"))
        if outside or (path_re and not path_re.search(entry["path"])):
            if where + 1 >= len(entries):
                break
            pos = starts[where + 1]
            continue
        line_start = text.rfind("\n", start, at) + 1 or start
        line_end = text.find("\n", at, end)
        line_end = end if line_end < 0 else line_end
        pos = line_end + 1
        if not crosses and match.end() > line_end and search(text, line_start, line_end) is None:
            continue  # this match ran past the line's end; nothing within the line matches
        if where != counted_entry:
            counted_entry, counted_to, line_number = where, start, 1
        line_number += text.count("\n", counted_to, at)
        counted_to = at
        if max_hits is not None and len(hits) >= max_hits:
            return hits, True
        hits.append((entry["path"], line_number, text[line_start:line_end][:500]))
    return hits, False


def _grep_rg(rust, name, path_re, max_hits):
    """grep() by ripgrep on the host, page by page: (hits, more), or None when the host declines."""
    manifest = _manifests.get(name) or {}
    entries = manifest.get("files") or []
    fingerprint = manifest.get("fingerprint")
    if not isinstance(fingerprint, str):
        return None
    files = None
    if path_re is not None:
        keep = [bool(path_re.search(entry["path"])) for entry in entries] or [bool(path_re.search(""))]
        files = _true_ranges(keep) if entries else (None if keep[0] else [])
        if files == []:
            return [], False
    payload = {"context": name, "fingerprint": fingerprint, "pattern": rust or "(?:)", "files": files,
               "limit": max_hits, "cursor": [0, 1]}
    hits = []
    path_of = [entry["path"] for entry in entries].__getitem__ if entries else {-1: ""}.__getitem__
    while True:
        reply = _rlm_callback("grep", payload)  # noqa: F821 (provided by the sandbox)
        if "fallback" in reply:
            return None
        texts = reply["text"].split("\n") if reply["lines"] else []
        hits.extend(zip(map(path_of, reply["files"]), reply["lines"], texts, strict=True))
        if reply["cursor"] is None:
            return hits, reply["more"]
        payload["cursor"] = reply["cursor"]
        payload["limit"] = None if max_hits is None else max_hits - len(hits)


def _true_ranges(flags):
    """[[lo, hi], ...] of the runs of True in a list of booleans."""
    ranges, begin = [], None
    for index, flag in enumerate([*flags, False]):
        if flag and begin is None:
            begin = index
        elif not flag and begin is not None:
            ranges.append([begin, index])
            begin = None
    return ranges


def find_symbol(name=None, pattern=None, kind=None, path=None, limit=50):
    """Definitions from the code index: [{'name','qualname','kind','path','start_line','end_line',
    'signature','language'}], in (path, line) order. `name` is exact, `pattern` a regex over the qualified
    name. At most `limit` (None: all); when it cuts the list, a line on stderr says how many there are.
    Answers at once, also while the index builds (a line on stderr says when a `pattern`/`kind` query saw
    only part of it)."""
    return _index_query({"op": "find", "name": name, "pattern": pattern, "kind": kind, "path": path}, limit)


def outline(path, limit=None):
    """Definitions of one file, in order, from the code index (all of them unless `limit` says fewer)."""
    return _index_query({"op": "outline", "path": path}, limit)


def references(name, limit=200):
    """Call sites of `name` from the code index: [{'path','line','text'}] (the line's text stripped and cut
    at 300 characters), in path order -- `name(...)`, `obj.name(...)`, `Type::name(...)`, `p->name(...)`,
    `new Name(...)`, decorators (`@name`), macro invocations (`name!(...)` in Rust, C's function-like
    macros) and Ruby's calls without parentheses. At most `limit` (None: all); when it cuts the list, a line
    on stderr says how many there are."""
    return _index_query({"op": "references", "name": name}, limit)


_HELPER_OF = {"find": "find_symbol", "outline": "outline", "references": "references"}


def _index_query(payload, limit):
    """Ask the host's code index, a page at a time (a reply stays small even for limit=None)."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be None (all results) or an integer >= 0, not {limit!r}")
    payload = dict(payload, limit=limit, cursor=None)
    results, notes = [], []
    while True:
        reply = _rlm_callback("index", payload)  # noqa: F821 (provided by the sandbox)
        results.extend(reply["results"])
        if reply.get("note") and reply["note"] not in notes:
            notes.append(reply["note"])
        if reply.get("cursor") is None:
            break
        payload["cursor"] = reply["cursor"]
        payload["limit"] = None if limit is None else limit - len(results)
    helper = _HELPER_OF[payload["op"]]
    for note in notes:
        print(f"{helper}: {note}", file=sys.stderr)
    if reply.get("left_out"):
        print(f"{helper}: {len(results):,} of {len(results) + reply['left_out']:,} results shown (limit={limit}); "
              "limit=None returns all", file=sys.stderr)
    return results


def SHOW_VARS():
    """Print your variables with their types and sizes (helpers and contexts excluded)."""
    skip = set(_RESERVED)
    for key, value in sorted(globals().items()):
        if key.startswith("_") or key in skip:
            continue
        try:
            size = len(value)
        except TypeError:
            size = None
        print(f"{key}: {type(value).__name__}" + (f" (len {size})" if size is not None else ""))


_RESERVED = [name for name in dir() if not name.startswith("_")] + ["context", "contexts", "files"]
_rlm_reserve_lazy("context", lambda: contexts.get("main", ""))  # noqa: F821 (until a load: "")
