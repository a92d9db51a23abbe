"""Parse one file and pull out its definitions and imports as plain tuples; call sites on demand.

Runs in worker processes, so everything returned is small and picklable. A file that cannot be read
or parsed yields a record with a problem and whatever was found, never an exception. Call sites are
not part of the record: capturing them for every file would cost a third of a cold build, while a
references() lookup only needs the few files whose text names the callee (see `call_sites`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node, Parser, QueryCursor

from .files import FileSource
from .languages import CONTAINER, IMPORT, Compiled, compiled, spec_for, spec_of_source

MAX_FILE_BYTES = 1_000_000
# Minifiers exist for JavaScript: a `.min.` file, or a JavaScript file whose lines average this many bytes,
# is a bundle whose definitions are mangled one-letter names that would only crowd the lookup, so it is
# skipped (and says so). A long line alone -- a data table in a C header, one long string in a generated
# test -- never makes a file minified: every definition in it is real and indexed.
MINIFIED_MEAN_LINE = 1_000
SIGNATURE_CHARS = 200

# (name, qualname, kind, start_line, end_line, signature)
Symbol = tuple[str, str, str, int, int, str]


@dataclass(slots=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    language: str | None
    symbols: list[Symbol]
    imports: list[str]
    problem: str | None = None


def extract_file(files: FileSource, path: str) -> FileRecord:
    spec = spec_for(path)
    try:
        size, mtime_ns = files.key(path)
    except OSError as exc:
        return FileRecord(path, 0, 0, None, [], [], f"unreadable: {exc.strerror}")
    record = FileRecord(path, size, mtime_ns, spec.name if spec else None, [], [])
    if spec is None:
        return record
    if size > MAX_FILE_BYTES:
        record.problem = f"skipped: {size:,} bytes is over the {MAX_FILE_BYTES:,}-byte index limit"
        return record
    try:
        source = files.read(path, MAX_FILE_BYTES + 1)
    except OSError as exc:
        record.problem = f"unreadable: {exc.strerror}"
        record.mtime_ns = -1  # never fresh in a cache: the next build tries again
        return record
    if b"\0" in source[:8192]:
        record.problem = "skipped: binary content"
        return record
    lines = source.split(b"\n")
    if looks_minified(path, spec.name, source, lines):
        record.problem = (f"skipped: minified ({len(lines):,} lines averaging {len(source) // len(lines):,} "
                          "bytes); search it with grep()")
        return record
    spec = spec_of_source(path, source) or spec
    record.language = spec.name
    try:
        fill(record, compiled(spec.name), source, lines)
    except Exception as exc:  # tree-sitter failures stop at this boundary
        record.problem = f"parse failed: {type(exc).__name__}: {exc}"
    return record


def looks_minified(path: str, language: str, source: bytes, lines: list[bytes]) -> bool:
    if ".min." in path.rpartition("/")[2]:
        return True
    return language == "javascript" and len(source) >= MINIFIED_MEAN_LINE * max(len(lines), 4)


def fill(record: FileRecord, grammar: Compiled, source: bytes, lines: list[bytes]) -> None:
    if grammar.spec.unparsable is not None:
        source = grammar.spec.unparsable.sub(_blank, source)
    tree = Parser(grammar.language).parse(source)
    if tree.root_node.has_error:
        record.problem = "syntax errors: definitions were extracted from what parses"
    if grammar.walk_roles:
        walk_definitions(record, grammar, tree.root_node, lines)
    else:
        query_definitions(record, grammar, tree.root_node, lines)


def _blank(match: re.Match[bytes]) -> bytes:
    """The matched text as spaces, its newlines kept: every line and byte offset stays where it was."""
    return re.sub(rb"[^\n]", b" ", match.group())


def walk_definitions(record: FileRecord, grammar: Compiled, root: Node, lines: list[bytes]) -> None:
    """Descend only into statement containers, carrying the qualified-name prefix down the stack."""
    roles, class_scopes = grammar.walk_roles, grammar.spec.class_scopes
    stack: list[tuple[Node, tuple[str, ...], bool]] = [(root, (), False)]  # node, prefix, directly in a class
    while stack:
        node, prefix, in_class = stack.pop()
        for child in node.named_children:
            role = roles.get(child.type)
            if role is None:
                continue
            if role is CONTAINER:
                stack.append((child, prefix, in_class))
            elif role is IMPORT:
                record.imports.append(_import_text(child))
            else:
                named = child.child_by_field_name("name")
                name = _text(named) if named is not None else ""
                if name:
                    kind = "method" if role == "function" and in_class else role
                    record.symbols.append(_symbol(name, (*prefix, name), kind, child, lines))
                stack.append((child, (*prefix, name) if name else prefix, child.type in class_scopes))


def query_definitions(record: FileRecord, grammar: Compiled, root: Node, lines: list[bytes]) -> None:
    spec = grammar.spec
    first: dict[tuple[int, str], tuple[int, int]] = {}  # (node, name) -> (pattern, its symbol's position)
    for pattern, captures in QueryCursor(grammar.definitions).matches(root):
        if "import" in captures:
            record.imports.append(_import_text(captures["import"][0]))
            continue
        kind = next((key[4:] for key in captures if key.startswith("def.")), None)
        if kind is None:
            continue
        node = captures[f"def.{kind}"][0]
        named = captures["name"][0] if "name" in captures else None
        if "declarator" in captures:
            named = declared_name(captures["declarator"][0])
        if named is not None:
            name = _name_text(named)
            if name in _KEYWORDS:
                continue
        elif node.type == "companion_object":
            name = "Companion"  # Kotlin's name for an unnamed companion: `Foo.Companion`
        else:
            continue
        if node.type in spec.overloaded and (head := _first_overload(node, name, spec.overloads)) is not node:
            if (head.id, name) in first:  # the run's first signature stands for it, to this definition's end
                at = first[(head.id, name)][1]
                record.symbols[at] = (*record.symbols[at][:4], node.end_point.row + 1, record.symbols[at][5])
            continue
        scope = enclosing_scopes(node, spec.scopes)
        if kind == "function" and scope and scope[0].type in spec.class_scopes:
            kind = "method"
        prefix: list[str] = []
        for outer in reversed(scope):
            prefix = _joined(prefix, scope_name(outer), spec.path_separator)
        if kind == "method" and spec.name == "go":
            prefix = [go_receiver(node)] if go_receiver(node) else []
        if "owner" in captures:  # the name itself says where it belongs: Lua's `function Queue:push`
            prefix = [*prefix, _text(captures["owner"][0])]
        qualname = _joined(prefix, name, spec.path_separator)
        if not qualname or not qualname[-1]:
            continue
        key = (node.id, qualname[-1])
        if key in first:  # two patterns for one definition: the one written first in the spec wins
            earlier, at = first[key]
            if pattern < earlier:
                record.symbols[at] = _symbol(qualname[-1], tuple(qualname), kind, node, lines)
                first[key] = (pattern, at)
            continue
        first[key] = (pattern, len(record.symbols))
        record.symbols.append(_symbol(qualname[-1], tuple(qualname), kind, node, lines))


def _first_overload(node: Node, name: str, signatures: frozenset[str]) -> Node:
    """The first of the same-name signatures right before `node` (past `export`s and comments), else `node`."""
    first = node
    while True:
        here = first.parent if first.parent is not None and first.parent.type == "export_statement" else first
        before = here.prev_named_sibling
        while before is not None and before.type == "comment":
            before = before.prev_named_sibling
        if before is not None and before.type == "export_statement":
            before = before.child_by_field_name("declaration")
        named = before.child_by_field_name("name") if before is not None else None
        if before is None or before.type not in signatures or named is None or _text(named) != name:
            return first
        first = before


_OPERATOR = re.compile(r"\boperator\b")


def _joined(prefix: list[str], name: str | None, separator: str | None) -> list[str]:
    """`prefix` extended by a name that may itself be a path (`Foo::Bar`); a leading separator (`::Name`)
    starts again from the top level. A C++ operator's own text is never split: `Foo::operator std::string`
    is `operator std::string` in `Foo`."""
    if not name:
        return prefix
    if separator is None or separator not in name:
        return [*prefix, name]
    cut = _OPERATOR.search(name)
    head, last = (name[: cut.start()], [name[cut.start() :]]) if cut else (name, [])
    if not head:
        return [*prefix, name]
    parts = head.split(separator)
    path = [p for p in parts if p] + last
    return path if parts[0] == "" else [*prefix, *path]


# C declarators wrap the declared name: `*f(void)` is a pointer declarator around a function declarator
# around the identifier; `(*getfn(void))(int)` adds a parenthesized one. Rust's `impl<T> fmt::Display for
# a::Bar<T>` names the type inside a generic and a path. Descend to the name.
_DECLARATOR_LEAVES = frozenset({"identifier", "type_identifier", "field_identifier", "qualified_identifier",
                                "destructor_name", "operator_name", "template_function", "operator_cast"})
# C++'s `class type_caster<bool>` (a specialization) is a `type_caster`, as its methods' prefix too.
_TYPE_WRAPPERS = frozenset({"generic_type", "scoped_type_identifier", "reference_type", "template_type"})
# What tree-sitter-cpp's error recovery can take for a function's name (`if (x) {` read as a definition).
_KEYWORDS = frozenset({"if", "else", "for", "while", "do", "switch", "case", "return", "sizeof"})


def declared_name(declarator: Node) -> Node | None:
    """The name node inside a declarator or wrapped type, however deep (None if there is none)."""
    node: Node | None = declarator
    while node is not None and node.type not in _DECLARATOR_LEAVES:
        inner = (node.child_by_field_name("declarator") or node.child_by_field_name("name")
                 or node.child_by_field_name("type"))
        if inner is None:
            inner = next((c for c in node.named_children
                          if c.type.endswith("declarator") or c.type in _DECLARATOR_LEAVES), None)
        node = inner
    return node


def call_sites(files: FileSource, path: str, name: str) -> list[tuple[int, str]]:
    """(line, line text) of the calls to `name` in one file; [] when the file never names it or cannot parse."""
    spec = spec_for(path)
    if spec is None or not spec.calls:
        return []
    try:
        source = files.read(path, MAX_FILE_BYTES + 1)
    except OSError:
        return []
    if len(source) > MAX_FILE_BYTES or name.encode() not in source:
        return []
    grammar = compiled((spec_of_source(path, source) or spec).name)
    assert grammar.calls is not None
    lines = source.split(b"\n")
    called: dict[int, Node] = {}  # by node: two patterns may find the same call
    bare: list[Node] = []
    for _, captures in QueryCursor(grammar.calls).matches(Parser(grammar.language).parse(source).root_node):
        called.update((node.id, node) for node in captures.get("call", ()) if _text(node) == name)
        bare += [node for node in captures.get("bare", ()) if _text(node) == name]
    called.update((node.id, node) for node in _bare_calls(bare))
    return [(node.start_point.row + 1, lines[node.start_point.row].decode("utf-8", "replace").strip()[:300])
            for node in sorted(called.values(), key=lambda node: node.start_byte)]


# Where a bare Ruby identifier binds a local: a parameter list's or a multiple assignment's own identifiers, the
# `name` of a parameter with a default or a splat, the left of an assignment, `rescue => name`, `for name in`.
_RUBY_LISTS = frozenset({"method_parameters", "lambda_parameters", "block_parameters", "left_assignment_list",
                         "destructured_parameter", "exception_variable"})
_RUBY_NAMED = frozenset({"optional_parameter", "keyword_parameter", "splat_parameter", "hash_splat_parameter",
                         "block_parameter"})
_RUBY_LEFT = {"assignment": "left", "operator_assignment": "left", "for": "pattern"}
# Where it is no call either: the name a definition gives (`def name`), an alias, or a call's method (found
# as a call already).
_RUBY_NAMING = {"method": "name", "singleton_method": "name", "call": "method"}


def _field_is(node: Node, parent: Node, field: str) -> bool:
    child = parent.child_by_field_name(field)
    return child is not None and child.id == node.id


def _binds(node: Node) -> bool:
    parent = node.parent
    if parent is None:
        return False
    if parent.type in _RUBY_LISTS:
        return True
    if parent.type in _RUBY_NAMED:
        return _field_is(node, parent, "name")
    return parent.type in _RUBY_LEFT and _field_is(node, parent, _RUBY_LEFT[parent.type])


def _names_it(node: Node) -> bool:
    parent = node.parent
    if parent is None:
        return False
    return parent.type in ("alias", "undef") or (
        parent.type in _RUBY_NAMING and _field_is(node, parent, _RUBY_NAMING[parent.type]))


def _bare_calls(found: list[Node]) -> list[Node]:
    """The bare identifiers that are calls without parentheses or arguments (`name`, `puts name`, `name.each`):
    all of them, unless the file binds a local of that name somewhere -- then Ruby reads it as that variable
    (as its own parser does after the assignment), and none is taken for a call."""
    if any(_binds(node) for node in found):
        return []
    return [node for node in found if not _names_it(node)]


def _symbol(name: str, qualname: tuple[str, ...], kind: str, node: Node, lines: list[bytes]) -> Symbol:
    start = node.start_point.row
    signature = lines[start].decode("utf-8", "replace").strip()[:SIGNATURE_CHARS] if start < len(lines) else ""
    return (name, ".".join(qualname), kind, start + 1, node.end_point.row + 1, signature)


def _import_text(node: Node) -> str:
    return " ".join(_text(node).split())[:300]


# An expression that is a scope only around the class body it declares: Java's `new Runnable() {...}`
# holds an anonymous class's methods, while its arguments belong to whatever encloses it.
_ANONYMOUS_BODIES = {"object_creation_expression": "class_body"}


def enclosing_scopes(node: Node, scope_types: frozenset[str]) -> list[Node]:
    """Scope nodes around `node`, innermost first."""
    scopes = []
    child, parent = node, node.parent
    while parent is not None:
        if parent.type in scope_types and _ANONYMOUS_BODIES.get(parent.type, child.type) == child.type:
            scopes.append(parent)
        child, parent = parent, parent.parent
    return scopes


def scope_name(node: Node) -> str | None:
    if node.type in _ANONYMOUS_BODIES:
        made = node.child_by_field_name("type")
        return f"<anonymous {_text(made)}>" if made is not None else "<anonymous>"
    named = node.child_by_field_name("name") or node.child_by_field_name("type")
    if named is not None and named.type in _TYPE_WRAPPERS:
        named = declared_name(named)
    return _name_text(named) if named is not None else None


def _name_text(node: Node) -> str:
    """A name as written, less the quotes of one that is a string (TypeScript's `declare module "fs"`) and the
    parameters of a C++ conversion operator (`operator bool() const` is `operator bool`)."""
    text = _text(node)
    if node.type == "operator_cast":
        return " ".join(text.partition("(")[0].split())
    if node.type == "qualified_identifier":  # `Grid::operator std::vector<int>() const` defined outside
        inner = node
        while inner.type == "qualified_identifier" and (named := inner.child_by_field_name("name")) is not None:
            inner = named
        if inner.type == "operator_cast":
            return text[: inner.start_byte - node.start_byte] + _name_text(inner)
    return text[1:-1] if node.type == "string" and len(text) >= 2 else text


def go_receiver(node: Node) -> str | None:
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return None
    names = [_text(n) for n in _walk(receiver) if n.type == "type_identifier"]
    return names[0] if names else None


def _walk(node: Node):
    yield node
    for child in node.children:
        yield from _walk(child)


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")
