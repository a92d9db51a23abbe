"""Helpers every REPL session gets: the RLM toolbox.

This file is not imported by the server: its source is sent into the jail as the sandbox's prelude
and runs on the guest interpreter (standard library only, Python >= 3.10). Every public name here
is reserved: the sandbox restores it after each exec, so model code cannot replace `llm_query` or
`context`. Host functions are reached through `_rlm_callback`, which the sandbox provides.
"""

import _sre as _sre_module
import array
import bisect
import json
import math
import re
import sys
import warnings

try:  # Python 3.11+
    from re import _constants as _sre_constants
    from re import _parser as _sre_parse
except ImportError:  # Python 3.10
    import sre_constants as _sre_constants
    import sre_parse as _sre_parse

_manifests = {}


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

    def _detach(self, name):
        self._paths.pop(name, None)
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
    with open(manifest_path, encoding="utf-8") as handle:
        _manifests[name] = json.load(handle)
    if name == "main":
        files = FileView(name)
        _rlm_reserve_lazy("context", lambda: contexts["main"])  # noqa: F821 (provided by the sandbox)
        _rlm_reserve("files", files)  # noqa: F821
    return {"name": name, "chars": _manifests[name].get("chars")}


def _rlm_detach(name):
    contexts._detach(name)
    _manifests.pop(name, None)
    return True


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
    rust, _why, crosses = _grep_plan(pattern, flags)
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


# --- grep's dialect rule: which Python patterns have an exact ripgrep (Rust regex) twin ----------------------

_C = _sre_constants
_REPEATS = (_C.MAX_REPEAT, _C.MIN_REPEAT)
_PYTHON_ONLY = {  # constructs Rust's regex does not have; by op name, so Python 3.10 (fewer ops) works too
    "GROUPREF": "a back-reference", "GROUPREF_EXISTS": "a conditional group", "ASSERT": "a lookaround",
    "ASSERT_NOT": "a lookaround", "ATOMIC_GROUP": "an atomic group", "POSSESSIVE_REPEAT": "a possessive repeat",
    "AT_BEGINNING_STRING": r"\A", "AT_END_STRING": r"\Z",
}
_CATEGORY_SYNTAX = {
    _C.CATEGORY_DIGIT: r"\d", _C.CATEGORY_NOT_DIGIT: r"\D", _C.CATEGORY_SPACE: r"\s",
    _C.CATEGORY_NOT_SPACE: r"\S", _C.CATEGORY_WORD: r"\w", _C.CATEGORY_NOT_WORD: r"\W",
}
_grep_plans = {}  # (pattern, flags) -> (rust pattern or None, why not, crosses lines)
_char_sets = {}  # (Python class syntax, flags) -> sorted [(lo, hi)] code point ranges
_every_char = []  # [str of every code point but "\n" and surrogates, in order], built on first need


class _PythonOnly(Exception):
    """The pattern has no Rust-regex twin that matches exactly the same lines; the message says why."""


def _grep_plan(pattern, flags):
    """(Rust pattern or None, why not, whether matches may cross lines), cached per (pattern, flags)."""
    key = (pattern, flags)
    if key not in _grep_plans:
        if len(_grep_plans) >= 256:
            _grep_plans.clear()
        if not isinstance(pattern, str):
            _grep_plans[key] = (None, "not a str pattern", True)
            return _grep_plans[key]
        with warnings.catch_warnings():  # re.compile has already warned about this pattern, if at all
            warnings.simplefilter("ignore")
            parsed = _sre_parse.parse(pattern, flags | re.MULTILINE)
        crosses = _names_newline(parsed, parsed.state.flags)
        try:
            if crosses:
                raise _PythonOnly("it can match a newline")
            _measure_letters(parsed, parsed.state.flags)
            rust, why = _rust_top(list(parsed), parsed.state.flags), None
        except _PythonOnly as exc:
            rust, why = None, str(exc)
        _grep_plans[key] = (rust, why, crosses)
    return _grep_plans[key]


