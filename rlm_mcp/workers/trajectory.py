"""The session's trajectory: one JSON object per line, appended as things happen.

Line-buffered and flushed per event, so a crash loses at most the event being written and
`rlm-mcp trace` can render a log while its session is still running.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class TrajectoryLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def record(self, event: dict[str, Any]) -> None:
        line = json.dumps({"ts": round(time.time(), 3), **event}, ensure_ascii=False, default=str)
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            self._file.close()
