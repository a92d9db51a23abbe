"""File classification by name: language for the manifest, and extensions known to be binary.

Classifying by extension is instant and good enough for a summary and for choosing a tree-sitter grammar;
content sniffing is left to the binary check (a NUL byte in the first 8 KiB) in the loader.
"""

from __future__ import annotations

import os

__all__ = ["BINARY_EXTENSIONS", "language_of"]

_EXT_LANG: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python", ".pyx": "cython", ".pxd": "cython",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala", ".sc": "scala",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".hxx": "cpp", ".cs": "csharp", ".rb": "ruby", ".php": "php", ".swift": "swift", ".m": "objc",
    ".sh": "bash", ".bash": "bash", ".zsh": "bash", ".fish": "fish", ".ps1": "powershell",
    ".lua": "lua", ".pl": "perl", ".pm": "perl", ".r": "r", ".jl": "julia", ".dart": "dart",
    ".ex": "elixir", ".exs": "elixir", ".erl": "erlang", ".hs": "haskell", ".ml": "ocaml",
    ".clj": "clojure", ".zig": "zig", ".nim": "nim", ".vue": "vue", ".svelte": "svelte",
    ".sql": "sql", ".proto": "protobuf", ".graphql": "graphql", ".tf": "terraform",
    ".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".txt": "text", ".adoc": "asciidoc",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".yaml": "yaml", ".yml": "yaml",
    ".toml": "toml", ".ini": "ini", ".cfg": "ini", ".conf": "ini", ".xml": "xml", ".html": "html",
    ".htm": "html", ".css": "css", ".scss": "scss", ".less": "less", ".csv": "csv", ".tsv": "tsv",
    ".log": "log", ".cmake": "cmake", ".gradle": "gradle", ".bat": "batch", ".tex": "latex",
}  # fmt: skip

_NAME_LANG: dict[str, str] = {
    "Dockerfile": "dockerfile", "Makefile": "make", "GNUmakefile": "make", "CMakeLists.txt": "cmake",
    "Gemfile": "ruby", "Rakefile": "ruby", "BUILD": "starlark", "WORKSPACE": "starlark",
    "Jenkinsfile": "groovy", "Vagrantfile": "ruby",
}  # fmt: skip

#: Extensions skipped without being opened; counted as "binary" in the summary.
_BINARY_EXT_TEXT = """
    .png .jpg .jpeg .gif .bmp .ico .icns .webp .tif .tiff .psd .xcf .heic .avif
    .pdf .doc .docx .xls .xlsx .ppt .pptx .odt .ods .odp
    .zip .gz .tgz .bz2 .xz .zst .lz4 .7z .rar .tar .jar .war .ear .whl .egg .apk .deb .rpm .dmg .iso
    .so .dylib .dll .exe .o .obj .a .lib .pyc .pyo .pyd .class .wasm .bin .elf
    .mp3 .mp4 .m4a .wav .ogg .flac .aac .aiff .au .avi .mov .mkv .webm .mpg .mpeg
    .woff .woff2 .ttf .otf .eot
    .db .sqlite .sqlite3 .mdb .npy .npz .pkl .pickle .parquet .feather .arrow .h5 .hdf5
    .onnx .pt .ckpt .safetensors .gguf .tflite
"""
BINARY_EXTENSIONS: frozenset[str] = frozenset(_BINARY_EXT_TEXT.split())


def language_of(path: str) -> str | None:
    """Language name for a file path (posix or native), or None when the extension is unknown."""
    base = os.path.basename(path)
    lang = _NAME_LANG.get(base)
    if lang is not None:
        return lang
    return _EXT_LANG.get(os.path.splitext(base)[1].lower())