def _names_newline(items, flags):
    r"""Whether a pattern names a newline: `\n`, a class listing it, or `.` under DOTALL."""
    return any(
        (op is _C.LITERAL and av == 10) or (op is _C.ANY and scoped & re.DOTALL) or (
            op is _C.IN and av[:1] != [(_C.NEGATE, None)]
            and any((o is _C.LITERAL and a == 10) or (o is _C.RANGE and a[0] <= 10 <= a[1]) for o, a in av))
        for op, av, scoped in _nodes(items, flags)
    )


def _nodes(items, flags):
    """Every node of a parsed pattern, nested ones included, with the flags in force there."""
    for op, av in items:
        yield op, av, flags
        for sub, scoped in _children(op, av, flags):
            yield from _nodes(sub, scoped)


def _children(op, av, flags):
    """(sub-pattern, its flags) of a node, for every kind of node that has any."""
    if op is _C.SUBPATTERN:
        return [(av[3], _scoped(flags, av[1], av[2]))]
    if op is _C.BRANCH:
        return [(alternative, flags) for alternative in av[1]]
    if str(op) in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return [(av[2], flags)]
    if str(op) in ("ASSERT", "ASSERT_NOT"):
        return [(av[1], flags)]
    if str(op) == "ATOMIC_GROUP":
        return [(av, flags)]
    if str(op) == "GROUPREF_EXISTS":
        return [(sub, flags) for sub in av[1:] if sub is not None]
    return []


def _scoped(flags, add, remove):
    return (flags | add) & ~remove  # re.LOCALE never gets here: re.compile refuses it for str patterns


def _rust_top(items, flags):
    r"""Rust regex for a whole pattern (or a top-level alternative): the only place \b and \B may be.

    At the pattern's edge a boundary next to, say, an always-word character means "the character
    beyond is not a word character, or the line ends", which a consumed character says exactly
    (the match may start one character early; a line-level hit is the same). Elsewhere that rewrite
    would shift what the rest of the pattern sees, and Rust's own \b uses other word characters.
    """
    if len(items) == 1 and items[0][0] is _C.BRANCH:
        return "|".join(f"(?:{_rust_top(list(alternative), flags)})" for alternative in items[0][1][1])
    if len(items) == 1 and items[0][0] is _C.SUBPATTERN:
        return _rust_top(list(items[0][1][3]), _scoped(flags, items[0][1][1], items[0][1][2]))
    lead = trail = ""
    if len(items) > 1 and _is_boundary(items[0]):
        lead = _rust_boundary(items[0][1], _edge_kind(items[1:], 0, flags), "^", flags)
        items = items[1:]
    if len(items) > 1 and _is_boundary(items[-1]):
        trail = _rust_boundary(items[-1][1], _edge_kind(items[:-1], -1, flags), "$", flags)
        items = items[:-1]
    return lead + _rust(items, flags) + trail


def _is_boundary(item):
    return item[0] is _C.AT and item[1] in (_C.AT_BOUNDARY, _C.AT_NON_BOUNDARY)


def _rust_boundary(code, kind, line_edge, flags):
    r"""The neighbour a \b or \B at the pattern's edge demands, as a consumed character (or the line's edge)."""
    if kind is None:
        raise _PythonOnly(r"\b or \B next to what may or may not be a word character")
    word = _char_ranges(_C.IN, [(_C.CATEGORY, _C.CATEGORY_WORD)], flags & re.ASCII)
    if (kind == "word") != (code is _C.AT_BOUNDARY):
        return _rust_class(word)
    return f"(?:{line_edge}|{_rust_class(_complement(word))})"


