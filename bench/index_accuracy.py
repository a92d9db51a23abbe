"""The code index against Universal Ctags, definition by definition, on real third-party code per language.

Why: fixtures written here only test what their author thought of; real libraries show what a user's
codebase holds. Each language's code comes from a package registry at set-up -- PyPI sdists, npm tarballs,
and Debian binary packages that carry source (Go's `golang-*-dev`, Rust's `librust-*-dev`, `ruby-*`,
`php-*`, `lua-*`, `bash-completion`). `apt-get source` would need deb-src lines, which this machine's
sources list does not have, so no Debian source package is used. Nothing is committed: the downloads
live in a cache outside the repository (RLM_BENCH_CACHE, default ~/.cache/rlm-mcp-bench/index-accuracy).

Per language it prints: files, our definitions, ctags' definitions of the kinds we claim, matched, recall
(matched / ctags'), precision (matched / ours), and the same two after each disagreement's verdict
(`VERDICTS`: which side is right, judged by reading examples). A ctags tag matches one of ours with the same
name in the same file whose line range holds the tag's line. Universal Ctags 5.9 has no Scala or Swift
parser: those languages are counted, not compared.

    .venv/bin/python bench/index_accuracy.py [--examples N] [--only LANG,...]     (or ./dev.sh bench index)

To measure another checkout's index (a "before"), put it first on the path:
`PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/index_accuracy.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table

from rlm_mcp.symbols import CodeIndex, spec_for

try:  # a checkout from before .h files were told apart by content
    from rlm_mcp.symbols.languages import spec_of_source
except ImportError:  # pragma: no cover - only when measuring an older checkout
    def spec_of_source(path: str, source: bytes):  # type: ignore[no-untyped-def]
        return spec_for(path)

CACHE = Path(os.environ.get("RLM_BENCH_CACHE", Path.home() / ".cache" / "rlm-mcp-bench" / "index-accuracy"))
CTAGS = shutil.which("ctags") or "/usr/bin/ctags"
# Names ctags makes up for what has none (an anonymous struct, function or lambda): nobody looks them up.
PLACEHOLDER = re.compile(r"__anon|AnonymousFunction|<lambda>")
MACRO_CALL = re.compile(r"/\^\s*[A-Z][A-Z0-9_]*\s*\(.*\)\s*\$/$")  # a tag's search pattern: `/^NS_END(x)$/`


@dataclass(frozen=True)
class Source:
    """One package: where it comes from, and which of its folders hold the code of `languages`."""

    registry: str  # pypi | npm | debian
    package: str  # with a pinned version for PyPI and npm; Debian's current candidate for its release
    folders: tuple[str, ...]
    languages: tuple[str, ...]
    add_suffix: str | None = None  # given to the files of `folders` that have none, in a copy beside them


SOURCES = [
    Source("pypi", "rich==15.0.0", ("rich-15.0.0/rich",), ("python",)),
    Source("npm", "eslint@9.39.1", ("package/lib",), ("javascript",)),
    Source("npm", "rxjs@7.8.2", ("package/src",), ("typescript",)),
    Source("debian", "golang-github-spf13-cobra-dev", ("usr/share/gocode",), ("go",)),
    Source("debian", "librust-regex-dev", ("usr/share/cargo/registry",), ("rust",)),
    Source("pypi", "jpype1==1.7.1", ("jpype1-1.7.1/native/jpype_module/src/main/java", "jpype1-1.7.1/test/harness"),
           ("java",)),
    Source("pypi", "brotli==1.2.1", ("brotli-1.2.1/c",), ("c",)),
    Source("pypi", "pybind11==3.1.0", ("pybind11-3.1.0/include", "pybind11-3.1.0/tests"), ("cpp",)),
    # a second C++ code base, plainer than pybind11's macro-heavy headers; its `.h` files are C++ by content
    Source("pypi", "jpype1==1.7.1", ("jpype1-1.7.1/native/common", "jpype1-1.7.1/native/python"), ("cpp",)),
    Source("pypi", "pythonnet==3.2.1", ("pythonnet-3.2.1/src/runtime",), ("csharp",)),
    Source("debian", "ruby-rack", ("usr/share/rubygems-integration/all/gems",), ("ruby",)),
    Source("debian", "php-symfony-console", ("usr/share/php",), ("php",)),
    # bash-completion's scripts have no extension (ours reads Bash by `.sh`/`.bash`): given one, in a copy
    Source("debian", "bash-completion", ("usr/share/bash-completion",), ("bash",), add_suffix=".bash"),
    Source("debian", "lua-penlight", ("usr/share/lua",), ("lua",)),
    Source("npm", "expo-modules-core@58.2.1", ("package/android", "package/ios"), ("kotlin", "swift")),
]
NO_CTAGS_PARSER = {"scala", "swift"}  # Universal Ctags 5.9 has none: counted, not compared
# ctags kinds (by ctags' own language of the file) that name what our index claims to find.
CLAIMED: dict[str, set[str]] = {
    "Python": {"class", "function", "member"},
    "JavaScript": {"class", "function", "method", "generator", "getter", "setter"},
    "TypeScript": {"class", "function", "method", "generator", "interface", "enum", "namespace", "alias"},
    "Go": {"func", "struct", "interface", "type", "talias", "const"},
    "Rust": {"function", "method", "struct", "enum", "interface", "implementation", "module", "typedef",
             "macro", "variable"},
    "Java": {"class", "interface", "enum", "method", "annotation"},
    "C": {"function", "struct", "union", "enum", "typedef", "macro"},
    "C++": {"function", "struct", "union", "enum", "typedef", "macro", "class", "namespace"},
    "C#": {"class", "interface", "struct", "enum", "method"},
    "Ruby": {"class", "module", "method", "singletonMethod"},
    "PHP": {"class", "interface", "trait", "function"},
    "Sh": {"function"},
    "Lua": {"function"},
    "Kotlin": {"class", "interface", "object", "method"},  # its "constant" is every `val`, locals included
}
# (language, side, category) -> (who is right, why). Written after reading the examples the run prints.
# Judged from the examples of each category (a sample, not every row): "ours" when ctags is the one wrong.
_SYNTAX = " (file has syntax errors for us)"
_BODY = " inside a function body"
VERDICTS: dict[tuple[str, str, str], tuple[str, str]] = {
    ("javascript", "ctags only", "class"): ("ours", "ctags calls an object literal held in a variable a class"),
    ("javascript", "ctags only", "class" + _BODY): ("ours", "the same, inside functions"),
    ("javascript", "ours only", "function" + _BODY): (
        "ours", "methods of object literals passed as arguments and nested functions, which ctags skips"),
    ("javascript", "ours only", "function"): ("ours", "object-literal methods ctags skips; `x.f = () => ...`"),
    ("javascript", "ours only", "method"): ("ours", "methods ctags misreads (`get(id) {`) or names differently"),
    ("javascript", "ctags only", "function" + _BODY): (
        "ctags", "`module.exports = function` is named `module.exports` by ctags; we do not index that assignment"),
    ("javascript", "ctags only", "method" + _BODY): ("ctags", "members assigned in a function body (`x.f = ...`)"),
    ("javascript", "ctags only", "function"): ("ctags", "an IIFE's result, `exports.x = function` forms we miss"),
    ("javascript", "ctags only", "method"): ("ctags", "computed names (`[Symbol.iterator]()`) we do not index"),
    ("typescript", "ours only", "function" + _BODY): ("ours", "nested functions: ctags skips function bodies"),
    ("typescript", "ours only", "method"): ("ours", "static and overloaded methods ctags leaves out"),
    ("typescript", "ours only", "function"): (
        "ours", "functions in call arguments ctags skips; arrow functions in a `const`, ctags' (uncompared) constant"),
    ("typescript", "ctags only", "method"): ("ctags", "construct signatures (`new (...)`) we do not index"),
    ("go", "ours only", "struct" + _BODY): ("ours", "types declared in a function body: ctags skips bodies"),
    ("rust", "ours only", "constant"): ("ours", "ctags 5.9's Rust parser has no kind for `const` items"),
    ("rust", "ours only", "constant" + _BODY): ("ours", "the same"),
    ("rust", "ours only", "macro"): ("ours", "`macro_rules!` in a test module that ctags does not tag"),
    ("rust", "ctags only", "implementation"): ("ctags", "`impl ... for char`/`u8`: primitive types we do not name"),
    ("java", "ours only", "method" + _BODY): ("ours", "methods of anonymous classes: ctags 5.9 skips them"),
    ("c", "ours only", "function" + _SYNTAX): ("ours", "functions under `#if` branches ctags does not read"),
    ("c", "ours only", "macro" + _SYNTAX): ("ours", "a macro defined in each `#if` branch: ctags keeps one"),
    ("c", "ours only", "type" + _SYNTAX): ("ours", "typedefs in the template headers (`*_inc.h`) ctags names FN"),
    ("c", "ctags only", "typedef" + _SYNTAX): ("ctags", "typedefs lost where tree-sitter-c cannot parse macros"),
    ("c", "ctags only", "typedef"): ("ctags", "`typedef __int8 int8_t` under `#if defined(_MSC_VER)`"),
    ("cpp", "ours only", "method" + _SYNTAX): (
        "ours", "constructors, `= default`/`= delete` members and operators in class bodies, which ctags leaves out"),
    ("cpp", "ctags only", "function" + _SYNTAX): (
        "ctags", "definitions after a macro-attribute (`PYBIND11_DEPRECATED(...)`) tree-sitter-cpp cannot parse"),
    ("cpp", "ours only", "function" + _SYNTAX): (
        "ctags", "the same misparse seen from our side: a class read as a function"),
    ("cpp", "ours only", "method"): ("ours", "constructors ctags leaves out"),
    ("cpp", "ours only", "function"): (
        "ours", "destructors defined out of their class (`Foo::~Foo()`) and functions after a namespace macro, "
        "which ctags does not tag (a few are macro-made: `TEST_SUBMODULE(name, m) {`)"),
    ("cpp", "ctags only", "function: a macro call alone on its line"): (
        "ours", "ctags takes `PYBIND11_NAMESPACE_END(detail)` for a function definition"),
    ("c", "ctags only", "function: a macro call alone on its line"): ("ours", "the same"),
    ("c", "ours only", "function: named by a macro call (`FN(Name)(...)`)"): (
        "ctags", "both sides name it FN, a name nobody looks up; ctags leaves these out, so count them against us"),
    ("cpp", "ctags only", "class" + _SYNTAX): ("ctags", "specializations lost to tree-sitter-cpp's error recovery"),
    ("csharp", "ours only", "method"): ("ours", "expression-bodied members (`=> ...`) ctags reads as fields"),
    ("csharp", "ours only", "method" + _SYNTAX): ("ours", "the same, in files tree-sitter-c-sharp recovers"),
    ("csharp", "ctags only", "method"): ("ctags", "methods in files whose syntax our grammar half-reads"),
    ("csharp", "ctags only", "class"): ("ours", "ctags takes generic constraints (`where T :`) for classes"),
    ("csharp", "ours only", "class"): ("ours", "the classes ctags named `T`"),
    ("bash", "ctags only", "function" + _SYNTAX): (
        "ctags", "bash_completion's main script, which tree-sitter-bash 0.25.1 cannot parse past its top"),
    ("bash", "ctags only", "function" + _BODY): ("ours", "ctags takes `words=(` and `--` for functions"),
    ("bash", "ctags only", "function"): ("ours", "ctags takes the `declare` builtin's completion for a function"),
    ("lua", "ctags only", "function" + _BODY): ("ours", "ctags takes `cmp = function_arg(...)` for a function"),
    ("lua", "ours only", "function" + _BODY): ("ours", "local functions in function bodies"),
    ("kotlin", "ours only", "method"): ("ours", "secondary constructors, which ctags does not tag"),
    ("kotlin", "ctags only", "class"): ("ctags", "`annotation class X`, no body, after an annotation: a grammar gap"),
    ("kotlin", "ours only", "constant"): ("ours", "`const val`s; ctags' Kotlin `constant` is any `val`"),
}


def fetch(source: Source) -> Path:
    """The package unpacked under CACHE (downloaded once, through the registry's own client)."""
    target = CACHE / source.package.replace("/", "_")
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as download:
        if source.registry == "pypi":
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                            "-d", download, source.package], check=True)
        elif source.registry == "npm":
            subprocess.run(["npm", "pack", "--silent", "--pack-destination", download, source.package],
                           check=True, stdout=subprocess.DEVNULL)
        else:
            subprocess.run(["apt-get", "download", "-q", source.package], check=True, cwd=download,
                           stdout=subprocess.DEVNULL)
        os.chmod(download, 0o777)  # apt-get download writes as its own unprivileged user
        for archive in Path(download).iterdir():
            if archive.suffix == ".deb":
                subprocess.run(["dpkg-deb", "-x", str(archive), str(target)], check=True)
            else:
                with tarfile.open(archive) as tar:
                    tar.extractall(target, filter="data")
    for folder in source.folders if source.add_suffix else ():
        for path in [p for p in (target / folder).rglob("*") if p.is_file() and not p.suffix]:
            shutil.copyfile(path, path.with_name(path.name + source.add_suffix))
    (target / ".complete").write_text(source.package)
    return target


