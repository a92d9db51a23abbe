"""A generated project tree that exercises every selection rule of the contexts loader."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


@dataclass
class Tree:
    root: Path  # the allowed root and the project
    outside: Path  # a sibling directory outside the allowed root
    store: Path  # where contexts are stored


def write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_bytes(data.encode("utf-8"))


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    root = tmp_path / "proj"
    outside = tmp_path / "outside"
    files: dict[str, str | bytes] = {
        ".gitignore": "*.log\n!keep.log\nbuild/\n# comment\n",
        ".git/HEAD": "ref: refs/heads/main\n",
        ".git/info/exclude": "excluded.txt\n",
        "excluded.txt": "should not load\n",
        "README.md": "# Project\n",
        "debug.log": "ignored by *.log\n",
        "keep.log": "kept by !keep.log\n",
        "src/a.py": "def a():\n    return 1\n",
        "src/b.js": "export const b = 2;",
        "src/ünï.py": "s = 'héllo ✓ 𝄞'\n",
        "src/crlf.txt": "one\r\ntwo\r\n",
        "src/latin1.txt": b"caf\xe9\n",
        "src/sub/.gitignore": "*.txt\n!notes.log\n",
        "src/sub/x.txt": "ignored by nested *.txt\n",
        "src/sub/notes.log": "re-included by nested !notes.log\n",
        "src/sub/y.py": "Y = 'y'\n",
        "données/ファイル.md": "日本語のテキスト\n",
        "build/out.js": "generated\n",
        "node_modules/dep/index.js": "dependency\n",
        "__pycache__/a.cpython-312.pyc": b"\x00\x01",
        "img.png": PNG,
        "blob.dat": b"text then \x00 nul",
        "big.txt": "x" * 5000,
    }
    for rel, data in files.items():
        write(root / rel, data)
    write(outside / "secret.txt", "outside the root\n")
    write(outside / "sub" / "s.py", "S = 1\n")
    os.symlink(outside / "secret.txt", root / "link_out.txt")  # file link out of the root: skipped
    os.symlink(outside / "sub", root / "link_out_dir")  # dir link out of the root: skipped
    os.symlink(root / "src" / "a.py", root / "link_a.py")  # file link inside: loaded under its name
    os.symlink(root / "src", root / "link_src")  # dir link back into the tree: skipped
    return Tree(root=root, outside=outside, store=tmp_path / "store")