def _edge_kind(items, side, flags):
    """"word" when the first (side 0) or last (side -1) character a sequence matches is always a word
    character, "other" when never, None when it depends or is unknown."""
    if not items:
        return None
    op, av = items[side]
    if op in (_C.LITERAL, _C.NOT_LITERAL, _C.IN):
        chars = _char_ranges(op, av, flags)
        inside = _overlap(chars, _char_ranges(_C.IN, [(_C.CATEGORY, _C.CATEGORY_WORD)], flags & re.ASCII))
        return "word" if inside == sum(hi - lo + 1 for lo, hi in chars) else "other" if inside == 0 else None
    if op is _C.SUBPATTERN:
        return _edge_kind(list(av[3]), side, _scoped(flags, av[1], av[2]))
    if op is _C.BRANCH:
        kinds = {_edge_kind(list(alternative), side, flags) for alternative in av[1]}
        return kinds.pop() if len(kinds) == 1 else None
    if op in _REPEATS and av[0] >= 1:
        return _edge_kind(list(av[2]), side, flags)
    return None


def _overlap(a, b):
    """Code points in both sorted range lists."""
    i = j = total = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0, high - low + 1)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def _rust(items, flags):
    r"""Rust regex matching exactly what `items` match within one line, or _PythonOnly."""
    out = []
    for op, av in items:
        if op is _C.LITERAL and not (flags & re.IGNORECASE and _sre_module.unicode_iscased(av)):
            out.append(_rust_char(av))
        elif op in (_C.LITERAL, _C.NOT_LITERAL, _C.IN):
            out.append(_rust_class(_char_ranges(op, av, flags)))
        elif op is _C.ANY:
            out.append(".")  # any character but "\n" in both (DOTALL never gets here)
        elif op is _C.BRANCH:
            out.append("(?:" + "|".join(_rust(alternative, flags) for alternative in av[1]) + ")")
        elif op is _C.SUBPATTERN:
            out.append(f"(?:{_rust(av[3], _scoped(flags, av[1], av[2]))})")
        elif op in _REPEATS:
            low, high, body = av
            count = f"{{{low},}}" if high == _C.MAXREPEAT else f"{{{low},{high}}}"
            out.append(f"(?:{_rust(body, flags)}){count}{'?' if op is _C.MIN_REPEAT else ''}")
        elif op is _C.AT and av in (_C.AT_BEGINNING, _C.AT_END):
            if not flags & re.MULTILINE:
                raise _PythonOnly("^ or $ under (?-m): the start or end of the whole context")
            out.append("^" if av is _C.AT_BEGINNING else "$")
        elif op is _C.AT and av in (_C.AT_BOUNDARY, _C.AT_NON_BOUNDARY):
            raise _PythonOnly(r"\b or \B inside the pattern")
        else:
            name = str(av) if op is _C.AT else str(op)
            raise _PythonOnly(_PYTHON_ONLY.get(name, name))
    return "".join(out)


def _char_ranges(op, av, flags):
    """The exact code points one character node matches, as Python's re itself decides, by scanning
    a string of every code point once (about 10 ms, then cached)."""
    syntax = _python_class(op, av)
    key = (syntax, flags & (re.IGNORECASE | re.ASCII))
    if key not in _char_sets:
        every = _every_chars()
        _char_sets[key] = [piece for match in re.finditer(f"(?:{syntax})+", every, key[1])
                           for piece in _in_lines(ord(every[match.start()]), ord(every[match.end() - 1]))]
    return _char_sets[key]


def _every_chars():
    """A str of every code point a line can hold, in order (built once, 20 ms, 4 MB)."""
    if not _every_char:
        codes = array.array("I", range(10))
        codes.extend(range(11, 0xD800))
        codes.extend(range(0xE000, 0x110000))
        _every_char.append(codes.tobytes().decode("utf-32-le" if sys.byteorder == "little" else "utf-32-be"))
    return _every_char[0]


def _in_lines(low, high):
    """[low, high] without the code points a line of a str never holds: "\n" and the surrogates."""
    pieces = []
    for gap_low, gap_high in ((10, 10), (0xD800, 0xDFFF)):
        if low <= gap_high and gap_low <= high:  # the gap cuts [low, high]
            if low < gap_low:
                pieces.append((low, gap_low - 1))
            low = gap_high + 1
    if low <= high:
        pieces.append((low, high))
    return pieces


