"""The definitions real code is made of, beyond functions and classes, found in every language that has them.

Each fixture holds the shapes that a comparison with Universal Ctags on real libraries showed missing or
misnamed (issue 30): C functions returning pointers (`*`, `**`, `const char *const *`, a function pointer),
typedefs, unions, macros and anonymous structs; C++ headers named `.h`; TypeScript type aliases and
namespaces; Java records, annotation types, anonymous and local classes; Go constants and named types;
Rust aliases, statics and macros; Ruby's top-level `::`. Expected outlines are written out in full, so a
definition found twice, under the wrong kind or the wrong qualified name fails as surely as a missed one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_mcp.symbols import CodeIndex

FIXTURES = {
    "native/ptr.c": """#include <stdio.h>
#define LIMIT 10
#define MAX(a, b) ((a) > (b) ? (a) : (b))
char *name_of(int id) { return 0; }
char **split(const char *s) { return 0; }
const char *const *names(void) { return 0; }
int (*handler_for(int sig))(int) { return 0; }
static inline struct point *origin(void) { return 0; }
typedef struct { int x; } anon_t, *anon_p;
typedef struct node { struct node *next; } node_t;
typedef int (*callback)(int);
union value { int i; double d; };
typedef union { int i; } anon_u;
typedef enum { RED, GREEN } color_t;
""",
    # `.h` with classes and namespaces is C++; with only C in it (and `class` as a field name), C
    "native/shape.h": """#pragma once
namespace geo {
class Shape {
 public:
  virtual double area() const = 0;
};
template <typename T> T twice(T x) { return x + x; }
}
int *make_shape(void);
""",
    "native/config.h": """#ifndef CONFIG_H
#define CONFIG_H
struct config { int class_count; };
char *config_name(struct config *c) { return 0; }
#endif
""",
    # a macro used as an attribute, alone on its lines, no longer hides the declaration after it; a macro call
    # that ends a continued `#if` is left as it is
    "native/attr.hpp": """#if defined(__GNUC__) || \\
    VERSION_CHECK(4, 0)
#define HAVE_BUILTIN 1
#endif
NAMESPACE_BEGIN(lib)
template <typename T>
struct base {
    DEPRECATED(
        "use T directly")
    base() = default;
};
NAMESPACE_END(lib)
""",
    "native/impl.cpp": """#include <vector>
namespace geo {
double Shape::area() const { return 0; }
const std::vector<int> &Grid::cells() const { return cells_; }
char **Grid::rows() { return 0; }
}
void ::top_level() {}
using Index = unsigned long;
template <> class type_caster<bool> {
  bool load(int src) { if (src) { return true; } return false; }
  operator bool() const { return value; }
  explicit operator std::string() const { return ""; }
};
Grid::operator std::vector<int>() const { return {}; }
""",
    # `in`/`out` variance does not parse with tree-sitter-typescript 0.23.2, the newest release on PyPI and
    # npm: error recovery keeps every definition around it, which this fixture checks
    "web/lib.ts": """export type Id = string | number;
type Pair<in T> = [T, T];
export namespace Outer.Inner {
  export function make(): Id { return 1; }
  export class Box { open(): void {} }
}
declare module "fs-extra" {
  function copy(src: string): Promise<void>;
}
declare function overloaded(x: number): number;
interface State<in out T> { get(): T }
class Holder<out T> { value(): T { return null as any; } }
abstract class Base { abstract run(): void; }
export function over(x: string): string;
// the number form
export function over(x: number): number;
export function over(x: any): any {
  return x;
}
class Ov { constructor(a: string); constructor(a: any) {} }
""",
    "java/Rec.java": """package p;
public record Point(int x, int y) {
    public Point { }
    int sum() { return x + y; }
}
@interface Marker { String value() default ""; }
class Outer {
    void start() {
        Runnable r = new Runnable() { public void run() { go(new Thread() { public void run() {} }); } };
        class Local { void help() {} }
    }
}
""",
    "go/lib.go": """package lib
const Max = 10
const (
\tA, B = 1, 2
\tC    = iota
)
type Celsius float64
type Handler func(int) error
type Alias = Celsius
type List[T any] []T
type Server struct{}
func f() { const local = 1; type inner int }
""",
    "rust/lib.rs": """pub type Result<T> = std::result::Result<T, Error>;
