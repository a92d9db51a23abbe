"""Per-language knowledge as data: grammar wheel, definition/import/call queries, scope node types.

Queries use capture names `def.<kind>` for a definition node, `name` for its name, `declarator` for a
C declarator whose innermost identifier is the name (`char **f(void)`: the function declarator sits inside
pointer declarators, to any depth), `owner` for a container written into the name itself (Lua's
`function Queue:push`), `import` for an import statement and `call` for the identifier at a call site.
When two patterns match the same node with the same name, the one written first wins: a specific pattern
(`typedef struct {...} Foo` is a struct) goes before the general one (any typedef is a type). Grammars come
from the per-language PyPI wheels, loaded on first use: nothing is downloaded at run time.

A language may also describe its statement structure as a `TreeWalk`: definitions are then found by
descending only into nodes that can hold them, skipping every expression subtree. Over the standard
library's 1,740 files that takes ~0.4 CPU s (node roles looked up by kind id, a clean definition entered
only through its body: two thirds of the time of the walk before), where the definitions query's captures
alone take ~0.9 s (the query engine visits every node) -- and the parse itself ~3.2 s: tree-sitter's
parse is what bounds a cold index (docs/benchmarks.md, "Standard library and components").
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath
from typing import Literal

from tree_sitter import Language, Query


@dataclass(frozen=True, slots=True)
class TreeWalk:
    definitions: dict[str, str]  # node type -> kind; the name is the node's `name` field
    containers: frozenset[str]  # node types whose children may hold definitions or imports
    imports: frozenset[str]
    # The field of a definition that holds what it contains: a definition that parsed without errors is
    # descended only there, not into its name, parameters and annotations (a third of the walk's nodes).
    body: str = "body"


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
    # A bytes regex that every definition's name follows in the source (a superset is fine): lets a query
    # by name skip parsing the files that merely mention the name (rlm_mcp/symbols/prefilter.py).
    defined_after: bytes | None = None
    # Ruby and C++ write a path into a name (`class Foo::Bar`, `void Foo::bar()`); a leading separator
    # (`module ::Name`) means the top level, whatever encloses it.
    path_separator: str | None = None
    # Signatures that overload the definition after them (TypeScript's `function f(x: A): B;` lines before
    # `function f(x) {...}`), and the definitions they can precede: the run is one definition, from its first
    # signature (where ctags and the docs put it) to the end of the implementation.
    overloads: frozenset[str] = frozenset()
    overloaded: frozenset[str] = frozenset()
    # Text the grammar cannot read and that defines nothing, blanked (spaces, newlines kept) before parsing.
    unparsable: re.Pattern[bytes] | None = None


PY = LanguageSpec(
    "python", "tree_sitter_python",
    definitions="""
        (function_definition name: (identifier) @name) @def.function
        (class_definition name: (identifier) @name) @def.class
    """,
    scopes=frozenset({"function_definition", "class_definition"}),
    class_scopes=frozenset({"class_definition"}),
    # The name is the identifier after `def` or `class` (`async def` too), across any whitespace or a
    # backslash line continuation: the only two definition nodes above.
    defined_after=rb"(?:def|class)[\s\\]+",
    imports="(import_statement) @import (import_from_statement) @import",
    # Calls, and decorators: `@name` calls `name` with the function it decorates.
    calls="""(call function: (identifier) @call)
             (call function: (attribute attribute: (identifier) @call))
             (decorator (identifier) @call)
             (decorator (attribute attribute: (identifier) @call))""",
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
    (method_definition name: [(property_identifier) (private_property_identifier)] @name) @def.function
    (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @def.function
    ((assignment_expression left: (member_expression property: (property_identifier) @name)
                            right: [(arrow_function) (function_expression)]) @def.function
     (#not-eq? @name "exports"))
"""
_JS_CALLS = """(call_expression function: (identifier) @call)
               (call_expression function: (member_expression property: (property_identifier) @call))
               (new_expression constructor: (identifier) @call)
               (new_expression constructor: (member_expression property: (property_identifier) @call))"""
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
    (abstract_method_signature name: (property_identifier) @name) @def.method
    (function_signature name: (identifier) @name) @def.function
    (type_alias_declaration name: (type_identifier) @name) @def.type
    (internal_module name: (_) @name) @def.namespace
    (module name: (_) @name) @def.namespace
