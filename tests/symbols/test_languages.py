"""Hand-written fixture repositories with known symbols, one per language family, and broken input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlm_mcp.symbols import CodeIndex

FIXTURES = {
    "web/app.ts": """import { readFile } from "fs";
export interface Store {
  get(key: string): string;
}
export enum Color { Red, Green }
export class Cache implements Store {
  get(key: string): string { return load(key); }
  private load(key: string) { return readFile(key); }
}
export function makeCache(): Cache { return new Cache(); }
const helper = (x: number) => x * 2;
""",
    "web/widget.js": """import React from "react";
class Widget extends React.Component {
  render() { return renderTree(this.props); }
}
function renderTree(props) { return props; }
""",
    "svc/main.go": """package main
import "fmt"
type Server struct { port int }
type Handler interface { Serve() }
func (s *Server) Serve() { fmt.Println(s.port) }
func NewServer() *Server { return &Server{port: 80} }
""",
    "core/lib.rs": """use std::collections::HashMap;
pub struct Config { name: String }
pub enum Mode { Fast, Slow }
pub trait Runner { fn run(&self); }
impl Runner for Config {
    fn run(&self) { helper(); }
}
fn helper() {}
const LIMIT: u32 = 10;
""",
    "java/App.java": """import java.util.List;
public class App {
    public App() {}
    public void start(List<String> args) { stop(); }
    private void stop() {}
}
interface Service { void call(); }
""",
    "native/util.c": """#include <stdio.h>
struct point { int x; int y; };
static int add(int a, int b) { return a + b; }
int main(void) { printf("%d", add(1, 2)); return 0; }
""",
    "native/shape.cpp": """#include <string>
namespace geo {
class Shape {
 public:
  double area() const { return 0; }
};
}
int run() { return 1; }
""",
    "mobile/Repo.kt": """package com.example.repo

import kotlin.math.max

interface Source {
    fun fetch(id: Int): String
}

class Repository(private val source: Source) : Source {
    constructor() : this(NullSource)

    override fun fetch(id: Int): String = normalize(source.fetch(id))

    companion object {
        const val RETRIES = 3
    }
}

object NullSource : Source {
    override fun fetch(id: Int): String = ""
}

enum class Status {
    OK,
    FAILED,
}

fun normalize(text: String): String {
    return text.trim().padEnd(max(1, 2))
}
""",
    "jvm/Shapes.scala": """package shapes

import scala.math.{Pi, pow}

trait Shape {
  def area: Double
}

case class Circle(r: Double) extends Shape {
  def area: Double = Pi * square(r)
}

object Circle {
  def unit(): Circle = Circle(1.0)
}

enum Kind {
  case Round, Flat
}

def square(x: Double): Double = pow(x, 2)
""",
    "ios/Player.swift": """import Foundation

protocol Playable {
    func play() -> Bool
}

class Player: Playable {
    let name: String

    init(name: String) {
        self.name = name
    }

    func play() -> Bool {
        return announce(name)
    }
}

struct Track {
    var title: String
}

enum Mode {
    case shuffle, repeatAll
}

extension Track {
    func describe() -> String { title }
}

func announce(_ text: String) -> Bool {
    print(text)
    return true
}
""",
    "scripts/queue.lua": """local list = require("list")

local Queue = {}
Queue.__index = Queue

local function clamp(value)
  return math.min(value, 100)
end

function Queue.new()
  return setmetatable({ items = list.empty() }, Queue)
end

function Queue:push(item)
  self.items = list.append(self.items, clamp(item))
end

Queue.size = function(self) return #self.items end

