"""Tree-sitter symbol index of a code context: definitions, imports and call sites, parallel and cached.

Knows nothing of MCP, LLMs or the sandbox. Results are plain dicts so they can cross the REPL's
callback channel unchanged.
"""

from .extract import FileRecord, extract_file
from .index import CodeIndex
from .languages import EXTENSIONS, SPECS, spec_for

__all__ = ["EXTENSIONS", "SPECS", "CodeIndex", "FileRecord", "extract_file", "spec_for"]
