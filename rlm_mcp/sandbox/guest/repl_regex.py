"""grep's dialect rule for the REPL prelude: which Python patterns have an exact ripgrep (Rust regex) twin.

Guest code, like repl_helpers.py: never imported by the server, shipped into the jail ahead of
repl_helpers.py as one text (rlm_mcp/sandbox/prelude.py) and run on the guest interpreter (standard library
only, Python >= 3.10; ruff lints it for 3.10). `grep()` asks `_grep_plan(pattern, flags)` whether the
host's ripgrep can answer a pattern exactly; when it cannot, the pattern runs on Python's `re` in the
guest. Every name here is private: the prelude's public names are repl_helpers.py's.
"""

import _sre as _sre_module
import array
import re
import sys
import warnings

try:  # Python 3.11+
    from re import _constants as _sre_constants
    from re import _parser as _sre_parse
except ImportError:  # Python 3.10
    import sre_constants as _sre_constants
    import sre_parse as _sre_parse

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
