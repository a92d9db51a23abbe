"""Contexts: turn inline text, files, directories and globs into one stored context on disk.

A stored context is one UTF-8 file (`content.txt`) plus a manifest of per-file character offsets,
written atomically under `store_dir/<name>/`. The sandbox maps the file read-only into the REPL as
`context` and `files[path]`; this package knows nothing of MCP, LLMs or the sandbox.

    from rlm_mcp.contexts import LoadLimits, store_paths
    stored = store_paths("main", ["."], allowed_roots=[Path.cwd()], store_dir=d, limits=LoadLimits())
    stored.to_dict()   # the summary a model may see: sizes, languages, skips -- never the content
"""

from .boundary import Reader, ReadScope, read_scope
from .cas import ContentStore
from .errors import (
    ContextError,
    ContextTooLarge,
    DeclaredRootOutside,
    InvalidContextName,
    OutsideAllowedRoots,
    SourceNotFound,
    UnusableRootUri,
)
from .languages import language_of
from .live import Change, LiveContext, open_context
from .load import Loaded, LoadRequest, store_walked
from .models import (
    CONTEXT_NAME_RE,
    DEFAULT_SKIP_DIRS,
    FILE_HEADER,
    FORMAT_VERSION,
    FileSize,
    LoadLimits,
    ManifestEntry,
    SkipCounts,
    StoredContext,
    read_entries,
)
from .snapshot import WalkSnapshot
from .store import (
    delete_stored,
    files_of,
    last_stored,
    load_stored,
    read_manifest,
    relink_stored,
    store_paths,
    store_text,
    validate_name,
)
from .walk import walk_sources
from .watch import open_watch
from .write import Previous

__all__ = [
    "CONTEXT_NAME_RE",
    "DEFAULT_SKIP_DIRS",
    "FILE_HEADER",
    "FORMAT_VERSION",
    "Change",
    "ContentStore",
    "ContextError",
    "ContextTooLarge",
    "DeclaredRootOutside",
    "FileSize",
    "InvalidContextName",
    "LiveContext",
    "LoadLimits",
    "LoadRequest",
    "Loaded",
    "ManifestEntry",
    "OutsideAllowedRoots",
    "Previous",
    "ReadScope",
    "Reader",
    "SkipCounts",
    "SourceNotFound",
    "StoredContext",
    "UnusableRootUri",
    "WalkSnapshot",
    "delete_stored",
    "files_of",
    "language_of",
    "last_stored",
    "load_stored",
    "open_context",
    "open_watch",
    "read_entries",
    "read_manifest",
    "read_scope",
    "relink_stored",
    "store_paths",
    "store_text",
    "store_walked",
    "validate_name",
    "walk_sources",
]