"""
_TS_SCOPES = frozenset({"class_declaration", "abstract_class_declaration", "function_declaration",
                        "method_definition", "interface_declaration", "internal_module", "module"})
_TS_OVERLOADS = frozenset({"function_signature", "method_signature"})
_TS_OVERLOADED = _TS_OVERLOADS | {"function_declaration", "method_definition"}
TS = LanguageSpec("typescript", "tree_sitter_typescript", _TS_DEFS, _TS_SCOPES,
                  frozenset({"class_declaration", "abstract_class_declaration"}),
                  "(import_statement) @import", _JS_CALLS, entry="language_typescript", overloads=_TS_OVERLOADS,
                  overloaded=_TS_OVERLOADED)
TSX = LanguageSpec("tsx", "tree_sitter_typescript", _TS_DEFS, _TS_SCOPES,
                   frozenset({"class_declaration", "abstract_class_declaration"}),
                   "(import_statement) @import", _JS_CALLS, entry="language_tsx", overloads=_TS_OVERLOADS,
                  overloaded=_TS_OVERLOADED)
GO = LanguageSpec(
    "go", "tree_sitter_go",
    definitions="""
        (function_declaration name: (identifier) @name) @def.function
        (method_declaration name: (field_identifier) @name) @def.method
        (type_spec name: (type_identifier) @name type: (struct_type)) @def.struct
        (type_spec name: (type_identifier) @name type: (interface_type)) @def.interface
        (type_spec name: (type_identifier) @name) @def.type
        (type_alias name: (type_identifier) @name) @def.type
        (source_file (const_declaration (const_spec (identifier)+ @name) @def.constant))  ; `A, B = 1, 2`: one each
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
        (impl_item type: (_) @declarator) @def.impl
        (mod_item name: (identifier) @name) @def.module
        (const_item name: (identifier) @name) @def.constant
        (static_item name: (identifier) @name) @def.static
        (type_item name: (type_identifier) @name) @def.type
        (associated_type name: (type_identifier) @name) @def.type
        (union_item name: (type_identifier) @name) @def.union
        (macro_definition name: (identifier) @name) @def.macro
    """,
    scopes=frozenset({"impl_item", "trait_item", "mod_item"}),
    class_scopes=frozenset({"impl_item", "trait_item"}),
    imports="(use_declaration) @import",
    # Calls, `obj.name()`, `Type::name()`, their turbofish forms (`name::<T>()`), and macro invocations
    # (`name!(...)`, `path::name!(...)`). Inside a macro's arguments (`vec![name(1)]`, `println!("{}",
    # name!(x))`) tree-sitter sees only tokens: a name followed by `(...)`, or by `!` and brackets, is a call.
    calls="""(call_expression function: (identifier) @call)
             (call_expression function: (field_expression field: (field_identifier) @call))
             (call_expression function: (scoped_identifier name: (identifier) @call))
             (call_expression function: (generic_function function: (identifier) @call))
             (call_expression function: (generic_function function: (field_expression field: (field_identifier) @call)))
             (call_expression function: (generic_function function: (scoped_identifier name: (identifier) @call)))
             (macro_invocation macro: (identifier) @call)
             (macro_invocation macro: (scoped_identifier name: (identifier) @call))
             (token_tree (identifier) @call . (token_tree . "("))
             (token_tree (identifier) @call . "!" . (token_tree))""",
)
JAVA = LanguageSpec(
    "java", "tree_sitter_java",
    definitions="""
        (class_declaration name: (identifier) @name) @def.class
        (interface_declaration name: (identifier) @name) @def.interface
        (enum_declaration name: (identifier) @name) @def.enum
        (method_declaration name: (identifier) @name) @def.method
        (constructor_declaration name: (identifier) @name) @def.method
        (compact_constructor_declaration name: (identifier) @name) @def.method
        (record_declaration name: (identifier) @name) @def.record
        (annotation_type_declaration name: (identifier) @name) @def.annotation
        (annotation_type_element_declaration name: (identifier) @name) @def.method
    """,
    # A method's name prefixes the classes declared in its body (local classes), and an anonymous class
    # (`new Runnable() {...}`) is a scope of its own, so their methods never pass for the outer class's.
    scopes=frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
                      "annotation_type_declaration", "method_declaration", "constructor_declaration",
                      "object_creation_expression"}),
    class_scopes=frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
                            "annotation_type_declaration", "object_creation_expression"}),
    imports="(import_declaration) @import",
    calls="""(method_invocation name: (identifier) @call)
             (object_creation_expression type: (type_identifier) @call)
             (object_creation_expression type: (scoped_type_identifier (type_identifier) @call .))
             (object_creation_expression type: (generic_type (type_identifier) @call))""",
)
# A macro call alone on its line(s) -- `PYBIND11_DEPRECATED("...")` before a declaration, `NS_BEGIN(x)` -- is
# an attribute or a brace tree-sitter cannot see: it reads what follows as garbage (a class as a function).
# Blanked, the declaration parses. Only an all-capitals name followed by balanced parentheses and nothing
# else on the line: a statement (`CHECK(x);`), a definition (`TEST(a, b) {`) or a line of a continued
# directive or macro body (after a line ending in a backslash, or itself ending in one) is left alone. At
# most 2,000 characters or groups inside: an unclosed `FOO(` costs a bounded scan, never the rest of the file.
_MACRO_LINE = re.compile(
    rb"(?<!\\\n)^[ \t]*[A-Z][A-Z0-9_]*[ \t]*\((?:[^()]|\((?:[^()]|\([^()]*\))*\)){0,2000}\)[ \t]*$", re.MULTILINE)
# A typedef of an anonymous struct, union or enum is that type's only name, so it is indexed as one.
_C_DEFS = """
    (function_definition declarator: (_) @declarator) @def.function
    (struct_specifier name: (_) @declarator body: (field_declaration_list)) @def.struct
    (union_specifier name: (_) @declarator body: (field_declaration_list)) @def.union
    (enum_specifier name: (_) @declarator body: (enumerator_list)) @def.enum
    (type_definition type: (struct_specifier !name body: (_)) declarator: (type_identifier) @name) @def.struct
    (type_definition type: (union_specifier !name body: (_)) declarator: (type_identifier) @name) @def.union
    (type_definition type: (enum_specifier !name body: (_)) declarator: (type_identifier) @name) @def.enum
    (type_definition declarator: (_) @declarator) @def.type
    (preproc_def name: (identifier) @name) @def.macro
    (preproc_function_def name: (identifier) @name) @def.macro
