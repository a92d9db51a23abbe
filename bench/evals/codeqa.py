"""Code QA over a real codebase -- by default the standard library of the sandbox's own interpreter, so
the REPL's `ast` parses exactly the syntax of the corpus. Gold answers come from Python's `ast` over the
very bytes that get loaded (a private copy), decoded as the loader decodes them.

Four kinds of question, three of each per seed: where is a class defined, how many classes directly
subclass a base, which files call a function, how many defs a class body holds. Each task also carries
the bytes of the files a host would have to read to answer it without our tools (the token economy).
"""

from __future__ import annotations

import ast
import collections
import random
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from rlm_mcp.sandbox.interpreter import find_guest_interpreter

from .tasks import Task, tokens_of

PER_KIND = 3
SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}


def guest_stdlib(configured: str | None = None) -> Path:
    """The standard library of the interpreter the jail runs (RLM_GUEST_PYTHON, else what the server picks)."""
    executable = find_guest_interpreter(configured).executable
    output = subprocess.run([executable, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                            capture_output=True, text=True, check=True).stdout
    return Path(output.strip())


@dataclass
class Corpus:
    root: Path
    texts: dict[str, str]  # relative path -> text as loaded
    sizes: dict[str, int]
    classes: list[tuple[str, str, int]] = field(default_factory=list)  # (path, qualname, line)
    names: collections.Counter[str] = field(default_factory=collections.Counter)  # every def/class name
    bases: dict[str, int] = field(default_factory=collections.Counter)  # base name -> direct subclasses
    callers: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    class_defs: dict[tuple[str, str], int] = field(default_factory=dict)  # (path, class) -> defs in its body

    def files_naming(self, word: str) -> list[str]:
        pattern = re.compile(rf"\b{re.escape(word)}\b")
        return [path for path, text in self.texts.items() if pattern.search(text)]


def copy_corpus(source: Path, target: Path) -> Path:
    for path in sorted(source.rglob("*.py")):
        rel = path.relative_to(source)
        if SKIP_DIRS & set(rel.parts) or not path.is_file():
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / rel)
    return target


def read_corpus(root: Path) -> Corpus:
    texts, sizes = {}, {}
    for path in sorted(root.rglob("*.py")):
        data = path.read_bytes()
        rel = path.relative_to(root).as_posix()
        texts[rel], sizes[rel] = data.decode("utf-8", errors="replace"), len(data)
    corpus = Corpus(root, texts, sizes)
    for rel, text in texts.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue  # test data that is broken on purpose: no gold facts from it
        _collect(corpus, rel, tree)
    return corpus


def _collect(corpus: Corpus, rel: str, tree: ast.Module) -> None:
    def visit(node: ast.AST, prefix: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                corpus.names[child.name] += 1
                if isinstance(child, ast.ClassDef):
                    if not prefix:
                        corpus.classes.append((rel, child.name, child.lineno))
                        corpus.class_defs[(rel, child.name)] = _defs_in_body(child)
                    for base in child.bases:
                        name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
                        if name:
                            corpus.bases[name] += 1
                visit(child, (*prefix, child.name))
            else:
                if isinstance(child, ast.Call):
                    func = child.func
                    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                    if isinstance(func, ast.Name | ast.Attribute) and name:
                        corpus.callers[name].add(rel)
                visit(child, prefix)

    visit(tree, ())


def _defs_in_body(node: ast.ClassDef) -> int:
    """defs whose innermost enclosing class or def is `node` (also under if/try/with in the body)."""
    count, stack = 0, list(node.body)
    while stack:
        child = stack.pop()
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            count += 1
        elif not isinstance(child, ast.ClassDef):
            stack.extend(c for c in ast.iter_child_nodes(child) if isinstance(c, ast.stmt | ast.excepthandler |
                                                                                ast.match_case))
    return count


REFERENCES = {
    "where": '''hits = find_symbol({name!r}, kind="class")
print(hits)
FINAL(f"{{hits[0]['path']}}:{{hits[0]['start_line']}}")
''',
    "subclasses": '''import ast, re, warnings
warnings.simplefilter("ignore")
word = re.compile(r"\\b{name}\\b")
count = 0
for path in files:
    text = files[path]
    if not path.endswith(".py") or not word.search(text):
        continue
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        continue
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            count += sum(1 for b in node.bases if {name!r} in (getattr(b, "id", None), getattr(b, "attr", None)))
FINAL(count)
''',
    "callers": '''paths = sorted({{hit["path"] for hit in references({name!r}, limit=1000)}})
print(len(paths), "files")
FINAL("\\n".join(paths))
''',
    "defs": '''(where,) = find_symbol({name!r}, kind="class")
body = [s for s in outline(where["path"]) if s["qualname"].startswith({name!r} + ".") and s["qualname"].count(".") == 1
        and s["kind"] in ("method", "function")]
print(where["path"], len(body))
FINAL(len(body))
''',
}


def generate(workdir: Path, seed: int, source: Path | None = None) -> list[Task]:
    root = copy_corpus(source or guest_stdlib(), workdir / "codebase")
    corpus = read_corpus(root)
    rng = random.Random(f"codeqa-{seed}")
    tokens = tokens_of(sum(len(text) for text in corpus.texts.values()))
    unique = sorted((p, n, line) for p, n, line in corpus.classes if corpus.names[n] == 1)
    tasks: list[Task] = []

    def add(kind: str, name: str, question: str, gold: str, scoring: str, evidence: list[str]) -> None:
        tasks.append(Task(
            suite="codeqa", task_id=f"codeqa-{kind}-{name}", size=tokens, tokens=tokens, question=question, gold=gold,
            scoring=scoring, source=(str(root),), reference=REFERENCES[kind].format(name=name),  # type: ignore[arg-type]
            evidence_bytes=sum(corpus.sizes[p] for p in evidence), notes={"evidence_files": str(len(evidence))},
        ))

    for path, name, line in _pick(rng, unique):
        add("where", name, f"In which file and at which line is the class `{name}` defined? Answer as "
            "path:line, the path relative to the loaded directory.", f"{path}:{line}", "exact",
            corpus.files_naming(name))
    common_bases = sorted(name for name, count in corpus.bases.items() if 3 <= count <= 300)
    for name in _pick(rng, common_bases):
        add("subclasses", name, f"How many classes in the loaded code list `{name}` among their direct base classes "
            f"(written `{name}` or `<module>.{name}`)? Answer with a number.", str(corpus.bases[name]), "number",
            corpus.files_naming(name))
    callees = sorted(name for name, paths in corpus.callers.items() if 2 <= len(paths) <= 40 and len(name) > 3)
    for name in _pick(rng, callees):
        add("callers", name, f"Which files call a function or method named `{name}` (as `{name}(...)` or "
            f"`<object>.{name}(...)`)? Answer with the file paths relative to the loaded directory, one per line.",
            "\n".join(sorted(corpus.callers[name])), "f1_lines", corpus.files_naming(name))
    sized = [(p, n) for p, n, _ in unique if 3 <= corpus.class_defs[(p, n)] <= 60]
    for path, name in _pick(rng, sized):
        add("defs", name, f"How many `def` statements does the body of class `{name}` hold directly (methods, "
            "including ones under if/try/with in the class body; not inherited, not inside nested defs or "
            "classes)? Answer with a number.", str(corpus.class_defs[(path, name)]), "number", [path])
    return tasks


def _pick[T](rng: random.Random, candidates: list[T]) -> list[T]:
    """PER_KIND of them; fewer on a small corpus (a kind with no candidate asks nothing)."""
    return rng.sample(candidates, min(PER_KIND, len(candidates)))