def files_of(root: Path, source: Source) -> dict[str, list[str]]:
    """Relative paths under the source's folders, by the language our index reads each one as."""
    found: dict[str, list[str]] = defaultdict(list)
    for folder in source.folders:
        for path in sorted((root / folder).rglob("*")):
            spec = spec_for(path.name)
            if not path.is_file() or path.is_symlink() or spec is None:
                continue
            spec = spec_of_source(path.name, path.read_bytes()) or spec
            if spec.name in source.languages:
                found[spec.name].append(str(path.relative_to(root)))
    return found


def run_ctags(root: Path, paths: list[str]) -> list[dict[str, Any]]:
    listed = subprocess.run([CTAGS, "--output-format=json", "--fields=+nKlZe", "-f", "-", "-L", "-"],
                            input="\n".join(paths), capture_output=True, text=True, cwd=root, check=True)
    tags = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
    return [t for t in tags if t.get("_type") == "tag" and t.get("kind") in CLAIMED.get(t.get("language", ""), ())]


@dataclass
class Outcome:
    files: int = 0
    ours: int = 0
    theirs: int = 0
    matched: int = 0
    anonymous: int = 0  # ctags' PLACEHOLDER names for unnamed types, functions and lambdas
    disagreements: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))


def compare(language: str, root: Path, paths: list[str]) -> Outcome:
    outcome = Outcome(files=len(paths))
    index = CodeIndex.build(root, paths)
    problems = {p["path"]: p["problem"] for p in index.stats()["problems"]}
    tags_by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if language not in NO_CTAGS_PARSER:
        for tag in run_ctags(root, paths):
            # (and Kotlin lambdas' parameters, which ctags tags as methods scoped to `<lambda>`)
            if PLACEHOLDER.search(tag["name"]) or "<lambda>" in tag.get("scope", ""):
                outcome.anonymous += 1
            else:
                tags_by_file[tag["path"]].append(tag)
    for path in paths:
        ours = index.outline(path)
        outcome.ours += len(ours)
        outcome.theirs += len(tags_by_file[path])
        unmatched = list(ours)
        for tag in sorted(tags_by_file[path], key=lambda t: t["line"]):
            name = _plain(tag["name"], language)
            candidates = [s for s in unmatched if _plain(s["name"], language) == name
                          and s["start_line"] <= tag["line"] <= s["end_line"]]
            if candidates:
                unmatched.remove(min(candidates, key=lambda s: abs(s["start_line"] - tag["line"])))
                outcome.matched += 1
            elif language not in NO_CTAGS_PARSER:
                category = _category("ctags only", tag["kind"], path, tag["line"], ours, problems, tag)
                if MACRO_CALL.match(tag.get("pattern", "")):
                    category = f"{tag['kind']}: a macro call alone on its line"
                outcome.disagreements[("ctags only", category)].append(
                    f"{path}:{tag['line']} {tag['kind']} {tag.get('scope', '') + '.' if tag.get('scope') else ''}"
                    f"{tag['name']}")
        if language in NO_CTAGS_PARSER:
            continue
        for symbol in unmatched:
            category = _category("ours only", symbol["kind"], path, symbol["start_line"], ours, problems, None)
            if re.search(rf"\b{re.escape(symbol['name'])}\(\w+\)\s*\(", symbol["signature"]):
                category = f"{symbol['kind']}: named by a macro call (`FN(Name)(...)`)"
            outcome.disagreements[("ours only", category)].append(
                f"{path}:{symbol['start_line']} {symbol['kind']} {symbol['qualname']}")
    return outcome


