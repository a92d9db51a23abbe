"""Parse one file and pull out its definitions and imports as plain tuples; call sites on demand.

Runs in worker processes, so everything returned is small and picklable. A file that cannot be read
or parsed yields a record with a problem and whatever was found, never an exception. Call sites are
not part of the record: capturing them for every file would cost a third of a cold build, while a
references() lookup only needs the few files whose text names the callee (see `call_sites`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node, Parser, QueryCursor

from .files import FileSource
from .languages import CONTAINER, IMPORT, Compiled, compiled, spec_for

MAX_FILE_BYTES = 1_000_000
MAX_LINE_CHARS = 5_000
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
    if max(map(len, lines)) > MAX_LINE_CHARS:
        record.problem = f"skipped: a line over {MAX_LINE_CHARS:,} characters (minified or generated)"
        return record
    try:
        fill(record, compiled(spec.name), source, lines)
    except Exception as exc:  # tree-sitter failures stop at this boundary
        record.problem = f"parse failed: {type(exc).__name__}: {exc}"
    return record


def fill(record: FileRecord, grammar: Compiled, source: bytes, lines: list[bytes]) -> None:
    tree = Parser(grammar.language).parse(source)
    if tree.root_node.has_error:
        record.problem = "syntax errors: definitions were extracted from what parses"
    if grammar.walk_roles:
        walk_definitions(record, grammar, tree.root_node, lines)
    else:
        query_definitions(record, grammar, tree.root_node, lines)


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
    for _, captures in QueryCursor(grammar.definitions).matches(root):
        if "import" in captures:
            record.imports.append(_import_text(captures["import"][0]))
            continue
        kind = next((key[4:] for key in captures if key.startswith("def.")), None)
        if kind is None or "name" not in captures:
            continue
        node, name = captures[f"def.{kind}"][0], _text(captures["name"][0])
        scope = enclosing_scopes(node, spec.scopes)
        if kind == "function" and scope and scope[0].type in spec.class_scopes:
            kind = "method"
        prefix = [n for n in (scope_name(s) for s in reversed(scope)) if n]
        if kind == "method" and spec.name == "go":
            prefix = [go_receiver(node)] if go_receiver(node) else []
        if "owner" in captures:  # the name itself says where it belongs: Lua's `function Queue:push`
            prefix = [*prefix, _text(captures["owner"][0])]
        record.symbols.append(_symbol(name, (*prefix, name), kind, node, lines))


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
    grammar = compiled(spec.name)
    assert grammar.calls is not None
    lines = source.split(b"\n")
    hits = []
    for _, captures in QueryCursor(grammar.calls).matches(Parser(grammar.language).parse(source).root_node):
        node = captures["call"][0]
        if _text(node) == name:
            row = node.start_point.row
            hits.append((row + 1, lines[row].decode("utf-8", "replace").strip()[:300]))
    return hits


def _symbol(name: str, qualname: tuple[str, ...], kind: str, node: Node, lines: list[bytes]) -> Symbol:
    start = node.start_point.row
    signature = lines[start].decode("utf-8", "replace").strip()[:SIGNATURE_CHARS] if start < len(lines) else ""
    return (name, ".".join(qualname), kind, start + 1, node.end_point.row + 1, signature)


def _import_text(node: Node) -> str:
    return " ".join(_text(node).split())[:300]


def enclosing_scopes(node: Node, scope_types: frozenset[str]) -> list[Node]:
    """Scope nodes around `node`, innermost first."""
    scopes = []
    parent = node.parent
    while parent is not None:
        if parent.type in scope_types:
            scopes.append(parent)
        parent = parent.parent
    return scopes


def scope_name(node: Node) -> str | None:
    named = node.child_by_field_name("name") or node.child_by_field_name("type")
    return _text(named) if named is not None else None


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