return Queue
""",
}
EXPECTED = {
    "web/app.ts": {("Store", "interface"), ("Store.get", "method"), ("Color", "enum"), ("Cache", "class"),
                   ("Cache.get", "method"), ("Cache.load", "method"), ("makeCache", "function"),
                   ("helper", "function")},
    "web/widget.js": {("Widget", "class"), ("Widget.render", "method"), ("renderTree", "function")},
    "svc/main.go": {("Server", "struct"), ("Handler", "interface"), ("Server.Serve", "method"),
                    ("NewServer", "function")},
    "core/lib.rs": {("Config", "struct"), ("Mode", "enum"), ("Runner", "trait"), ("Runner.run", "method"),
                    ("Config", "impl"), ("Config.run", "method"), ("helper", "function"), ("LIMIT", "constant")},
    "java/App.java": {("App", "class"), ("App.App", "method"), ("App.start", "method"), ("App.stop", "method"),
                      ("Service", "interface"), ("Service.call", "method")},
    "native/util.c": {("point", "struct"), ("add", "function"), ("main", "function")},
    "native/shape.cpp": {("geo", "namespace"), ("geo.Shape", "class"), ("geo.Shape.area", "method"),
                         ("run", "function")},
    "mobile/Repo.kt": {("Source", "interface"), ("Source.fetch", "method"), ("Repository", "class"),
                       ("Repository.constructor", "method"), ("Repository.fetch", "method"),
                       ("Repository.RETRIES", "constant"), ("Repository.Companion", "object"),
                       ("NullSource", "object"), ("NullSource.fetch", "method"),
                       ("Status", "enum"), ("normalize", "function")},
    "jvm/Shapes.scala": {("Shape", "trait"), ("Shape.area", "method"), ("Circle", "class"), ("Circle.area", "method"),
                         ("Circle", "object"), ("Circle.unit", "method"), ("Kind", "enum"), ("square", "function")},
    "ios/Player.swift": {("Playable", "interface"), ("Playable.play", "method"), ("Player", "class"),
                         ("Player.init", "method"), ("Player.play", "method"), ("Track", "struct"), ("Mode", "enum"),
                         ("Track", "extension"), ("Track.describe", "method"), ("announce", "function")},
    # The table a function is written into prefixes it; `Queue.size = function` is an assignment, not a scope
    "scripts/queue.lua": {("clamp", "function"), ("Queue.new", "function"), ("Queue.push", "method"),
                          ("size", "function")},
}
# Per language: (path, qualname, start line, callee, lines calling it in that file, imports)
LINES_CALLS_IMPORTS = [
    ("mobile/Repo.kt", "Repository.fetch", 12, "normalize", [12], ["import kotlin.math.max"]),
    ("jvm/Shapes.scala", "Circle.unit", 14, "square", [10], ["import scala.math.{Pi, pow}"]),
    ("ios/Player.swift", "Player.init", 10, "announce", [15], ["import Foundation"]),
    ("scripts/queue.lua", "Queue.push", 14, "clamp", [15], ['require("list")']),
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for rel, text in FIXTURES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_known_symbols(repo: Path, path: str) -> None:
    index = CodeIndex.build(repo, [path])
    found = {(s["qualname"], s["kind"]) for s in index.outline(path)}
    assert found == EXPECTED[path]


def test_lookup_references_and_imports(repo: Path) -> None:
    index = CodeIndex.build(repo, sorted(FIXTURES))
    (cache,) = index.find_definitions("Cache", kind="class")
    assert (cache["path"], cache["start_line"], cache["end_line"]) == ("web/app.ts", 6, 9)
    assert cache["signature"] == "export class Cache implements Store {"
    assert {s["qualname"] for s in index.find_definitions(pattern=r"^Cache\.")} == {"Cache.get", "Cache.load"}
    assert [(r["path"], r["line"], r["text"]) for r in index.references("helper")] == [
        ("core/lib.rs", 6, "fn run(&self) { helper(); }")]
    assert [(r["path"], r["line"]) for r in index.references("add")] == [("native/util.c", 4)]
    assert index.references("LIMIT") == []  # named, never called
    assert index.imports("svc/main.go") == {"svc/main.go": ['"fmt"']}


@pytest.mark.parametrize(("path", "qualname", "line", "callee", "call_lines", "imports"), LINES_CALLS_IMPORTS)
def test_lines_calls_and_imports(repo: Path, path: str, qualname: str, line: int, callee: str,
                                 call_lines: list[int], imports: list[str]) -> None:
    index = CodeIndex.build(repo, sorted(FIXTURES))
    assert [(s["path"], s["start_line"]) for s in index.find_definitions(qualname)] == [(path, line)]
    assert [(r["path"], r["line"]) for r in index.references(callee)] == [(path, n) for n in call_lines]
    assert index.imports(path) == {path: imports}


def test_cache_reload_and_incremental_update(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "repo.idx"
    paths = sorted(FIXTURES)
    CodeIndex.build(repo, paths, cache)
    warm = CodeIndex.build(repo, paths, cache)
    assert warm.stats()["cache_hits"] == len(paths)
    (repo / "web/widget.js").write_text("function renamed() {}\n")
    stat = os.stat(repo / "web/widget.js")
    os.utime(repo / "web/widget.js", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert warm.update(repo, paths) == 1
    assert warm.find_definitions("renamed") and not warm.find_definitions("Widget")
    assert warm.references("helper")  # remembered call sites are dropped when files change
    (repo / "core/lib.rs").write_text("fn helper() {}\n")
    stat = os.stat(repo / "core/lib.rs")
    os.utime(repo / "core/lib.rs", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert warm.update(repo, paths) == 1 and warm.references("helper") == []
    assert warm.update(repo, [p for p in paths if p != "svc/main.go"]) == 0
    assert warm.outline("svc/main.go") == [] and not warm.find_definitions("NewServer")


def test_broken_input_is_noted_not_fatal(tmp_path: Path) -> None:
    files = {
        "broken.py": b"def ok():\n    pass\n\ndef broken(:\n",
        "minified.js": b"var a=1;" * 300_000,
        "latin1.py": "def caf\xe9():\n    return '\xe9'\n".encode("latin-1"),
        "empty.go": b"",
        "blob.c": b"\x00\x01\x02binary",
        "notes.txt": b"no grammar for this",
        # tree-sitter-kotlin wants a newline before `}` after a member; its recovery (1.1.0, on exactly this
        # text) leaves `shout` a MISSING name, which is dropped rather than indexed as ""
        "recovered.kt": b"""    inner class Entry { fun size() = 0 }
data class Point(val x: Int)
sealed interface Shape
typealias Name = String

fun makeCache(): Cache {
    val c = Cache.create()
    c.get("k")
    return helper(c)
}

fun String.shout(): String = uppercase()
val top = 1

""",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    index = CodeIndex.build(tmp_path, sorted(files))
    problems = {p["path"]: p["problem"] for p in index.stats()["problems"]}
    assert problems["broken.py"].startswith("syntax errors")
    assert problems["minified.js"].startswith("skipped")
    assert problems["blob.c"].startswith("skipped: binary")
    assert index.find_definitions("ok")
    assert problems["recovered.kt"].startswith("syntax errors")
    assert index.find_definitions("makeCache") and all(s["name"] for s in index.outline("recovered.kt"))
    assert index.outline("empty.go") == [] and index.outline("notes.txt") == []