"""
# A call, and a call through a struct member (`p->name(x)`, `s.name(x)`: function pointers). A function-like
# macro used in an expression or a statement is a call_expression like any other; in C, one used where only
# a macro can stand (`NAME(type) x;`) is a type tree-sitter reads as a macro's (C++'s grammar has no such node).
_C_CALLS = """(call_expression function: (identifier) @call)
              (call_expression function: (field_expression field: (field_identifier) @call))"""
C = LanguageSpec("c", "tree_sitter_c", _C_DEFS, frozenset(), frozenset(), "(preproc_include) @import",
                 _C_CALLS + "\n(macro_type_specifier name: (identifier) @call)", unparsable=_MACRO_LINE)
CPP = LanguageSpec(
    "cpp", "tree_sitter_cpp",
    _C_DEFS + """
        (class_specifier name: (_) @declarator body: (field_declaration_list)) @def.class
        (namespace_definition name: (_) @name) @def.namespace
        (alias_declaration name: (type_identifier) @name) @def.type
    """,
    scopes=frozenset({"class_specifier", "struct_specifier", "union_specifier", "namespace_definition"}),
    class_scopes=frozenset({"class_specifier", "struct_specifier", "union_specifier"}),
    imports="(preproc_include) @import",
    # C's, plus `Type::name()` and `a::B::name()`, templates (`name<T>()`, `Type::name<T>()`,
    # `obj.template name<T>()`).
    calls=_C_CALLS + """
        (call_expression function: (qualified_identifier name: (identifier) @call))
        (call_expression function: (qualified_identifier name: (qualified_identifier name: (identifier) @call)))
        (call_expression function:
          (qualified_identifier name: (qualified_identifier name: (qualified_identifier name: (identifier) @call))))
        (call_expression function: (template_function name: (identifier) @call))
        (call_expression function: (qualified_identifier name: (template_function name: (identifier) @call)))
        (call_expression function: (field_expression field: (dependent_name (template_method name: (_) @call))))
        (call_expression function: (field_expression field: (template_method name: (_) @call)))
        (new_expression type: (type_identifier) @call)""",
    path_separator="::", unparsable=_MACRO_LINE,
)
CSHARP = LanguageSpec(
    "csharp", "tree_sitter_c_sharp",
    definitions="""
        (class_declaration name: (identifier) @name) @def.class
        (interface_declaration name: (identifier) @name) @def.interface
        (struct_declaration name: (identifier) @name) @def.struct
        (enum_declaration name: (identifier) @name) @def.enum
        (method_declaration name: (identifier) @name) @def.method
        (constructor_declaration name: (identifier) @name) @def.method
    """,
    scopes=frozenset({"class_declaration", "interface_declaration", "struct_declaration"}),
    class_scopes=frozenset({"class_declaration", "interface_declaration", "struct_declaration"}),
    imports="(using_directive) @import",
    calls="""(invocation_expression function: (identifier) @call)
             (invocation_expression function: (generic_name (identifier) @call))
             (invocation_expression function: (member_access_expression name: (identifier) @call))
             (invocation_expression function: (member_access_expression name: (generic_name (identifier) @call)))
             (invocation_expression function: (conditional_access_expression (member_binding_expression
                                                                              name: (identifier) @call)))
             (object_creation_expression type: (identifier) @call)
             (object_creation_expression type: (qualified_name name: (identifier) @call))
             (object_creation_expression type: (generic_name (identifier) @call))""",
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
    # `name(x)`, `obj.name`, `name x` (a call without parentheses), and a bare `name` -- a call unless the file
    # binds a local of that name (call_sites in extract.py decides, as Ruby itself does by the assignments).
    calls="(call method: (identifier) @call) (identifier) @bare", path_separator="::",
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
    calls="""(function_call_expression function: (name) @call)
             (function_call_expression function: (qualified_name (name) @call .))
             (member_call_expression name: (name) @call)
             (nullsafe_member_call_expression name: (name) @call)
             (scoped_call_expression name: (name) @call)
             (object_creation_expression (name) @call)
             (object_creation_expression (qualified_name (name) @call .))""",
    entry="language_php",
)
BASH = LanguageSpec("bash", "tree_sitter_bash", "(function_definition name: (word) @name) @def.function",
                    frozenset(), frozenset(), calls="(command name: (command_name (word) @call))")

# Kotlin's class_declaration covers class, interface and enum class: the keyword tells an interface, the
# enum_class_body an enum, and a class is one whose last named child is anything but that body. Error
# recovery can leave a function a MISSING (empty) name: that one is dropped.
KOTLIN = LanguageSpec(
    "kotlin", "tree_sitter_kotlin",
    definitions="""
        (class_declaration "interface" name: (identifier) @name) @def.interface
        (class_declaration "class" name: (identifier) @name (enum_class_body) .) @def.enum
        (class_declaration "class" name: (identifier) @name .) @def.class
        (class_declaration "class" name: (identifier) @name
          [(type_parameters) (primary_constructor) (delegation_specifiers) (type_constraints) (class_body)]
          .) @def.class
        (object_declaration name: (identifier) @name) @def.object
        (companion_object name: (identifier) @name) @def.object
        (companion_object !name) @def.object
        ((function_declaration name: (identifier) @name) @def.function (#not-eq? @name ""))
        (secondary_constructor "constructor" @name) @def.method
        (property_declaration (modifiers (property_modifier)) (variable_declaration (identifier) @name)) @def.constant
    """,
    scopes=frozenset({"class_declaration", "object_declaration", "companion_object", "function_declaration"}),
    class_scopes=frozenset({"class_declaration", "object_declaration", "companion_object"}),
    imports="(import) @import",
    calls="""(call_expression . (identifier) @call)
             (call_expression . (navigation_expression (identifier) @call .))""",
)
SCALA = LanguageSpec(
    "scala", "tree_sitter_scala",
    definitions="""
        (class_definition name: (identifier) @name) @def.class
        (trait_definition name: (identifier) @name) @def.trait
        (object_definition name: (identifier) @name) @def.object
        (enum_definition name: (identifier) @name) @def.enum
        (function_definition name: (identifier) @name) @def.function
        (function_declaration name: (identifier) @name) @def.function
    """,
    scopes=frozenset({"class_definition", "trait_definition", "object_definition", "enum_definition",
                      "function_definition"}),
    class_scopes=frozenset({"class_definition", "trait_definition", "object_definition", "enum_definition"}),
    imports="(import_declaration) @import",
    calls="""(call_expression function: (identifier) @call)
             (call_expression function: (field_expression field: (identifier) @call))
             (call_expression function: (generic_function function: (identifier) @call))
             (call_expression function: (generic_function function: (field_expression field: (identifier) @call)))""",
)
# Swift's class_declaration covers class, struct, enum, actor and extension, told apart by `declaration_kind`.
SWIFT = LanguageSpec(
    "swift", "tree_sitter_swift",
    definitions="""
        (class_declaration declaration_kind: ["class" "actor"] name: (type_identifier) @name) @def.class
        (class_declaration declaration_kind: "struct" name: (type_identifier) @name) @def.struct
        (class_declaration declaration_kind: "enum" name: (type_identifier) @name) @def.enum
        (class_declaration declaration_kind: "extension" name: (_) @name) @def.extension
        (protocol_declaration name: (type_identifier) @name) @def.interface
        (function_declaration name: (simple_identifier) @name) @def.function
        (protocol_function_declaration name: (simple_identifier) @name) @def.method
        (init_declaration name: "init" @name) @def.method
        (deinit_declaration "deinit" @name) @def.method
    """,
    scopes=frozenset({"class_declaration", "protocol_declaration", "function_declaration", "init_declaration"}),
    class_scopes=frozenset({"class_declaration", "protocol_declaration"}),
    imports="(import_declaration) @import",
    calls="""(call_expression . (simple_identifier) @call)
             (call_expression
               . (navigation_expression suffix: (navigation_suffix suffix: (simple_identifier) @call)))""",
)
# Lua has no classes: `function t.f()` is a function and `function t:m()` a method; the table they are
# written into (`t`, or `a.b` for `function a.b.f()`) prefixes the qualified name, as a class would.
LUA = LanguageSpec(
    "lua", "tree_sitter_lua",
    definitions="""
        (function_declaration name: (identifier) @name) @def.function
        (function_declaration name: (dot_index_expression table: (_) @owner field: (identifier) @name)) @def.function
        (function_declaration
          name: (method_index_expression table: (_) @owner method: (identifier) @name)) @def.method
        (assignment_statement
          (variable_list . name: [(identifier) @name (dot_index_expression field: (identifier) @name)])
          (expression_list . value: (function_definition))) @def.function
        (field name: (identifier) @name value: (function_definition)) @def.function
    """,
    scopes=frozenset(), class_scopes=frozenset(),
    imports="""((function_call name: (identifier) @_require) @import (#eq? @_require "require"))""",
    calls="""(function_call name: (identifier) @call)
             (function_call name: (dot_index_expression field: (identifier) @call))
             (function_call name: (method_index_expression method: (identifier) @call))""",
)

EXTENSIONS: dict[str, LanguageSpec] = {
    ".py": PY, ".pyi": PY, ".js": JS, ".mjs": JS, ".cjs": JS, ".jsx": JS, ".ts": TS, ".mts": TS, ".cts": TS,
    ".tsx": TSX, ".go": GO, ".rs": RUST, ".java": JAVA, ".c": C, ".h": C, ".cc": CPP, ".cpp": CPP, ".cxx": CPP,
    ".hpp": CPP, ".hh": CPP, ".hxx": CPP, ".cs": CSHARP, ".rb": RUBY, ".php": PHP, ".sh": BASH, ".bash": BASH,
    ".kt": KOTLIN, ".kts": KOTLIN, ".scala": SCALA, ".sc": SCALA, ".swift": SWIFT, ".lua": LUA,
}
SPECS = {spec.name: spec for spec in EXTENSIONS.values()}


def spec_for(path: str) -> LanguageSpec | None:
    return EXTENSIONS.get(PurePosixPath(path).suffix.lower())


# What only C++ writes at the start of a line: a template, a namespace block, `using namespace`, an access
# label, or a class with a body (`class` is a plain identifier in C, never followed by `Name ... {`).
_CPP_MARKERS = re.compile(
    rb"^[ \t]*(?:template[ \t]*<|namespace(?:[ \t]+[\w:]+)?[ \t]*\{|using[ \t]+namespace[ \t]|"
    rb"(?:public|private|protected)[ \t]*:|class[ \t]+\w+[^;(){}]*\{)", re.MULTILINE)


def spec_of_source(path: str, source: bytes) -> LanguageSpec | None:
    """The grammar for this file's text: a `.h` is C unless it reads as C++ (the extension cannot tell, and
    C++ headers parsed as C lose their classes and namespaces); one regex scan, ~1 ms per 100 KB."""
    spec = spec_for(path)
    if spec is C and path.lower().endswith(".h") and _CPP_MARKERS.search(source):
        return CPP
    return spec


IMPORT, CONTAINER = "<import>", "<container>"


@dataclass(frozen=True, slots=True)
class Compiled:
    spec: LanguageSpec
    language: Language
    # The TreeWalk flattened to node kind id -> kind, IMPORT or CONTAINER: one dict lookup a node, by the
    # node's integer id (`Node.kind_id`) rather than its type name, which tree-sitter hands to Python as a
    # new str at every call (a quarter of the walk's time over the standard library: docs/benchmarks.md).
    walk_roles: dict[int, str]
    class_scope_ids: frozenset[int]  # kind ids of spec.class_scopes
    name_field: int  # field ids, for `Node.child_by_field_id`
    body_field: int | None  # of spec.walk.body

    @property
    def definitions(self) -> Query:
        """Definitions and imports together: one pass over the tree instead of two. Compiled on first use:
        a language with a TreeWalk (Python) never needs it to index, and each parse worker would pay for it."""
        return _query(self.spec.name, "definitions")

    @property
    def calls(self) -> Query | None:
        """Run only on the files a references() lookup needs, never on the cold path: compiled on first use."""
        return _query(self.spec.name, "calls") if self.spec.calls else None


@cache
def compiled(name: str) -> Compiled:
    """Grammar and walk of one language, built once per process (its queries when first used)."""
    spec = SPECS[name]
    language = Language(getattr(importlib.import_module(spec.module), spec.entry)())
    roles: dict[str, str] = {}
    if spec.walk is not None:
        roles = dict.fromkeys(spec.walk.containers, CONTAINER) | dict.fromkeys(spec.walk.imports, IMPORT)
        roles |= spec.walk.definitions
    ids = kind_ids(language)
    return Compiled(spec, language, {i: roles[kind] for i, kind in ids.items() if kind in roles},
                    frozenset(i for i, kind in ids.items() if kind in spec.class_scopes),
                    language.field_id_for_name("name") or 0,  # 0: no field (tree-sitter numbers fields from 1)
                    language.field_id_for_name(spec.walk.body) if spec.walk is not None else None)


@cache
def _query(name: str, which: Literal["definitions", "calls"]) -> Query:
    spec = SPECS[name]
    source = "\n".join((spec.definitions, spec.imports)) if which == "definitions" else spec.calls
    return Query(compiled(name).language, source)


ERROR_KIND_ID = 0xFFFF  # tree-sitter's id of an ERROR node, outside the grammar's own numbering


def kind_ids(language: Language) -> dict[int, str]:
    """Kind id -> type name of every named node kind. One name can have several ids (a grammar's aliases:
    Python's `block` has two), so the ids are enumerated rather than asked for by name."""
    ids = {i: language.node_kind_for_id(i) or "" for i in range(language.node_kind_count)
           if language.node_kind_is_named(i)}
    ids[ERROR_KIND_ID] = "ERROR"
    return ids