def _plain(name: str, language: str) -> str:
    """A name as both sides can agree on it: ctags writes Lua's `Date:set` and C#'s explicit `IEnumerable.
    GetEnumerator` whole and `operator =` with a space; JavaScript's `#private` names keep their `#` with us."""
    if language in ("lua", "csharp"):
        name = re.split(r"[.:]", name)[-1]
    return "".join(name.split()).lstrip("#")


def _category(side: str, kind: str, path: str, line: int, ours: list[dict[str, Any]], problems: dict[str, str],
              tag: dict[str, Any] | None) -> str:
    """What kind of disagreement this is, from what can be seen without judging it."""
    in_body = any(s["kind"] in ("function", "method") and s["start_line"] < line <= s["end_line"] for s in ours)
    if tag is not None and tag.get("scopeKind") in ("function", "method", "func"):
        in_body = True
    where = " inside a function body" if in_body else ""
    problem = problems.get(path, "")
    if problem.startswith("syntax errors"):
        where += " (file has syntax errors for us)"
    elif problem:
        where += f" (file {problem.split(':')[0]} by us)"
    return f"{kind}{where}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2, help="examples printed per disagreement")
    parser.add_argument("--only", default="", help="comma-separated languages")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    if not os.path.exists(CTAGS):
        sys.exit("universal-ctags not found: install it (e.g. apt-get install universal-ctags)")
    version = subprocess.run([CTAGS, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"{version}; sources cached in {CACHE}")
    rows, details = [], []
    for source in SOURCES:
        if only and not only & set(source.languages):
            continue
        root = fetch(source)
        for language, paths in sorted(files_of(root, source).items()):
            if only and language not in only:
                continue
            outcome = compare(language, root, paths)
            rows.append(_row(language, source, outcome))
            details.append((language, outcome))
    print_table("Definitions: ours against Universal Ctags (kinds we claim)",
                ("language", "source", "files", "ours", "ctags", "matched", "recall", "precision", "recall*",
                 "precision*"), rows)
    print("* after the verdicts below: a disagreement where ctags is wrong counts for us")
    for language, outcome in details:
        if outcome.anonymous:
            print(f"\n{language}: {outcome.anonymous} ctags placeholders for anonymous definitions left out")
        for (side, category), where in sorted(outcome.disagreements.items(), key=lambda kv: -len(kv[1])):
            right, why = VERDICTS.get((language, side, category), ("unjudged", ""))
            print(f"{language:10} {side:10} {len(where):5}  {category}  -> {right}{': ' + why if why else ''}")
            for example in where[: args.examples]:
                print(f"{'':28}{example}")


def _row(language: str, source: Source, outcome: Outcome) -> tuple[object, ...]:
    if language in NO_CTAGS_PARSER:
        return (language, source.package, outcome.files, outcome.ours, "n/a", "", "", "", "", "")
    ours_right = sum(len(w) for (side, cat), w in outcome.disagreements.items()
                     if VERDICTS.get((language, side, cat), ("",))[0] == "ours")
    ctags_wrong = sum(len(w) for (side, cat), w in outcome.disagreements.items()
                      if side == "ctags only" and VERDICTS.get((language, side, cat), ("",))[0] == "ours")
    ours_only_right = ours_right - ctags_wrong
    recall = outcome.matched / outcome.theirs if outcome.theirs else 1.0
    precision = outcome.matched / outcome.ours if outcome.ours else 1.0
    theirs_fair = outcome.theirs - ctags_wrong
    recall_star = outcome.matched / theirs_fair if theirs_fair else 1.0
    precision_star = (outcome.matched + ours_only_right) / outcome.ours if outcome.ours else 1.0
    return (language, source.package, outcome.files, outcome.ours, outcome.theirs, outcome.matched,
            f"{recall:.3f}", f"{precision:.3f}", f"{recall_star:.3f}", f"{precision_star:.3f}")


if __name__ == "__main__":
    main()
