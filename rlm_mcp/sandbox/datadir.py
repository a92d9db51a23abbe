"""Per-session data directories the jail can read.

The guest runs as an unprivileged uid, so a bind source must be reachable by "others". A home
directory (root's is 0700) or pytest's temp root often is not. Session directories therefore live
under one runtime root of mode 0711 (others may traverse, not list) with unguessable names.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from .interpreter import readable_by_others


def default_runtime_root() -> Path:
    user = os.getuid() if hasattr(os, "getuid") else "user"  # Windows has no uids (its temp dir is per user)
    return Path(os.environ.get("RLM_RUNTIME_DIR") or Path(tempfile.gettempdir()) / f"rlm-mcp-{user}")


def new_data_dir(runtime_root: Path | None = None) -> Path:
    """Create a fresh, jail-readable directory for one session's data."""
    root = runtime_root or default_runtime_root()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o711)
    path = root / f"s-{secrets.token_hex(16)}"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    return path


def unreachable_reason(path: Path) -> str | None:
    """Why the jail's uid cannot read `path`, with the fix; None when it can."""
    if readable_by_others(path):
        return None
    return (
        f"the session data directory {path} is not readable by the jail's unprivileged uid (a parent "
        "directory lacks 'others' execute permission). Set RLM_RUNTIME_DIR to a directory such as "
        "/tmp/rlm-mcp, or chmod o+x the parents."
    )
