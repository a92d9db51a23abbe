"""Per-language knowledge as data: grammar wheel, definition/import/call queries, scope node types.

Queries use capture names `def.<kind>` for a definition node, `name` for its name, `import` for an
import statement and `call` for the identifier at a call site. Grammars come from the per-language
PyPI wheels, loaded on first use: nothing is downloaded at run time.

A language may also describe its statement structure as a `TreeWalk`: definitions are then found by
descending only into nodes that can hold them, skipping every expression subtree. For Python that takes
0.5 s where the definitions query takes 1.2 s over the standard library (the query engine visits every
node), which is what brings a cold index of the stdlib under 3 s on two cores.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath

from tree_sitter import Language, Query


@dataclass(frozen=True, slots=True)
class TreeWalk:
    definitions: dict[str, str]  # node type -> kind; the name is the node's `name` field
    containers: frozenset[str]  # node types whose children may hold definitions or imports
    imports: frozenset[str]


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    name: str
    module: str
    definitions: str
    scopes: frozenset[str]  # node types whose names prefix the qualified names of what they contain
    class_scopes: frozenset[str]  # scopes whose functions are methods
    imports: str = ""
    calls: str = ""
    entry: str = "language"  # the wheel's function returning the grammar
    walk: TreeWalk | None = None  # the fast path for definitions and imports, when the language has one


PY = LanguageSpec(
    "python", "tree_sitter_python",
    definitions="""
        (function_definition name: (identifier) @name) @def.function
        (class_definition name: (identifier) @name) @def.class
    """,
    scopes=frozenset({"function_definition", "class_definition"}),
    class_scopes=frozenset({"class_definition"}),
    imports="(import_statement) @import (import_from_statement) @import",
    calls="""(call function: (identifier) @call)
             (call function: (attribute attribute: (identifier) @call))""",
    walk=TreeWalk(
        definitions={"function_definition": "function", "class_definition": "class"},
        containers=frozenset({
            "module", "block", "decorated_definition", "if_statement", "elif_clause", "else_clause",
            "for_statement", "while_statement", "try_statement", "except_clause", "except_group_clause",
            "finally_clause", "with_statement", "match_statement", "case_clause", "ERROR",
        }),
        imports=frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
    ),
)
_JS_DEFS = """
    (function_declaration name: (identifier) @name) @def.function
    (generator_function_declaration name: (identifier) @name) @def.function
    (class_declaration name: (_) @name) @def.class
    (method_definition name: (property_identifier) @name) @def.function
    (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @def.function
"""
_JS_CALLS = """(call_expression function: (identifier) @call)
               (call_expression function: (member_expression property: (property_identifier) @call))"""
JS = LanguageSpec(
    "javascript", "tree_sitter_javascript", _JS_DEFS,
    scopes=frozenset({"class_declaration", "function_declaration", "method_definition"}),
    class_scopes=frozenset({"class_declaration"}),
    imports="(import_statement) @import", calls=_JS_CALLS,
)
_TS_DEFS = _JS_DEFS + """
    (interface_declaration name: (type_identifier) @name) @def.interface
    (method_signature name: (property_identifier) @name) @def.method
    (enum_declaration name: (identifier) @name) @def.enum
    (abstract_class_declaration name: (type_identifier) @name) @def.class
"""
_TS_SCOPES = frozenset({"class_declaration", "abstract_class_declaration", "function_declaration",
                        "method_definition", "interface_declaration"})
TS = LanguageSpec("typescript", "tree_sitter_typescript", _TS_DEFS, _TS_SCOPES,
                  frozenset({"class_declaration", "abstract_class_declaration"}),
                  "(import_statement) @import", _JS_CALLS, entry="language_typescript")
TSX = LanguageSpec("tsx", "tree_sitter_typescript", _TS_DEFS, _TS_SCOPES,
                   frozenset({"class_declaration", "abstract_class_declaration"}),
                   "(import_statement) @import", _JS_CALLS, entry="language_tsx")
GO = LanguageSpec(
    "go", "tree_sitter_go",
    definitions="""
        (function_declaration name: (identifier) @name) @def.function
        (method_declaration name: (field_identifier) @name) @def.method
        (type_spec name: (type_identifier) @name type: (struct_type)) @def.struct
        (type_spec name: (type_identifier) @name type: (interface_type)) @def.interface
    """,
    scopes=frozenset(), class_scopes=frozenset(),
    imports="(import_spec) @import",
    calls="""(call_expression function: (identifier) @call)
             (call_expression function: (selector_expression field: (field_identifier) @call))""",
)
RUST = LanguageSpec(
    "rust", "tree_sitter_rust",
    definitions="""
        (function_item name: (identifier) @name) @def.function
        (function_signature_item name: (identifier) @name) @def.function
        (struct_item name: (type_identifier) @name) @def.struct
        (enum_item name: (type_identifier) @name) @def.enum
        (trait_item name: (type_identifier) @name) @def.trait
        (impl_item type: (_) @name) @def.impl
        (mod_item name: (identifier) @name) @def.module
        (const_item name: (identifier) @name) @def.constant
    """,
    scopes=frozenset({"impl_item", "trait_item", "mod_item"}),
    class_scopes=frozenset({"impl_item", "trait_item"}),
    imports="(use_declaration) @import",
    calls="""(call_expression function: (identifier) @call)
             (call_expression function: (field_expression field: (field_identifier) @call))
             (call_expression function: (scoped_identifier name: (identifier) @call))""",
)
JAVA = LanguageSpec(
    "java", "tree_sitter_java",
    definitions="""
        (class_declaration name: (identifier) @name) @def.class
        (interface_declaration name: (identifier) @name) @def.interface
        (enum_declaration name: (identifier) @name) @def.enum
        (method_declaration name: (identifier) @name) @def.method
        (constructor_declaration name: (identifier) @name) @def.method
    """,
    scopes=frozenset({"class_declaration", "interface_declaration", "enum_declaration"}),
    class_scopes=frozenset({"class_declaration", "interface_declaration", "enum_declaration"}),
    imports="(import_declaration) @import",
    calls="(method_invocation name: (identifier) @call)",
)
_C_DEFS = """
    (function_definition declarator: (function_declarator declarator: (_) @name)) @def.function
    (struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @def.struct
    (enum_specifier name: (type_identifier) @name body: (enumerator_list)) @def.enum
"""
_C_CALLS = "(call_expression function: (identifier) @call)"
C = LanguageSpec("c", "tree_sitter_c", _C_DEFS, frozenset(), frozenset(),
                 "(preproc_include) @import", _C_CALLS)
CPP = LanguageSpec(
    "cpp", "tree_sitter_cpp",
    _C_DEFS + """
        (class_specifier name: (type_identifier) @name body: (field_declaration_list)) @def.class
        (namespace_definition name: (_) @name) @def.module
    """,
    scopes=frozenset({"class_specifier", "struct_specifier", "namespace_definition"}),
    class_scopes=frozenset({"class_specifier", "struct_specifier"}),
    imports="(preproc_include) @import",
    calls=_C_CALLS + "\n(call_expression function: (field_expression field: (field_identifier) @call))",
)
CSHARP = LanguageSpec(
    "csharp", "tree_sitter_c_sharp",
    definitions="""
        (class_declaration name: (identifier) @name) @def.class
        (interface_declaration name: (identifier) @name) @def.interface
        (struct_declaration name: (identifier) @name) @def.struct
        (enum_declaration name: (identifier) @name) @def.enum
        (method_declaration name: (identifier) @name) @def.method
    """,
    scopes=frozenset({"class_declaration", "interface_declaration", "struct_declaration"}),
    class_scopes=frozenset({"class_declaration", "interface_declaration", "struct_declaration"}),
    imports="(using_directive) @import",
)
RUBY = LanguageSpec(
    "ruby", "tree_sitter_ruby",
    definitions="""
        (method name: (_) @name) @def.function
        (singleton_method name: (_) @name) @def.method
        (class name: (_) @name) @def.class
        (module name: (_) @name) @def.module
    """,
    scopes=frozenset({"class", "module"}), class_scopes=frozenset({"class", "module"}),
    calls="(call method: (identifier) @call)",
)
PHP = LanguageSpec(
    "php", "tree_sitter_php",
    definitions="""
        (function_definition name: (name) @name) @def.function
        (class_declaration name: (name) @name) @def.class
        (interface_declaration name: (name) @name) @def.interface
        (trait_declaration name: (name) @name) @def.trait
        (method_declaration name: (name) @name) @def.method
    """,
    scopes=frozenset({"class_declaration", "interface_declaration", "trait_declaration"}),
    class_scopes=frozenset({"class_declaration", "interface_declaration", "trait_declaration"}),
    imports="(namespace_use_declaration) @import",
    entry="language_php",
)
BASH = LanguageSpec("bash", "tree_sitter_bash", "(function_definition name: (word) @name) @def.function",
                    frozenset(), frozenset(), calls="(command name: (command_name (word) @call))")

EXTENSIONS: dict[str, LanguageSpec] = {
    ".py": PY, ".pyi": PY, ".js": JS, ".mjs": JS, ".cjs": JS, ".jsx": JS, ".ts": TS, ".mts": TS, ".cts": TS,
    ".tsx": TSX, ".go": GO, ".rs": RUST, ".java": JAVA, ".c": C, ".h": C, ".cc": CPP, ".cpp": CPP, ".cxx": CPP,
    ".hpp": CPP, ".hh": CPP, ".hxx": CPP, ".cs": CSHARP, ".rb": RUBY, ".php": PHP, ".sh": BASH, ".bash": BASH,
}
SPECS = {spec.name: spec for spec in EXTENSIONS.values()}


def spec_for(path: str) -> LanguageSpec | None:
    return EXTENSIONS.get(PurePosixPath(path).suffix.lower())


IMPORT, CONTAINER = "<import>", "<container>"


@dataclass(frozen=True, slots=True)
class Compiled:
    spec: LanguageSpec
    language: Language
    definitions: Query  # definitions and imports together: one pass over the tree instead of two
    calls: Query | None  # run only on the files a references() lookup needs, never on the cold path
    walk_roles: dict[str, str]  # TreeWalk flattened to node type -> kind, IMPORT or CONTAINER: one lookup a node


@cache
def compiled(name: str) -> Compiled:
    """Grammar and queries of one language, built once per process."""
    spec = SPECS[name]
    language = Language(getattr(importlib.import_module(spec.module), spec.entry)())
    definitions = Query(language, "\n".join((spec.definitions, spec.imports)))
    calls = Query(language, spec.calls) if spec.calls else None
    roles: dict[str, str] = {}
    if spec.walk is not None:
        roles = dict.fromkeys(spec.walk.containers, CONTAINER) | dict.fromkeys(spec.walk.imports, IMPORT)
        roles |= spec.walk.definitions
    return Compiled(spec, language, definitions, calls, roles)