static COUNTER: u32 = 0;
pub static mut STATE: u8 = 1;
macro_rules! square { ($x:expr) => { $x * $x }; }
union Bits { i: u32, f: f32 }
impl<T> Wrapper<T> { fn get(&self) {} }
impl fmt::Display for a::Bar<u8> { fn fmt(&self) {} }
trait Tr { type Text: ?Sized; }
""",
    "web/private.js": """class Loader {
  async #locate(dir) { return dir; }
}
exports.search = function search(tokens) { return tokens; };
module.exports.find = (x) => x;
module.exports = function () {};
""",
    "cs/Manager.cs": """namespace Demo {
class Manager {
    public Manager() { }
    static bool IsExported(int t) => t > 0;
}
}
""",
    "kt/Holder.kt": """class Holder {
    companion object {
        const val LIMIT = 3
    }
}
""",
    "ruby/top.rb": """module Outer
  module ::TopLevel
    def self.reset; end
    class Inner; def go; end; end
  end
  class Foo::Bar
    def baz; end
  end
end
""",
}
# path -> (language, [(start line, kind, qualname)]) in outline order
EXPECTED: dict[str, tuple[str, list[tuple[int, str, str]]]] = {
    "native/ptr.c": ("c", [
        (2, "macro", "LIMIT"), (3, "macro", "MAX"), (4, "function", "name_of"), (5, "function", "split"),
        (6, "function", "names"), (7, "function", "handler_for"), (8, "function", "origin"),
        (9, "type", "anon_p"), (9, "struct", "anon_t"), (10, "struct", "node"), (10, "type", "node_t"),
        (11, "type", "callback"), (12, "union", "value"), (13, "union", "anon_u"), (14, "enum", "color_t")]),
    "native/shape.h": ("cpp", [(2, "namespace", "geo"), (3, "class", "geo.Shape"), (7, "function", "geo.twice")]),
    "native/config.h": ("c", [(2, "macro", "CONFIG_H"), (3, "struct", "config"), (4, "function", "config_name")]),
    "native/attr.hpp": ("cpp", [(3, "macro", "HAVE_BUILTIN"), (7, "struct", "base"), (10, "method", "base.base")]),
    "native/impl.cpp": ("cpp", [
        (2, "namespace", "geo"), (3, "function", "geo.Shape.area"), (4, "function", "geo.Grid.cells"),
        (5, "function", "geo.Grid.rows"), (7, "function", "top_level"), (8, "type", "Index"),
        (9, "class", "type_caster"), (10, "method", "type_caster.load"), (11, "method", "type_caster.operator bool"),
        (12, "method", "type_caster.operator std::string"), (14, "function", "Grid.operator std::vector<int>")]),
    "web/lib.ts": ("typescript", [
        (1, "type", "Id"), (2, "type", "Pair"), (3, "namespace", "Outer.Inner"), (4, "function", "Outer.Inner.make"),
        (5, "class", "Outer.Inner.Box"), (5, "method", "Outer.Inner.Box.open"), (7, "namespace", "fs-extra"),
        (8, "function", "fs-extra.copy"), (10, "function", "overloaded"), (11, "interface", "State"),
        (11, "method", "State.get"), (12, "class", "Holder"), (12, "method", "Holder.value"),
        (13, "class", "Base"), (13, "method", "Base.run"), (14, "function", "over"), (20, "class", "Ov"),
        (20, "method", "Ov.constructor")]),
    "java/Rec.java": ("java", [
        (2, "record", "Point"), (3, "method", "Point.Point"), (4, "method", "Point.sum"),
        (6, "annotation", "Marker"), (6, "method", "Marker.value"), (7, "class", "Outer"),
        (8, "method", "Outer.start"), (9, "method", "Outer.start.<anonymous Runnable>.run"),
        (9, "method", "Outer.start.<anonymous Runnable>.run.<anonymous Thread>.run"),
        (10, "class", "Outer.start.Local"), (10, "method", "Outer.start.Local.help")]),
    "go/lib.go": ("go", [
        (2, "constant", "Max"), (4, "constant", "A"), (4, "constant", "B"), (5, "constant", "C"),
        (7, "type", "Celsius"), (8, "type", "Handler"), (9, "type", "Alias"), (10, "type", "List"),
        (11, "struct", "Server"), (12, "function", "f"), (12, "type", "inner")]),
    "rust/lib.rs": ("rust", [(1, "type", "Result"), (2, "static", "COUNTER"), (3, "static", "STATE"),
                             (4, "macro", "square"), (5, "union", "Bits"), (6, "impl", "Wrapper"),
                             (6, "method", "Wrapper.get"), (7, "impl", "Bar"), (7, "method", "Bar.fmt"),
                             (8, "trait", "Tr"), (8, "type", "Tr.Text")]),
    "web/private.js": ("javascript", [(1, "class", "Loader"), (2, "method", "Loader.#locate"),
                                      (4, "function", "search"), (5, "function", "find")]),
    "cs/Manager.cs": ("csharp", [(2, "class", "Manager"), (3, "method", "Manager.Manager"),
                                 (4, "method", "Manager.IsExported")]),
    "kt/Holder.kt": ("kotlin", [(1, "class", "Holder"), (2, "object", "Holder.Companion"),
                                (3, "constant", "Holder.LIMIT")]),  # as Kotlin code writes it
    "ruby/top.rb": ("ruby", [
        (1, "module", "Outer"), (2, "module", "TopLevel"), (3, "method", "TopLevel.reset"),
        (4, "class", "TopLevel.Inner"), (4, "method", "TopLevel.Inner.go"), (6, "class", "Outer.Foo.Bar"),
        (7, "method", "Outer.Foo.Bar.baz")]),
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> CodeIndex:
    root = tmp_path_factory.mktemp("kinds")
    for rel, text in FIXTURES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return CodeIndex.build(root, sorted(FIXTURES))


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_outline(index: CodeIndex, path: str) -> None:
    language, expected = EXPECTED[path]
    outline = index.outline(path)
    assert [(s["start_line"], s["kind"], s["qualname"]) for s in outline] == expected
    assert {s["language"] for s in outline} == {language}


def test_an_overload_run_is_one_definition_from_first_signature_to_implementation(index: CodeIndex) -> None:
    (over,) = index.find_definitions("over")
    assert (over["start_line"], over["end_line"]) == (14, 19)
    assert over["signature"] == "export function over(x: string): string;"


def test_pointer_returning_functions_are_found_by_name_with_their_signature(index: CodeIndex) -> None:
    (names,) = index.find_definitions("names")
    assert names["signature"] == "const char *const *names(void) { return 0; }"
    assert [s["qualname"] for s in index.find_definitions("rows")] == ["geo.Grid.rows"]


@pytest.mark.parametrize("kind", ["type", "namespace", "record", "annotation", "macro", "union", "static",
                                  "constant"])
def test_every_new_kind_is_a_filter(index: CodeIndex, kind: str) -> None:
    found = index.find_definitions(kind=kind)
    assert found and {s["kind"] for s in found} == {kind}


def test_long_lines_keep_the_file_and_only_minified_files_are_skipped(tmp_path: Path) -> None:
    files = {
        # one 60,000-character line (a data table) among ordinary code: every definition after it counts
        "table.h": "static const char *BLOB = \"" + "x" * 60_000 + "\";\nchar *decode(void) { return 0; }\n",
        "gen_test.py": "DATA = '" + "y" * 20_000 + "'\n\n" + "".join(f"def test_{i}():\n    pass\n" for i in range(50)),
        "bundle.js": ";".join(f"function a{i}(b){{return b+{i}}}" for i in range(4_000)) + "\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    index = CodeIndex.build(tmp_path, sorted(files))
    problems = {p["path"]: p["problem"] for p in index.stats()["problems"]}
    assert [s["name"] for s in index.outline("table.h")] == ["decode"] and "table.h" not in problems
    assert len(index.outline("gen_test.py")) == 50 and "gen_test.py" not in problems
    assert problems["bundle.js"].startswith("skipped: minified") and index.outline("bundle.js") == []


def test_a_macro_attribute_alone_on_its_lines_leaves_the_file_parsed(index: CodeIndex) -> None:
    assert "native/attr.hpp" not in {p["path"] for p in index.stats()["problems"]}