def _complement(ranges):
    """The code points a line may hold that are not in `ranges`."""
    pieces, low = [], 0
    for start, end in [*ranges, (0x110000, 0x110000)]:
        if low < start:
            pieces.extend(_in_lines(low, start - 1))
        low = end + 1
    return pieces


def _measure_letters(items, flags):
    """Measure all case-insensitive letters of a pattern with one scan, not one scan each.

    The scan for a class of all of them finds every character that may match any one; Python's re
    then decides per letter which of those few characters it matches (`fullmatch`).
    """
    wanted = {}
    for op, av, scoped in _nodes(items, flags):
        if op is _C.LITERAL and scoped & re.IGNORECASE and _sre_module.unicode_iscased(av):
            key = (_python_class(op, av), scoped & (re.IGNORECASE | re.ASCII))
            if key not in _char_sets:
                wanted[key] = av
    for mode in {mode for _syntax, mode in wanted}:
        letters = [syntax for syntax, each in wanted if each == mode]
        every = _every_chars()
        found = {match.group() for match in re.finditer(f"[{''.join(letters)}]", every, mode)}
        for syntax in letters:
            letter = re.compile(syntax, mode)
            _char_sets[(syntax, mode)] = _runs(sorted(ord(char) for char in found if letter.fullmatch(char)))


def _runs(codes):
    """Sorted code points -> [(lo, hi)] ranges."""
    ranges = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


def _python_class(op, av):
    """Python syntax for one character node (a literal, a negated literal or a class)."""
    if op is _C.LITERAL:
        return f"\\U{av:08x}"
    if op is _C.NOT_LITERAL:
        return f"[^\\U{av:08x}]"
    parts = []
    for item, value in av:
        if item is _C.NEGATE:
            parts.append("^")
        elif item is _C.LITERAL:
            parts.append(f"\\U{value:08x}")
        elif item is _C.RANGE:
            parts.append(f"\\U{value[0]:08x}-\\U{value[1]:08x}")
        elif item is _C.CATEGORY and value in _CATEGORY_SYNTAX:
            parts.append(_CATEGORY_SYNTAX[value])
        else:
            raise _PythonOnly(f"{item} in a class")
    return "[" + "".join(parts) + "]"


def _rust_class(ranges):
    if not ranges:
        raise _PythonOnly("a class that matches no character")
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _rust_char(ranges[0][0])
    inside, outside = _rust_ranges(ranges), _rust_ranges(_complement(ranges))
    return f"[{inside}]" if len(inside) <= len(outside) + 6 else f"[^{outside}\\x{{A}}]"  # the shorter spelling


def _rust_ranges(ranges):
    return "".join(_rust_char(lo) + ("" if lo == hi else "-" + _rust_char(hi)) for lo, hi in ranges)


def _rust_char(code):
    """A code point as a Rust regex literal, in or out of a class: letters and digits as themselves."""
    char = chr(code)
    return char if char.isalnum() else f"\\x{{{code:X}}}"


def find_symbol(name=None, pattern=None, kind=None, path=None, limit=50):
    """Definitions from the code index: [{'name','qualname','kind','path','start_line','end_line',
    'signature'}]. `name` is exact, `pattern` a regex over the qualified name. Answers at once, also
    while the index builds (a line on stderr says when a `pattern`/`kind` query saw only part of it)."""
    return _index_query({"op": "find", "name": name, "pattern": pattern, "kind": kind, "path": path, "limit": limit})


def outline(path):
    """Definitions of one file, in order, from the code index."""
    return _index_query({"op": "outline", "path": path})


def references(name, limit=200):
    """Call sites of `name` (as `name(...)` or `obj.name(...)`) from the code index: [{'path','line','text'}]."""
    return _index_query({"op": "references", "name": name, "limit": limit})


def _index_query(payload):
    reply = _rlm_callback("index", payload)  # noqa: F821
    if reply.get("note"):
        print(f"{payload['op']}: {reply['note']}", file=sys.stderr)
    return reply["results"]


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
